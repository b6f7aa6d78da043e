"""Shape ops: flatten, reshape, permute, slicing and splitting, padding, resampling, shuffles, casts, reductions.

None of them has weights. Sizes stay symbolic where the rule allows (``flatten`` of (N, 64, H, W) is
(N, 64*H*W)); a size that must divide evenly becomes a requirement on the symbols (``H % 2 == 0``) or an
error when it never can.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from .base import In, OpError, Params, register, need_float, same_dim, WeightlessOp
from ..codegen.ir import (Attr, Index, List, Name, Operand, P, Raw, Slice as SliceExpr, Tuple, binop, call, lit,
                          method, module_call)
from ..shapes import Dim, TensorType, Requirement, is_sym, mul_all, norm
from ..shapes_dim import ceildiv, exact_div, floordiv

N, C, T, D, H, W = (Dim.sym(s) for s in "NCTDHW")

MAX_PIECES = 16                       # outputs of split/chunk: out0 .. out15
PIECES = tuple(f"out{i}" for i in range(MAX_PIECES))


class _ShapeOp(WeightlessOp):
    family = "shape"


def _axis(d: int, rank: int, x: TensorType, param: str = "dim", extra: int = 0) -> int:
    """Normalise a (possibly negative) axis of a rank-``rank`` input; ``extra=1`` for unsqueeze's new axis."""
    n = rank + extra
    if not -n <= d < n:
        rng = f"{-n}..{n - 1}" if n else "none"
        raise OpError(f"{param} {d} is out of range for the rank-{rank} input {x}",
                      f"valid values: {rng}", param=param)
    return d % n


def _split_even(size, parts: int, ctx, x: TensorType, d: int, op: str, param: str):
    """``size / parts`` when it divides evenly; a requirement when that depends on the symbols; else an error."""
    q = exact_div(size, parts, ctx.sym)
    if q is not None:
        return q
    msg = f"dim {d} of {x} ({size}) is not divisible by {param} ({parts})"
    if not is_sym(size):
        raise OpError(msg, _divisible_hint(op, size, parts), param=param)
    q = floordiv(size, parts, ctx.sym)
    same_dim(size, q * parts, ctx, msg, f"make dim {d} a multiple of {parts}")
    return q


def _divisible_hint(op: str, size: int, parts: int) -> str:
    lo, hi = size // parts * parts, -(-size // parts) * parts
    near = f"{lo} or {hi}" if lo else f"{hi}"
    if op in ("chunk", "split"):
        return (f"torch.chunk would return pieces of unequal size (or fewer than {parts}); use a size that is a "
                f"multiple of {parts} ({near}), or split with explicit 'sizes'")
    return f"use a size that is a multiple of {parts} ({near})"


def _require(ctx, text: str) -> None:
    ctx.requirements.append(Requirement(text, None, None, ctx.node))


def _fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.4g}"


# -- flatten / reshape -------------------------------------------------------------------------------------------

@register
class Flatten(_ShapeOp):
    """Merge dims start..end into one (torch.nn.Flatten): (N, 64, H, W) -> (N, 64*H*W)."""

    @classmethod
    def keeps(cls, p, rank):
        return p.start % rank if rank else 0

    name = "flatten"
    shape_rule = "[N, a, b, ...] -> [N, a*b*...]: dims start..end multiplied into one"
    torch_ref = "torch.nn.Flatten"

    class Params(Params):
        start: int = Field(1, description="first dim to merge (1: keep the batch)")
        end: int = Field(-1, description="last dim to merge (-1: the last)")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        s = _axis(p.start, x.rank, x, "start")
        e = _axis(p.end, x.rank, x, "end")
        if s > e:
            raise OpError(f"start ({p.start}) comes after end ({p.end}) for the input {x}",
                          "start must name the same dim as end or an earlier one", param="start")
        return [x.with_shape(x.shape[:s] + (mul_all(x.shape[s:e + 1]),) + x.shape[e + 1:])]

    cases = [({}, [(N, 64, H, W)], [(N, "64*H*W")]), ({}, [(N, 512, 7, 7)], [(N, 25088)]),
             ({"start": 2}, [(N, 64, H, W)], [(N, 64, H * W)]), ({"start": 0, "end": 1}, [(N, 8, T)], [(8 * N, T)]),
             ({"start": -2, "end": -2}, [(N, 8, T)], [(N, 8, T)])]

    @classmethod
    def constructor(cls, ins, p):
        if (p.start, p.end) == (1, -1):
            return call("nn.Flatten")
        return call("nn.Flatten", P(p, "start"), P(p, "end"))

    @classmethod
    def label(cls, p):
        return "flatten" if (p.start, p.end) == (1, -1) else f"flatten {p.start}..{p.end}"


class ReshapeParams(Params):
    shape: list[int] = Field(description="the new sizes after the kept dims; one entry may be -1 (inferred)")
    keep: int = Field(1, ge=0, description="leading input dims kept as they are (1: the batch)")

    @model_validator(mode="after")
    def _check(self):
        if not self.shape:
            raise ValueError("shape needs at least one entry (to drop a size-1 dim, use 'squeeze')")
        if 0 in self.shape:
            raise ValueError(f"0 is not allowed in shape {self.shape}: torch would make an empty dim and ONNX would "
                             "copy the input's size; to keep leading input dims as they are, use 'keep'")
        bad = [v for v in self.shape if v < -1]
        if bad:
            raise ValueError(f"shape entries must be positive, or -1 for the one inferred; got {bad[0]}")
        if self.shape.count(-1) > 1:
            raise ValueError(f"only one entry of shape may be -1 (inferred), got {self.shape}")
        return self


