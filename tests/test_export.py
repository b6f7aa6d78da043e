"""ONNX export (torch.onnx, dynamo) checked with onnx.checker and onnxruntime."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netspec.errors import NetspecError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("spec,dynamic", [("mlp", ["N"]), ("lenet5", ["N"]), ("lstm", ["N", "T"]),
                                          ("resnet18", ["H", "N", "W"])])
def test_export_checks_and_matches_onnxruntime(spec, dynamic, tmp_path):
    from netspec.export import export_onnx
    out = tmp_path / f"{spec}.onnx"
    rep = export_onnx(ROOT / "specs" / f"{spec}.yaml", out)
    assert out.stat().st_size == rep.nbytes > 1000
    onnx.checker.check_model(onnx.load(str(out)))
    assert rep.dynamic == dynamic
    pytest.importorskip("onnxruntime")
    assert rep.max_abs_diff is not None and rep.max_abs_diff <= 1e-4


def test_export_dynamic_batch_runs_other_sizes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import numpy as np
    from netspec.export import export_onnx
    out = tmp_path / "r18.onnx"
    export_onnx(ROOT / "specs/resnet18.yaml", out)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, 3, 96, 80)).astype("float32")
    (y,) = sess.run(None, {"x": x})
    assert y.shape == (3, 1000)


def test_export_cli_and_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "netspec", "export", "specs/mlp.yaml", "-o", str(tmp_path / "m.onnx")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "opset" in r.stdout
    r = subprocess.run([sys.executable, "-m", "netspec", "export", "specs/mlp.yaml", "-o", str(tmp_path / "m.txt")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "must end in .onnx" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "netspec", "export", "specs/mlp.yaml", "-o",
                        str(tmp_path / "missing" / "m.onnx")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_export_without_onnx_is_a_clear_error(monkeypatch, tmp_path):
    import builtins
    real = builtins.__import__

    def fake(name, *a, **k):
        if name in ("onnx", "onnxscript"):
            raise ImportError(name)
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", fake)
    from netspec.export import export_onnx
    with pytest.raises(NetspecError, match="needs the 'onnx'"):
        export_onnx(ROOT / "specs/mlp.yaml", tmp_path / "m.onnx")


MASKED = """\
netspec: 1
inputs: {x: [N, 6]}
layers:
  - {name: neg, op: lt, value: 0.0}
  - {name: fill, op: masked_fill, from: [x, neg], value: "-inf"}
"""


def test_export_compares_infinities_as_values(tmp_path):
    """Outputs holding -inf where the network puts -inf agree with onnxruntime (difference 0, not NaN)."""
    pytest.importorskip("onnxruntime")
    from netspec.export import export_onnx
    spec = tmp_path / "masked.yaml"
    spec.write_text(MASKED)
    rep = export_onnx(spec, tmp_path / "masked.onnx")
    assert rep.max_abs_diff == 0.0 and (tmp_path / "masked.onnx").exists()


def test_export_that_computes_something_else_is_not_written(tmp_path, monkeypatch):
    """onnxruntime's outputs are compared with torch's before anything is written: a model whose export computes
    other values (simulated here by a runtime that adds 0.01) is an error and leaves no file."""
    ort = pytest.importorskip("onnxruntime")
    from netspec.export import export_onnx

    real = ort.InferenceSession

    class Off:
        def __init__(self, *a, **k):
            self.sess = real(*a, **k)

        def run(self, *a, **k):
            return [o + 0.01 for o in self.sess.run(*a, **k)]

    monkeypatch.setattr(ort, "InferenceSession", Off)
    out = tmp_path / "mlp.onnx"
    with pytest.raises(NetspecError) as e:
        export_onnx(ROOT / "specs" / "mlp.yaml", out)
    assert "differs from torch by up to 0.01" in str(e.value) and not out.exists()
