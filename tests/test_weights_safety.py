"""load_weights is all or nothing: everything a file declares is checked before any tensor is read, and a failed
load leaves the module bitwise unchanged. Fuzzed with hypothesis-made safetensors headers and torch zip files."""
from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from netspec import weights as W
from netspec.errors import WeightsError
from netspec.limits import LIMITS

ROOT = Path(__file__).resolve().parent.parent


def small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))


def snapshot(m) -> dict:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def unchanged(m, before) -> bool:
    now = m.state_dict()
    return set(now) == set(before) and all(now[k].dtype == before[k].dtype and now[k].shape == before[k].shape and
                                           torch.equal(now[k].reshape(-1).view(torch.uint8), before[k].reshape(-1).view(torch.uint8))
                                           for k in now)


def st_bytes(header: dict, data: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


@pytest.fixture
def limit():
    old = LIMITS.max_alloc_bytes
    yield LIMITS
    LIMITS.max_alloc_bytes = old


# -- all or nothing ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["safetensors", "pt", "legacy"])
def test_some_mis_shaped_tensors_load_nothing(fmt, tmp_path):
    """Four tensors, one of the wrong shape: no tensor is copied, and the error names the one."""
    from safetensors.torch import save_file
    m, other = small_model(), small_model()
    sd = {k: v + 1 if v.is_floating_point() else v for k, v in other.state_dict().items()}
    sd["2.weight"] = torch.zeros(5, 3)
    p = tmp_path / f"w.{fmt}"
    if fmt == "safetensors":
        save_file(sd, p)
    else:
        torch.save(sd, p, _use_new_zipfile_serialization=fmt == "pt")
    before = snapshot(m)
    with pytest.raises(WeightsError) as ei:
        W.load_weights(m, p)
    assert "2.weight (model [2, 3], file [5, 3])" in ei.value.message
    assert unchanged(m, before)


@pytest.mark.parametrize("dtype", [torch.bool, torch.int8, torch.float64, torch.int64])
def test_casts_that_change_values_are_refused_unless_allowed(dtype, tmp_path):
    from safetensors.torch import save_file
    m = small_model()
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    sd["0.weight"] = torch.ones(3, 4).to(dtype)
    save_file(sd, tmp_path / "w.safetensors")
    before = snapshot(m)
    with pytest.raises(WeightsError, match=r"0\.weight \(model float32, file " + str(dtype)[6:]):
        W.load_weights(m, tmp_path / "w.safetensors")
    assert unchanged(m, before)
    with pytest.warns(UserWarning, match="cast 1 tensors"):
        W.load_weights(m, tmp_path / "w.safetensors", allow_cast=True)
    assert torch.equal(m[0].weight, torch.ones(3, 4))


def test_lossless_casts_load_and_are_reported(tmp_path):
    from safetensors.torch import save_file
    m = small_model()
    sd = {k: v.half() if v.is_floating_point() else v for k, v in m.state_dict().items()}
    save_file(sd, tmp_path / "w.safetensors")
    with pytest.warns(UserWarning, match=r"0\.weight float16 -> float32"):
        W.load_weights(m, tmp_path / "w.safetensors")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_values_are_refused_unless_allowed(bad, tmp_path):
    m = small_model()
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    sd["1.running_var"][1] = bad
    torch.save(sd, tmp_path / "w.pt")
    before = snapshot(m)
    with pytest.raises(WeightsError, match=r"not finite .*1\.running_var"):
        W.load_weights(m, tmp_path / "w.pt")
    assert unchanged(m, before)
    W.load_weights(m, tmp_path / "w.pt", allow_nonfinite=True)
    assert not torch.isfinite(m[1].running_var).all()


def test_every_problem_is_listed_at_once(tmp_path):
    from safetensors.torch import save_file
    m = small_model()
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    sd.pop("2.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["0.weight"] = torch.zeros(9, 9)
    sd["0.bias"] = sd["0.bias"].double()
    save_file(sd, tmp_path / "w.safetensors")
    with pytest.raises(WeightsError) as ei:
        W.load_weights(m, tmp_path / "w.safetensors")
    msg = ei.value.message
    for part in ("1 mis-shaped: 0.weight", "1 of another dtype", "missing from the file: 2.bias",
                 "unexpected in the file: extra.weight"):
        assert part in msg, msg


# -- nothing inflated before the checks -------------------------------------------------------------------------

def test_a_header_declaring_huge_tensors_is_refused_before_reading(tmp_path, limit, monkeypatch):
    m = small_model()
    header = {k: {"dtype": "F32", "shape": list(v.shape), "data_offsets": [0, 0]} for k, v in m.state_dict().items()}
    # a consistent file whose tensors are bigger than the limit
    data, off, hdr = b"", 0, {}
    for k, v in m.state_dict().items():
        n = v.numel() * v.element_size()
        hdr[k] = {"dtype": {torch.float32: "F32", torch.int64: "I64"}[v.dtype], "shape": list(v.shape),
                  "data_offsets": [off, off + n]}
        data += v.contiguous().numpy().tobytes()
        off += n
    (tmp_path / "w.safetensors").write_bytes(st_bytes(hdr, data))
    limit.max_alloc_bytes = 16
    monkeypatch.setattr(W, "_read_st_tensor", lambda *a: pytest.fail("a tensor was read"))
    with pytest.raises(WeightsError, match="over the limit of 16 bytes"):
        W.load_weights(m, tmp_path / "w.safetensors")
    # and a header that claims 4 TB of data the file does not have
    header["0.weight"] = {"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 2**42]}
    (tmp_path / "big.safetensors").write_bytes(st_bytes(header))
    with pytest.raises(WeightsError, match="past the end of the file"):
        W.load_weights(m, tmp_path / "big.safetensors")


def _deflated(src: Path, dst: Path) -> None:
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zo:
        for info in zi.infolist():
            zo.writestr(info.filename, zi.read(info.filename))


def test_a_torch_zip_with_an_unexpected_tensor_inflates_nothing(tmp_path, monkeypatch):
    """A small compressed file holding 200 MB of zeros under a key the model does not have: refused from the zip
    directory and a meta-device reading of the pickle; no storage is inflated."""
    m = small_model()
    sd = dict(m.state_dict(), extra=torch.zeros(50 * 2**20))
    torch.save(sd, tmp_path / "plain.pt")
    _deflated(tmp_path / "plain.pt", tmp_path / "w.pt")
    assert (tmp_path / "w.pt").stat().st_size < 2**20
    real = W._torch_load
    calls = []
    monkeypatch.setattr(W, "_torch_load", lambda p, map_location: calls.append(map_location) or real(p, map_location))
    with pytest.raises(WeightsError, match="unexpected in the file: extra"):
        W.load_weights(m, tmp_path / "w.pt")
    assert calls == ["meta"]


def test_a_torch_zip_declaring_more_than_the_limit_is_refused(tmp_path, limit, monkeypatch):
    m = small_model()
    torch.save(m.state_dict(), tmp_path / "w.pt")
    limit.max_alloc_bytes = 32
    monkeypatch.setattr(W, "_torch_load", lambda *a, **k: pytest.fail("the pickle was read"))
    with pytest.raises(WeightsError, match=r"declares .* of tensor data, over the limit of 32 bytes"):
        W.load_weights(m, tmp_path / "w.pt")


# -- fuzzing ----------------------------------------------------------------------------------------------------

KEYS = ["0.weight", "0.bias", "1.weight", "1.running_var", "2.bias", "extra", "__metadata__", "\x1b[2J"]
entry = st.fixed_dictionaries({
    "dtype": st.sampled_from(list(W.ST_DTYPES) + ["F128", "", 3]),
    "shape": st.one_of(st.lists(st.integers(-2, 6), max_size=3), st.just([2**40, 2**40]), st.just("3"),
                       st.lists(st.booleans(), max_size=2)),
    "data_offsets": st.one_of(st.tuples(st.integers(-1, 64), st.integers(-1, 64)).map(list),
                              st.just([0, 2**63]), st.just([1]), st.none()),
}, optional={"extra": st.integers()})
headers = st.dictionaries(st.sampled_from(KEYS), st.one_of(entry, st.integers(), st.text(max_size=3)), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(header=headers, data=st.binary(max_size=64), raw=st.one_of(st.none(), st.binary(max_size=40)))
def test_fuzz_safetensors_headers(header, data, raw, tmp_path_factory):
    """Any header: the load succeeds, or raises WeightsError and leaves the module unchanged."""
    p = tmp_path_factory.mktemp("st") / "w.safetensors"
    p.write_bytes(raw if raw is not None else st_bytes(header, data))
    m = small_model()
    before = snapshot(m)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W.load_weights(m, p, strict=False)
    except WeightsError as e:
        assert e.loc is not None and unchanged(m, before)


def _torch_zip_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save(small_model().state_dict(), buf)
    return buf.getvalue()


VALID_ZIP = _torch_zip_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID_ZIP) - 1), st.integers(0, 255)), max_size=4),
       cut=st.one_of(st.none(), st.integers(0, len(VALID_ZIP))),
       entries=st.one_of(st.none(), st.dictionaries(st.sampled_from(["archive/data.pkl", "archive/data/0",
                                                                     "archive/version", "x/data.pkl", "../evil"]),
                                                    st.binary(max_size=64), max_size=4)))
