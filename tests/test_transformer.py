"""The Transformer in both forms (specs/transformer.yaml with the monolithic encoder/decoder-layer ops, and
specs/transformer_explicit.yaml written out of attention, norm and feed-forward layers) against torch.nn.Transformer
with token embeddings, sinusoidal positions and an output projection written here: strict state_dict load, same
outputs in eval mode (float32, max abs difference <= 1e-5)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import netspec

ROOT = Path(__file__).parent.parent
FORMS = ["transformer", "transformer_explicit"]
SMALL = dict(src_vocab=50, tgt_vocab=60, d_model=32, heads=4, encoder_layers=2, decoder_layers=2, ffn=64)


def sinusoid(t: int, d: int) -> torch.Tensor:
    """The table of "Attention Is All You Need": sin on even features, cos on odd ones."""
    pos = torch.arange(t, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(t, d)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


class Tokens(nn.Module):
    def __init__(self, vocab, d):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)

    def forward(self, ids):
        x = self.tok(ids) * math.sqrt(self.tok.embedding_dim)
        return x + sinusoid(ids.shape[1], self.tok.embedding_dim)


class Seq2SeqTransformer(nn.Module):
    """nn.Transformer's encoder and decoder with embeddings and a projection to target-vocabulary logits."""

    def __init__(self, src_vocab, tgt_vocab, d_model, heads, encoder_layers, decoder_layers, ffn):
        super().__init__()
        core = nn.Transformer(d_model, heads, encoder_layers, decoder_layers, ffn, batch_first=True)
        self.src_embed = Tokens(src_vocab, d_model)
        self.encoder = core.encoder
        self.tgt_embed = Tokens(tgt_vocab, d_model)
        self.decoder = core.decoder
        self.generator = nn.Linear(d_model, tgt_vocab)

    def forward(self, src, tgt):
        memory = self.encoder(self.src_embed(src))
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
        return self.generator(self.decoder(self.tgt_embed(tgt), memory, tgt_mask=mask, tgt_is_causal=True))


@pytest.mark.parametrize("form", FORMS)
def test_transformer_matches_nn_transformer(form):
    torch.manual_seed(0)
    ref = Seq2SeqTransformer(**SMALL).eval()
    model = netspec.build(ROOT / "specs" / f"{form}.yaml", **SMALL).eval()
    assert set(model.state_dict()) == set(ref.state_dict())      # (the explicit form lists norm1 before linear1)
    model.load_state_dict(ref.state_dict(), strict=True)
    src, tgt = torch.randint(0, 50, (3, 9)), torch.randint(0, 60, (3, 7))
    with torch.no_grad():
        got, want = model(src, tgt), ref(src, tgt)
    assert got.shape == (3, 7, 60)
    assert (got - want).abs().max().item() <= 1e-5


def test_both_forms_have_the_same_weights_at_base_size():
    counts = []
    for form in FORMS:
        m = netspec.build(ROOT / "specs" / f"{form}.yaml", device="meta")
        counts.append({k: tuple(v.shape) for k, v in m.state_dict().items()})
    assert counts[0] == counts[1]


def test_explicit_form_is_causal():
    model = netspec.build(ROOT / "specs" / "transformer_explicit.yaml", **SMALL).eval()
    src, tgt = torch.randint(0, 50, (2, 5)), torch.randint(0, 60, (2, 6))
    tgt2 = tgt.clone()
    tgt2[:, 4:] = (tgt2[:, 4:] + 1) % 60
    with torch.no_grad():
        a, b = model(src, tgt), model(src, tgt2)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6) and not torch.allclose(a[:, 4:], b[:, 4:])


def test_a_repeat_in_a_group_passes_inputs_in_the_blocks_order():
    """The copies of a repeated block read its inputs in the block's order, even where its layers use them in
    another order and the group's chain input is another value (the explicit decoder's mask and memory)."""
    text = """
netspec: 1
inputs: {x: [N, 4], memory: [N, 4], gate: [N, 1]}
blocks:
  mix:
    inputs: [x, memory, gate]
    layers:
      - {name: gated, op: multiply, from: [x, gate]}
      - {name: lin, op: linear, out: 4}
      - {name: both, op: add, from: [lin, memory]}
layers:
  - {name: first, op: identity, from: gate}
  - name: stack
    op: seq
    layers:
      - {name: layers, op: mix, repeat: 2, from: {x: x, memory: memory, gate: first}}
      - {name: norm, op: layernorm}
"""
    m = netspec.build(netspec.load(text, name="t.yaml"))
    x, mem, gate = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 1)
    h = x
    with torch.no_grad():
        for layer in m.stack.layers:
            h = layer.lin(h * gate) + mem
        assert torch.allclose(m(x, mem, gate), m.stack.norm(h))
