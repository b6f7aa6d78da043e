"""Attention: multi-head (torch.nn.MultiheadAttention), scaled dot-product, additive (Bahdanau), and the
Transformer encoder/decoder layers of torch.nn (batch-first, state_dict keys as torch's own)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from .base import Op, OpError, Params, In, register, need_float, need_int, need_rank, same_dim
from ..codegen.ir import Operand, P, call, lit, module_call
from ..shapes import Dim, TensorType, mul_all

N, T, S, E = Dim.sym("N"), Dim.sym("T"), Dim.sym("S"), Dim.sym("E")


# -- shared checks ------------------------------------------------------------------------------------------

def _opt(ins, k):
    """The type in slot k, or None when the optional input is absent (trailing absent slots are dropped)."""
    return ins[k] if k < len(ins) else None


def _present(ins, ks) -> list:
    """Operand(k) for each slot k in ks whose input is present."""
    return [Operand(k) for k in ks if _opt(ins, k) is not None]


def _kwargs(ins, names: dict[int, str]) -> dict:
    """{name: Operand(k)} for every present optional slot k."""
    return {kw: Operand(k) for k, kw in names.items() if _opt(ins, k) is not None}


def _seq(t: TensorType, op: str, what: str) -> None:
    need_float(t, op)
    need_rank(t, (3,), op, "(N, T, E) (batch first)", what)


def _attn_mask(m, tq, tk, n, heads, ctx, op, what, x_dtype):
    """A (Tq, Tk) or (N*heads, Tq, Tk) mask: bool (True = may not attend) or float (added to the scores)."""
    if m is None:
        return
    if m.dtype != "bool" and m.dtype != x_dtype:
        raise OpError(f"{op}: {what} must be bool or {x_dtype} like the input, got {m.dtype} {m}",
                      "True marks the positions that may not be attended to")
    if m.rank == 2:
        want = (tq, tk)
    elif m.rank == 3:
        want = (n * heads, tq, tk)
    else:
        raise OpError(f"{op}: {what} must be ({tq}, {tk}) or ({n * heads}, {tq}, {tk}), got {m}")
    for a, b in zip(m.shape, want):
        same_dim(a, b, ctx, f"{op}: {what} {m} does not fit ({', '.join(map(str, want))})",
                 f"{what} is (target length, source length), or one such mask per batch item and head")


def _padding_mask(m, n, tk, ctx, op, what):
    """An (N, Tk) bool mask: True marks padding keys."""
    if m is None:
        return
    if m.dtype != "bool":
        raise OpError(f"{op}: {what} must be bool (True = padding), got {m.dtype} {m}",
                      "compare the token ids with the pad id, e.g. tokens == 0, to get a bool mask")
    need_rank(m, (2,), op, "(N, source length)", what)
    same_dim(m.shape[0], n, ctx, f"{op}: {what} {m} does not match the batch size {n}")
    same_dim(m.shape[1], tk, ctx, f"{op}: {what} {m} does not match the source length {tk}")


def _heads(e, heads, op):
    if e % heads:
        raise OpError(f"{op}: the embedding dim {e} is not divisible by heads ({heads})",
                      f"use a number of heads that divides {e}, or change the width", param="heads")


def _mha_weights(prefix: str, e: int, kdim: int, vdim: int, bias: bool) -> dict:
    """state_dict shapes of nn.MultiheadAttention(e, h, bias=bias, kdim=kdim, vdim=vdim)."""
    w = {}
    if kdim == e and vdim == e:
        w[prefix + "in_proj_weight"] = ((3 * e, e), "param")
    else:
        w[prefix + "q_proj_weight"] = ((e, e), "param")
        w[prefix + "k_proj_weight"] = ((e, kdim), "param")
        w[prefix + "v_proj_weight"] = ((e, vdim), "param")
    if bias:
        w[prefix + "in_proj_bias"] = ((3 * e,), "param")
    w[prefix + "out_proj.weight"] = ((e, e), "param")
    if bias:
        w[prefix + "out_proj.bias"] = ((e,), "param")
    return w


def _mha_macs(n, tq, tk, e, kdim, vdim):
    """Projections of q, k, v and the output, plus scores and the weighted sum."""
    return n * (tq * e * e + tk * kdim * e + tk * vdim * e + 2 * tq * tk * e + tq * e * e)


_CAUSAL_DOC = "True above the diagonal: position i attends to positions 0..i only"


# -- multi-head attention ----------------------------------------------------------------------------------

class MHAParams(Params):
    heads: int = Field(gt=0, description="number of attention heads (must divide the embedding dim)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the attention weights")
    bias: bool = Field(True, description="biases in the input and output projections")
    causal: bool = Field(False, description="mask future positions (query i attends to keys 0..i)")


_MHA = f'''\
class MultiheadAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention (batch first) returning only the output; no k, v: self-attention."""

    def __init__(self, embed_dim, num_heads, causal=False, **kwargs):
        super().__init__(embed_dim, num_heads, batch_first=True, **kwargs)
        self.causal = causal

    def forward(self, q, k=None, v=None, attn_mask=None, key_padding_mask=None):
        k = q if k is None else k  # (N, S, kdim)
        v = k if v is None else v  # (N, S, vdim)
        if self.causal:  # {_CAUSAL_DOC}
            attn_mask = torch.ones(q.size(1), k.size(1), dtype=torch.bool, device=q.device).triu(1)  # (T, S)
        out, _ = super().forward(q, k, v, key_padding_mask=key_padding_mask, need_weights=False,
                                 attn_mask=attn_mask, is_causal=self.causal)
        return out  # (N, T, E)