@register
class Reshape(_ShapeOp):
    """Give the dims after the first 'keep' a new shape with the same number of elements."""

    name = "reshape"
    shape_rule = "[N, ...] -> [N, *shape] (keep leading dims as given; one -1 inferred); the number of elements must match"
    torch_ref = "torch.Tensor.reshape"
    Params = ReshapeParams

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        if p.keep > x.rank:
            raise OpError(f"reshape keeps the first {p.keep} dims, but the input {x} has only {x.rank}",
                          "lower 'keep'", param="keep")
        lead = tuple(x.shape[:p.keep])
        rest = mul_all(x.shape[p.keep:])
        known = math.prod(v for v in p.shape if v != -1)
        target = "[" + ", ".join([str(d) for d in lead] + [str(v) for v in p.shape]) + "]"
        hint = f"the sizes after the first {p.keep} dims must multiply to {rest}; write -1 for one size to infer it"
        if -1 not in p.shape:
            same_dim(rest, known, ctx, f"the input {x} does not fit the shape {target}: {rest} vs {known} "
                     f"elements after the first {p.keep} dims", hint)
            return [x.with_shape(lead + tuple(p.shape))]
        q = exact_div(rest, known, ctx.sym)
        if q is None:
            if not is_sym(rest):
                raise OpError(f"cannot infer -1 in the shape {target} for the input {x}: {rest} elements "
                              f"are not divisible by {known}", hint, param="shape")
            q = floordiv(rest, known, ctx.sym)
            same_dim(rest, q * known, ctx, f"cannot infer -1 in the shape {target} for the input {x} "
                     f"({rest} elements are never divisible by {known})", hint)
        return [x.with_shape(lead + tuple(q if v == -1 else v for v in p.shape))]

    cases = [({"shape": [8, 64]}, [(N, 512)], [(N, 8, 64)]), ({"shape": [8, -1]}, [(N, 64, H, W)], [(N, 8, "8*H*W")]),
             ({"shape": [-1, 64]}, [(N, 64, H, W)], [(N, H * W, 64)]),
             ({"shape": [4, 16, -1], "keep": 2}, [(N, T, 512)], [(N, T, 4, 16, 8)]),
             ({"shape": [-1], "keep": 0}, [(N, T, 8)], [("8*N*T",)]),
             ({"shape": [2, 3], "keep": 3}, [(N, T, 8, 6)], [(N, T, 8, 2, 3)])]

    @classmethod
    def forward(cls, ins, p):
        """``x.reshape(x.shape[0], 8, 64)``; keeping more dims: ``x.reshape(x.shape[:2] + (4, 16, -1))``."""
        x = Operand(0)
        sizes = [lit(v, ("shape", j)) for j, v in enumerate(p.shape)]
        if p.keep == 0:
            return method(x, "reshape", *sizes)
        if p.keep == 1:
            return method(x, "reshape", Index(Attr(x, "shape"), (lit(0),)), *sizes)
        lead = Index(Attr(x, "shape"), (SliceExpr(None, P(p, "keep")),))
        return method(x, "reshape", binop("+", lead, Tuple(tuple(sizes))))

    @classmethod
    def label(cls, p):
        return "reshape " + "x".join(map(str, p.shape))


# -- axes --------------------------------------------------------------------------------------------------------

@register
class Permute(_ShapeOp):
    """Reorder the dims: 'dims' lists, for each output dim, the input dim it comes from."""

    name = "permute"
    shape_rule = "dims reordered: out dim k is input dim dims[k]"
    torch_ref = "torch.Tensor.permute"

    class Params(Params):
        dims: list[int] = Field(min_length=1, description="a permutation of the input dims, e.g. [0, 2, 1]")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        if len(p.dims) != x.rank:
            raise OpError(f"dims {p.dims} has {len(p.dims)} entries, but the input {x} has {x.rank} dims",
                          f"list every dim once, e.g. {list(reversed(range(x.rank)))}", param="dims")
        ds = [_axis(d, x.rank, x, "dims") for d in p.dims]
        if sorted(ds) != list(range(x.rank)):
            raise OpError(f"dims {p.dims} is not a permutation of 0..{x.rank - 1} (input {x})",
                          "list every dim exactly once", param="dims")
        return [x.with_shape(tuple(x.shape[d] for d in ds))]

    cases = [({"dims": [0, 2, 1]}, [(N, 64, T)], [(N, T, 64)]),
             ({"dims": [0, 2, 3, 1]}, [(N, C, H, W)], [(N, H, W, C)]),
             ({"dims": [0, -1, 1]}, [(N, 64, T)], [(N, T, 64)])]

    @classmethod
    def forward(cls, ins, p):
        return method(Operand(0), "permute", *[lit(d, ("dims", j)) for j, d in enumerate(p.dims)])

    @classmethod
    def label(cls, p):
        return "permute " + ",".join(map(str, p.dims))


@register
class Transpose(_ShapeOp):
    """Swap two dims."""

    name = "transpose"
    shape_rule = "dims dim0 and dim1 swapped"
    torch_ref = "torch.Tensor.transpose"

    class Params(Params):
        dim0: int = Field(description="one dim")
        dim1: int = Field(description="the dim to swap it with")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        a = _axis(p.dim0, x.rank, x, "dim0")
        b = _axis(p.dim1, x.rank, x, "dim1")
        s = list(x.shape)
        s[a], s[b] = s[b], s[a]
        return [x.with_shape(s)]

    cases = [({"dim0": 1, "dim1": 2}, [(N, 64, T)], [(N, T, 64)]),
             ({"dim0": -1, "dim1": -2}, [(N, 4, T, 16)], [(N, 4, 16, T)])]

    @classmethod
    def forward(cls, ins, p):
        return method(Operand(0), "transpose", P(p, "dim0"), P(p, "dim1"))

    @classmethod
    def label(cls, p):
        return f"transpose {p.dim0},{p.dim1}"