def test_fuzz_torch_zip_files(edits, cut, entries, tmp_path_factory):
    """Byte edits and truncations of a real torch.save zip, and zips with made-up records: a clean outcome."""
    if entries is not None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
        blob = buf.getvalue()
    else:
        b = bytearray(VALID_ZIP)
        for at, v in edits:
            b[at] = v
        blob = bytes(b[:cut] if cut is not None else b)
    p = tmp_path_factory.mktemp("pt") / "w.pt"
    p.write_bytes(blob)
    m = small_model()
    before = snapshot(m)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W.load_weights(m, p)
    except WeightsError as e:
        assert e.loc is not None and unchanged(m, before)


# -- the command line -------------------------------------------------------------------------------------------

def test_export_with_bad_weights_exits_1_without_traceback(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    (tmp_path / "net.yaml").write_text("netspec: 1\ninputs: {x: [N, 4]}\nlayers:\n  - {op: linear, out: 3, name: fc}\n")
    torch.save({"fc.weight": torch.zeros(3, 4), "fc.bias": torch.full((3,), float("nan"))}, tmp_path / "w.pt")
    r = subprocess.run([sys.executable, "-m", "netspec", "export", "net.yaml", "-o", "m.onnx", "--weights", "w.pt"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("w.pt:1:1: error: the weights in 'w.pt' do not fit the model: 1 with values that "
                               "are not finite"), r.stderr
    assert not (tmp_path / "m.onnx").exists()
