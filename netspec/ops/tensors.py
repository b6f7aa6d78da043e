"""Graph inputs, learned tensors that belong to no layer (param), and constant buffers (buffer)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from .base import Op, OpError, Params, register, WeightlessOp
from ..codegen.ir import Module, Name, P, binop, call, lit, method
from ..shapes import TensorType

INITS = Literal["zeros", "ones", "normal", "trunc_normal", "uniform", "arange", "constant"]


class InputOp(WeightlessOp):
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


GENERATORS = {
    "causal_mask": "a (..., T, T) mask: bool true where key j <= query i may be attended (torch.tril of ones); a "
                   "float mask is additive, 0 there and -inf above the diagonal (nn.Transformer's square mask)",
    "relative_position_index": "for a window (Wh, Ww): the (Wh*Ww, Wh*Ww) int64 index into a relative-position "
                               "bias table of (2*Wh-1)*(2*Ww-1) rows (Swin); shape [(Wh*Ww)**2] gives it flattened",
    "arange": "0, 1, 2, ... in the given shape (the same as init: arange)",
}
MAX_VALUES = 65536

_REL_POS = '''\
def relative_position_index(window, shape):
    """Swin's index of the relative position of every pair of positions in a (Wh, Ww) window."""
    wh, ww = window
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)  # (2, Wh*Ww)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (Wh*Ww, Wh*Ww, 2)
    rel[:, :, 0] += wh - 1
    rel[:, :, 1] += ww - 1
    rel[:, :, 0] *= 2 * ww - 1
    return rel.sum(-1).reshape(shape)  # (Wh*Ww, Wh*Ww)