@register
class Squeeze(_ShapeOp):
    """Remove a dim of size 1."""

    name = "squeeze"
    shape_rule = "dim (of size 1) removed"
    torch_ref = "torch.Tensor.squeeze"

    class Params(Params):
        dim: int = Field(description="the size-1 dim to remove")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        d = _axis(p.dim, x.rank, x, "dim")
        size = x.shape[d]
        if is_sym(size):
            raise OpError(f"dim {d} of {x} is {size}, which depends on the input size, not 1",
                          ["fix the symbol to 1 in 'inputs', or reduce the dim to 1 first (e.g. 'mean' with "
                           "keepdim, 'adaptive_avg_pool2d' with out 1)"], param="dim")
        if size != 1:
            raise OpError(f"dim {d} of {x} has size {size}, not 1",
                          "torch would silently leave it; pick the size-1 dim, or use 'flatten'/'reshape'",
                          param="dim")
        return [x.with_shape(x.shape[:d] + x.shape[d + 1:])]

    cases = [({"dim": -1}, [(N, 64, 1)], [(N, 64)]), ({"dim": 1}, [(N, 1, T)], [(N, T)])]

    @classmethod
    def forward(cls, ins, p):
        return method(Operand(0), "squeeze", P(p, "dim"))

    @classmethod
    def label(cls, p):
        return f"squeeze {p.dim}"


@register
class Select(_ShapeOp):
    """Pick one index along a dim, removing it (the last step of a sequence: dim 1, index -1)."""

    name = "select"
    shape_rule = "dim removed: the slice at index"
    torch_ref = "torch.Tensor.select"

    class Params(Params):
        dim: int = Field(description="the dim to index")
        index: int = Field(description="the position along it; negative counts from the end")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        d = _axis(p.dim, x.rank, x, "dim")
        size = x.shape[d]
        if is_sym(size):
            if p.index >= 0:
                ctx.requirements.append(Requirement(f"{size} > {p.index}", None, None, ctx.node))
        elif not -size <= p.index < size:
            raise OpError(f"index {p.index} is out of range for dim {d} of {x} (size {size})",
                          f"valid values: {-size}..{size - 1}", param="index")
        return [x.with_shape(x.shape[:d] + x.shape[d + 1:])]

    cases = [({"dim": 1, "index": -1}, [(N, T, 64)], [(N, 64)]), ({"dim": 1, "index": 0}, [(2, 5, 3)], [(2, 3)]),
             ({"dim": -1, "index": 2}, [(N, 5, 3)], [(N, 5)]), ({"dim": 0, "index": 3}, [(4,)], [()])]

    @classmethod
    def forward(cls, ins, p):
        return method(Operand(0), "select", P(p, "dim"), P(p, "index"))

    @classmethod
    def label(cls, p):
        return f"select {p.dim}[{p.index}]"


@register
class Unsqueeze(_ShapeOp):
    """Insert a dim of size 1 at 'dim'."""

    name = "unsqueeze"
    shape_rule = "a dim of size 1 inserted at dim"
    torch_ref = "torch.Tensor.unsqueeze"

    class Params(Params):
        dim: int = Field(description="where the new size-1 dim goes in the output")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        d = _axis(p.dim, x.rank, x, "dim", extra=1)
        return [x.with_shape(x.shape[:d] + (1,) + x.shape[d:])]

    cases = [({"dim": 1}, [(N, T)], [(N, 1, T)]), ({"dim": -1}, [(N, T)], [(N, T, 1)]), ({"dim": 0}, [(T,)], [(1, T)])]

    @classmethod
    def forward(cls, ins, p):
        return method(Operand(0), "unsqueeze", P(p, "dim"))

    @classmethod
    def label(cls, p):
        return f"unsqueeze {p.dim}"


# -- slicing and splitting ---------------------------------------------------------------------------------------

class SliceParams(Params):
    dim: int = Field(1, description="the dim to slice")
    start: int = Field(0, description="first index (negative: from the end)")
    end: Optional[int] = Field(None, description="index after the last (negative: from the end; null: to the end)")
    step: int = Field(1, ge=1, description="take every step-th element")


def _index(p):
    """The subscript selecting start:end:step along dim: ``x[:, 1:]``, ``x[..., :-1]``."""
    sl = SliceExpr(None if p.start == 0 else P(p, "start"), None if p.end is None else P(p, "end"),
                   None if p.step == 1 else P(p, "step"))
    if p.dim >= 0:
        return (SliceExpr(),) * p.dim + (sl,)
    return (Raw("..."), sl) + (SliceExpr(),) * (-p.dim - 1)


def _index_src(dim: int, sl: str) -> str:
    """Python subscript selecting ``sl`` along ``dim``: '[:, 1:]', '[..., :-1]'."""
    if dim >= 0:
        return "[" + ", ".join([":"] * dim + [sl]) + "]"
    return "[" + ", ".join(["..."] + [sl] + [":"] * (-dim - 1)) + "]"