'''


@register
class MultiheadAttention(Op):
    """Multi-head attention (torch.nn.MultiheadAttention, batch first); self-attention when only q is given."""

    name = "multihead_attention"
    family = "attention"
    aliases = ("mha", "attention")
    Params = MHAParams
    inputs = (In("q"), In("k", optional=True), In("v", optional=True), In("attn_mask", optional=True),
              In("key_padding_mask", optional=True))
    torch_ref = "torch.nn.MultiheadAttention"
    cases = [({"heads": 8}, [(N, T, 512)], [(N, T, 512)]),
             ({"heads": 8, "bias": False, "dropout": 0.1}, [(N, T, 64)], [(N, T, 64)]),
             ({"heads": 4}, [(N, T, 64), (N, S, 64)], [(N, T, 64)]),
             ({"heads": 4}, [(N, T, 64), (N, S, 32), (N, S, 48)], [(N, T, 64)]),
             ({"heads": 4}, [(N, T, 64), (N, S, 32)], [(N, T, 64)]),
             ({"heads": 4}, [(N, T, 64), (N, S, 64), (N, S, 64), ((T, S), "bool"), ((N, S), "bool")], [(N, T, 64)]),
             ({"heads": 4}, [(N, T, 64), None, None, (N * 4, T, T)], [(N, T, 64)]),
             ({"heads": 4, "causal": True}, [(N, T, 64), None, None, None, ((N, T), "bool")], [(N, T, 64)])]

    @classmethod
    def _qkv(cls, ins):
        q, k, v = ins[0], _opt(ins, 1), _opt(ins, 2)
        if k is None and v is not None:
            raise OpError("multihead_attention got v but no k", "give k as well (or neither, for self-attention)")
        k = q if k is None else k
        return q, k, (k if v is None else v)

    @classmethod
    def _kv_index(cls, ins) -> tuple[int, int]:
        """The input slots that k and v are read from (self-attention: q's)."""
        ki = 1 if _opt(ins, 1) is not None else 0
        return ki, (2 if _opt(ins, 2) is not None else ki)

    @classmethod
    def infer(cls, ins, p, ctx):
        q, k, v = cls._qkv(ins)
        op = cls.name
        for t, what in ((q, "q"), (k, "k"), (v, "v")):
            _seq(t, op, what)
        e = need_int(q.shape[2], "embedding dim (last dim of q)", op)
        need_int(k.shape[2], "key dim (last dim of k)", op)
        need_int(v.shape[2], "value dim (last dim of v)", op)
        _heads(e, p.heads, op)
        n = same_dim(q.shape[0], k.shape[0], ctx, f"{op}: q and k differ in batch size ({q} vs {k})")
        same_dim(n, v.shape[0], ctx, f"{op}: q and v differ in batch size ({q} vs {v})")
        tk = same_dim(k.shape[1], v.shape[1], ctx, f"{op}: k and v differ in length ({k} vs {v})",
                      "every key needs a value: k and v must have the same length (dim 1)")
        mask, kpm = _opt(ins, 3), _opt(ins, 4)
        if p.causal and mask is not None:
            raise OpError(f"{op}: both causal: true and an attn_mask", "give one of them", param="causal")
        _attn_mask(mask, q.shape[1], tk, n, p.heads, ctx, op, "attn_mask", q.dtype)
        _padding_mask(kpm, n, tk, ctx, op, "key_padding_mask")
        return [q]

    @classmethod
    def weights(cls, ins, p):
        q, k, v = cls._qkv(ins)
        return _mha_weights("", q.shape[2], k.shape[2], v.shape[2], p.bias)

    @classmethod
    def macs(cls, ins, outs, p):
        q, k, v = cls._qkv(ins)
        return _mha_macs(q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], v.shape[2])

    @classmethod
    def constructor(cls, ins, p):
        q, k, v = cls._qkv(ins)
        ki, vi = cls._kv_index(ins)
        e = q.shape[2]
        kw = {}
        if p.dropout:
            kw["dropout"] = P(p, "dropout")
        if not p.bias:
            kw["bias"] = P(p, "bias")
        if k.shape[2] != e or v.shape[2] != e:
            kw["kdim"] = lit(k.shape[2], ("in", ki, 2))
            kw["vdim"] = lit(v.shape[2], ("in", vi, 2))
        if p.causal:
            kw["causal"] = P(p, "causal")
        return call("MultiheadAttention", lit(e, ("in", 0, 2)), P(p, "heads"), **kw)

    @classmethod
    def forward(cls, ins, p):
        return module_call(Operand(0), *_present(ins, (1, 2)), **_kwargs(ins, {3: "attn_mask", 4: "key_padding_mask"}))

    @classmethod
    def helpers(cls):
        return {"MultiheadAttention": _MHA}

    @classmethod
    def label(cls, p):
        return f"mha {p.heads} heads" + (", causal" if p.causal else "")


# -- scaled dot-product attention -------------------------------------------------------------------------

class SDPAParams(Params):
    causal: bool = Field(False, description="mask future positions (query i attends to keys 0..i)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the attention weights (training only)")
    scale: Optional[float] = Field(None, gt=0, description="score scale; default 1/sqrt(E)")


_SDPA = '''\
class ScaledDotProductAttention(nn.Module):
    """F.scaled_dot_product_attention with dropout on the attention weights while training."""

    def __init__(self, p, causal=False, scale=None):
        super().__init__()
        self.p, self.causal, self.scale = p, causal, scale

    def forward(self, q, k, v, attn_mask=None):  # (..., T, E), (..., S, E), (..., S, Ev)
        p = self.p if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p, is_causal=self.causal,
                                              scale=self.scale)  # (..., T, Ev)