'''


def _shape_of(values) -> list[int]:
    """The shape of a nested list of numbers (ragged lists are an error)."""
    if not isinstance(values, list):
        return []
    if not values:
        raise ValueError("values has an empty list")
    inner = [_shape_of(v) for v in values]
    if any(i != inner[0] for i in inner):
        raise ValueError("values is ragged: every inner list must have the same shape")
    return [len(values)] + inner[0]


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class BufferParams(TensorParams):
    shape: Optional[list[int]] = Field(None, description="the tensor's shape (fixed numbers; derived from 'values' "
                                       "or 'window' when left out)")
    generator: Optional[Literal["causal_mask", "relative_position_index", "arange"]] = Field(
        None, description="compute the values with a named generator (netspec's own, never code from the spec)")
    window: Optional[list[int]] = Field(None, description="relative_position_index: the window size (Wh, Ww)")
    values: Optional[list] = Field(None, description="the values, as a (nested) list of numbers or an expression "
                                   "that gives one")
    persistent: bool = Field(True, description="saved in the state_dict; false: computed at construction and left "
                             "out of the state_dict (torch's register_buffer(persistent=False))")

    @field_validator("shape")
    @classmethod
    def _positive(cls, v):
        if v is None:
            return v
        return TensorParams._positive.__func__(cls, v)

    @model_validator(mode="after")
    def _check(self):
        how = [k for k in ("generator", "values") if getattr(self, k) is not None]
        if "init" in self.model_fields_set:
            how.append("init")
        if len(how) > 1:
            raise ValueError(f"give one of init, generator and values, not {' and '.join(how)}")
        if self.window is not None and self.generator != "relative_position_index":
            raise ValueError("'window' goes with generator: relative_position_index")
        if self.values is not None:
            shape = _shape_of(self.values)
            if not shape:
                raise ValueError("values must be a list")
            if _numel(shape) > MAX_VALUES:
                raise ValueError(f"values has {_numel(shape)} numbers, more than {MAX_VALUES}: use a generator")
            flat = _flatten(self.values)
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in flat):
                raise ValueError("values must hold numbers only")
            if self.shape is not None and _numel(self.shape) != _numel(shape):
                raise ValueError(f"values has {_numel(shape)} numbers, but shape {self.shape} holds "
                                 f"{_numel(self.shape)}")
            if self.dtype == "int64" and any(not float(v).is_integer() for v in flat):
                raise ValueError("an int64 buffer needs whole numbers in values")
            if self.dtype == "bool" and any(v not in (0, 1) for v in flat):
                raise ValueError("a bool buffer needs 0 and 1 in values")
        elif self.generator == "relative_position_index":
            if self.window is None or len(self.window) != 2 or any(w < 1 for w in self.window):
                raise ValueError("relative_position_index needs window: [Wh, Ww] (two positive sizes)")
            if self.dtype != "int64":
                raise ValueError("relative_position_index makes an int64 index: set dtype: int64")
            n = self.window[0] * self.window[1]
            if self.shape is not None and self.shape not in ([n, n], [n * n]):
                raise ValueError(f"relative_position_index of a window {self.window} has shape [{n}, {n}] (or "
                                 f"[{n * n}] flattened), not {self.shape}")
        elif self.shape is None:
            raise ValueError("shape is required" + (f" for generator: {self.generator}" if self.generator else ""))
        if self.generator == "causal_mask":
            if len(self.shape) < 2 or self.shape[-1] != self.shape[-2]:
                raise ValueError(f"a causal mask is (..., T, T): its last two sizes must be equal, got {self.shape}")
            if self.dtype == "int64":
                raise ValueError("a causal mask is bool (true: may attend) or float32 (additive: 0 or -inf)")
        return self

    def out_shape(self) -> tuple:
        if self.shape is not None:
            return tuple(self.shape)
        if self.values is not None:
            return tuple(_shape_of(self.values))
        n = self.window[0] * self.window[1]
        return (n, n)


def _flatten(v) -> list:
    return [x for e in v for x in _flatten(e)] if isinstance(v, list) else [v]


def _buffer_value(p: BufferParams):
    """The buffer's value as code IR."""
    dt = Name(f"torch.{p.dtype}")
    if p.values is not None:
        t = call("torch.tensor", P(p, "values"), dtype=dt)
        return t if p.shape is None or list(p.shape) == _shape_of(p.values) else method(t, "reshape", P(p, "shape"))
    if p.generator == "causal_mask":
        if p.dtype == "bool":
            return method(call("torch.ones", P(p, "shape"), dtype=dt), "tril")
        return method(call("torch.full", P(p, "shape"), lit(float("-inf")), dtype=dt), "triu", lit(1))
    if p.generator == "relative_position_index":
        return call("relative_position_index", P(p, "window"), lit(p.out_shape()))
    if p.generator == "arange":
        return _init(p.model_copy(update={"init": "arange"}))
    return _init(p)


@register
class BufferOp(Op):
    """A constant tensor: an index table, a mask; from init, a named generator or values; persistent or not."""

    name = "buffer"
    shape_rule = "no input; the output has the given shape (fixed numbers)"
    family = "io"
    inputs = ()
    Params = BufferParams
    torch_ref = "register_buffer"
    cases = _CASES + [({"shape": [4, 4], "dtype": "bool", "init": "ones"}, [], [((4, 4), "bool")]),
                      ({"shape": [6], "dtype": "int64", "init": "arange"}, [], [((6,), "int64")]),
                      ({"shape": [1, 1, 5, 5], "dtype": "bool", "generator": "causal_mask", "persistent": False}, [],
                       [((1, 1, 5, 5), "bool")]),
                      ({"shape": [4, 4], "generator": "causal_mask"}, [], [(4, 4)]),
                      ({"generator": "relative_position_index", "window": [2, 3], "dtype": "int64"}, [],
                       [((6, 6), "int64")]),
                      ({"generator": "relative_position_index", "window": [2, 2], "dtype": "int64", "shape": [16],
                        "persistent": False}, [], [((16,), "int64")]),
                      ({"values": [[1, 2, 1], [2, 4, 2]]}, [], [(2, 3)]),
                      ({"values": [0, 1, 1, 0], "shape": [2, 2], "dtype": "bool"}, [], [((2, 2), "bool")]),
                      ({"generator": "arange", "shape": [2, 3], "dtype": "int64", "persistent": False}, [],
                       [((2, 3), "int64")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        return [TensorType(p.out_shape(), p.dtype)]

    @classmethod
    def weights(cls, ins, p):
        """The state_dict entry; a non-persistent buffer has none (it is rebuilt by the constructor)."""
        return {"": (p.out_shape(), "buffer")} if p.persistent else {}

    @classmethod
    def transient(cls, p) -> bool:
        return not p.persistent

    @classmethod
    def macs(cls, ins, outs, p):
        return 0

    @classmethod
    def constructor(cls, ins, p):
        return _buffer_value(p)

    @classmethod
    def forward(cls, ins, p):
        return Module()

    @classmethod
    def helpers(cls):
        return {"relative_position_index": _REL_POS}

    @classmethod
    def helpers_used(cls, ins, p):
        return cls.helpers() if p.generator == "relative_position_index" else {}

    @classmethod
    def label(cls, p):
        what = p.generator.replace("_", " ") if p.generator else "buffer"
        return f"{what} {'x'.join(map(str, p.out_shape()))}" + ("" if p.persistent else " (not saved)")