@register
class Slice(_ShapeOp):
    """Take start:end:step along one dim (Python semantics, negative indices count from the end)."""

    name = "slice"
    shape_rule = "dim becomes len(range(start, end, step)) of its size; the others stay"
    torch_ref = "x[..., start:end:step]"
    Params = SliceParams

    @classmethod
    def _text(cls, p) -> str:
        s = f"{p.start or ''}:{'' if p.end is None else p.end}"
        return s + (f":{p.step}" if p.step != 1 else "")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        d = _axis(p.dim, x.rank, x, "dim")
        size = x.shape[d]
        where = f"slice {cls._text(p)} of dim {d} of {x}"
        if not is_sym(size):
            n = len(range(size)[p.start:p.end:p.step])
        else:
            if p.start < 0 and p.end is not None and p.end >= 0:
                raise OpError(f"{where}: a negative start with a non-negative end gives a length that depends on "
                              f"{size} in a way netspec does not follow",
                              "use a non-negative start (or negative start and end), or fix the symbol in 'inputs'",
                              param="start")
            lo = p.start if p.start >= 0 else size + p.start
            hi = size if p.end is None else (p.end if p.end >= 0 else size + p.end)
            n = ceildiv(norm(hi - lo), p.step, ctx.sym)
            need = max(p.end if p.end is not None and p.end >= 0 else 0, -p.start if p.start < 0 else 0)
            if need > 1 and isinstance(n, int) and n >= 1:
                _require(ctx, f"{size} >= {need}")      # Python would clamp the slice on a smaller input
        if isinstance(n, int) and n < 1:
            raise OpError(f"{where} is empty", "check start and end (end is exclusive)", param="end")
        return [x.with_shape(x.shape[:d] + (n,) + x.shape[d + 1:])]

    cases = [({"end": -1}, [(N, T)], [(N, T - 1)]), ({"start": 1}, [(N, T, 64)], [(N, T - 1, 64)]),
             ({"start": 0, "end": 1}, [(N, T, 64)], [(N, 1, 64)]),
             ({"dim": -1, "start": 2, "end": 10, "step": 2}, [(N, 64)], [(N, 4)]),
             ({"dim": -1, "start": 1, "step": 2}, [(N, C, H, W)], [(N, C, H, "W//2")]),
             ({"dim": 2, "step": 2}, [(N, C, H, W)], [(N, C, "ceil(H/2)", W)]),
             ({"start": -3}, [(N, T)], [(N, 3)]), ({"start": -3, "end": -1}, [(N, T)], [(N, 2)]),
             ({"start": -3, "end": 100}, [(N, 10)], [(N, 3)]), ({"dim": -2, "start": 1, "end": -1, "step": 3},
                                                                [(N, 10, 4)], [(N, 3, 4)])]

    @classmethod
    def forward(cls, ins, p):
        return Index(Operand(0), _index(p))

    @classmethod
    def label(cls, p):
        return "slice " + _index_src(p.dim, cls._text(p))


class SplitParams(Params):
    dim: int = Field(1, description="the dim to split")
    sizes: Optional[list[int]] = Field(None, description="size of each piece; one may be -1 (the rest)")
    chunks: Optional[int] = Field(None, ge=1, le=MAX_PIECES, description="number of equal pieces (instead of sizes)")

    @model_validator(mode="after")
    def _check(self):
        if (self.sizes is None) == (self.chunks is None):
            raise ValueError("give either 'sizes' (a list) or 'chunks' (a number of equal pieces)")
        if self.sizes is not None:
            if not 1 <= len(self.sizes) <= MAX_PIECES:
                raise ValueError(f"sizes needs 1 to {MAX_PIECES} entries, got {len(self.sizes)}")
            if any(v < 1 and v != -1 for v in self.sizes):
                raise ValueError(f"sizes must be positive (or -1 for the rest), got {self.sizes}")
            if self.sizes.count(-1) > 1:
                raise ValueError(f"only one entry of sizes may be -1, got {self.sizes}")
        return self


@register
class Split(_ShapeOp):
    """Cut a tensor into pieces along 'dim' (outputs out0, out1, ...): given sizes, or equal chunks."""

    name = "split"
    shape_rule = "outputs out0, out1, ...: dim cut into sizes (one -1 takes the rest) or equal chunks"
    torch_ref = "torch.split"
    Params = SplitParams
    outputs = PIECES

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        d = _axis(p.dim, x.rank, x, "dim")
        size = x.shape[d]
        if p.chunks is not None:
            q = _split_even(size, p.chunks, ctx, x, d, "split", "chunks")
            sizes = [q] * p.chunks
        else:
            fixed = sum(v for v in p.sizes if v != -1)
            if -1 in p.sizes:
                rest = norm(size - fixed)
                if isinstance(rest, int) and rest < 1:
                    raise OpError(f"the sizes {p.sizes} leave nothing for -1: dim {d} of {x} is {size}",
                                  f"the fixed sizes must add up to less than {size}", param="sizes")
                sizes = [rest if v == -1 else v for v in p.sizes]
            else:
                same_dim(size, fixed, ctx, f"the sizes {p.sizes} must add up to dim {d} of {x}: {size} vs {fixed}",
                         f"make the sizes add up to {size}, or write -1 for the rest")
                sizes = list(p.sizes)
        return [x.with_shape(x.shape[:d] + (s,) + x.shape[d + 1:]) for s in sizes]

    cases = [({"sizes": [1, -1]}, [(N, T, 64)], [(N, 1, 64), (N, T - 1, 64)]),
             ({"sizes": [16, 16, 32]}, [(N, 64, H, W)], [(N, 16, H, W), (N, 16, H, W), (N, 32, H, W)]),
             ({"sizes": [64, 64, 64], "dim": -1}, [(N, T, 192)], [(N, T, 64)] * 3),
             ({"chunks": 2}, [(N, 64, H, W)], [(N, 32, H, W)] * 2),
             ({"chunks": 2, "dim": 2}, [(N, 64, 2 * H, W)], [(N, 64, H, W)] * 2),
             ({"sizes": [-1]}, [(N, T)], [(N, T)])]

    @classmethod
    def forward(cls, ins, p):
        """``torch.chunk(x, 2, dim=1)``, or ``torch.split(x, [1, x.shape[1] - 1], dim=1)`` (-1: the rest)."""
        x = Operand(0)
        if p.chunks is not None:
            return call("torch.chunk", x, P(p, "chunks"), dim=P(p, "dim"))
        fixed = sum(v for v in p.sizes if v != -1)
        rest = Index(Attr(x, "shape"), (P(p, "dim"),))
        if fixed:
            rest = binop("-", rest, lit(fixed))
        sizes = [rest if v == -1 else lit(v, ("sizes", j)) for j, v in enumerate(p.sizes)]
        return call("torch.split", x, List(tuple(sizes)), dim=P(p, "dim"))

    @classmethod
    def label(cls, p):
        if p.chunks is not None:
            return f"split /{p.chunks}"
        return "split " + ",".join(map(str, p.sizes))