'''


@register
class ScaledDotProductAttention(Op):
    """softmax(q k^T * scale + mask) v over (..., T, E) tensors (no weights: heads are split by the caller)."""

    name = "scaled_dot_product_attention"
    family = "attention"
    aliases = ("sdpa",)
    Params = SDPAParams
    inputs = (In("q"), In("k"), In("v"), In("attn_mask", optional=True))
    torch_ref = "torch.nn.functional.scaled_dot_product_attention"
    cases = [({}, [(N, 8, T, 64), (N, 8, S, 64), (N, 8, S, 32)], [(N, 8, T, 32)]),
             ({"causal": True}, [(N, T, E), (N, T, E), (N, T, E)], [(N, T, E)]),
             ({"scale": 0.5}, [(T, E), (S, E), (S, 16)], [(T, 16)]),
             ({}, [(N, 8, T, 64), (N, 8, S, 64), (N, 8, S, 64), ((N, 1, 1, S), "bool")], [(N, 8, T, 64)]),
             ({"dropout": 0.1}, [(N, 8, T, 64)] * 3 + [(T, T)], [(N, 8, T, 64)]),
             ({"dropout": 0.1, "causal": True, "scale": 0.25}, [(N, T, 16)] * 3, [(N, T, 16)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        q, k, v = ins[0], ins[1], ins[2]
        op = cls.name
        for t, what in ((q, "q"), (k, "k"), (v, "v")):
            need_float(t, op)
            if t.rank < 2:
                raise OpError(f"{op} needs (..., T, E) inputs, got {what} {t}")
            if t.rank != q.rank:
                raise OpError(f"{op}: q, k and v must have the same rank, got {q}, {k} and {v}",
                              "split the heads of all three the same way, e.g. (N, heads, T, E/heads)")
            if t.dtype != q.dtype:
                raise OpError(f"{op}: q, k and v must have the same dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
        batch = []
        for j in range(q.rank - 2):
            b = same_dim(q.shape[j], k.shape[j], ctx, f"{op}: q and k differ in dim {j} ({q} vs {k})")
            batch.append(same_dim(b, v.shape[j], ctx, f"{op}: q and v differ in dim {j} ({q} vs {v})"))
        same_dim(q.shape[-1], k.shape[-1], ctx, f"{op}: q and k differ in their last dim ({q} vs {k})",
                 "scores are q @ k^T: q and k need the same feature size")
        tk = same_dim(k.shape[-2], v.shape[-2], ctx, f"{op}: k and v differ in length ({k} vs {v})",
                      "every key needs a value: dim -2 of k and v must match")
        tq = q.shape[-2]
        m = _opt(ins, 3)
        if m is not None:
            if p.causal:
                raise OpError(f"{op}: both causal: true and an attn_mask", "give one of them", param="causal")
            if m.dtype != "bool" and m.dtype != q.dtype:
                raise OpError(f"{op}: attn_mask must be bool or {q.dtype} like q, got {m.dtype} {m}")
            if m.rank < 2 or m.rank > q.rank:
                raise OpError(f"{op}: attn_mask {m} must broadcast to {(*batch, tq, tk)}")
            want = (tuple(batch) + (tq, tk))[q.rank - m.rank:]
            for a, b in zip(m.shape, want):
                if a != 1:
                    same_dim(a, b, ctx, f"{op}: attn_mask {m} does not broadcast to ({', '.join(map(str, want))})",
                             "the mask is (T, S), or has 1 or the full size in each leading dim")
        return [v.with_shape(tuple(batch) + (tq, v.shape[-1]))]

    @classmethod
    def macs(cls, ins, outs, p):
        q, k, v = ins[0], ins[1], ins[2]
        rows = mul_all(q.shape[:-1])  # (..., T)
        return rows * k.shape[-2] * (q.shape[-1] + v.shape[-1])

    @classmethod
    def weights(cls, ins, p):
        return {}

    @classmethod
    def constructor(cls, ins, p):
        """A module only for dropout (active in training only); otherwise a plain function call."""
        if not p.dropout:
            return None
        kw = {}
        if p.causal:
            kw["causal"] = P(p, "causal")
        if p.scale is not None:
            kw["scale"] = P(p, "scale")
        return call("ScaledDotProductAttention", P(p, "dropout"), **kw)

    @classmethod
    def forward(cls, ins, p):
        qkv = (Operand(0), Operand(1), Operand(2))
        kw = _kwargs(ins, {3: "attn_mask"})
        if p.dropout:
            return module_call(*qkv, **kw)
        if p.causal:
            kw["is_causal"] = P(p, "causal")
        if p.scale is not None:
            kw["scale"] = P(p, "scale")
        return call("F.scaled_dot_product_attention", *qkv, **kw)

    @classmethod
    def helpers(cls):
        return {"ScaledDotProductAttention": _SDPA}

    @classmethod
    def label(cls, p):
        return "sdpa" + (", causal" if p.causal else "")


# -- additive (Bahdanau) attention ------------------------------------------------------------------------

class AdditiveParams(Params):
    hidden: int = Field(gt=0, description="size of the hidden layer that scores query/key pairs")


_ADDITIVE = '''\
class AdditiveAttention(nn.Module):
    """Bahdanau attention: score(q, k) = v^T tanh(W_q q + W_k k); returns (context, weights)."""

    def __init__(self, query_dim, key_dim, hidden):
        super().__init__()
        self.W_q = nn.Linear(query_dim, hidden, bias=False)
        self.W_k = nn.Linear(key_dim, hidden)
        self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, query, keys, values=None):  # (N, Dq) or (N, T, Dq); (N, S, Dk); (N, S, Dv)
        values = keys if values is None else values
        single = query.dim() == 2
        if single:
            query = query.unsqueeze(1)  # (N, 1, Dq)
        h = torch.tanh(self.W_q(query).unsqueeze(2) + self.W_k(keys).unsqueeze(1))  # (N, T, S, hidden)
        weights = torch.softmax(self.v(h).squeeze(-1), dim=-1)  # (N, T, S)
        context = weights @ values  # (N, T, Dv)
        if single:
            return context.squeeze(1), weights.squeeze(1)  # (N, Dv), (N, S)
        return context, weights
