"""Indexing by tensors and rolling: gather, index_select (look rows of a table up by an integer index tensor) and
roll. No weights.
"""
from __future__ import annotations

from typing import Union

from pydantic import Field, model_validator

from .base import OpError, Params, In, register, same_dim, WeightlessOp
from ..codegen.ir import Attr, Operand, P, call, lit, method
from ..shapes import Dim, TensorType, norm

N, T, S, C, H, W, E = (Dim.sym(s) for s in "NTSCHWE")
INDEX_DTYPES = ("int64", "int32")


class _IndexOp(WeightlessOp):
    family = "index"


def _axis(d: int, x: TensorType, param: str = "dim") -> int:
    if not -x.rank <= d < x.rank:
        rng = f"{-x.rank}..{x.rank - 1}" if x.rank else "none"
        raise OpError(f"{param} {d} is out of range for the rank-{x.rank} input {x}", f"valid values: {rng}",
                      param=param)
    return d % x.rank


def _need_index(t: TensorType, op: str) -> None:
    if t.dtype not in INDEX_DTYPES:
        raise OpError(f"{op}: the index must be an int64 tensor, got {t.dtype} {t}",
                      "token ids and positions are int64 inputs; an 'arange' or an int64 'buffer' makes indices; "
                      "'to_dtype' converts others")


class IndexDimParams(Params):
    dim: int = Field(0, description="the dim of x that the index picks along (0: rows of a table)")


@register
class IndexSelect(_IndexOp):
    """Look up entries of x along 'dim' by an integer index of any shape: x (V, D), index (N, T) -> (N, T, D)."""
    shape_rule = "table [..., V, ...], index [I...] -> the table with dim replaced by the index's dims"

    name = "index_select"
    inputs = (In("x"), In("index"))
    Params = IndexDimParams
    torch_ref = "torch.index_select"
    cases = [({}, [(12, 8), ((N, T), "int64")], [(N, T, 8)]),
             ({"dim": 1}, [(N, 10, E), ((4,), "int64")], [(N, 4, E)]),
             ({"dim": -1}, [(T, 6), ((S,), "int64")], [(T, S)]),
             ({}, [((9, 3), "int64"), ((N,), "int64")], [((N, 3), "int64")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        x, idx = ins
        _need_index(idx, cls.name)
        if x.rank < 1:
            raise OpError(f"index_select needs an input with at least one dim, got {x}")
        d = _axis(p.dim, x)
        return [x.with_shape(x.shape[:d] + tuple(idx.shape) + x.shape[d + 1:])]

    @classmethod
    def forward(cls, ins, p):
        """``torch.index_select(x, 0, i)`` for a 1-d index; ``x.index_select(0, i.flatten()).unflatten(0, i.shape)``."""
        x, idx = ins
        d = _axis(p.dim, x)
        if idx.rank == 1:
            return call("torch.index_select", Operand(0), P(p, "dim"), Operand(1))
        if idx.rank == 0:
            return method(method(Operand(0), "index_select", P(p, "dim"), method(Operand(1), "reshape", 1)),
                          "squeeze", P(p, "dim"))
        flat = method(Operand(0), "index_select", P(p, "dim"), method(Operand(1), "flatten"))
        return method(flat, "unflatten", lit(d) if d != p.dim else P(p, "dim"), Attr(Operand(1), "shape"))

    @classmethod
    def label(cls, p):
        return f"index_select dim {p.dim}"


@register
class Gather(_IndexOp):
    """Pick x's values along 'dim' at an index of x's rank (torch.gather): out[i][j] = x[i][idx[i][j]]."""
    shape_rule = "x, index (same rank) -> index's shape; index sizes <= x's except along dim"

    name = "gather"
    inputs = (In("x"), In("index"))
    Params = IndexDimParams
    torch_ref = "torch.gather"
    cases = [({"dim": 1}, [(N, 10), ((N, 3), "int64")], [(N, 3)]),
             ({"dim": -1}, [(N, T, 8), ((N, T, 1), "int64")], [(N, T, 1)]),
             ({"dim": 0}, [(5, E), ((2, E), "int64")], [(2, E)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        x, idx = ins
        _need_index(idx, cls.name)
        if idx.rank != x.rank:
            raise OpError(f"gather: the index {idx} must have the rank of the input {x} ({x.rank})",
                          "to look rows of a table up by an index of any shape, use 'index_select'")
        d = _axis(p.dim, x)
        for j, (a, b) in enumerate(zip(idx.shape, x.shape)):
            if j == d:
                continue
            if isinstance(a, int) and isinstance(b, int):
                if a > b:
                    raise OpError(f"gather: the index {idx} is larger than the input {x} in dim {j} ({a} > {b})",
                                  "every dim but 'dim' of the index must be at most the input's")
            elif norm(a) != norm(b) and not (isinstance(a, int) and a == 1):
                same_dim(a, b, ctx, f"gather: the index {idx} and the input {x} differ in dim {j}",
                         "every dim but 'dim' of the index must be at most the input's")
        return [TensorType(tuple(idx.shape), x.dtype)]

    @classmethod
    def forward(cls, ins, p):
        return call("torch.gather", Operand(0), P(p, "dim"), Operand(1))

    @classmethod
    def label(cls, p):
        return f"gather dim {p.dim}"


class RollParams(Params):
    shifts: Union[int, list[int]] = Field(description="how far to shift: one, or one per entry of 'dims'")
    dims: Union[int, list[int], None] = Field(None, description="the dim(s) to roll (null: the flattened tensor)")

    @model_validator(mode="after")
    def _check(self):
        s = self.shifts if isinstance(self.shifts, list) else [self.shifts]
        d = self.dims if isinstance(self.dims, list) else ([] if self.dims is None else [self.dims])
        if not s:
            raise ValueError("shifts needs at least one entry")
        if self.dims is None and len(s) != 1:
            raise ValueError(f"without 'dims' there is one shift (of the flattened tensor), got {len(s)}")
        if self.dims is not None and len(s) != len(d):
            raise ValueError(f"shifts has {len(s)} entries and dims {len(d)}: give one shift per dim")
        return self


@register
class Roll(_IndexOp):
    """Shift the elements along dims, wrapping around (torch.roll): shifted windows, circular shifts."""
    shape_rule = "x -> x's shape (elements shifted along dims)"

    name = "roll"
    family = "shape"
    Params = RollParams
    torch_ref = "torch.roll"
    backward_needs_output = False
    cases = [({"shifts": 1, "dims": 1}, [(N, T, 8)], [(N, T, 8)]),
             ({"shifts": [-3, -3], "dims": [1, 2]}, [(N, H, W, C)], [(N, H, W, C)]),
             ({"shifts": 2}, [(N, 6)], [(N, 6)])]

    @classmethod
    def keeps(cls, p, rank):
        if p.dims is None:
            return 0
        dims = p.dims if isinstance(p.dims, list) else [p.dims]
        return min(d % rank for d in dims) if rank else 0

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        if p.dims is not None:
            dims = p.dims if isinstance(p.dims, list) else [p.dims]
            ds = [_axis(d, x, "dims") for d in dims]
            if len(set(ds)) != len(ds):
                raise OpError(f"dims {p.dims} names a dim of {x} twice", "list each dim once", param="dims")
        return [x]

    @classmethod
    def forward(cls, ins, p):
        if p.dims is None:
            return call("torch.roll", Operand(0), P(p, "shifts"))
        return call("torch.roll", Operand(0), P(p, "shifts"), P(p, "dims"))

    @classmethod
    def label(cls, p):
        return f"roll {p.shifts}" + ("" if p.dims is None else f" dim {p.dims}")
