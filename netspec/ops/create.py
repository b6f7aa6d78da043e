"""Tensors made inside forward: arange, full/zeros/ones, and expand (broadcast a tensor to sizes taken from another).

Each reads its device (and, where it copies it, its sizes or dtype) from an input tensor, so a built module runs on
any device; a constant without any input is a ``buffer`` (``persistent: false`` keeps it out of the state_dict).
No weights.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from .base import OpError, Params, In, register, same_dim, WeightlessOp
from ..codegen.ir import Attr, Index, Name, Operand, P, call, lit, method
from ..shapes import Dim, Requirement, TensorType, is_sym, norm
from ..shapes_dim import ceildiv

N, T, S, E, D, H, W = (Dim.sym(s) for s in "NTSEDHW")
CreateDtype = Literal["float32", "float16", "bfloat16", "float64", "int64", "bool"]


class _CreateOp(WeightlessOp):
    family = "create"
    backward_needs_output = False


def _size_of(x: TensorType, d: int, param: str = "dim"):
    if not -x.rank <= d < x.rank:
        raise OpError(f"{param} {d} is out of range for the rank-{x.rank} input {x}",
                      f"valid values: {-x.rank}..{x.rank - 1}" if x.rank else "the input has no dims", param=param)
    return x.shape[d % x.rank]


def _shape_of(t, d: int):
    """``t.shape[d]``: a size read from an input at run time."""
    return Index(Attr(t, "shape"), (lit(d),))


class ArangeParams(Params):
    dim: Optional[int] = Field(None, description="count up to the size of this dim of 'like' (instead of 'end')")
    end: Optional[int] = Field(None, description="count up to this number (exclusive)")
    start: int = Field(0, description="the first value")
    step: int = Field(1, ge=1, description="the distance between values")
    dtype: CreateDtype = Field("int64", description="the values' dtype (int64: positions to index a table with)")

    @model_validator(mode="after")
    def _check(self):
        if (self.dim is None) == (self.end is None):
            raise ValueError("give either 'dim' (count up to the size of that dim of the input) or 'end'")
        if self.dtype == "bool":
            raise ValueError("arange makes numbers: dtype int64 or a float dtype, not bool")
        return self


def _high(p, end):
    """The values' exclusive upper bound, for integer counts up from 0 or more (positions): ``end``."""
    return end if p.dtype in ("int64", "int32") and p.start >= 0 and p.step > 0 else None


