"""Recurrent layers: rnn, lstm, gru (torch.nn.RNN/LSTM/GRU; batch first by default, state_dict keys as torch's)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Op, OpError, Params, In, register, need_float, need_int, need_rank, same_dim
from ..codegen.ir import Operand, P, call, lit, module_call
from ..shapes import Dim, mul_all

N, T = Dim.sym("N"), Dim.sym("T")


class RecurrentParams(Params):
    hidden: int = Field(gt=0, description="hidden state size (hidden_size)")
    layers: int = Field(1, ge=1, description="stacked recurrent layers (num_layers)")
    bias: bool = Field(True, description="add learned biases (bias_ih, bias_hh)")
    batch_first: bool = Field(True, description="input is (N, T, F); false: (T, N, F)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout between stacked layers (needs layers >= 2)")
    bidirectional: bool = Field(False, description="also run backwards; outputs are concatenated (2 * hidden)")

    @model_validator(mode="after")
    def _check_dropout(self):
        if self.dropout and self.layers == 1:
            raise ValueError("dropout only acts between stacked layers, so with layers: 1 it has no effect; "
                             "use layers >= 2, or a 'dropout' layer after this one")
        return self


class RNNParams(RecurrentParams):
    nonlinearity: Literal["tanh", "relu"] = Field("tanh", description="activation of the recurrence")


class LSTMParams(RecurrentParams):
    proj: int = Field(0, ge=0, description="project the hidden state to this size (proj_size; 0: none)")

    @model_validator(mode="after")
    def _check_proj(self):
        if self.proj >= self.hidden:
            raise ValueError(f"proj ({self.proj}) must be smaller than hidden ({self.hidden})")
        return self


class _Recurrent(Op):
    family = "recurrent"
    shape_rule = "x [N, T, C] (batch_first) -> out [N, T, hidden*directions], h [layers*directions, N, hidden] (lstm: also c)"
    gates = 1               # weight blocks per layer: 4 (lstm), 3 (gru), 1 (rnn)
    torch_cls = ""

    @classmethod
    def _sizes(cls, p):
        """(directions, size of h and of the output per direction)."""
        return (2 if p.bidirectional else 1), (getattr(p, "proj", 0) or p.hidden)

    @classmethod
    def _state(cls, x, p, size):
        """Shape of an (initial or final) state: (layers * dirs, N, size), or (layers * dirs, size) unbatched."""
        dirs, _ = cls._sizes(p)
        if x.rank == 2:
            return (p.layers * dirs, size)
        n = x.shape[0] if p.batch_first else x.shape[1]
        return (p.layers * dirs, n, size)

    @classmethod
    def _check_state(cls, s, want, x, ctx, what):
        if s is None:
            return
        op = cls.name
        need_float(s, op)
        shape = "(" + ", ".join(map(str, want)) + ")"
        hint = f"{what} is (layers * directions, N, size) = {shape} for input {x}"
        if s.rank != len(want) or s.dtype != x.dtype:
            raise OpError(f"{op}: {what} {s} does not fit {shape}", hint)
        for a, b in zip(s.shape, want):
            same_dim(a, b, ctx, f"{op}: {what} {s} does not fit {shape}", hint)

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        layout = "(N, T, F)" if p.batch_first else "(T, N, F)"
        need_float(x, cls.name)
        need_rank(x, (2, 3), cls.name, f"{layout}, or (T, F) for one sequence")
        need_int(x.shape[-1], "number of input features (last dim)", cls.name)
        dirs, hout = cls._sizes(p)
        out = x.with_shape(tuple(x.shape[:-1]) + (dirs * hout,))
        h = x.with_shape(cls._state(x, p, hout))
        cls._check_state(ins[1] if len(ins) > 1 else None, h.shape, x, ctx, "h0")
        return [out, h]

    @classmethod
    def weights(cls, ins, p):
        dirs, hout = cls._sizes(p)
        proj = getattr(p, "proj", 0)
        g = cls.gates * p.hidden
        w = {}
        for k in range(p.layers):
            fin = ins[0].shape[-1] if k == 0 else dirs * hout
            for sfx in ("", "_reverse")[:dirs]:
                w[f"weight_ih_l{k}{sfx}"] = ((g, fin), "param")
                w[f"weight_hh_l{k}{sfx}"] = ((g, hout), "param")
                if p.bias:
                    w[f"bias_ih_l{k}{sfx}"] = ((g,), "param")
                    w[f"bias_hh_l{k}{sfx}"] = ((g,), "param")
                if proj:
                    w[f"weight_hr_l{k}{sfx}"] = ((proj, p.hidden), "param")
        return w

    @classmethod
    def macs(cls, ins, outs, p):
        x = ins[0]
        dirs, hout = cls._sizes(p)
        proj = getattr(p, "proj", 0)
        per_step = 0
        for k in range(p.layers):
            fin = x.shape[-1] if k == 0 else dirs * hout
            per_step += dirs * (cls.gates * p.hidden * (fin + hout) + proj * p.hidden)
        return mul_all(x.shape[:-1]) * per_step      # (N * T) steps

    @classmethod
    def _kwargs(cls, p) -> dict:
        kw = {}
        if p.layers != 1:
            kw["num_layers"] = P(p, "layers")
        if not p.bias:
            kw["bias"] = P(p, "bias")
        kw["batch_first"] = P(p, "batch_first")
        if p.dropout:
            kw["dropout"] = P(p, "dropout")
        if p.bidirectional:
            kw["bidirectional"] = P(p, "bidirectional")
        return kw

    @classmethod
    def _call(cls, fn, ins, p, kw):
        x = ins[0]
        return call(fn, lit(x.shape[-1], ("in", 0, x.rank - 1)), P(p, "hidden"), **kw)

    @classmethod
    def constructor(cls, ins, p):
        return cls._call(f"nn.{cls.torch_cls}", ins, p, cls._kwargs(p))

    @classmethod
    def forward(cls, ins, p):
        # nn.RNN / nn.GRU already return the flat tuple (out, h)
        return module_call(*[Operand(k) for k, t in enumerate(ins) if t is not None])

    @classmethod
    def label(cls, p):
        return (f"{cls.name} {p.hidden}" + (f" x{p.layers}" if p.layers != 1 else "")
                + (" bi" if p.bidirectional else ""))


@register
class RNN(_Recurrent):
    """Elman RNN (tanh or relu) over a sequence: outputs every step's hidden state and the final state h."""

    name = "rnn"
    Params = RNNParams
    inputs = (In("x"), In("h0", optional=True))
    outputs = ("out", "h")
    gates = 1
    torch_cls = "RNN"
    torch_ref = "torch.nn.RNN"
    cases = [({"hidden": 32}, [(N, T, 16)], [(N, T, 32), (1, N, 32)]),
             ({"hidden": 8, "layers": 2, "nonlinearity": "relu", "bidirectional": True, "dropout": 0.1},
              [(N, T, 4)], [(N, T, 16), (4, N, 8)]),
             ({"hidden": 8, "batch_first": False, "bias": False}, [(T, N, 4), (1, N, 8)], [(T, N, 8), (1, N, 8)]),
             ({"hidden": 8}, [(T, 4)], [(T, 8), (1, 8)])]

    @classmethod
    def _kwargs(cls, p):
        kw = {"nonlinearity": P(p, "nonlinearity")} if p.nonlinearity != "tanh" else {}
        return {**kw, **super()._kwargs(p)}


