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
