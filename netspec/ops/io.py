"""Graph inputs, learned tensors that belong to no layer (param), and constant buffers (buffer)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator

from .base import Op, OpError, Params, register, py
from ..shapes import TensorType

INITS = Literal["zeros", "ones", "normal", "trunc_normal", "uniform", "arange", "constant"]


class InputOp(Op):
    """A graph input (not a layer; created from the spec's 'inputs')."""

    name = "input"
    family = "io"
    inputs = ()

    class Params(Params):
        shape: list = []
        dtype: str = "float32"


class TensorParams(Params):
    shape: list[int] = Field(description="the tensor's shape (fixed numbers)")
    init: INITS = Field("zeros", description="initial values")
    std: float = Field(0.02, description="standard deviation for normal/trunc_normal; range for uniform")
    value: float = Field(0.0, description="fill value for init: constant")
    dtype: Literal["float32", "int64", "bool"] = "float32"

    @field_validator("shape")
    @classmethod
    def _positive(cls, v):
        if not v:
            raise ValueError("shape needs at least one dimension")
        if any(d < 1 for d in v):
            raise ValueError(f"every dimension must be positive, got {v}")
        return v


def _init_src(p: TensorParams) -> str:
    shape = py(tuple(p.shape))
    dt = {"float32": "torch.float32", "int64": "torch.int64", "bool": "torch.bool"}[p.dtype]
    if p.init == "zeros":
        return f"torch.zeros({shape}, dtype={dt})"
    if p.init == "ones":
        return f"torch.ones({shape}, dtype={dt})"
    if p.init == "constant":
        return f"torch.full({shape}, {py(p.value)}, dtype={dt})"
    if p.init == "arange":
        n = 1
        for d in p.shape:
            n *= d
        return f"torch.arange({n}, dtype={dt}).reshape({shape})"
    if p.init == "normal":
        return f"torch.randn({shape}) * {py(p.std)}"
    if p.init == "trunc_normal":
        return f"torch.nn.init.trunc_normal_(torch.empty({shape}), std={py(p.std)})"
    return f"(torch.rand({shape}) * 2 - 1) * {py(p.std)}"


@register
class ParamOp(Op):
    """A learned tensor that belongs to no layer (a class token, a per-channel scale)."""

    name = "param"
    family = "io"
    inputs = ()
    Params = TensorParams
    torch_ref = "torch.nn.Parameter"

    @classmethod
    def infer(cls, ins, p, ctx):
        if p.dtype != "float32":
            raise OpError("a learned parameter must be float32", param="dtype")
        return [TensorType(tuple(p.shape), p.dtype)]

    @classmethod
    def weights(cls, ins, p):
        return {"": (tuple(p.shape), "param")}

    @classmethod
    def module(cls, ins, p):
        return f"nn.Parameter({_init_src(p)})"

    @classmethod
    def call(cls, args, p, mod):
        return mod

    @classmethod
    def label(cls, p):
        return f"param {'x'.join(map(str, p.shape))}"


@register
class BufferOp(Op):
    """A constant tensor saved with the model (an index table, a mask)."""

    name = "buffer"
    family = "io"
    inputs = ()
    Params = TensorParams
    torch_ref = "register_buffer"

    @classmethod
    def infer(cls, ins, p, ctx):
        return [TensorType(tuple(p.shape), p.dtype)]

    @classmethod
    def weights(cls, ins, p):
        return {"": (tuple(p.shape), "buffer")}

    @classmethod
    def module(cls, ins, p):
        return _init_src(p)

    @classmethod
    def call(cls, args, p, mod):
        return mod

    @classmethod
    def label(cls, p):
        return f"buffer {'x'.join(map(str, p.shape))}"