@register
class Chunk(_ShapeOp):
    """Cut a tensor into 'chunks' equal pieces along 'dim' (outputs out0, out1, ...)."""

    name = "chunk"
    shape_rule = "outputs out0, out1, ...: dim cut into chunks parts (the last may be smaller)"
    torch_ref = "torch.chunk"
    outputs = PIECES

    class Params(Params):
        chunks: int = Field(ge=1, le=MAX_PIECES, description="number of pieces; the dim must divide evenly")
        dim: int = Field(1, description="the dim to cut")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        d = _axis(p.dim, x.rank, x, "dim")
        q = _split_even(x.shape[d], p.chunks, ctx, x, d, "chunk", "chunks")
        return [x.with_shape(x.shape[:d] + (q,) + x.shape[d + 1:])] * p.chunks

    cases = [({"chunks": 3, "dim": -1}, [(N, T, 768)], [(N, T, 256)] * 3),
             ({"chunks": 2}, [(N, 2 * C, H, W)], [(N, C, H, W)] * 2), ({"chunks": 1}, [(N, 4)], [(N, 4)])]

    @classmethod
    def forward(cls, ins, p):
        return call("torch.chunk", Operand(0), P(p, "chunks"), dim=P(p, "dim"))

    @classmethod
    def label(cls, p):
        return f"chunk {p.chunks}"


# -- padding and resampling --------------------------------------------------------------------------------------

class PadParams(Params):
    padding: list[int] = Field(description="pairs (before, after) per dim, last dim first: [left, right, top, bottom]")
    mode: Literal["constant", "reflect", "replicate", "circular"] = Field("constant", description="how to fill")
    value: Union[float, Literal["-inf", "inf"]] = Field(
        0.0, description="fill value (mode 'constant'); '-inf' before a max pool (TF 'SAME' pooling)")

    @field_validator("value")
    @classmethod
    def _number(cls, v):
        return float(v)      # '-inf' and 'inf' are the only values that are not finite numbers a spec can write

    @model_validator(mode="after")
    def _check(self):
        if not self.padding or len(self.padding) % 2:
            raise ValueError(f"padding needs pairs of values (before, after), last dim first; got {self.padding}")
        if self.value != 0 and self.mode != "constant":
            raise ValueError(f"value is only used by mode 'constant', not '{self.mode}'")
        return self


