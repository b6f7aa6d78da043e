"""The code IR: what an op becomes in PyTorch, as data.

An op describes its module constructor (``Op.module``) and its forward call (``Op.call``) with these nodes; one
printer (``codegen.printer``) turns them into Python. Because values stay values until they are printed, the code
generator can tell which numbers differ between instances of a shared class and where they came from (``Lit.src``:
the op parameter, or the input dimension, a value was taken from), and hold them on the instance instead of
leaving free names in ``forward``.

Node kinds:
    Lit(value, src)          a Python value: int, float, bool, None, str, or a tuple/list of those
    Name(dotted)             a fixed name from the generated code's vocabulary: ``torch.float32``, ``math.pi``
    Operand(k)               the k-th input of the call (forward only)
    Operands(start)          the inputs from ``start`` on, as a list (variadic ops: ``torch.cat([a, b], dim=1)``)
    Module()                 the node's own module attribute (``self.conv1``)
    Call(fn, args, kwargs)   ``fn(*args, **kwargs)``; ``fn`` is a dotted name string or an expression
    Method(obj, name, ...)   ``obj.name(*args, **kwargs)``
    Attr(obj, name)          ``obj.name``
    BinOp(op, a, b)          ``a op b``;  Neg(a): ``-a``
    Index(obj, items)        ``obj[items...]``;  Slice(start, stop, step): ``start:stop:step``
    Tuple(items), List(items)
    Cond(test, a, b)         ``a if test else b``
    Raw(text)                a fixed snippet owned by the op (``...``); never holds a value from a spec
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

# where a literal came from: an op parameter ("out", ("shape", 1)), or an input dim ("in", input index, axis)
Src = Union[str, tuple, None]


@dataclass(frozen=True)
class Lit:
    value: Any
    src: Src = None


@dataclass(frozen=True)
class Name:
    dotted: str


@dataclass(frozen=True)
class Operand:
    k: int


@dataclass(frozen=True)
class Operands:
    start: int = 0


@dataclass(frozen=True)
class Module:
    pass


@dataclass(frozen=True)
class Call:
    fn: Any                     # str (a dotted name) or an expression
    args: tuple = ()
    kwargs: tuple = ()          # ((name, expr), ...)


@dataclass(frozen=True)
class Method:
    obj: Any
    name: str
    args: tuple = ()
    kwargs: tuple = ()


@dataclass(frozen=True)
class Attr:
    obj: Any
    name: str


@dataclass(frozen=True)
class BinOp:
    op: str                     # + - * / // % ** @ == != < <= > >= & |
    a: Any
    b: Any


@dataclass(frozen=True)
class Neg:
    a: Any


@dataclass(frozen=True)
class Index:
    obj: Any
    items: tuple


@dataclass(frozen=True)
class Slice:
    start: Any = None
    stop: Any = None
    step: Any = None


@dataclass(frozen=True)
class Tuple:
    items: tuple


@dataclass(frozen=True)
class List:
    items: tuple


@dataclass(frozen=True)
class Cond:
    test: Any
    a: Any
    b: Any


@dataclass(frozen=True)
class Raw:
    text: str


Expr = Union[Lit, Name, Operand, Operands, Module, Call, Method, Attr, BinOp, Neg, Index, Slice, Tuple, List, Cond,
             Raw]


# -- builders the ops use -------------------------------------------------------------------------------------

def lit(value, src: Src = None) -> Lit:
    """A literal; lists become tuples (the form torch's constructors take)."""
    if isinstance(value, list):
        value = tuple(value)
    return Lit(value, src)


def P(p, field: str) -> Lit:
    """The value of op parameter ``field``, remembering where it came from."""
    return lit(getattr(p, field), field)


def _expr(v):
    if isinstance(v, (Lit, Name, Operand, Operands, Module, Call, Method, Attr, BinOp, Neg, Index, Slice, Tuple, List,
                      Cond, Raw)):
        return v
    return lit(v)


def call(fn, *args, **kwargs) -> Call:
    """``call("nn.Conv2d", cin, P(p, "out"), kernel_size=...)``: plain values become literals."""
    return Call(fn, tuple(_expr(a) for a in args), tuple((k, _expr(v)) for k, v in kwargs.items()))


def method(obj, name: str, *args, **kwargs) -> Method:
    return Method(_expr(obj), name, tuple(_expr(a) for a in args), tuple((k, _expr(v)) for k, v in kwargs.items()))


def binop(op: str, a, b) -> BinOp:
    return BinOp(op, _expr(a), _expr(b))


def module_call(*args, **kwargs) -> Call:
    """The usual forward: the node's module applied to its operands (default: the first)."""
    if not args:
        args = (Operand(0),)
    return call(Module(), *args, **kwargs)
