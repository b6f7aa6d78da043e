"""The op protocol and registry.

An op is one small class that keeps together its typed parameters (a Pydantic model), its symbolic shape rule,
its parameter/buffer shapes (so check/summary never allocate weights), its MAC count, and the torch code it
becomes (a constructor expression for ``__init__`` and a call expression for ``forward``).
"""
from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, Sequence

from pydantic import BaseModel, ConfigDict

from ..errors import did_you_mean
from ..shapes import TensorType, InferCtx, Requirement, compare, norm, is_sym, mul_all


class OpError(Exception):
    """Raised by a shape rule; the graph pass adds the node's name and location.

    ``param`` names the parameter at fault (its location is used when known); ``input`` the input index.
    """

    def __init__(self, message: str, hint: str | list[str] | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.hints = [hint] if isinstance(hint, str) else list(hint or [])
        self.param = param


class Params(BaseModel):
    """Base for op parameters: unknown fields are errors, values are immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class NoParams(Params):
    pass


class In(NamedTuple):
    """An input slot of an op."""

    name: str
    optional: bool = False
    variadic: bool = False     # takes 1+ values (add, concat)
    min_count: int = 1


class Op:
    """Base op. Subclasses set the class variables and override the classmethods they need."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = "misc"            # colour group in diagrams, section in docs
    doc: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[BaseModel]] = NoParams
    inputs: ClassVar[tuple[In, ...]] = (In("x"),)
    outputs: ClassVar[tuple[str, ...]] = ("out",)
    torch_ref: ClassVar[str] = ""             # what it becomes, for docs: "torch.nn.Conv2d"
    # whether the op's backward reads its own output; if not, generated code may accumulate into that output in place
    # (a residual `out.add_(identity)` after a conv or batch norm, as torchvision writes it)
    backward_needs_output: ClassVar[bool] = True

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__doc__ and "doc" not in cls.__dict__:
            cls.doc = cls.__doc__.strip().split("\n")[0]

    # -- shape rule -------------------------------------------------------------------------
    @classmethod
    def infer(cls, ins: list, p, ctx: InferCtx) -> list[TensorType]:
        """Output types from input types. ``ins`` is aligned with ``inputs`` (variadic slots expand)."""
        return [ins[0]]

    # -- weights (no allocation: shapes only) ------------------------------------------------
    @classmethod
    def weights(cls, ins: list, p) -> dict[str, tuple[tuple, str]]:
        """Parameter and buffer shapes, keyed like the torch module's state_dict: {name: (shape, 'param'|'buffer')}."""
        return {}

    @classmethod
    def macs(cls, ins: list, outs: list, p):
        """Multiply-accumulate count for one forward pass (int or symbolic)."""
        return 0

    # -- code -------------------------------------------------------------------------------
    @classmethod
    def module(cls, ins: list, p) -> str | None:
        """Python source constructing the torch module (e.g. ``nn.ReLU(inplace=True)``), or None if functional."""
        return None

    @classmethod
    def call(cls, args: list[str], p, mod: str | None) -> str:
        """Python source of the forward expression, given input expressions and the module attribute (if any)."""
        if mod is None:
            raise NotImplementedError(cls.name)
        return f"{mod}({', '.join(args)})"

    @classmethod
    def label(cls, p) -> str:
        """A short label for diagrams: 'conv 3x3, 64, /2'."""
        return cls.name

    @classmethod
    def helpers(cls) -> dict[str, str]:
        """Extra source (helper classes) the generated code needs, keyed by a unique name."""
        return {}


REGISTRY: dict[str, type[Op]] = {}
ALIASES: dict[str, str] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: add an op to the registry under its name and aliases."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in REGISTRY or cls.name in ALIASES:
        raise ValueError(f"op {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    for a in cls.aliases:
        ALIASES[a] = cls.name
    return cls


def lookup(name: str) -> type[Op] | None:
    _ensure_loaded()
    name = ALIASES.get(name, name)
    return REGISTRY.get(name)


def all_ops() -> dict[str, type[Op]]:
    _ensure_loaded()
    return dict(REGISTRY)


def all_names() -> list[str]:
    _ensure_loaded()
    return sorted(REGISTRY) + sorted(ALIASES)


def unknown_op_hints(name: str, extra: Sequence[str] = ()) -> list[str]:
    names = all_names() + list(extra)
    hints = []
    dym = did_you_mean(name, names)
    if dym:
        hints.append(dym)
    hints.append("run 'netspec ops' for the list of ops, or define a block with this name under 'blocks:'")
    return hints


_loaded = False


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import _families  # noqa: F401  (imports every family module, which registers its ops)


# -- helpers shared by the families --------------------------------------------------------------

def tup(v, n: int, what: str = "value") -> tuple:
    """Expand an int to an n-tuple, or check a list has n entries."""
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise OpError(f"{what} needs {n} values, got {len(v)}", param=what)
        return tuple(v)
    return (v,) * n


def need_rank(t: TensorType, ranks: Sequence[int], op: str, layout: str = "", what: str = "input") -> None:
    if t.rank not in ranks:
        want = " or ".join(str(r) for r in ranks)
        hint = f"{op} expects {layout}" if layout else None
        raise OpError(f"{op} needs a rank-{want} {what}, got {t.rank} dims {t}", hint)


def need_float(t: TensorType, op: str) -> None:
    if not t.is_float:
        raise OpError(f"{op} needs a floating-point input, got {t.dtype} {t}",
                      "integer tensors (token ids) must go through an 'embedding' first")


def need_int(v, what: str, op: str, param: str | None = None) -> int:
    """A dimension that must be a concrete integer (e.g. in_features of a linear layer)."""
    v = norm(v)
    if is_sym(v):
        raise OpError(f"{op} needs a fixed {what}, but it is {v} (depends on the input size)",
                      ["fix the symbol in 'inputs' to a number, or reduce it first (e.g. 'adaptive_avg_pool2d' "
                       "or 'global_avg_pool')"], param)
    return v


def same_dim(a, b, ctx: InferCtx, what: str, hint: str | None = None):
    """Unify two dims: equal -> a; equal under a condition -> record the requirement; never -> OpError."""
    v = compare(a, b, ctx.sym)
    if v.kind == "equal":
        return a
    if v.kind == "never":
        raise OpError(what if (f"{a}" in what and f"{b}" in what) else f"{what}: {a} vs {b}", hint)
    r = v.requirement
    ctx.requirements.append(Requirement(r.text, r.symbol, r.multiple_of, ctx.node))
    return a


def fmt_list(vals) -> str:
    return ", ".join(str(v) for v in vals)


def py(v) -> str:
    """A Python literal for a concrete parameter value (safe to paste into generated source)."""
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, int):
        return repr(int(v))
    if isinstance(v, float):
        return repr(float(v))
    if isinstance(v, str):
        return repr(str(v))
    if isinstance(v, (list, tuple)):
        inner = ", ".join(py(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    raise TypeError(f"cannot write {type(v).__name__} as a literal")
