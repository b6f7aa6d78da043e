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
