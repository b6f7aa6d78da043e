"""Built modules against torch.nn's own: recurrent layers and nn.Transformer give the same outputs from the same
weights; torch.compile accepts a built module. (No ONNX needed: these run without the export extra.)"""
from __future__ import annotations

from pathlib import Path

import pytest

import netspec

ROOT = Path(__file__).parent.parent


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
