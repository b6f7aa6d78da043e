"""Tensor types for shape inference: a shape of ints and symbolic Dims, plus a dtype.

The symbolic arithmetic itself lives in ``shapes_dim``; this module adds what the ops and passes share.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .shapes_dim import Dim, Requirement, SymCtx, compare, data_dim, norm, is_sym, mul_all  # noqa: F401  (re-exported)

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
INT_DTYPES = ("int64", "int32", "uint8", "int8", "int16")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)

@dataclass(frozen=True, slots=True)
class TensorType:
    """The static type of a tensor value: shape (ints and symbolic Dims) and dtype.

    ``high``, when known, bounds an integer tensor's values from above (exclusive): ``arange`` over a length T gives
    values below T, and an embedding table indexed by them requires ``T <= rows`` (check prints it). It takes no part
    in equality: two tensors of one shape and dtype have one type.
    """

    shape: tuple
    dtype: str = "float32"
    high: object = field(default=None, compare=False, hash=False)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        s = "[" + ", ".join(str(d) for d in self.shape) + "]"
        return s if self.dtype == "float32" else f"{s} {self.dtype}"

    def with_shape(self, shape: Sequence) -> "TensorType":
        return TensorType(tuple(norm(d) for d in shape), self.dtype)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def numel(self):
        return mul_all(self.shape)


@dataclass
class InferCtx:
    """What a shape rule may consult and report to: symbol assumptions and requirements found."""

    sym: SymCtx = field(default_factory=SymCtx)
    requirements: list[Requirement] = field(default_factory=list)
    node: str = ""
