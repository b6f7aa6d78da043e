"""specs/seq2seq_attention.yaml against Luong et al.'s global attention written by hand here: strict state_dict
load from the netspec build, same logits (dot and general scores, padded sources)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import netspec

SPEC = Path(__file__).parent.parent / "specs" / "seq2seq_attention.yaml"
SMALL = dict(src_vocab=31, tgt_vocab=29, embed=12, hidden=16, layers=2, dropout=0.2)


class LuongSeq2Seq(nn.Module):
    """Stacked LSTM encoder and decoder; global attention over the source states; tanh(W_c [c_t; h_t]); logits."""

    def __init__(self, src_vocab, tgt_vocab, embed, hidden, layers, dropout, score="general", pad_id=0):
        super().__init__()
        self.score, self.pad_id = score, pad_id
        self.src_embed = nn.Embedding(src_vocab, embed)
        self.encoder = nn.LSTM(embed, hidden, layers, batch_first=True, dropout=dropout)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed)
        self.decoder = nn.LSTM(embed, hidden, layers, batch_first=True, dropout=dropout)
        if score == "general":
            self.W_a = nn.Linear(hidden, hidden, bias=False)
        self.W_c = nn.Linear(2 * hidden, hidden, bias=False)
        self.W_s = nn.Linear(hidden, tgt_vocab)

    def forward(self, src, tgt):
        h_s, state = self.encoder(self.src_embed(src))                 # (N, S, H)
        h_t, _ = self.decoder(self.tgt_embed(tgt), state)              # (N, T, H)
        keys = self.W_a(h_s) if self.score == "general" else h_s
        scores = torch.bmm(h_t, keys.transpose(1, 2))                  # (N, T, S)
        scores = scores.masked_fill((src == self.pad_id)[:, None, :], float("-inf"))
        a = torch.softmax(scores, dim=-1)
        c = torch.bmm(a, h_s)                                          # (N, T, H)
        h_tilde = torch.tanh(self.W_c(torch.cat([c, h_t], dim=-1)))
        return self.W_s(h_tilde)


@pytest.mark.parametrize("score", ["general", "dot"])
def test_seq2seq_matches_a_hand_written_luong_model(score):
    torch.manual_seed(0)
    model = netspec.build(SPEC, score=score, **SMALL).eval()
    ref = LuongSeq2Seq(score=score, **SMALL).eval()
    assert set(model.state_dict()) == set(ref.state_dict())
    model.load_state_dict(ref.state_dict(), strict=True)
    src = torch.randint(1, SMALL["src_vocab"], (3, 9))
    src[0, 6:] = 0                                                     # padding never attended
    src[2, 3:] = 0
    tgt = torch.randint(1, SMALL["tgt_vocab"], (3, 7))
    with torch.no_grad():
        got, want = model(src, tgt), ref(src, tgt)
    assert got.shape == (3, 7, SMALL["tgt_vocab"])
    assert (got - want).abs().max().item() <= 1e-5


def test_luong_sizes_parameter_count():
    m = netspec.build(SPEC, device="meta")
    with torch.device("meta"):
        want = sum(p.numel() for p in LuongSeq2Seq(50000, 50000, 1000, 1000, 4, 0.2).parameters())
    assert sum(p.numel() for p in m.parameters()) == want == 217_114_000
