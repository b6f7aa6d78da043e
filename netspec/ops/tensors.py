"""Graph inputs, learned tensors that belong to no layer (param), and constant buffers (buffer)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Op, OpError, Params, register
from ..codegen.ir import Module, Name, P, binop, call, lit, method
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

    @classmethod
    def weights(cls, ins, p):
        return {}

    @classmethod
    def macs(cls, ins, outs, p):
        return 0


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


def _init(p: TensorParams):
    """The tensor's initial value as code IR: ``torch.zeros((2, 3), dtype=torch.float32)``."""
    shape = P(p, "shape")
    dt = Name(f"torch.{p.dtype}")
    if p.init == "zeros":
        return call("torch.zeros", shape, dtype=dt)
    if p.init == "ones":
        return call("torch.ones", shape, dtype=dt)
    if p.init == "constant":
        return call("torch.full", shape, P(p, "value"), dtype=dt)
    if p.init == "arange":
        n = 1
        for d in p.shape:
            n *= d
        return method(call("torch.arange", lit(n), dtype=dt), "reshape", shape)
    if p.init == "normal":
        return binop("*", call("torch.randn", shape), P(p, "std"))
    if p.init == "trunc_normal":
        return call("torch.nn.init.trunc_normal_", call("torch.empty", shape), std=P(p, "std"))
    return binop("*", binop("-", binop("*", call("torch.rand", shape), 2), 1), P(p, "std"))


_CASES = [({"shape": [1, 1, 8]}, [], [(1, 1, 8)]), ({"shape": [4], "init": "ones"}, [], [(4,)]),
          ({"shape": [2, 3], "init": "constant", "value": -1.5}, [], [(2, 3)]),
          ({"shape": [2, 3], "init": "arange"}, [], [(2, 3)]),
          ({"shape": [1, 1, 16], "init": "normal", "std": 0.5}, [], [(1, 1, 16)]),
          ({"shape": [1, 5, 8], "init": "trunc_normal"}, [], [(1, 5, 8)]),
          ({"shape": [3], "init": "uniform", "std": 0.1}, [], [(3,)])]


@register
class ParamOp(Op):
    """A learned tensor that belongs to no layer (a class token, a per-channel scale)."""

    name = "param"
    shape_rule = "no input; the output has the given shape (fixed numbers)"
    family = "io"
    inputs = ()
    Params = TensorParams
    torch_ref = "torch.nn.Parameter"
    cases = _CASES

    @classmethod
    def infer(cls, ins, p, ctx):
        if p.dtype != "float32":
            raise OpError("a learned parameter must be float32", param="dtype")
        return [TensorType(tuple(p.shape), p.dtype)]

    @classmethod
    def weights(cls, ins, p):
        return {"": (tuple(p.shape), "param")}

    @classmethod
    def macs(cls, ins, outs, p):
        return 0

    @classmethod
    def constructor(cls, ins, p):
        return call("nn.Parameter", _init(p))

    @classmethod
    def forward(cls, ins, p):
        return Module()

    @classmethod
    def label(cls, p):
        return f"param {'x'.join(map(str, p.shape))}"


@register
class BufferOp(Op):
    """A constant tensor saved with the model (an index table, a mask)."""

    name = "buffer"
    shape_rule = "no input; the output has the given shape (fixed numbers)"
    family = "io"
    inputs = ()
    Params = TensorParams
    torch_ref = "register_buffer"
    cases = _CASES + [({"shape": [4, 4], "dtype": "bool", "init": "ones"}, [], [((4, 4), "bool")]),
                      ({"shape": [6], "dtype": "int64", "init": "arange"}, [], [((6,), "int64")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        return [TensorType(tuple(p.shape), p.dtype)]

    @classmethod
    def weights(cls, ins, p):
        return {"": (tuple(p.shape), "buffer")}

    @classmethod
    def macs(cls, ins, outs, p):
        return 0

    @classmethod
    def constructor(cls, ins, p):
        return _init(p)

    @classmethod
    def forward(cls, ins, p):
        return Module()

    @classmethod
    def label(cls, p):
        return f"buffer {'x'.join(map(str, p.shape))}"