'''


@register
class AdditiveAttention(Op):
    """Bahdanau (additive) attention of a query over keys: outputs the context and the attention weights."""

    name = "additive_attention"
    family = "attention"
    aliases = ("bahdanau_attention",)
    Params = AdditiveParams
    inputs = (In("query"), In("keys"), In("values", optional=True))
    outputs = ("out", "weights")
    torch_ref = "AdditiveAttention (Bahdanau et al. 2015)"
    cases = [({"hidden": 32}, [(N, 16), (N, S, 24)], [(N, 24), (N, S)]),
             ({"hidden": 32}, [(N, T, 16), (N, S, 24), (N, S, 40)], [(N, T, 40), (N, T, S)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        q, k = ins[0], ins[1]
        v = k if _opt(ins, 2) is None else ins[2]
        op = cls.name
        need_float(q, op)
        need_rank(q, (2, 3), op, "query (N, Dq) or (N, T, Dq)", "query")
        for t, what in ((k, "keys"), (v, "values")):
            need_float(t, op)
            need_rank(t, (3,), op, "(N, S, D)", what)
        need_int(q.shape[-1], "query size (last dim)", op)
        need_int(k.shape[-1], "key size (last dim)", op)
        n = same_dim(q.shape[0], k.shape[0], ctx, f"{op}: query and keys differ in batch size ({q} vs {k})")
        same_dim(n, v.shape[0], ctx, f"{op}: query and values differ in batch size ({q} vs {v})")
        s = same_dim(k.shape[1], v.shape[1], ctx, f"{op}: keys and values differ in length ({k} vs {v})",
                     "every key needs a value: dim 1 of keys and values must match")
        rows = tuple(q.shape[:-1])  # (N,) or (N, T)
        return [v.with_shape(rows + (v.shape[-1],)), q.with_shape(rows + (s,))]

    @classmethod
    def weights(cls, ins, p):
        return {"W_q.weight": ((p.hidden, ins[0].shape[-1]), "param"),
                "W_k.weight": ((p.hidden, ins[1].shape[-1]), "param"),
                "W_k.bias": ((p.hidden,), "param"),
                "v.weight": ((1, p.hidden), "param")}

    @classmethod
    def macs(cls, ins, outs, p):
        q, k = ins[0], ins[1]
        rows = mul_all(q.shape[:-1])
        s = k.shape[1]
        dv = outs[0].shape[-1]
        return p.hidden * (rows * q.shape[-1] + k.shape[0] * s * k.shape[-1] + rows * s) + rows * s * dv

    @classmethod
    def constructor(cls, ins, p):
        q, k = ins[0], ins[1]
        return call("AdditiveAttention", lit(q.shape[-1], ("in", 0, q.rank - 1)), lit(k.shape[-1], ("in", 1, 2)),
                    P(p, "hidden"))

    @classmethod
    def forward(cls, ins, p):
        return module_call(Operand(0), Operand(1), *_present(ins, (2,)))

    @classmethod
    def helpers(cls):
        return {"AdditiveAttention": _ADDITIVE}

    @classmethod
    def label(cls, p):
        return f"additive attn {p.hidden}"


# -- Transformer layers ------------------------------------------------------------------------------------

class TransformerLayerParams(Params):
    heads: int = Field(gt=0, description="attention heads (must divide d_model, the input's last dim)")
    ffn: int = Field(2048, gt=0, description="hidden size of the feed-forward block (dim_feedforward)")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout probability")
    activation: Literal["relu", "gelu"] = Field("relu", description="feed-forward activation")
    norm_first: bool = Field(False, description="pre-norm (LayerNorm before attention/FFN) instead of post-norm")
    eps: float = Field(1e-5, gt=0, description="LayerNorm epsilon")
    bias: bool = Field(True, description="biases in the linear layers and LayerNorms")
    causal: bool = Field(False, description="mask future positions in the self-attention")


def _layer(fn: str, x: TensorType, p):
    """``nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=.., dropout=.., batch_first=True, ...)``."""
    kw = {"dim_feedforward": P(p, "ffn"), "dropout": P(p, "dropout")}
    if p.activation != "relu":
        kw["activation"] = P(p, "activation")
    if p.eps != 1e-5:
        kw["layer_norm_eps"] = P(p, "eps")
    kw["batch_first"] = lit(True)
    if p.norm_first:
        kw["norm_first"] = P(p, "norm_first")
    if not p.bias:
        kw["bias"] = P(p, "bias")
    return call(fn, lit(x.shape[2], ("in", 0, 2)), P(p, "heads"), **kw)


def _ffn_weights(e, p, n_norms) -> dict:
    w = {"linear1.weight": ((p.ffn, e), "param")}
    if p.bias:
        w["linear1.bias"] = ((p.ffn,), "param")
    w["linear2.weight"] = ((e, p.ffn), "param")
    if p.bias:
        w["linear2.bias"] = ((e,), "param")
    for i in range(1, n_norms + 1):
        w[f"norm{i}.weight"] = ((e,), "param")
        if p.bias:
            w[f"norm{i}.bias"] = ((e,), "param")
    return w


_ENC = f'''\
class CausalTransformerEncoderLayer(nn.TransformerEncoderLayer):
    """nn.TransformerEncoderLayer whose self-attention masks future positions (GPT-style blocks)."""

    def forward(self, x, src_mask=None, src_key_padding_mask=None):  # (N, T, E)
        # {_CAUSAL_DOC}
        mask = torch.ones(x.size(1), x.size(1), dtype=torch.bool, device=x.device).triu(1)  # (T, T)
        return super().forward(x, mask, src_key_padding_mask, is_causal=True)