@register
class GRU(_Recurrent):
    """Gated recurrent unit over a sequence: outputs every step's hidden state and the final state h."""

    name = "gru"
    Params = RecurrentParams
    inputs = (In("x"), In("h0", optional=True))
    outputs = ("out", "h")
    gates = 3
    torch_cls = "GRU"
    torch_ref = "torch.nn.GRU"
    cases = [({"hidden": 32}, [(N, T, 16)], [(N, T, 32), (1, N, 32)]),
             ({"hidden": 8, "layers": 3, "bidirectional": True}, [(N, T, 4), (6, N, 8)], [(N, T, 16), (6, N, 8)])]


_LSTM = '''\
class LSTM(nn.LSTM):
    """nn.LSTM returning a flat (out, h, c) instead of (out, (h, c))."""

    def forward(self, x, h0=None, c0=None):  # (N, T, F); initial states (layers*dirs, N, H) or none
        out, (h, c) = super().forward(x, None if h0 is None else (h0, c0))
        return out, h, c  # (N, T, dirs*H), (layers*dirs, N, H), (layers*dirs, N, hidden)
'''


@register
class LSTM(_Recurrent):
    """Long short-term memory over a sequence: outputs every step's h, and the final states h and c."""

    name = "lstm"
    Params = LSTMParams
    inputs = (In("x"), In("h0", optional=True), In("c0", optional=True))
    outputs = ("out", "h", "c")
    gates = 4
    torch_cls = "LSTM"
    torch_ref = "torch.nn.LSTM"
    cases = [({"hidden": 32}, [(N, T, 16)], [(N, T, 32), (1, N, 32), (1, N, 32)]),
             ({"hidden": 16, "proj": 8, "layers": 2, "bidirectional": True}, [(N, T, 4)],
              [(N, T, 16), (4, N, 8), (4, N, 16)]),
             ({"hidden": 8, "batch_first": False}, [(T, N, 4), (1, N, 8), (1, N, 8)],
              [(T, N, 8), (1, N, 8), (1, N, 8)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        h0 = ins[1] if len(ins) > 1 else None
        c0 = ins[2] if len(ins) > 2 else None
        if (h0 is None) != (c0 is None):
            raise OpError(f"lstm got {'h0' if c0 is None else 'c0'} without {'c0' if c0 is None else 'h0'}",
                          "give both initial states h0 and c0, or neither (zeros)")
        out, h = super().infer(ins, p, ctx)
        c = ins[0].with_shape(cls._state(ins[0], p, p.hidden))
        cls._check_state(c0, c.shape, ins[0], ctx, "c0")
        return [out, h, c]

    @classmethod
    def constructor(cls, ins, p):
        kw = cls._kwargs(p)
        if p.proj:
            kw["proj_size"] = P(p, "proj")
        return cls._call("LSTM", ins, p, kw)

    @classmethod
    def helpers(cls):
        return {"LSTM": _LSTM}
