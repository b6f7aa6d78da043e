"""Pooling: max/avg pooling windows, adaptive pooling to a fixed size, and global pooling."""
from __future__ import annotations

from typing import Optional, Union

from pydantic import Field, model_validator

from .base import Op, OpError, Params, register, need_float, need_rank, tup, py
from ..shapes_dim import conv_out

IntOrList = Union[int, list[int]]
LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _vals(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _lit(v: tuple) -> str:
    """An int when every axis has the same value (``3``), else a tuple (``(3, 1)``)."""
    return py(v[0]) if len(set(v)) == 1 else py(v)


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


class _PoolOp(Op):
    family = "pool"

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__doc__ and "doc" not in cls.__dict__:
            cls.doc = cls.__doc__.strip().split("\n")[0]


class _PoolNd(_PoolOp):
    dims = 2
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
    def module(cls, ins, p):
        k, s, pad, dil = cls._norm(p)
        args = [f"kernel_size={_lit(k)}"]
        if s != k:
            args.append(f"stride={_lit(s)}")
        if any(pad):
            args.append(f"padding={_lit(pad)}")
        if any(v != 1 for v in dil):
            args.append(f"dilation={_lit(dil)}")
        if p.ceil_mode:
            args.append("ceil_mode=True")
        if not getattr(p, "count_include_pad", True):
            args.append("count_include_pad=False")
        return f"nn.{cls.kind.capitalize()}Pool{cls.dims}d({', '.join(args)})"

    @classmethod
    def label(cls, p):
        k, s, *_ = cls._norm(p)
        stride = f" /{_size(s) if len(set(s)) > 1 else s[0]}" if s != k else ""
        return f"{cls.kind}pool {_size(k)}{stride}"


def _pool(kind: str, dims: int, doc: str, aliases=()):
    cname = f"{kind.capitalize()}Pool{dims}d"
    attrs = {"name": f"{kind}pool{dims}d", "kind": kind, "dims": dims, "doc": doc, "__doc__": doc,
             "aliases": tuple(aliases), "torch_ref": f"torch.nn.{cname}",
             "Params": MaxPoolParams if kind == "max" else AvgPoolParams}
    return register(type(cname, (_PoolNd,), attrs))


_pool("max", 1, "Max over sliding windows of (N, C, L).", ("max_pool1d",))
_pool("max", 2, "Max over sliding windows of (N, C, H, W); stride defaults to the kernel.", ("maxpool", "max_pool2d"))
_pool("max", 3, "Max over sliding windows of (N, C, D, H, W).", ("max_pool3d",))
_pool("avg", 1, "Mean over sliding windows of (N, C, L).", ("avg_pool1d",))
_pool("avg", 2, "Mean over sliding windows of (N, C, H, W); stride defaults to the kernel.", ("avgpool", "avg_pool2d"))
_pool("avg", 3, "Mean over sliding windows of (N, C, D, H, W).", ("avg_pool3d",))


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
    def module(cls, ins, p):
        out = cls._out(p)
        return f"nn.Adaptive{cls.kind.capitalize()}Pool{cls.dims}d({_lit(out)})"

    @classmethod
    def label(cls, p):
        out = tuple("*" if o is None else o for o in cls._out(p))
        return f"adaptive {cls.kind}pool {_size(out)}"


def _adaptive(kind: str, dims: int, doc: str):
    cname = f"Adaptive{kind.capitalize()}Pool{dims}d"
    attrs = {"name": f"adaptive_{kind}_pool{dims}d", "kind": kind, "dims": dims, "doc": doc, "__doc__": doc,
             "torch_ref": f"torch.nn.{cname}"}
    return register(type(cname, (_AdaptiveNd,), attrs))


_adaptive("avg", 1, "Average-pool (N, C, L) to a fixed length, whatever the input length.")
_adaptive("avg", 2, "Average-pool (N, C, H, W) to a fixed size, whatever the input size (VGG, AlexNet heads).")
_adaptive("avg", 3, "Average-pool (N, C, D, H, W) to a fixed size, whatever the input size.")
_adaptive("max", 1, "Max-pool (N, C, L) to a fixed length, whatever the input length.")
_adaptive("max", 2, "Max-pool (N, C, H, W) to a fixed size, whatever the input size.")
_adaptive("max", 3, "Max-pool (N, C, D, H, W) to a fixed size, whatever the input size.")


# -- global pooling --------------------------------------------------------------------------------

class GlobalParams(Params):
    flatten: bool = Field(False, description="drop the size-1 spatial dims: output (N, C) instead of (N, C, 1, 1)")


class _Global(_PoolOp):
    kind = "avg"
    Params = GlobalParams

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        need_rank(x, (3, 4, 5), cls.name, "(N, C, L), (N, C, H, W) or (N, C, D, H, W)")
        if p.flatten:
            return [x.with_shape(tuple(x.shape[:2]))]
        return [x.with_shape(tuple(x.shape[:2]) + (1,) * (x.rank - 2))]

    @classmethod
    def module(cls, ins, p):
        return f"nn.Adaptive{cls.kind.capitalize()}Pool{ins[0].rank - 2}d(1)"

    @classmethod
    def call(cls, args, p, mod):
        y = f"{mod}({args[0]})"
        return f"torch.flatten({y}, 1)" if p.flatten else y

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
