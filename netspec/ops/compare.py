"""Comparisons and selection: eq, ne, lt, le, gt, ge (bool outputs, broadcasting), where and masked_fill. No weights.

A comparison takes two tensors, or one tensor and a constant ``value``; ``where`` picks from two tensors by a bool
condition and ``masked_fill`` writes a constant where a bool mask is true (an attention mask's ``-inf``).
"""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from .base import OpError, Params, In, register, WeightlessOp
from .merge import broadcast
from ..codegen.ir import Operand, P, binop, call, method
from ..shapes import Dim, TensorType

N, T, S, H, W = (Dim.sym(s) for s in "NTSHW")


class _NoWeights(WeightlessOp):
    family = "compare"


class CompareParams(Params):
    value: Optional[float] = Field(None, description="compare with this constant instead of a second input")


class _Compare(_NoWeights):
    shape_rule = "a, b (or a and value) -> broadcast(a, b) bool; sizes broadcast as in torch (equal or 1)"
    inputs = (In("a"), In("b", optional=True))
    Params = CompareParams
    symbol = "=="
    backward_needs_output = False

    @classmethod
    def infer(cls, ins, p, ctx):
        a = ins[0]
        b = ins[1] if len(ins) > 1 else None
        if (b is None) == (p.value is None):
            raise OpError(f"{cls.name} needs a second input or a 'value', and not both",
                          f"'from: [a, b]' compares two tensors; 'value: 0' compares with a constant",
                          param="value" if p.value is not None else None)
        if b is None:
            return [TensorType(a.shape, "bool")]
        if (a.dtype == "bool") != (b.dtype == "bool"):
            raise OpError(f"{cls.name} of a bool and a {b.dtype if a.dtype == 'bool' else a.dtype} tensor ({a} vs {b})",
                          "convert one side with 'to_dtype' first")
        return [TensorType(broadcast(a, b, ctx, cls.name), "bool")]

    cases = [({}, [(N, T), (N, T)], [((N, T), "bool")]),
             ({}, [(N, 1, T), (T, 1)], [((N, T, T), "bool")]),
             ({"value": 0}, [((N, T), "int64")], [((N, T), "bool")]),
             ({}, [((T, 1), "int64"), ((T,), "int64")], [((T, T), "bool")]),
             ({"value": 0.5}, [(N, 4)], [((N, 4), "bool")])]

    @classmethod
    def forward(cls, ins, p):
        """``a < b`` or ``a < 0.5``."""
        other = P(p, "value") if p.value is not None else Operand(1)
        return binop(cls.symbol, Operand(0), other)

    @classmethod
    def label(cls, p):
        return cls.symbol if p.value is None else f"{cls.symbol} {p.value:g}"


@register
class Eq(_Compare):
    """a == b elementwise (broadcasting), or a == value: a bool tensor."""
    name = "eq"
    symbol = "=="
    torch_ref = "torch.eq"


@register
class Ne(_Compare):
    """a != b elementwise (broadcasting), or a != value: a bool tensor."""
    name = "ne"
    symbol = "!="
    torch_ref = "torch.ne"


@register
class Lt(_Compare):
    """a < b elementwise (broadcasting), or a < value: a bool tensor."""
    name = "lt"
    symbol = "<"
    torch_ref = "torch.lt"


@register
class Le(_Compare):
    """a <= b elementwise (broadcasting), or a <= value: a bool tensor (a causal mask from two position ranges)."""
    name = "le"
    symbol = "<="
    torch_ref = "torch.le"


@register
class Gt(_Compare):
    """a > b elementwise (broadcasting), or a > value: a bool tensor."""
    name = "gt"
    symbol = ">"
    torch_ref = "torch.gt"


@register
class Ge(_Compare):
    """a >= b elementwise (broadcasting), or a >= value: a bool tensor."""
    name = "ge"
    symbol = ">="
    torch_ref = "torch.ge"


def _need_bool(t: TensorType, op: str, what: str) -> None:
    if t.dtype != "bool":
        raise OpError(f"{op}: the {what} must be a bool tensor, got {t.dtype} {t}",
                      "make it with a comparison (eq, lt, ...), or a bool 'buffer'")


@register
class Where(_NoWeights):
    """Pick a where cond is true and b elsewhere (torch.where; the three broadcast together)."""
    shape_rule = "cond, a, b -> broadcast(cond, a, b) in the dtype of a and b"

    name = "where"
    inputs = (In("cond"), In("a"), In("b"))
    torch_ref = "torch.where"
    cases = [({}, [((N, T), "bool"), (N, T), (N, T)], [(N, T)]),
             ({}, [((T, T), "bool"), (N, 1, T, T), (1,)], [(N, 1, T, T)]),
             ({}, [((N, 4), "bool"), ((N, 4), "int64"), ((4,), "int64")], [((N, 4), "int64")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        c, a, b = ins
        _need_bool(c, cls.name, "condition")
        if a.dtype != b.dtype:
            raise OpError(f"where: a and b have different dtypes ({a.dtype} and {b.dtype})",
                          "convert one side with 'to_dtype' first")
        ab = TensorType(broadcast(a, b, ctx, cls.name), a.dtype)
        return [TensorType(broadcast(c, ab, ctx, cls.name), a.dtype)]

    @classmethod
    def forward(cls, ins, p):
        return call("torch.where", Operand(0), Operand(1), Operand(2))

    @classmethod
    def label(cls, p):
        return "where"


class MaskedFillParams(Params):
    value: float = Field(description="the value written where the mask is true (-.inf in YAML for minus infinity)")


@register
class MaskedFill(_NoWeights):
    """Write 'value' where the bool mask is true (the mask broadcasts to the input): attention masks."""
    shape_rule = "x, mask -> x's shape; mask (bool) broadcasts to x"

    name = "masked_fill"
    inputs = (In("x"), In("mask"))
    Params = MaskedFillParams
    torch_ref = "torch.Tensor.masked_fill"
    backward_needs_output = False
    cases = [({"value": float("-inf")}, [(N, 4, T, T), ((T, T), "bool")], [(N, 4, T, T)]),
             ({"value": 0.0}, [(N, T, 8), ((N, T, 1), "bool")], [(N, T, 8)]),
             ({"value": -1}, [((N, T), "int64"), ((N, T), "bool")], [((N, T), "int64")])]

    @classmethod
    def keeps(cls, p, rank):
        return rank

    @classmethod
    def infer(cls, ins, p, ctx):
        x, m = ins
        _need_bool(m, cls.name, "mask")
        out = broadcast(x, m, ctx, cls.name)
        if len(out) != x.rank or any(o != s and str(o) != str(s) for o, s in zip(out, x.shape)):
            raise OpError(f"masked_fill: the mask {m} does not broadcast to the input {x}",
                          "the mask may have fewer dims, or 1 where the input has more; the output keeps the "
                          "input's shape")
        if not x.is_float and x.dtype != "bool" and not float(p.value).is_integer():
            raise OpError(f"masked_fill: value {p.value} does not fit the {x.dtype} input {x}",
                          "use a whole number, or convert the input with 'to_dtype'", param="value")
        return [x]

    @classmethod
    def forward(cls, ins, p):
        return method(Operand(0), "masked_fill", Operand(1), P(p, "value"))

    @classmethod
    def label(cls, p):
        return f"masked fill {p.value:g}"
