"""Embeddings: token lookup tables and positional encodings (sinusoidal and learned)."""
from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from .base import Op, OpError, Params, register, need_float, need_int, need_rank
from ..codegen.ir import P, call, lit
from ..shapes import INT_DTYPES, Dim, Requirement, TensorType, is_sym

N, T = Dim.sym("N"), Dim.sym("T")


class EmbeddingParams(Params):
    num: int = Field(gt=0, description="vocabulary size (number of rows in the table)")
    out: int = Field(gt=0, description="embedding dimension")
    padding_idx: Optional[int] = Field(None, description="row that gets no gradient (e.g. the pad token)")
    max_norm: Optional[float] = Field(None, gt=0, description="renormalise looked-up rows to at most this norm")
    scale_grad_by_freq: bool = Field(False, description="scale gradients by inverse id frequency in the batch")

    @model_validator(mode="after")
    def _check(self):
        if self.padding_idx is not None and not -self.num <= self.padding_idx < self.num:
            raise ValueError(f"padding_idx ({self.padding_idx}) must be a row of the table (0 to {self.num - 1})")
        return self


@register
class Embedding(Op):
    """Lookup table: integer token ids (any shape) -> vectors (..., out)."""

    name = "embedding"
    shape_rule = "integer ids [*] -> [*, out]; ids must be < num"
    family = "embedding"
    aliases = ("embed",)
    Params = EmbeddingParams
    torch_ref = "torch.nn.Embedding"
    cases = [({"num": 1000, "out": 64}, [((N, T), "int64")], [(N, T, 64)]),
             ({"num": 10, "out": 8, "padding_idx": 0, "max_norm": 1.0, "scale_grad_by_freq": True},
              [((N, T), "int64")], [(N, T, 8)]),
             ({"num": 10, "out": 8, "padding_idx": -1}, [((N,), "int32")], [(N, 8)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        hint = "declare the input with dtype: int64 (e.g. inputs: {tokens: {shape: [N, T], dtype: int64}})"
        if x.dtype not in INT_DTYPES:
            raise OpError(f"token ids must be int64, got {x.dtype} {x}", hint)
        if x.dtype not in ("int64", "int32"):
            raise OpError(f"token ids must be int64 (or int32), got {x.dtype} {x}: torch cannot index a table "
                          f"with {x.dtype}", hint)
        if x.high is not None:      # ids with a known bound (positions from arange): the table must cover them
            if not is_sym(x.high):
                if x.high > p.num:
                    raise OpError(f"the ids reach {x.high - 1}, beyond the table's {p.num} rows",
                                  f"raise num to at least {x.high}", param="num")
            else:
                ctx.requirements.append(Requirement(f"{x.high} <= {p.num}", None, None, ctx.node))
        return [TensorType(tuple(x.shape) + (p.out,), "float32")]

    @classmethod
    def weights(cls, ins, p):
        return {"weight": ((p.num, p.out), "param")}

    @classmethod
    def macs(cls, ins, outs, p):
        return 0

    @classmethod
    def constructor(cls, ins, p):
        kw = {}
        if p.padding_idx is not None:
            kw["padding_idx"] = P(p, "padding_idx")
        if p.max_norm is not None:
            kw["max_norm"] = P(p, "max_norm")
        if p.scale_grad_by_freq:
            kw["scale_grad_by_freq"] = P(p, "scale_grad_by_freq")
        return call("nn.Embedding", P(p, "num"), P(p, "out"), **kw)

    @classmethod
    def label(cls, p):
        return f"embedding {p.num}x{p.out}"


def _check_seq(cls, x, p, ctx):
    """(N, T, D) or (T, D) float input with a fixed D and T <= max_len; returns D. A symbolic length is a
    requirement (``T <= 128``) that check prints, not a failure found when the module runs."""
    need_float(x, cls.name)
    need_rank(x, (2, 3), cls.name, "(N, T, D) or (T, D)")
    d = need_int(x.shape[-1], "model dimension (last dim)", cls.name)
    t = x.shape[-2]
    if not is_sym(t) and t > p.max_len:
        raise OpError(f"the sequence length {t} of {x} exceeds max_len ({p.max_len})",
                      f"raise max_len to at least {t}", param="max_len")
    if is_sym(t):
        ctx.requirements.append(Requirement(f"{t} <= {p.max_len}", None, None, ctx.node))
    return d


def _model_dim(x):
    """The model dimension (last dim of input 0) as a literal that remembers where it came from."""
    return lit(x.shape[-1], ("in", 0, x.rank - 1))


class SinusoidalParams(Params):
    max_len: int = Field(5000, gt=0, description="longest sequence the table covers")
    p: float = Field(0.0, ge=0.0, lt=1.0, description="dropout probability applied after adding the encoding")


_SINUSOIDAL = '''\
class PositionalEncoding(nn.Module):
    """Adds the fixed sine/cosine table of "Attention Is All You Need" to (N, T, D) input."""

    def __init__(self, d_model, max_len=5000, p=0.0):
        super().__init__()
        self.dropout = nn.Dropout(p) if p > 0 else nn.Identity()
        position = torch.arange(max_len).unsqueeze(1)  # (max_len, 1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (ceil(D/2),)
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)  # (max_len, D), not saved in the state_dict

    def forward(self, x):
        return self.dropout(x + self.pe[: x.size(-2)])  # (N, T, D)
'''


@register
class PositionalEncoding(Op):
    """Adds the fixed sinusoidal position table (Vaswani et al.) to (N, T, D) input."""

    @classmethod
    def keeps(cls, p, rank):
        return rank

    name = "positional_encoding"
    shape_rule = "[N, T, D] -> [N, T, D]; requires T <= max_len"
    family = "embedding"
    aliases = ("pos_encoding", "sinusoidal_positional_encoding")
    Params = SinusoidalParams
    torch_ref = "PositionalEncoding (PyTorch transformer tutorial)"
    cases = [({"max_len": 64}, [(N, T, 16)], [(N, T, 16)]), ({"max_len": 8, "p": 0.1}, [(5, 7)], [(5, 7)]),
             ({}, [(N, 10, 32)], [(N, 10, 32)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        _check_seq(cls, ins[0], p, ctx)
        return [ins[0]]

    @classmethod
    def weights(cls, ins, p):
        return {}       # the table is a non-persistent buffer: not in the state_dict

    @classmethod
    def macs(cls, ins, outs, p):
        return 0

    @classmethod
    def constructor(cls, ins, p):
        kw = {"max_len": P(p, "max_len")}
        if p.p > 0:
            kw["p"] = P(p, "p")
        return call("PositionalEncoding", _model_dim(ins[0]), **kw)

    @classmethod
    def helpers(cls):
        return {"PositionalEncoding": _SINUSOIDAL}

    @classmethod
    def label(cls, p):
        return "pos enc"


class LearnedPosParams(Params):
    max_len: int = Field(gt=0, description="longest sequence the table covers (its number of rows)")


_LEARNED = '''\
class LearnedPositionalEncoding(nn.Module):
    """Adds a learned (1, max_len, D) position table, cut to the input's length, to (N, T, D) or (T, D) input."""

    def __init__(self, d_model, max_len):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, max_len, d_model))  # (1, max_len, D)
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x):
        return x + self.pos[0, : x.size(-2)]  # (N, T, D)
'''


@register
class LearnedPositionalEncoding(Op):
    """Adds a learned position table (BERT, ViT) of max_len rows to (N, T, D) input."""

    @classmethod
    def keeps(cls, p, rank):
        return rank

    name = "learned_positional_encoding"
    shape_rule = "[N, T, D] -> [N, T, D]; requires T <= max_len"
    family = "embedding"
    aliases = ("learned_pos_encoding",)
    Params = LearnedPosParams
    torch_ref = "nn.Parameter (1, max_len, D)"
    cases = [({"max_len": 32}, [(N, T, 16)], [(N, T, 16)]), ({"max_len": 12}, [(10, 16)], [(10, 16)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        _check_seq(cls, ins[0], p, ctx)
        return [ins[0]]

    @classmethod
    def weights(cls, ins, p):
        return {"pos": ((1, p.max_len, ins[0].shape[-1]), "param")}

    @classmethod
    def macs(cls, ins, outs, p):
        return 0

    @classmethod
    def constructor(cls, ins, p):
        return call("LearnedPositionalEncoding", _model_dim(ins[0]), max_len=P(p, "max_len"))

    @classmethod
    def helpers(cls):
        return {"LearnedPositionalEncoding": _LEARNED}

    @classmethod
    def label(cls, p):
        return "learned pos enc"
