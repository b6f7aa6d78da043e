"""specs/gpt.yaml against a GPT written by hand here (pre-norm blocks, causal self-attention, tied output layer):
strict state_dict load from the netspec build, same logits; GPT-2 small's parameter count on the meta device."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import netspec

SPEC = Path(__file__).parent.parent / "specs" / "gpt.yaml"
SMALL = dict(vocab=97, context=32, d=64, layers=2, heads=4, dropout=0.1)


class CausalSelfAttention(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(n, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        future = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)
        att = self.attn_dropout(att.masked_fill(future, float("-inf")).softmax(dim=-1))
        y = (att @ v).transpose(1, 2).reshape(n, t, d)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, d, dropout):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads, dropout)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = MLP(d, dropout)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token + position embeddings, pre-norm blocks, final norm, output layer tied to the token embedding."""

    def __init__(self, vocab, context, d, layers, heads, dropout):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context, d)
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList([Block(d, heads, dropout) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight)       # lm_head, tied


def _randomise(m: nn.Module) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.5)


def test_gpt_matches_a_hand_written_gpt():
    torch.manual_seed(1)
    spec = netspec.build(SPEC, **SMALL).eval()
    _randomise(spec)
    ref = GPT(**SMALL).eval()
    ref.load_state_dict(spec.state_dict(), strict=True)
    assert set(spec.state_dict()) == set(ref.state_dict())
    idx = torch.randint(0, SMALL["vocab"], (3, 17))
    with torch.no_grad():
        got, want = spec(idx), ref(idx)
    assert got.shape == (3, 17, SMALL["vocab"])
    assert (got - want).abs().max().item() <= 1e-5


def test_gpt_is_causal_and_tied():
    spec = netspec.build(SPEC, **SMALL).eval()
    idx = torch.randint(0, SMALL["vocab"], (2, 12))
    idx2 = idx.clone()
    idx2[:, 8:] = (idx2[:, 8:] + 1) % SMALL["vocab"]
    with torch.no_grad():
        a, b = spec(idx), spec(idx2)
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6) and not torch.allclose(a[:, 8:], b[:, 8:])
    # one table for both ends: a gradient step on the logits moves the embedding
    spec.train()
    spec(idx).sum().backward()
    assert spec.wte.weight.grad is not None and "lm_head.weight" not in spec.state_dict()
    assert all(p.grad is not None for p in spec.parameters())


def test_gpt2_small_parameter_count_on_meta():
    m = netspec.build(SPEC, device="meta")
    assert sum(p.numel() for p in m.parameters()) == 124_439_808
    res = netspec.check(SPEC)
    g = next(iter(res.graphs.values()))
    assert sum(n.counts()[0] for n in g.nodes.values()) == 124_439_808


def test_tied_layer_must_fit_the_table():
    text = SPEC.read_text().replace("out: vocab, bias: false, share: wte", "out: vocab, share: wte")
    res = netspec.check(netspec.load(text, name="gpt.yaml"))
    assert not res.ok
    msg = "\n".join(e.format() for e in res.errors)
    assert "cannot use the weights of 'wte'" in msg and "bias" in msg and "gpt.yaml:" in msg


def test_only_linear_can_tie_to_an_embedding():
    res = netspec.check(netspec.load("""
netspec: 1
inputs: {idx: {shape: [N, T], dtype: int64}}
layers:
  - {name: wte, op: embedding, num: 10, out: 8}
  - {name: head, op: conv1d, out: 10, kernel: 1, share: wte}
""", name="t.yaml"))
    assert not res.ok and "t.yaml:6:" in "\n".join(e.format() for e in res.errors)


@pytest.mark.parametrize("t", [1, 32])
def test_gpt_runs_at_the_edges_of_its_context(t):
    spec = netspec.build(SPEC, **SMALL).eval()
    with torch.no_grad():
        assert spec(torch.zeros(1, t, dtype=torch.long)).shape == (1, t, SMALL["vocab"])