@register
class Pad(_ShapeOp):
    """Pad the last dims (torch.nn.functional.pad order: last dim first); negative values crop."""

    @classmethod
    def keeps(cls, p, rank):
        return max(0, rank - len(p.padding) // 2)

    name = "pad"
    shape_rule = "each padded dim grows by its two paddings (pairs from the last dim backwards, as F.pad)"
    torch_ref = "torch.nn.functional.pad"
    Params = PadParams

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        npad = len(p.padding) // 2
        if npad > x.rank:
            raise OpError(f"{len(p.padding)} padding values pad {npad} dims, but the input {x} has only {x.rank}",
                          "give two values (before, after) per padded dim, last dim first", param="padding")
        if p.mode != "constant" and (npad > 3 or x.rank not in (npad + 1, npad + 2)):
            raise OpError(f"pad mode '{p.mode}' pads the last 1, 2 or 3 dims of an input with one or two more "
                          f"dims; {npad} dims of the rank-{x.rank} input {x} is not supported",
                          "for an (N, C, H, W) input give 4 values: [left, right, top, bottom]", param="padding")
        shape = list(x.shape)
        for i in range(npad):
            ax = x.rank - 1 - i
            before, after = p.padding[2 * i], p.padding[2 * i + 1]
            size = shape[ax]
            limit = {"reflect": 1, "circular": 0}.get(p.mode)   # pad < size, pad <= size
            big = max(before, after)
            if limit is not None and big > 0:
                if not is_sym(size) and big > size - limit:
                    raise OpError(f"mode '{p.mode}' needs padding {'<' if limit else '<='} the size, but dim "
                                  f"{ax} of {x} is {size} and its padding {big}",
                                  "pad less, or use mode 'replicate' or 'constant'", param="padding")
                if is_sym(size) and big + limit > 1:
                    _require(ctx, f"{size} >= {big + limit}")
            new = norm(size + before + after)
            if isinstance(new, int) and new < 1:
                raise OpError(f"the padding ({before}, {after}) leaves nothing of dim {ax} of {x}",
                              "negative padding crops; crop less", param="padding")
            shape[ax] = new
        return [x.with_shape(shape)]

    cases = [({"padding": [1, 1, 2, 2]}, [(N, 3, H, W)], [(N, 3, H + 4, W + 2)]),
             ({"padding": [1, 2]}, [(N, 3, 32)], [(N, 3, 35)]),
             ({"padding": [0, 0, 0, 0, 1, 1]}, [(N, 3, H, W)], [(N, 5, H, W)]),
             ({"padding": [-1, -1]}, [(N, 3, T)], [(N, 3, T - 2)]),
             ({"padding": [3, 3, 3, 3], "mode": "reflect"}, [(N, 3, 24, 24)], [(N, 3, 30, 30)]),
             ({"padding": [1, 1], "mode": "replicate"}, [(N, 3, T)], [(N, 3, T + 2)]),
             ({"padding": [1, 1, 1, 1, 1, 1], "mode": "circular"}, [(N, 2, D, H, W)], [(N, 2, D + 2, H + 2, W + 2)]),
             ({"padding": [0, 1, 0, 1], "value": float("-inf")}, [(N, 3, H, W)], [(N, 3, H + 1, W + 1)]),
             ({"padding": [1, 1, 0, 1], "value": "-inf"}, [(N, 3, H, W)], [(N, 3, H + 1, W + 2)]),
             ({"padding": [1, 1], "value": 0.5}, [(N, T)], [(N, T + 2)])]

    @classmethod
    def forward(cls, ins, p):
        kw = {}
        if p.mode != "constant":
            kw["mode"] = P(p, "mode")
        elif p.value != 0:
            kw["value"] = P(p, "value")         # -inf before a max pool: the printer writes -float("inf")
        return call("F.pad", Operand(0), P(p, "padding"), **kw)

    @classmethod
    def label(cls, p):
        return "pad" if p.mode == "constant" else f"pad {p.mode}"


UpMode = Literal["nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact"]
_MODE_RANK = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


class UpsampleParams(Params):
    scale: Union[float, list[float], None] = Field(None, description="size multiplier: one, or one per spatial dim")
    size: Union[int, list[int], None] = Field(None, description="output spatial size (instead of scale)")
    mode: UpMode = Field("nearest", description="interpolation")
    align_corners: Optional[bool] = Field(None, description="linear modes only: align the corner pixels")

    @model_validator(mode="after")
    def _check(self):
        if self.scale is not None and self.size is not None:
            raise ValueError("give either 'scale' or 'size' (or a 'like' input), not both")
        for name in ("scale", "size"):
            v = getattr(self, name)
            vals = v if isinstance(v, list) else [v]
            if v is not None and (not vals or not all(s > 0 and math.isfinite(s) for s in vals)):
                raise ValueError(f"{name} must be positive, got {v}")
        if self.align_corners is not None and self.mode not in _MODE_RANK:
            raise ValueError(f"align_corners only applies to the modes linear, bilinear, bicubic and trilinear, "
                             f"not '{self.mode}'")
        return self


@register
class Upsample(_ShapeOp):
    """Resize the spatial dims by a scale, to a size, or to the size of a 'like' input (U-Net skips of odd size)."""

    @classmethod
    def keeps(cls, p, rank):
        return min(rank, 2)

    name = "upsample"
    shape_rule = "[N, C, *S] -> [N, C, *S*scale] or [N, C, *size]"
    aliases = ("interpolate",)
    torch_ref = "torch.nn.Upsample"
    Params = UpsampleParams
    inputs = (In("x"), In("like", optional=True))

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        like = ins[1] if len(ins) > 1 else None
        need_float(x, "upsample")
        if like is None and p.scale is None and p.size is None:
            raise OpError("upsample needs 'scale', 'size' or a 'like' input",
                          "scale: 2 doubles H and W; from: {x: up, like: skip} resizes to skip's H and W")
        if like is not None and (p.scale is not None or p.size is not None):
            raise OpError("upsample takes its size from the 'like' input, so 'scale' and 'size' must be left out",
                          param="scale" if p.scale is not None else "size")
        want = _MODE_RANK.get(p.mode)
        if want is not None and x.rank != want:
            raise OpError(f"upsample mode '{p.mode}' needs a rank-{want} input, got {x}",
                          "linear: (N, C, L); bilinear/bicubic: (N, C, H, W); trilinear: (N, C, D, H, W); "
                          "nearest and area take any of them", param="mode")
        if x.rank not in (3, 4, 5):
            raise OpError(f"upsample needs an (N, C, L), (N, C, H, W) or (N, C, D, H, W) input, got {x}")
        sp = x.rank - 2
        out = list(x.shape[:2])
        if like is not None:
            if like.rank != x.rank:
                raise OpError(f"upsample: 'like' {like} must have the rank of the input {x}",
                              "its dims after the first two give the output's spatial size")
            return [x.with_shape(out + list(like.shape[2:]))]
        if p.size is not None:
            vals = p.size if isinstance(p.size, list) else [p.size] * sp
            if len(vals) != sp:
                raise OpError(f"size {p.size} has {len(vals)} values for {sp} spatial dims of {x}",
                              "give one value, or one per spatial dim", param="size")
            return [x.with_shape(out + list(vals))]
        scales = p.scale if isinstance(p.scale, list) else [p.scale] * sp
        if len(scales) != sp:
            raise OpError(f"scale {p.scale} has {len(scales)} values for {sp} spatial dims of {x}",
                          "give one value, or one per spatial dim", param="scale")
        for size, f in zip(x.shape[2:], scales):
            if float(f).is_integer():
                o = size * int(f)
            elif not is_sym(size):
                o = math.floor(size * f)       # as torch: floor(float(size * scale))
            else:
                fr = Fraction(f)               # the float's exact value: 0.5, 1.5, 0.75 are exact
                if fr.denominator > 64:
                    raise OpError(f"scale {f} of the size {size} (input {x}) gives floor({size}*{f}), "
                                  "which netspec cannot follow for an unknown size",
                                  "use an integer scale or one like 0.5, 1.5, 0.75; give 'size'; or fix the symbol "
                                  "in 'inputs'", param="scale")
                o = floordiv(size * fr.numerator, fr.denominator, ctx.sym)
            if isinstance(o, int) and o < 1:
                raise OpError(f"scale {f} shrinks the size {size} of {x} to {o}",
                              "use a larger scale or a larger input", param="scale")
            out.append(o)
        return [x.with_shape(out)]

    cases = [({"scale": 2}, [(N, 64, H, W)], [(N, 64, 2 * H, 2 * W)]),
             ({"scale": 2, "mode": "bilinear", "align_corners": False}, [(N, 64, H, W)], [(N, 64, 2 * H, 2 * W)]),
             ({"scale": [1, 2]}, [(N, 64, H, W)], [(N, 64, H, 2 * W)]),
             ({"scale": 0.5}, [(N, 64, H, W)], [(N, 64, "H//2", "W//2")]),
             ({"scale": 1.5}, [(N, 64, 7, 9)], [(N, 64, 10, 13)]),
             ({"size": [4, 6]}, [(N, 8, H, W)], [(N, 8, 4, 6)]),
             ({"size": 5, "mode": "linear", "align_corners": True}, [(N, 8, T)], [(N, 8, 5)]),
             ({"scale": 2, "mode": "trilinear"}, [(N, 2, D, H, W)], [(N, 2, 2 * D, 2 * H, 2 * W)]),
             ({}, [(N, 64, H, W), (N, 32, 2 * H + 1, 2 * W + 1)], [(N, 64, 2 * H + 1, 2 * W + 1)]),
             ({"mode": "bilinear", "align_corners": True}, [(N, 8, 3, 5), (N, 4, H, W)], [(N, 8, H, W)])]

    @classmethod
    def constructor(cls, ins, p):
        if len(ins) > 1 and ins[1] is not None:
            return None
        kw = {"size": P(p, "size")} if p.size is not None else {"scale_factor": P(p, "scale")}
        kw["mode"] = P(p, "mode")
        if p.align_corners is not None:
            kw["align_corners"] = P(p, "align_corners")
        return call("nn.Upsample", **kw)

    @classmethod
    def forward(cls, ins, p):
        """``self.up(x)``, or with a 'like' input ``F.interpolate(x, size=skip.shape[2:], mode='nearest')``."""
        if len(ins) < 2 or ins[1] is None:
            return module_call()
        kw = {"size": Index(Attr(Operand(1), "shape"), (SliceExpr(lit(2), None),)), "mode": P(p, "mode")}
        if p.align_corners is not None:
            kw["align_corners"] = P(p, "align_corners")
        return call("F.interpolate", Operand(0), **kw)

    @classmethod
    def label(cls, p):
        if p.scale is None and p.size is None:
            return "upsample like" + ("" if p.mode == "nearest" else f" {p.mode}")
        if p.size is not None:
            txt = "to " + ("x".join(map(str, p.size)) if isinstance(p.size, list) else f"{p.size}")
        elif isinstance(p.scale, list) and len(set(p.scale)) > 1:
            txt = "x" + ",".join(_fmt_num(v) for v in p.scale)
        else:
            txt = "x" + _fmt_num(p.scale[0] if isinstance(p.scale, list) else p.scale)
        return f"upsample {txt}" + ("" if p.mode == "nearest" else f" {p.mode}")


class FactorParams(Params):
    factor: int = Field(ge=1, description="upscale factor r")


def _chw(x: TensorType, op: str):
    if x.rank < 3:
        raise OpError(f"{op} needs an input with (C, H, W) as its last dims, got {x}")
    return x.shape[-3], x.shape[-2], x.shape[-1]


@register
class PixelShuffle(_ShapeOp):
    """Move channels into space: (N, C*r*r, H, W) -> (N, C, H*r, W*r) (sub-pixel convolution)."""

    name = "pixel_shuffle"
    shape_rule = "[N, C*r*r, H, W] -> [N, C, H*r, W*r] (r = factor)"
    torch_ref = "torch.nn.PixelShuffle"
    Params = FactorParams

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        c, h, w = _chw(x, cls.name)
        r = p.factor
        q = exact_div(c, r * r, ctx.sym)
        if q is None:
            msg = f"the {c} channels of {x} are not divisible by factor**2 ({r * r})"
            if not is_sym(c):
                raise OpError(msg, f"make the previous layer's 'out' a multiple of {r * r}", param="factor")
            q = floordiv(c, r * r, ctx.sym)
            same_dim(c, q * r * r, ctx, msg)
        return [x.with_shape(x.shape[:-3] + (q, h * r, w * r))]

    cases = [({"factor": 2}, [(N, 64, H, W)], [(N, 16, 2 * H, 2 * W)]),
             ({"factor": 3}, [(N, 4 * 9, 5, 5)], [(N, 4, 15, 15)]),
             ({"factor": 2}, [(N, 4 * C, H, W)], [(N, C, 2 * H, 2 * W)])]

    @classmethod
    def constructor(cls, ins, p):
        return call("nn.PixelShuffle", P(p, "factor"))

    @classmethod
    def label(cls, p):
        return f"pixel shuffle x{p.factor}"


@register
class PixelUnshuffle(_ShapeOp):
    """Move space into channels: (N, C, H*r, W*r) -> (N, C*r*r, H, W)."""

    name = "pixel_unshuffle"
    shape_rule = "[N, C, H*r, W*r] -> [N, C*r*r, H, W] (r = factor)"
    torch_ref = "torch.nn.PixelUnshuffle"
    Params = FactorParams

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        c, h, w = _chw(x, cls.name)
        r = p.factor
        hw = [_split_even(s, r, ctx, x, x.rank - 2 + j, cls.name, "factor") for j, s in enumerate((h, w))]
        return [x.with_shape(x.shape[:-3] + (c * r * r, hw[0], hw[1]))]

    cases = [({"factor": 2}, [(N, 16, 2 * H, 2 * W)], [(N, 64, H, W)]),
             ({"factor": 2}, [(N, 3, 8, 6)], [(N, 12, 4, 3)])]

    @classmethod
    def constructor(cls, ins, p):
        return call("nn.PixelUnshuffle", P(p, "factor"))

    @classmethod
    def label(cls, p):
        return f"pixel unshuffle /{p.factor}"


@register
class ChannelShuffle(_ShapeOp):
    """Interleave the channels of 'groups' groups (ShuffleNet)."""

    @classmethod
    def keeps(cls, p, rank):
        return rank

    name = "channel_shuffle"
    shape_rule = "same shape as the input [N, C, *]; C divisible by groups"
    torch_ref = "torch.nn.ChannelShuffle"

    class Params(Params):
        groups: int = Field(ge=1, description="number of channel groups; the channels must divide evenly")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        if x.rank < 3:
            raise OpError(f"channel_shuffle needs an (N, C, ...) input with at least 3 dims, got {x}")
        _split_even(x.shape[1], p.groups, ctx, x, 1, cls.name, "groups")
        return [x]

    cases = [({"groups": 2}, [(N, 64, H, W)], [(N, 64, H, W)]), ({"groups": 3}, [(N, 3 * C, T)], [(N, 3 * C, T)])]

    @classmethod
    def constructor(cls, ins, p):
        return call("nn.ChannelShuffle", P(p, "groups"))

    @classmethod
    def label(cls, p):
        return f"shuffle g{p.groups}"


# -- identity, casts, reductions, scaling ------------------------------------------------------------------------

@register
class Identity(_ShapeOp):
    """Pass the input through unchanged (a placeholder, or a named tap point)."""

    @classmethod
    def keeps(cls, p, rank):
        return rank

    name = "identity"
    shape_rule = "same shape as the input"
    torch_ref = "torch.nn.Identity"

    cases = [({}, [(N, 64, H, W)], [(N, 64, H, W)]), ({}, [((N, T), "int64")], [((N, T), "int64")])]

    @classmethod
    def constructor(cls, ins, p):
        return call("nn.Identity")


@register
class ToDtype(_ShapeOp):
    """Convert the elements to another dtype."""

    @classmethod
    def keeps(cls, p, rank):
        return rank

    name = "to_dtype"
    shape_rule = "same shape as the input, in dtype"
    aliases = ("cast",)
    torch_ref = "torch.Tensor.to"

    class Params(Params):
        dtype: Literal["float32", "float16", "bfloat16", "float64", "int64"] = Field(description="the new dtype")

    @classmethod
    def infer(cls, ins, p, ctx):
        return [TensorType(ins[0].shape, p.dtype)]

    cases = [({"dtype": "float16"}, [(N, 64)], [((N, 64), "float16")]),
             ({"dtype": "int64"}, [(N, T)], [((N, T), "int64")]),
             ({"dtype": "float32"}, [((N, T), "int64")], [(N, T)]),
             ({"dtype": "bfloat16"}, [(N, 4)], [((N, 4), "bfloat16")])]

    @classmethod
    def forward(cls, ins, p):
        return method(Operand(0), "to", Name(f"torch.{p.dtype}"))

    @classmethod
    def label(cls, p):
        return f"to {p.dtype}"


class ReduceParams(Params):
    dim: Union[int, list[int]] = Field(description="the dim(s) to reduce")
    keepdim: bool = Field(False, description="keep reduced dims with size 1")

    @model_validator(mode="after")
    def _check(self):
        if isinstance(self.dim, list) and not self.dim:
            raise ValueError("dim needs at least one entry (torch would reduce every dim, the batch included)")
        return self


class _Reduce(_ShapeOp):
    Params = ReduceParams
    shape_rule = "dim removed (kept as size 1 with keepdim)"

    @classmethod
    def _dtype(cls, x: TensorType) -> str:
        return x.dtype

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        dims = p.dim if isinstance(p.dim, list) else [p.dim]
        ds = [_axis(d, x.rank, x, "dim") for d in dims]
        if len(set(ds)) != len(ds):
            raise OpError(f"dim {p.dim} names a dim of {x} twice", "list each dim once", param="dim")
        if p.keepdim:
            shape = tuple(1 if j in ds else s for j, s in enumerate(x.shape))
        else:
            shape = tuple(s for j, s in enumerate(x.shape) if j not in ds)
        return [TensorType(shape, cls._dtype(x))]

    cases = [({"dim": 1}, [(N, T, 64)], [(N, 64)]), ({"dim": [2, 3]}, [(N, C, H, W)], [(N, C)]),
             ({"dim": -1, "keepdim": True}, [(N, T, 64)], [(N, T, 1)])]

    @classmethod
    def forward(cls, ins, p):
        kw = {"dim": P(p, "dim")}
        if p.keepdim:
            kw["keepdim"] = P(p, "keepdim")
        return call(f"torch.{cls.name}", Operand(0), **kw)

    @classmethod
    def label(cls, p):
        dims = p.dim if isinstance(p.dim, list) else [p.dim]
        return f"{cls.name} dim {','.join(map(str, dims))}"


@register
class Mean(_Reduce):
    """Average over one or more dims (token pooling)."""

    name = "mean"
    aliases = ("reduce_mean",)
    torch_ref = "torch.mean"

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        return super().infer(ins, p, ctx)


@register
class Sum(_Reduce):
    """Sum over one or more dims (integer and bool inputs give int64, as in torch)."""

    name = "sum"
    aliases = ("reduce_sum",)
    torch_ref = "torch.sum"

    cases = _Reduce.cases + [({"dim": 1}, [((N, T), "bool")], [((N,), "int64")]),
                             ({"dim": [0, 1]}, [((N, T, 4), "int64")], [((4,), "int64")])]

    @classmethod
    def _dtype(cls, x):
        return x.dtype if x.is_float else "int64"


@register
class Scale(_ShapeOp):
    """Multiply by a constant: x * factor (e.g. 1/sqrt(d) in attention)."""

    @classmethod
    def keeps(cls, p, rank):
        return rank

    name = "scale"
    shape_rule = "same shape as the input, multiplied by factor"
    torch_ref = "x * factor"

    class Params(Params):
        factor: float = Field(allow_inf_nan=False, description="the constant")

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        return [ins[0]]

    cases = [({"factor": 0.125}, [(N, T, 64)], [(N, T, 64)]), ({"factor": -2.0}, [(N, 4)], [(N, 4)])]

    @classmethod
    def forward(cls, ins, p):
        return binop("*", Operand(0), P(p, "factor"))

    @classmethod
    def label(cls, p):
        return f"scale {_fmt_num(p.factor)}"
