"""Random tensors: noise with the shape of another tensor (a VAE's reparameterisation). No weights."""
from __future__ import annotations

from .activation import _Act
from .base import register
from ..codegen.ir import Operand, call
from ..shapes import Dim

N, T = (Dim.sym(s) for s in "NT")


@register
class RandnLike(_Act):
    """Standard normal noise with the input's shape and dtype; drawn in training and evaluation alike (VAE sampling)."""

    name = "randn_like"
    shape_rule = "same shape and dtype as the input (standard normal samples)"
    family = "random"
    aliases = ("normal_like",)
    torch_ref = "torch.randn_like"
    backward_needs_output = False
    cases = [({}, [(N, 20)], [(N, 20)]), ({}, [(N, T, 8)], [(N, T, 8)])]

    @classmethod
    def constructor(cls, ins, p):
        return None

    @classmethod
    def forward(cls, ins, p):
        return call("torch.randn_like", Operand(0))

    @classmethod
    def label(cls, p):
        return "randn like"
