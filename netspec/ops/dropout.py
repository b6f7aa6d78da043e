"""Dropout: elementwise, channel-wise (1d/2d/3d) and alpha dropout. Identity at evaluation; no weights."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Params, register, need_float, need_rank, given, WeightlessOp
from ..codegen.ir import P, call
from ..shapes import Dim

N, C, L, D, H, W, T = (Dim.sym(s) for s in "NCLDHWT")


class DropoutParams(Params):
    p: float = Field(0.5, ge=0, lt=1, description="probability of zeroing an element (or a channel)")
    inplace: bool = Field(False, description="overwrite the input (saves memory)")


class _Dropout(WeightlessOp):
    family = "dropout"
    shape_rule = "same shape as the input (identity in eval mode)"
    backward_needs_output = False      # the backward reads the mask, not the result

    @classmethod
    def keeps(cls, p, rank):
        return rank
    Params = DropoutParams
    torch_cls = "Dropout"
    ranks: tuple = ()      # allowed input ranks (empty: any)
    layout = ""

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        if cls.ranks:
            need_rank(x, cls.ranks, cls.name, cls.layout)
        return [x]

    @classmethod
    def constructor(cls, ins, p):
        kw = {"p": P(p, "p")}
        if given(p, "inplace"):
            kw["inplace"] = P(p, "inplace")
        return call(f"nn.{cls.torch_cls}", **kw)

    @classmethod
    def label(cls, p):
        return f"{cls.name.replace('_', ' ')} {p.p:g}"


def _dropout(name: str, torch_cls: str, doc: str, ranks=(), layout="", aliases=(), cases=()):
    attrs = {"name": name, "torch_cls": torch_cls, "doc": doc, "__doc__": doc, "ranks": tuple(ranks),
             "layout": layout, "aliases": tuple(aliases), "torch_ref": f"torch.nn.{torch_cls}", "cases": list(cases)}
    return register(type(torch_cls, (_Dropout,), attrs))


_dropout("dropout", "Dropout", "Zero each element with probability p in training, scaling the rest by 1/(1-p).",
         cases=[({}, [(N, 64, H, W)], [(N, 64, H, W)]), ({"p": 0.1, "inplace": True}, [(N, L, 16)], [(N, L, 16)]),
                ({"p": 0.2}, [(N, 10)], [(N, 10)])])
# Channel-wise dropout needs the batched layout: torch reads a 3-D input to Dropout2d as (N, C, L) with a
# deprecation warning, and warns for any other rank but 4 (Dropout3d: 5); Dropout1d refuses other ranks.
_dropout("dropout1d", "Dropout1d", "Zero whole channels of (N, C, L) with probability p in training.",
         (3,), "(N, C, L): a rank-3 input; use 'dropout' for other ranks",
         cases=[({"p": 0.2}, [(N, C, L)], [(N, C, L)])])
_dropout("dropout2d", "Dropout2d", "Zero whole channels of (N, C, H, W) with probability p in training.",
         (4,), "(N, C, H, W): a rank-4 input; use 'dropout1d' for (N, C, L) and 'dropout' for other ranks",
         cases=[({"p": 0.2}, [(N, 64, H, W)], [(N, 64, H, W)]), ({"inplace": True}, [(N, 8, H, W)], [(N, 8, H, W)])])
_dropout("dropout3d", "Dropout3d", "Zero whole channels of (N, C, D, H, W) with probability p in training.",
         (5,), "(N, C, D, H, W): a rank-5 input; use 'dropout2d' for (N, C, H, W) and 'dropout' for other ranks",
         cases=[({"p": 0.3}, [(N, 4, D, H, W)], [(N, 4, D, H, W)])])
_dropout("alpha_dropout", "AlphaDropout", "Dropout that keeps zero mean and unit variance (with selu).",
         cases=[({"p": 0.05}, [(N, 64)], [(N, 64)]), ({"p": 0.1, "inplace": True}, [(N, L, 8)], [(N, L, 8)])])


# -- stochastic depth ------------------------------------------------------------------------------------

class StochasticDepthParams(Params):
    p: float = Field(ge=0, le=1, description="probability of zeroing the input (per sample or for the whole batch)")
    mode: Literal["row", "batch"] = Field("row", description="'row': drop each sample's branch independently; "
                                                             "'batch': drop the whole batch's at once")


@register
class StochasticDepth(WeightlessOp):
    """Zero a residual branch with probability p in training, scaling the rest by 1/(1-p) (EfficientNet)."""

    name = "stochastic_depth"
    shape_rule = "same shape as the input; drops whole rows (mode 'row') or the batch (identity in eval mode)"
    family = "dropout"
    aliases = ("drop_path",)
    Params = StochasticDepthParams
    torch_ref = "torchvision.ops.StochasticDepth"

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        return [ins[0]]

    backward_needs_output = False
    cases = [({"p": 0.2}, [(N, 16, H, W)], [(N, 16, H, W)]), ({"p": 0.5, "mode": "batch"}, [(N, T, 8)], [(N, T, 8)])]

    @classmethod
    def keeps(cls, p, rank):
        return rank

    @classmethod
    def constructor(cls, ins, p):
        return call("torchvision.ops.StochasticDepth", p=P(p, "p"), mode=P(p, "mode"))

    @classmethod
    def label(cls, p):
        return f"stochastic depth {p.p:g}"
