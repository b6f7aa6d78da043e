"""The user's own data: .npz arrays (regression), a CSV table and an image folder (classification)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import netspec
from netspec.errors import NetspecError

LINEAR = """\
netspec: 1
name: lin
params: {out: 1}
inputs:
  x: [N, %d]
layers:
  - {name: fc, op: linear, out: out}
train:
%s
"""


def _spec(tmp_path, features: int, train: str, name="s.yaml"):
    p = tmp_path / name
    p.write_text(LINEAR % (features, train))
    return p


def test_npz_regression(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x @ np.array([1.5, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = _spec(tmp_path, 3, f"  method: regress\n  data: {{source: npz, path: '{tmp_path / 'd.npz'}'}}\n"
                              "  optimizer: {name: adam, lr: 0.05}\n  epochs: 30\n  batch_size: 32\n"
                              "  metrics: [mse, mae]\n  threads: 1")
    res = netspec.train(spec, out=str(tmp_path / "o"))
    assert res.metrics["mse"] < 1e-3, res.metrics
    w = res.module.state_dict()["fc.weight"].flatten().tolist()
    assert w == pytest.approx([1.5, -2.0, 0.5], abs=0.02)


def test_csv_classification_with_class_names(tmp_path):
    rng = np.random.default_rng(1)
    rows = ["a,b,kind"]
    for _ in range(300):
        a, b = rng.normal(size=2)
        rows.append(f"{a:.4f},{b:.4f},{'left' if a + b < 0 else 'right'}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    spec = _spec(tmp_path, 2, f"  method: classify\n  params: {{out: 2}}\n"
                              f"  data: {{source: csv, path: '{tmp_path / 't.csv'}', target: kind}}\n"
                              "  optimizer: {name: sgd, lr: 0.5, momentum: 0.9}\n  epochs: 20\n  batch_size: 16\n"
                              "  metrics: [accuracy]\n  threads: 1")
    assert netspec.train(spec, out=str(tmp_path / "o")).metrics["accuracy"] >= 0.95


def test_image_folder(tmp_path):
    rng = np.random.default_rng(2)
    for k, name in enumerate(["dark", "light"]):
        (tmp_path / "img" / name).mkdir(parents=True)
        for i in range(40):
            a = np.clip(rng.normal(60 + 120 * k, 30, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(tmp_path / "img" / name / f"{i}.png")
    spec = tmp_path / "s.yaml"
    spec.write_text("netspec: 1\nname: tiny\ninputs:\n  x: [N, 1, 8, 8]\nlayers:\n  - {op: flatten}\n"
                    "  - {name: fc, op: linear, out: 2}\ntrain:\n  method: classify\n"
                    f"  data: {{source: images, path: '{tmp_path / 'img'}', size: [8, 8], grayscale: true}}\n"
                    "  optimizer: {name: adam, lr: 0.01}\n  epochs: 15\n  batch_size: 8\n  metrics: [accuracy]\n")
    assert netspec.train(spec, out=str(tmp_path / "o")).metrics["accuracy"] >= 0.9


def test_missing_target_array_is_a_located_error(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 3), np.float32), label=np.zeros(10))
    spec = _spec(tmp_path, 3, f"  method: regress\n  data: {{source: npz, path: '{tmp_path / 'd.npz'}', "
                              "target: labl}")
    with pytest.raises(NetspecError, match="has no array 'labl'") as e:
        netspec.train(spec, out=str(tmp_path / "o"))
    assert e.value.loc.line == 10 and "did you mean 'label'" in e.value.format()


def _declared_only(path):
    """A tiny .npz whose arrays' headers declare 800 GB: refused from the headers, before anything is read."""
    import io
    import zipfile
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**7, 10**4)})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", buf.getvalue())
        z.writestr("y.npy", buf.getvalue())


def _other_member(path):
    import zipfile
    np.savez(path, x=np.zeros((4, 3), np.float32), y=np.zeros(4))
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("notes.txt", "hello")


@pytest.mark.parametrize("write, message", [
    (lambda p: p.write_bytes(b"not a zip file"), "cannot read 'DATA' as .npz arrays: BadZipFile"),
    (lambda p: np.savez(p, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1])),
     "Object arrays cannot be loaded when allow_pickle=False"),
    (lambda p: (np.savez(p, x=np.zeros((4, 3)), y=np.zeros(4)), p.write_bytes(p.read_bytes()[:120])),
     "cannot read 'DATA' as .npz arrays"),
    (lambda p: np.savez(p, x=np.float32(3), y=np.int64(1)), "array 'x' is a single value"),
    (lambda p: np.savez(p, x=np.array(["a", "b"]), y=np.array([0, 1])), "array 'x' holds <U1 values"),
    (_declared_only, "declares 800,000,000,000 bytes of arrays, over max_alloc_bytes"),
    (_other_member, "'notes.txt' is not a numpy array"),
], ids=["not-zip", "objects", "truncated", "scalar", "strings", "declared-huge", "other-member"])
def test_a_hostile_npz_is_a_located_error_and_never_unpickled(tmp_path, write, message):
    data = tmp_path / "d.npz"
    write(data)
    spec = _spec(tmp_path, 3, f"  method: regress\n  data: {{source: npz, path: '{data}', target: y}}")
    with pytest.raises(NetspecError) as e:
        netspec.train(spec, out=str(tmp_path / "o"))
    assert message.replace("DATA", str(data)) in e.value.format() and e.value.loc.line == 10


def test_a_csv_that_is_not_utf8_or_an_unreadable_image_is_a_located_error(tmp_path):
    (tmp_path / "t.csv").write_bytes("a,b,y\n1,2,\xe9\n".encode("latin-1"))
    spec = _spec(tmp_path, 2, f"  method: classify\n  data: {{source: csv, path: '{tmp_path / 't.csv'}'}}")
    with pytest.raises(NetspecError, match="cannot read .* as CSV"):
        netspec.train(spec, out=str(tmp_path / "o"))
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    (tmp_path / "imgs" / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    spec = _spec(tmp_path, 2, f"  method: classify\n  data: {{source: images, path: '{tmp_path / 'imgs'}', "
                              "size: [8, 8]}")
    with pytest.raises(NetspecError, match="cannot read the image .*broken.png"):
        netspec.train(spec, out=str(tmp_path / "o"))
