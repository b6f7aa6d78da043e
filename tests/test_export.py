"""ONNX export (torch.onnx, dynamo) checked with onnx.checker and onnxruntime; torch.compile on a built module."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import netspec
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
    import torch
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


def test_torch_compile_on_a_built_module():
    import torch
    model = netspec.build(ROOT / "specs/mlp.yaml").eval()
    x = torch.randn(4, 64)
    try:
        compiled = torch.compile(model)
        with torch.no_grad():
            y = compiled(x)
    except Exception as e:  # only a platform that cannot compile (no C compiler, ...) may skip
        if "compiler" in str(e).lower() or "InvalidCxxCompiler" in type(e).__name__:
            pytest.skip(f"this platform cannot compile: {e}")
        raise
    with torch.no_grad():
        assert torch.allclose(y, model(x), atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_spec_matches_torch(kind, bidirectional):
    import torch
    text = f"""
netspec: 1
inputs: {{x: [N, T, 12]}}
layers:
  - {{name: rnn, op: {kind}, hidden: 20, layers: 2, bidirectional: {str(bidirectional).lower()}}}
outputs: {{out: rnn, h: rnn.h}}
"""
    model = netspec.build(text).eval()
    ref = getattr(torch.nn, kind.upper())(12, 20, num_layers=2, batch_first=True, bidirectional=bidirectional).eval()
    model.load_state_dict({f"rnn.{k}": v for k, v in ref.state_dict().items()}, strict=True)
    x = torch.randn(3, 7, 12)
    with torch.no_grad():
        got = model(x)
        out, h = ref(x)
    h = h[0] if kind == "lstm" else h
    assert (got["out"] - out).abs().max() <= 1e-5
    assert (got["h"] - h).abs().max() <= 1e-5


def test_transformer_core_matches_nn_transformer():
    import torch
    model = netspec.build(ROOT / "specs/transformer.yaml", src_vocab=50, tgt_vocab=60, d_model=32, heads=4,
                          encoder_layers=2, decoder_layers=2, ffn=64).eval()
    core = torch.nn.Transformer(32, 4, 2, 2, 64, batch_first=True).eval()
    sd = {k: v for k, v in core.state_dict().items()}
    missing = model.load_state_dict(sd, strict=False)
    assert not missing.unexpected_keys
    assert all(not k.startswith(("encoder.", "decoder.")) for k in missing.missing_keys)
    src, tgt = torch.randint(0, 50, (2, 9)), torch.randint(0, 60, (2, 7))
    with torch.no_grad():
        got = model(src, tgt)
        s = model.src_embed(src)
        t = model.tgt_embed(tgt)
        mask = torch.nn.Transformer.generate_square_subsequent_mask(7)
        want = model.generator(core(s, t, tgt_mask=mask, tgt_is_causal=True))
    assert (got - want).abs().max() <= 1e-5


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