'''

_DEC = f'''\
class CausalTransformerDecoderLayer(nn.TransformerDecoderLayer):
    """nn.TransformerDecoderLayer whose self-attention masks future target positions."""

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None):  # (N, T, E), (N, S, E)
        # {_CAUSAL_DOC}
        mask = torch.ones(x.size(1), x.size(1), dtype=torch.bool, device=x.device).triu(1)  # (T, T)
        return super().forward(x, memory, mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
                               tgt_is_causal=True)
'''


@register
class TransformerEncoderLayer(Op):
    """Transformer encoder layer (self-attention + feed-forward), torch.nn.TransformerEncoderLayer, batch first."""

    @classmethod
    def keeps(cls, p, rank):
        return rank

    name = "transformer_encoder_layer"
    family = "attention"
    aliases = ("encoder_layer",)
    Params = TransformerLayerParams
    inputs = (In("x"), In("attn_mask", optional=True), In("key_padding_mask", optional=True))
    torch_ref = "torch.nn.TransformerEncoderLayer"
    cases = [({"heads": 8}, [(N, T, 512)], [(N, T, 512)]),
             ({"heads": 2, "ffn": 32, "dropout": 0.0, "activation": "gelu", "norm_first": True, "eps": 1e-6,
               "bias": False}, [(N, T, 16), ((T, T), "bool"), ((N, T), "bool")], [(N, T, 16)]),
             ({"heads": 2, "ffn": 32, "causal": True}, [(N, T, 16), None, ((N, T), "bool")], [(N, T, 16)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        op = cls.name
        _seq(x, op, "input")
        e = need_int(x.shape[2], "d_model (last dim)", op)
        _heads(e, p.heads, op)
        mask = _opt(ins, 1)
        if p.causal and mask is not None:
            raise OpError(f"{op}: both causal: true and an attn_mask", "give one of them", param="causal")
        n, t = x.shape[0], x.shape[1]
        _attn_mask(mask, t, t, n, p.heads, ctx, op, "attn_mask", x.dtype)
        _padding_mask(_opt(ins, 2), n, t, ctx, op, "key_padding_mask")
        return [x]

    @classmethod
    def weights(cls, ins, p):
        e = ins[0].shape[2]
        return {**_mha_weights("self_attn.", e, e, e, p.bias), **_ffn_weights(e, p, 2)}

    @classmethod
    def macs(cls, ins, outs, p):
        n, t, e = ins[0].shape
        return _mha_macs(n, t, t, e, e, e) + 2 * n * t * e * p.ffn

    @classmethod
    def constructor(cls, ins, p):
        return _layer("CausalTransformerEncoderLayer" if p.causal else "nn.TransformerEncoderLayer", ins[0], p)

    @classmethod
    def forward(cls, ins, p):
        return module_call(Operand(0), **_kwargs(ins, {1: "src_mask", 2: "src_key_padding_mask"}))

    @classmethod
    def helpers(cls):
        return {"CausalTransformerEncoderLayer": _ENC}

    @classmethod
    def label(cls, p):
        return f"encoder layer, {p.heads} heads" + (", causal" if p.causal else "")


@register
class TransformerDecoderLayer(Op):
    """Transformer decoder layer (self-attention, cross-attention over memory, feed-forward), batch first."""

    @classmethod
    def keeps(cls, p, rank):
        return rank

    name = "transformer_decoder_layer"
    family = "attention"
    aliases = ("decoder_layer",)
    Params = TransformerLayerParams
    inputs = (In("x"), In("memory"), In("tgt_mask", optional=True), In("memory_mask", optional=True),
              In("tgt_key_padding_mask", optional=True), In("memory_key_padding_mask", optional=True))
    torch_ref = "torch.nn.TransformerDecoderLayer"
    cases = [({"heads": 8}, [(N, T, 512), (N, S, 512)], [(N, T, 512)]),
             ({"heads": 2, "ffn": 32, "dropout": 0.0, "activation": "gelu", "norm_first": True, "bias": False},
              [(N, T, 16), (N, S, 16), ((T, T), "bool"), ((T, S), "bool"), None, ((N, S), "bool")], [(N, T, 16)]),
             ({"heads": 2, "ffn": 32, "causal": True}, [(N, T, 16), (N, S, 16), None, None, None, ((N, S), "bool")],
              [(N, T, 16)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        x, mem = ins[0], ins[1]
        op = cls.name
        _seq(x, op, "input")
        _seq(mem, op, "memory")
        e = need_int(x.shape[2], "d_model (last dim)", op)
        _heads(e, p.heads, op)
        same_dim(mem.shape[2], e, ctx, f"{op}: memory {mem} and target {x} differ in width",
                 "the encoder's output must have d_model features, as the decoder input")
        n = same_dim(x.shape[0], mem.shape[0], ctx, f"{op}: target {x} and memory {mem} differ in batch size")
        t, s = x.shape[1], mem.shape[1]
        if p.causal and _opt(ins, 2) is not None:
            raise OpError(f"{op}: both causal: true and a tgt_mask", "give one of them", param="causal")
        _attn_mask(_opt(ins, 2), t, t, n, p.heads, ctx, op, "tgt_mask", x.dtype)
        _attn_mask(_opt(ins, 3), t, s, n, p.heads, ctx, op, "memory_mask", x.dtype)
        _padding_mask(_opt(ins, 4), n, t, ctx, op, "tgt_key_padding_mask")
        _padding_mask(_opt(ins, 5), n, s, ctx, op, "memory_key_padding_mask")
        return [x]

    @classmethod
    def weights(cls, ins, p):
        e = ins[0].shape[2]
        return {**_mha_weights("self_attn.", e, e, e, p.bias), **_mha_weights("multihead_attn.", e, e, e, p.bias),
                **_ffn_weights(e, p, 3)}

    @classmethod
    def macs(cls, ins, outs, p):
        n, t, e = ins[0].shape
        s = ins[1].shape[1]
        return _mha_macs(n, t, t, e, e, e) + _mha_macs(n, t, s, e, e, e) + 2 * n * t * e * p.ffn

    @classmethod
    def constructor(cls, ins, p):
        return _layer("CausalTransformerDecoderLayer" if p.causal else "nn.TransformerDecoderLayer", ins[0], p)

    @classmethod
    def forward(cls, ins, p):
        kw = _kwargs(ins, {2: "tgt_mask", 3: "memory_mask", 4: "tgt_key_padding_mask", 5: "memory_key_padding_mask"})
        return module_call(Operand(0), Operand(1), **kw)

    @classmethod
    def helpers(cls):
        return {"CausalTransformerDecoderLayer": _DEC}

    @classmethod
    def label(cls, p):
        return f"decoder layer, {p.heads} heads" + (", causal" if p.causal else "")
