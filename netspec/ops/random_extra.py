"""Random tensors: noise with the shape of another tensor (a VAE's reparameterisation). No weights."""
from __future__ import annotations

from .base import Op, register, need_float


@register
class RandnLike(Op):
    """Standard normal noise with the input's shape and dtype; drawn in training and evaluation alike (VAE sampling)."""

    name = "randn_like"
    family = "random"
    aliases = ("normal_like",)
    torch_ref = "torch.randn_like"

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        return [ins[0]]

    @classmethod
    def call(cls, args, p, mod):
        return f"torch.randn_like({args[0]})"

    @classmethod
    def label(cls, p):
        return "randn like"
