"""Stochastic depth: drop a residual branch per sample (or for the whole batch) in training; identity at evaluation."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Op, Params, register, need_float, py


class StochasticDepthParams(Params):
    p: float = Field(ge=0, le=1, description="probability of zeroing the input (per sample or for the whole batch)")
    mode: Literal["row", "batch"] = Field("row", description="'row': drop each sample's branch independently; "
                                                             "'batch': drop the whole batch's at once")


@register
class StochasticDepth(Op):
    """Zero a residual branch with probability p in training, scaling the rest by 1/(1-p) (EfficientNet)."""

    name = "stochastic_depth"
    family = "dropout"
    aliases = ("drop_path",)
    Params = StochasticDepthParams
    torch_ref = "torchvision.ops.StochasticDepth"

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        return [ins[0]]

    @classmethod
    def module(cls, ins, p):
        return f"torchvision.ops.StochasticDepth(p={py(p.p)}, mode={py(p.mode)})"

    @classmethod
    def label(cls, p):
        return f"stochastic depth {p.p:g}"
