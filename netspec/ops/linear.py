"""Fully connected layers."""
from __future__ import annotations

from pydantic import Field

from .base import Op, OpError, Params, register, need_float, need_int, py
from ..shapes import TensorType, mul_all


@register
class Linear(Op):
    """y = x W^T + b over the last dimension (in_features inferred)."""

    name = "linear"
    family = "linear"
    backward_needs_output = False
    aliases = ("dense", "fc")
    torch_ref = "torch.nn.Linear"

    class Params(Params):
        out: int = Field(gt=0, description="output features")
        bias: bool = Field(True, description="add a learned bias")

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
    def module(cls, ins, p):
        return f"nn.Linear({py(ins[0].shape[-1])}, {py(p.out)}, bias={py(p.bias)})"

    @classmethod
    def label(cls, p):
        return f"linear {p.out}"
