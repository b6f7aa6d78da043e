"""Fully connected layers."""
from __future__ import annotations

from pydantic import Field

from .base import Op, OpError, Params, register, need_float, need_int, given
from ..codegen.ir import Attr, Module, Operand, P, call, lit
from ..shapes import Dim, mul_all

N, T = Dim.sym("N"), Dim.sym("T")


@register
class Linear(Op):
    """y = x W^T + b over the last dimension (in_features inferred)."""

    name = "linear"
    family = "linear"
    backward_needs_output = False
    aliases = ("dense", "fc")
    torch_ref = "torch.nn.Linear"
    cases = [({"out": 10}, [(N, 512)], [(N, 10)]),
             ({"out": 256, "bias": False}, [(N, T, 64)], [(N, T, 256)]),
             ({"out": 3}, [(7,)], [(3,)])]

    class Params(Params):
        out: int = Field(gt=0, description="output features")
        bias: bool = Field(True, description="add a learned bias")

    # 'share: <embedding layer>' with bias: false ties the weight to a token embedding's (vocab, D) table
    ties_to = ("embedding",)

    @classmethod
    def tied_forward(cls, ins, p):
        """``F.linear(x, self.wte.weight)``: the output projection reads the embedding's table."""
        return call("F.linear", Operand(0), Attr(Module(), "weight"))

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        if x.rank < 1:
            raise OpError("linear needs an input with at least one dimension")
        need_int(x.shape[-1], "number of input features (last dim)", cls.name)
        return [x.with_shape(x.shape[:-1] + (p.out,))]

    @classmethod
    def weights(cls, ins, p):
        fin = ins[0].shape[-1]
        w = {"weight": ((p.out, fin), "param")}
        if p.bias:
            w["bias"] = ((p.out,), "param")
        return w

    @classmethod
    def macs(cls, ins, outs, p):
        return mul_all(outs[0].shape) * ins[0].shape[-1]

    @classmethod
    def constructor(cls, ins, p):
        x = ins[0]
        kw = {"bias": P(p, "bias")} if given(p, "bias") else {}
        return call("nn.Linear", lit(x.shape[-1], ("in", 0, x.rank - 1)), P(p, "out"), **kw)

    @classmethod
    def label(cls, p):
        return f"linear {p.out}"
