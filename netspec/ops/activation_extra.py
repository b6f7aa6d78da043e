"""Elementwise functions beyond the non-linearities: exp (a VAE's standard deviation from its log-variance)."""
from __future__ import annotations

from .base import Op, register, need_float


@register
class Exp(Op):
    """e ** x, elementwise (a VAE's standard deviation: exp(0.5 * logvar))."""

    name = "exp"
    family = "activation"
    torch_ref = "torch.exp"

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        return [ins[0]]

    @classmethod
    def call(cls, args, p, mod):
        return f"torch.exp({args[0]})"

    @classmethod
    def label(cls, p):
        return "exp"
