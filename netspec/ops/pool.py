"""Pooling: max/avg pooling windows, adaptive pooling to a fixed size, and global pooling."""
from __future__ import annotations

from typing import Optional, Union

from pydantic import Field, model_validator

from .base import OpError, Params, register, need_float, need_rank, tup, given, WeightlessOp
from ..codegen.ir import P, call, lit, module_call
from ..shapes_dim import Dim, conv_out

N, C, L, D, H, W = (Dim.sym(s) for s in "NCLDHW")

IntOrList = Union[int, list[int]]
LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _vals(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _size(v: tuple) -> str:
    return "x".join(map(str, v))


class _PoolParams(Params):
    kernel: IntOrList = Field(description="window size: an int or one per spatial dim")
    stride: Optional[IntOrList] = Field(None, description="step between windows (default: the kernel size)")
    padding: IntOrList = Field(0, description="implicit padding per side (at most half the kernel)")
    ceil_mode: bool = Field(False, description="round the output size up (a last, partial window)")

    @model_validator(mode="after")
    def _check(self):
        for name in ("kernel", "stride", "dilation"):
            v = getattr(self, name, None)
            if v is not None and any(x < 1 for x in _vals(v)):
                raise ValueError(f"{name} must be positive, got {v}")
        if any(x < 0 for x in _vals(self.padding)):
            raise ValueError(f"padding must be >= 0, got {self.padding}")
        return self


class MaxPoolParams(_PoolParams):
    dilation: IntOrList = Field(1, description="spacing between window taps")


class AvgPoolParams(_PoolParams):
    count_include_pad: bool = Field(True, description="count the zero padding in the average's divisor")


class _PoolOp(WeightlessOp):
    family = "pool"
    backward_needs_output = False      # max pooling keeps its indices; averaging reads nothing

    @classmethod
    def keeps(cls, p, rank):
        return 2

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__doc__ and "doc" not in cls.__dict__:
            cls.doc = cls.__doc__.strip().split("\n")[0]


class _PoolNd(_PoolOp):
    dims = 2
    shape_rule = "[N, C, *S] -> [N, C, *S']; each S' = floor((S + 2*padding - dilation*(kernel-1) - 1)/stride) + 1 (ceil with ceil_mode); stride defaults to kernel"
    kind = "max"          # "max" or "avg"

    @classmethod
    def _norm(cls, p):
        d = cls.dims
        k = tup(p.kernel, d, "kernel")
        s = k if p.stride is None else tup(p.stride, d, "stride")
        pad = tup(p.padding, d, "padding")
        dil = tup(getattr(p, "dilation", 1), d, "dilation")
        return k, s, pad, dil

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        need_rank(x, (cls.dims + 2,), cls.name, LAYOUTS[cls.dims])
        k, s, pad, dil = cls._norm(p)
        for j in range(cls.dims):
            if pad[j] > k[j] // 2:
                raise OpError(f"padding {_size(pad)} is more than half the kernel {_size(k)}",
                              f"use padding <= {k[j] // 2} (PyTorch's limit: kernel // 2)", param="padding")
        spatial = []
        for j, size in enumerate(x.shape[2:]):
            o = conv_out(size, k[j], s[j], pad[j], dil[j], ctx.sym, p.ceil_mode)
            if isinstance(o, int) and o < 1:
                eff = dil[j] * (k[j] - 1) + 1
                what = f"{eff} with dilation" if dil[j] != 1 else f"{eff}"
                raise OpError(f"the kernel ({what}) is larger than the padded input ({size} + 2*{pad[j]}) "
                              f"in dim {j + 2} of {x}", "use a smaller kernel, more padding, or a larger input",
                              param="kernel")
            spatial.append(o)
        return [x.with_shape(tuple(x.shape[:2]) + tuple(spatial))]

    @classmethod
    def constructor(cls, ins, p):
        """``nn.MaxPool2d(kernel_size=3, stride=2, padding=1)``: values as written, defaults left out."""
        k, s, pad, dil = cls._norm(p)
        kw = {"kernel_size": P(p, "kernel")}
        for f in ("stride", "padding", "dilation", "ceil_mode", "count_include_pad"):
            if f in type(p).model_fields and given(p, f) and getattr(p, f) is not None:
                kw[f] = P(p, f)
        return call(f"nn.{cls.kind.capitalize()}Pool{cls.dims}d", **kw)

    @classmethod
    def label(cls, p):
        k, s, *_ = cls._norm(p)
        stride = f" /{_size(s) if len(set(s)) > 1 else s[0]}" if s != k else ""
        return f"{cls.kind}pool {_size(k)}{stride}"


def _pool(kind: str, dims: int, doc: str, aliases=(), cases=()):
    cname = f"{kind.capitalize()}Pool{dims}d"
    attrs = {"name": f"{kind}pool{dims}d", "kind": kind, "dims": dims, "doc": doc, "__doc__": doc,
             "aliases": tuple(aliases), "torch_ref": f"torch.nn.{cname}",
             "Params": MaxPoolParams if kind == "max" else AvgPoolParams, "cases": list(cases)}
    return register(type(cname, (_PoolNd,), attrs))


_pool("max", 1, "Max over sliding windows of (N, C, L).", ("max_pool1d",), [
    ({"kernel": 2}, [(N, 16, L)], [(N, 16, "L//2")]),
    ({"kernel": 3, "stride": 2, "padding": 1}, [(2, 3, 11)], [(2, 3, 6)])])
_pool("max", 2, "Max over sliding windows of (N, C, H, W); stride defaults to the kernel.", ("maxpool", "max_pool2d"), [
    ({"kernel": 3, "stride": 2, "padding": 1}, [(N, 64, H, W)], [(N, 64, "ceil(H/2)", "ceil(W/2)")]),
    ({"kernel": 3, "stride": 2, "padding": 1}, [(N, 64, 112, 112)], [(N, 64, 56, 56)]),
    ({"kernel": 2}, [(N, 64, H, W)], [(N, 64, "H//2", "W//2")]),
    ({"kernel": 3, "stride": 2, "ceil_mode": True}, [(1, 96, 55, 55)], [(1, 96, 27, 27)]),
    ({"kernel": [2, 1], "stride": [2, 1]}, [(N, 8, H, W)], [(N, 8, "H//2", W)]),
    ({"kernel": 3, "dilation": 2}, [(N, 8, 20, 20)], [(N, 8, 6, 6)])])
_pool("max", 3, "Max over sliding windows of (N, C, D, H, W).", ("max_pool3d",), [
    ({"kernel": [1, 2, 2]}, [(N, 16, D, H, W)], [(N, 16, D, "H//2", "W//2")])])
_pool("avg", 1, "Mean over sliding windows of (N, C, L).", ("avg_pool1d",), [
    ({"kernel": 3, "stride": 2, "ceil_mode": True}, [(N, 4, L)], [(N, 4, "L//2")]),
    ({"kernel": 4, "padding": 2, "count_include_pad": False}, [(2, 3, 9)], [(2, 3, 3)])])
_pool("avg", 2, "Mean over sliding windows of (N, C, H, W); stride defaults to the kernel.",
      ("avgpool", "avg_pool2d"), [
    ({"kernel": 2}, [(N, 64, H, W)], [(N, 64, "H//2", "W//2")]),
    ({"kernel": 3, "stride": 1, "padding": 1, "count_include_pad": False}, [(N, 64, H, W)], [(N, 64, H, W)]),
    ({"kernel": 7}, [(N, 2048, 7, 7)], [(N, 2048, 1, 1)])])
_pool("avg", 3, "Mean over sliding windows of (N, C, D, H, W).", ("avg_pool3d",), [
    ({"kernel": 2, "stride": 2}, [(N, 4, D, H, W)], [(N, 4, "D//2", "H//2", "W//2")])])


# -- adaptive pooling ------------------------------------------------------------------------------

class AdaptiveParams(Params):
    out: Union[int, list[Optional[int]]] = Field(
        description="output size: an int for every spatial dim, or one per dim (null keeps that dim's size)")

    @model_validator(mode="after")
    def _check(self):
        if any(v is not None and v < 1 for v in _vals(self.out)):
            raise ValueError(f"output sizes must be positive, got {self.out}")
        return self


class _AdaptiveNd(_PoolOp):
    dims = 2
    shape_rule = "[N, C, *S] -> [N, C, *out] (a null entry of out keeps that size)"
    kind = "avg"
    Params = AdaptiveParams

    @classmethod
    def _out(cls, p) -> tuple:
        if isinstance(p.out, list) and len(p.out) != cls.dims:
            raise OpError(f"out needs {cls.dims} values for {cls.name}, got {len(p.out)}", param="out")
        return tup(p.out, cls.dims, "out")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        need_rank(x, (cls.dims + 2,), cls.name, LAYOUTS[cls.dims])
        out = cls._out(p)
        if cls.dims == 1 and out[0] is None:
            raise OpError(f"{cls.name} needs an output length: null (keep the size) leaves nothing to pool",
                          "give out a number, or remove the layer", param="out")
        spatial = [size if o is None else o for o, size in zip(out, x.shape[2:])]
        return [x.with_shape(tuple(x.shape[:2]) + tuple(spatial))]

    @classmethod
    def constructor(cls, ins, p):
        cls._out(p)
        return call(f"nn.Adaptive{cls.kind.capitalize()}Pool{cls.dims}d", P(p, "out"))

    @classmethod
    def label(cls, p):
        out = tuple("*" if o is None else o for o in cls._out(p))
        return f"adaptive {cls.kind}pool {_size(out)}"


def _adaptive(kind: str, dims: int, doc: str, cases):
    cname = f"Adaptive{kind.capitalize()}Pool{dims}d"
    attrs = {"name": f"adaptive_{kind}_pool{dims}d", "kind": kind, "dims": dims, "doc": doc, "__doc__": doc,
             "torch_ref": f"torch.nn.{cname}", "cases": cases}
    return register(type(cname, (_AdaptiveNd,), attrs))


_adaptive("avg", 1, "Average-pool (N, C, L) to a fixed length, whatever the input length.", [
    ({"out": 8}, [(N, 512, L)], [(N, 512, 8)]), ({"out": [5]}, [(2, 3, 17)], [(2, 3, 5)])])
_adaptive("avg", 2, "Average-pool (N, C, H, W) to a fixed size, whatever the input size (VGG, AlexNet heads).", [
    ({"out": 7}, [(N, 512, H, W)], [(N, 512, 7, 7)]), ({"out": [1, None]}, [(N, 512, H, W)], [(N, 512, 1, W)]),
    ({"out": [2, 3]}, [(N, 8, 10, 9)], [(N, 8, 2, 3)])])
_adaptive("avg", 3, "Average-pool (N, C, D, H, W) to a fixed size, whatever the input size.", [
    ({"out": [None, 1, 1]}, [(N, 512, D, H, W)], [(N, 512, D, 1, 1)]),
    ({"out": 2}, [(1, 2, 5, 6, 7)], [(1, 2, 2, 2, 2)])])
_adaptive("max", 1, "Max-pool (N, C, L) to a fixed length, whatever the input length.", [
    ({"out": 1}, [(N, 32, L)], [(N, 32, 1)])])
_adaptive("max", 2, "Max-pool (N, C, H, W) to a fixed size, whatever the input size.", [
    ({"out": [6, 6]}, [(N, 256, 13, 13)], [(N, 256, 6, 6)]), ({"out": 6}, [(N, 3, H, W)], [(N, 3, 6, 6)])])
_adaptive("max", 3, "Max-pool (N, C, D, H, W) to a fixed size, whatever the input size.", [
    ({"out": 2}, [(N, 4, D, H, W)], [(N, 4, 2, 2, 2)]), ({"out": [None, 2, 1]}, [(N, 2, 3, 6, 7)], [(N, 2, 3, 2, 1)])])


# -- global pooling --------------------------------------------------------------------------------

class GlobalParams(Params):
    flatten: bool = Field(False, description="drop the size-1 spatial dims: output (N, C) instead of (N, C, 1, 1)")


class _Global(_PoolOp):
    kind = "avg"
    shape_rule = "[N, C, *S] -> [N, C, 1, ...] ([N, C] with flatten)"
    Params = GlobalParams
    cases = [({}, [(N, 2048, H, W)], [(N, 2048, 1, 1)]), ({"flatten": True}, [(N, 2048, H, W)], [(N, 2048)]),
             ({}, [(N, 64, L)], [(N, 64, 1)]), ({"flatten": True}, [(N, 64, D, H, W)], [(N, 64)]),
             ({}, [(N, C, D, H, W)], [(N, C, 1, 1, 1)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        need_rank(x, (3, 4, 5), cls.name, "(N, C, L), (N, C, H, W) or (N, C, D, H, W)")
        if p.flatten:
            return [x.with_shape(tuple(x.shape[:2]))]
        return [x.with_shape(tuple(x.shape[:2]) + (1,) * (x.rank - 2))]

    @classmethod
    def constructor(cls, ins, p):
        return call(f"nn.Adaptive{cls.kind.capitalize()}Pool{ins[0].rank - 2}d", lit(1))

    @classmethod
    def forward(cls, ins, p):
        y = module_call()
        return call("torch.flatten", y, lit(1)) if p.flatten else y

    @classmethod
    def label(cls, p):
        return f"global {cls.kind}pool"


@register
class GlobalAvgPool(_Global):
    """Mean over all spatial positions: (N, C, ...) -> (N, C, 1, ...) or, with flatten, (N, C)."""
    name = "global_avg_pool"
    aliases = ("global_avgpool",)
    kind = "avg"
    torch_ref = "torch.nn.AdaptiveAvgPool2d(1)"


@register
class GlobalMaxPool(_Global):
    """Max over all spatial positions: (N, C, ...) -> (N, C, 1, ...) or, with flatten, (N, C)."""
    name = "global_max_pool"
    aliases = ("global_maxpool",)
    kind = "max"
    torch_ref = "torch.nn.AdaptiveMaxPool2d(1)"