@register
class Arange(_CreateOp):
    """start, start+step, ... below 'end' or the size of dim 'dim' of the input (positions 0..T-1), on its device."""
    shape_rule = "like -> [dim(like, dim)] (or [end - start] / step), dtype int64 unless given"

    name = "arange"
    inputs = (In("like"),)
    Params = ArangeParams
    torch_ref = "torch.arange"
    cases = [({"dim": 1}, [((N, T), "int64")], [((T,), "int64")]),
             ({"dim": -2, "dtype": "float32"}, [(N, T, E)], [(T,)]),
             ({"dim": 1, "start": 1}, [(N, 6)], [((5,), "int64")]),
             ({"end": 7, "step": 2}, [(N, T)], [((4,), "int64")]),
             ({"dim": 0, "step": 2}, [(T, E)], [(("ceil(T/2)",), "int64")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        like = ins[0]
        end = p.end if p.end is not None else _size_of(like, p.dim)
        if not is_sym(end):
            if end <= p.start:
                raise OpError(f"arange from {p.start} to {end} is empty",
                              "start must be below the end", param="start")
            return [TensorType((-(-(end - p.start) // p.step),), p.dtype, _high(p, end))]
        if p.start:
            ctx.requirements.append(Requirement(f"{end} > {p.start}", None, None, ctx.node))
        n = norm(end - p.start)
        return [TensorType((n if p.step == 1 else ceildiv(n, p.step, ctx.sym),), p.dtype, _high(p, end))]

    @classmethod
    def forward(cls, ins, p):
        """``torch.arange(x.shape[1], device=x.device)``"""
        end = P(p, "end") if p.end is not None else _shape_of(Operand(0), p.dim)
        args = [end] if (p.start, p.step) == (0, 1) else [P(p, "start"), end] + ([P(p, "step")] if p.step != 1 else [])
        kw = {"device": Attr(Operand(0), "device")}
        if p.dtype != "int64":
            kw["dtype"] = Name(f"torch.{p.dtype}")
        return call("torch.arange", *args, **kw)

    @classmethod
    def label(cls, p):
        return f"arange {p.start}..{p.end if p.end is not None else f'dim {p.dim}'}" + \
            (f" step {p.step}" if p.step != 1 else "")


class FullParams(Params):
    value: float = Field(description="the fill value")
    shape: Optional[list[int]] = Field(None, description="the output's shape (default: the input's)")
    dtype: Optional[CreateDtype] = Field(None, description="the output's dtype (default: the input's)")

    @field_validator("shape")
    @classmethod
    def _positive(cls, v):
        if v is not None and (not v or any(d < 1 for d in v)):
            raise ValueError(f"shape needs positive sizes, got {v}")
        return v


class ConstParams(Params):
    shape: Optional[list[int]] = Field(None, description="the output's shape (default: the input's)")
    dtype: Optional[CreateDtype] = Field(None, description="the output's dtype (default: the input's)")

    _shape = field_validator("shape")(FullParams._positive.__func__)


class _Fill(_CreateOp):
    """A tensor of one value with the shape (or 'shape') and dtype (or 'dtype') of the input, on its device."""
    shape_rule = "like -> like's shape (or shape:), like's dtype unless dtype: is given"

    inputs = (In("like"),)
    fill = 0.0

    @classmethod
    def _value(cls, p):
        return cls.fill

    @classmethod
    def infer(cls, ins, p, ctx):
        like = ins[0]
        dtype = p.dtype or like.dtype
        v = cls._value(p)
        if dtype != "bool" and dtype not in ("float32", "float16", "bfloat16", "float64") and not float(v).is_integer():
            raise OpError(f"{cls.name}: value {v} does not fit dtype {dtype}", "use a whole number or a float dtype",
                          param="value")
        shape = tuple(p.shape) if p.shape is not None else like.shape
        return [TensorType(shape, dtype)]

    cases_common = [({}, [(N, T, E)], [(N, T, E)]),
                    ({"dtype": "bool"}, [((N, T), "int64")], [((N, T), "bool")]),
                    ({"shape": [1, 4]}, [(N, T)], [(1, 4)]),
                    ({"shape": [3], "dtype": "int64"}, [(N, 2)], [((3,), "int64")])]

    @classmethod
    def forward(cls, ins, p):
        kw = {"dtype": Name(f"torch.{p.dtype}")} if p.dtype is not None else {}
        if p.shape is None:
            return call(f"torch.{cls.name}_like", Operand(0), *cls._args(p), **kw)
        return method(Operand(0), f"new_{cls.name}", P(p, "shape"), *cls._args(p), **kw)

    @classmethod
    def _args(cls, p):
        return []

    @classmethod
    def label(cls, p):
        return cls.name if p.shape is None else f"{cls.name} {'x'.join(map(str, p.shape))}"


@register
class Full(_Fill):
    """A tensor filled with 'value', with the input's shape and dtype (or 'shape'/'dtype'), on its device."""

    name = "full"
    Params = FullParams
    torch_ref = "torch.full_like / Tensor.new_full"
    cases = [({"value": 2.5}, [(N, T, E)], [(N, T, E)]),
             ({"value": 1, "dtype": "bool"}, [((N, T), "int64")], [((N, T), "bool")]),
             ({"value": float("-inf"), "shape": [1, 4]}, [(N, T)], [(1, 4)]),
             ({"value": -1, "dtype": "int64"}, [(N, T)], [((N, T), "int64")])]

    @classmethod
    def _value(cls, p):
        return p.value

    @classmethod
    def _args(cls, p):
        return [P(p, "value")]

    @classmethod
    def label(cls, p):
        return f"full {p.value:g}" + ("" if p.shape is None else f" {'x'.join(map(str, p.shape))}")


@register
class Zeros(_Fill):
    """Zeros with the input's shape and dtype (or 'shape'/'dtype'), on its device."""

    name = "zeros"
    Params = ConstParams
    torch_ref = "torch.zeros_like / Tensor.new_zeros"
    cases = _Fill.cases_common


@register
class Ones(_Fill):
    """Ones with the input's shape and dtype (or 'shape'/'dtype'), on its device."""

    name = "ones"
    Params = ConstParams
    fill = 1.0
    torch_ref = "torch.ones_like / Tensor.new_ones"
    cases = _Fill.cases_common


class ExpandParams(Params):
    sizes: Optional[list[int]] = Field(None, description="the new sizes; -1 keeps a dim (torch.Tensor.expand)")
    dims: Optional[list[int]] = Field(None, description="with 'like': the dims that take its size (default: all)")

    @model_validator(mode="after")
    def _check(self):
        if self.sizes is not None:
            if not self.sizes:
                raise ValueError("sizes needs at least one entry")
            bad = [v for v in self.sizes if v < -1 or v == 0]
            if bad:
                raise ValueError(f"sizes must be positive, or -1 to keep a dim; got {bad[0]}")
            if self.dims is not None:
                raise ValueError("'dims' goes with a 'like' input, not with 'sizes'")
        if self.dims is not None and (not self.dims or len(set(self.dims)) != len(self.dims)):
            raise ValueError(f"dims needs distinct entries, got {self.dims}")
        return self


@register
class Expand(_CreateOp):
    """Broadcast size-1 dims without copying: a [1, 1, D] token to [N, 1, D], sizes from 'sizes' or a 'like' input."""
    shape_rule = ("x -> x broadcast to the sizes of like (all dims, or those in dims:) or to sizes: (-1 keeps a "
                  "dim); only size-1 dims grow")

    name = "expand"
    family = "shape"
    inputs = (In("x"), In("like", optional=True))
    Params = ExpandParams
    torch_ref = "torch.Tensor.expand"
    cases = [({"dims": [0]}, [(1, 1, E), (N, T, E)], [(N, 1, E)]),
             ({}, [(1, 1, E), (N, T, E)], [(N, T, E)]),
             ({"sizes": [4, -1, -1]}, [(1, T, E)], [(4, T, E)]),
             ({"sizes": [3, -1]}, [(E,)], [(3, E)]),
             ({"dims": [-1]}, [((N, 1), "bool"), (N, T)], [((N, T), "bool")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        like = ins[1] if len(ins) > 1 else None
        if (like is None) == (p.sizes is None):
            raise OpError("expand needs a 'like' input or 'sizes', and not both",
                          "from: {x: token, like: tokens} takes the sizes of another tensor; sizes: [4, -1, -1] "
                          "gives them", param="sizes" if p.sizes is not None else None)
        if like is None:
            sizes = p.sizes
            lead = len(sizes) - x.rank
            if lead < 0:
                raise OpError(f"expand: sizes {sizes} has fewer entries than the input {x} has dims", param="sizes")
            out = []
            for j, s in enumerate(sizes):
                if j < lead:
                    if s == -1:
                        raise OpError(f"expand: sizes[{j}] is -1, but there is no input dim to keep there",
                                      "new leading dims need a size", param="sizes")
                    out.append(s)
                    continue
                have = x.shape[j - lead]
                if s == -1 or (isinstance(have, int) and have == s):
                    out.append(have)
                elif have == 1:
                    out.append(s)
                else:
                    raise OpError(f"expand: dim {j - lead} of {x} has size {have}, which cannot become {s}",
                                  "only size-1 dims expand; -1 keeps a dim", param="sizes")
            return [x.with_shape(out)]
        if like.rank != x.rank:
            raise OpError(f"expand: the input {x} and 'like' {like} have different ranks",
                          "unsqueeze the input first, so that both have the same number of dims")
        dims = [(_dim(d, x)) for d in (p.dims if p.dims is not None else range(x.rank))]
        out = list(x.shape)
        for d in dims:
            have, want = x.shape[d], like.shape[d]
            if isinstance(have, int) and have == 1:
                out[d] = want
            else:
                out[d] = same_dim(have, want, ctx, f"expand: dim {d} of {x} is {have}, not 1, and 'like' {like} "
                                  f"has {want} there", "only size-1 dims expand; list the dims to take in 'dims'")
        return [x.with_shape(out)]

    @classmethod
    def forward(cls, ins, p):
        """``x.expand(like.shape[0], -1, -1)``, ``x.expand_as(like)`` or ``x.expand(4, -1, -1)``."""
        x = ins[0]
        if p.sizes is not None:
            return method(Operand(0), "expand", *[lit(v, ("sizes", j)) for j, v in enumerate(p.sizes)])
        if p.dims is None:
            return method(Operand(0), "expand_as", Operand(1))
        dims = {_dim(d, x) for d in p.dims}
        return method(Operand(0), "expand",
                      *[_shape_of(Operand(1), j) if j in dims else lit(-1) for j in range(x.rank)])

    @classmethod
    def label(cls, p):
        if p.sizes is not None:
            return "expand " + "x".join("*" if v == -1 else str(v) for v in p.sizes)
        return "expand like" + ("" if p.dims is None else f" dims {','.join(map(str, p.dims))}")


def _dim(d: int, x: TensorType) -> int:
    if not -x.rank <= d < x.rank:
        raise OpError(f"dims entry {d} is out of range for the rank-{x.rank} input {x}", param="dims")
    return d % x.rank
