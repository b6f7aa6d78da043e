"""The op protocol and registry: a public, stable API (``from netspec.ops import Op, Params, In, OpError``).

An op is one small class that keeps together its typed parameters (a Pydantic model), its symbolic shape rule,
its parameter/buffer shapes (so check/summary never allocate weights), its MAC count, the torch code it becomes
as code IR (``codegen.ir``: a constructor expression for ``__init__`` and a forward expression), and a table of
shape cases that the registry-wide tests run (``netspec.testing.check_op``).

The built-in ops register themselves with ``@register``; installed packages add ops through the ``netspec.ops``
entry-point group (``docs/plugins.md``), loaded once, when the registry is first needed. A spec only ever names an op:
it never names a Python path and never causes an import.
"""
from __future__ import annotations

from dataclasses import dataclass
import functools
import importlib
import re
import threading
from typing import ClassVar, NamedTuple, Sequence

from pydantic import BaseModel, ConfigDict

from ..codegen import ir
from ..errors import SpecError, did_you_mean
from ..shapes import TensorType, InferCtx, Requirement, compare, norm, is_sym


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

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, defer_build=True)


class NoParams(Params):
    pass


class In(NamedTuple):
    """An input slot of an op."""

    name: str
    optional: bool = False
    variadic: bool = False     # takes 1+ values (add, concat)
    min_count: int = 1


class Op:
    """Base op. Subclasses set the class variables and define the classmethods.

    Every op states ``weights`` and ``macs`` itself (in its class or a family base class; ``register`` checks):
    an op without weights returns ``{}``, one without arithmetic returns ``0``.

    Code is data (``netspec.codegen.ir``), written as Python by one printer (``codegen.printer``):

    - ``constructor(ins, p)``: the torch module's constructor, e.g. ``call("nn.Conv2d", lit(cin, ("in", 0, 1)),
      P(p, "out"), kernel_size=P(p, "kernel"), ...)``, or None for a functional op. A value from a parameter is a
      literal whose ``src`` names it (``P(p, "out")``; ``lit(v, "kernel")`` when the op transforms it;
      ``lit(v, ("shape", j))`` for an element of a list); a value read from an input's shape is
      ``lit(v, ("in", input index, axis >= 0))``; other derived values are ``lit(v)``. Parameters are passed as the
      user wrote them where torch accepts that, with the arguments a person would write (defaults left out).
    - ``forward(ins, p)``: the forward expression, with ``Operand(k)`` for input k (``Operands()`` for the
      variadic list) and ``Module()`` for the node's own module. The default applies the module to the first input.

    ``ins`` is the list of input TensorTypes, aligned with ``inputs`` (variadic slots expand); an absent optional
    input is None, and trailing absent ones may be left off.

    ``cases`` is the op's table of shape cases, each ``(params, inputs, outputs)``: ``params`` a dict for
    ``Params``; ``inputs`` one entry per input: a shape tuple (float32), a ``(shape, dtype)`` pair for another
    dtype, or None for an absent optional input; ``outputs`` one entry per output in the same form, where a dim is
    an int, a ``Dim`` expression, or its printed form (``"ceil(H/2)"``). An op with inputs has at least one case
    with symbolic dims.
    ``case_types`` turns an entry into a TensorType.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = "misc"            # colour group in diagrams, section in docs
    doc: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[BaseModel]] = NoParams
    inputs: ClassVar[tuple[In, ...]] = (In("x"),)
    outputs: ClassVar[tuple[str, ...]] = ("out",)
    torch_ref: ClassVar[str] = ""             # what it becomes, for docs: "torch.nn.Conv2d"
    shape_rule: ClassVar[str] = ""            # the shape rule in words, for docs: "[N, C, L] -> [N, out, L']"
    # whether the op's backward reads its own output; if not, generated code may accumulate into that output in place
    # (a residual `out.add_(identity)` after a conv or batch norm, as torchvision writes it)
    backward_needs_output: ClassVar[bool] = True
    # the distribution that provides the op: "netspec" for the built-ins; set by the loader for a plugin's ops
    package: ClassVar[str] = "netspec"
    # modules the generated model.py must import for this op's code (a plugin whose constructor calls its own class,
    # ``call("my_plugin.SwiGLU", ...)``, lists "my_plugin"); empty for an op written in torch alone
    imports: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def keeps(cls, p, rank: int) -> int:
        """How many leading axes of the first output are, by construction, those of the first input (an activation
        keeps all of them, a global pool N and C). The code generator traces sizes through them; 0 is always safe."""
        return 0
    # shape cases: [(params, [input], [output])], see the class docstring
    cases: ClassVar[list[tuple[dict, list, list]]] = []

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
        """Parameter and buffer shapes, keyed like the torch module's state_dict: {name: (shape, 'param'|'buffer')}.

        Required: every op defines it (``{}`` when it has none).
        """
        raise NotImplementedError(f"op {cls.name!r} does not define weights()")

    @classmethod
    def macs(cls, ins: list, outs: list, p):
        """Multiply-accumulate count for one forward pass (int or symbolic). Required (``0`` when none)."""
        raise NotImplementedError(f"op {cls.name!r} does not define macs()")

    # -- code -------------------------------------------------------------------------------
    @classmethod
    def constructor(cls, ins: list, p) -> ir.Expr | None:
        """The torch module's constructor as code IR (usually an ``ir.Call``: ``nn.ReLU(inplace=True)``), or None
        for a functional op. (``param``/``buffer`` return the tensor's initial value.)"""
        return None

    @classmethod
    def forward(cls, ins: list, p) -> ir.Expr:
        """The forward expression as code IR: ``Operand(k)`` for input k, ``Module()`` for the node's module.

        Default: the module applied to the first input (``self.conv1(x)``).
        """
        if cls.constructor(ins, p) is None:
            raise NotImplementedError(f"op {cls.name!r} has no module, so it must define forward()")
        return ir.module_call()

    @classmethod
    def label(cls, p) -> str:
        """A short label for diagrams: 'conv 3x3, 64, /2'."""
        return cls.name

    @classmethod
    def helpers(cls) -> dict[str, str]:
        """Extra source (helper classes) the generated code needs, keyed by a unique name."""
        return {}

    # ops whose module's ``weight`` this op may use with 'share:' (weight tying: a language model's output layer
    # reads the token embedding's table), and the forward that reads it (``Attr(Module(), "weight")``)
    ties_to: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def tied_forward(cls, ins: list, p) -> ir.Expr:
        raise NotImplementedError(f"op {cls.name!r} cannot use the weights of another op")

    @classmethod
    def transient(cls, p) -> bool:
        """Whether the tensor the constructor makes is a buffer left out of the state_dict (``persistent: false``)."""
        return False

    @classmethod
    def helpers_used(cls, ins: list, p) -> dict[str, str]:
        """The helpers one layer's code needs (default: all of ``helpers()``); an op whose helper serves only some
        settings (layernorm over a chosen dim) narrows it, so other models' code does not carry it."""
        return cls.helpers()


class WeightlessOp(Op):
    """Base for ops that own no weights and whose arithmetic is not counted (indexing, comparisons, constants,
    detector bookkeeping): ``weights()`` is ``{}`` and ``macs()`` is 0."""

    @classmethod
    def weights(cls, ins, p):
        return {}

    @classmethod
    def macs(cls, ins, outs, p):
        return 0


REGISTRY: dict[str, type[Op]] = {}
ALIASES: dict[str, str] = {}


_OP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def op_problems(cls) -> list[str]:
    """What makes a class unusable as an op (empty when it is fine): the checks ``register`` makes."""
    if not (isinstance(cls, type) and issubclass(cls, Op)) or cls is Op:
        return [f"{cls!r} is not a subclass of netspec.ops.Op"]
    out = []
    if not isinstance(cls.name, str) or not _OP_NAME.match(cls.name):
        out.append(f"{cls.__name__}.name must be a lower-case identifier (like 'blur_pool2d'), got {cls.name!r}")
    for a in cls.aliases if isinstance(cls.aliases, tuple) else [cls.aliases]:
        if not isinstance(a, str) or not _OP_NAME.match(a):
            out.append(f"{cls.__name__}.aliases must be a tuple of lower-case identifiers, got {cls.aliases!r}")
            break
    if not (isinstance(cls.Params, type) and issubclass(cls.Params, BaseModel)):
        out.append(f"{cls.__name__}.Params must be a subclass of netspec.ops.Params")
    if not (isinstance(cls.inputs, tuple) and all(isinstance(i, In) for i in cls.inputs)):
        out.append(f"{cls.__name__}.inputs must be a tuple of netspec.ops.In")
    if not (isinstance(cls.outputs, tuple) and cls.outputs and all(isinstance(o, str) for o in cls.outputs)):
        out.append(f"{cls.__name__}.outputs must be a non-empty tuple of names")
    if not (isinstance(cls.imports, tuple) and all(isinstance(m, str) and _MODULE.match(m) for m in cls.imports)):
        out.append(f"{cls.__name__}.imports must be a tuple of module names, got {cls.imports!r}")
    for method in ("weights", "macs"):
        if not any(method in k.__dict__ for k in cls.__mro__ if k is not Op and issubclass(k, Op)):
            out.append(f"op {cls.name!r} ({cls.__name__}) does not define {method}(): every op states it "
                       f"(return {{}} or 0 when it has none), in its class or a family base class")
    return out


def register(cls: type[Op]) -> type[Op]:
    """Class decorator of the built-in ops: add an op to the registry under its name and aliases.

    (A plugin does not call it: its entry point names the class, and the loader registers it.)"""
    if _loading_plugins:
        raise TypeError(f"{cls.__name__}: a plugin does not call netspec.ops.register(); its 'netspec.ops' entry "
                        "point names the class and netspec registers it (docs/plugins.md)")
    problems = op_problems(cls)
    if problems:
        raise TypeError("; ".join(problems))
    if cls.name in REGISTRY or cls.name in ALIASES:
        raise ValueError(f"op {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    for a in cls.aliases:
        ALIASES[a] = cls.name
    return cls


def lookup(name: str) -> type[Op] | None:
    fam = None if _loaded else _family_for(name)
    if fam is None:
        _ensure_loaded()
    elif fam and fam not in _LAZY:      # imported, then noted: another thread waits on the import's own lock
        importlib.import_module(f"{__package__}.{fam}")
        _LAZY.append(fam)
    return REGISTRY.get(ALIASES.get(name, name))   # ('' : no built-in op; one a program registered is still found)


_LAZY: list = []            # family modules that lookup() imported before the full load


def _family_for(name) -> str | None:
    """The family module of built-in op ``name`` ('' for a name that is no op), where that is the whole answer:
    no installed distribution can declare a 'netspec.ops' entry point, so the built-in ops (all in ``_index``) are
    every op there is. None where the registry must be loaded whole (plugins may exist, or an odd name)."""
    if type(name) is not str or not _no_plugins():
        return None
    from ._index import FAMILY_OF
    return FAMILY_OF.get(name, "")


@functools.cache
def _no_plugins() -> bool:
    """No installed distribution can declare plugin ops (asked once a process)."""
    return not _may_declare_plugins()


def unknown_op_error(name: str, loc, blocks: Sequence[str] = ()) -> SpecError:
    """The error for an op name that resolves to nothing: a plugin's load problem when an installed plugin meant to
    provide it (its entry point has that name), else 'unknown op' with a guess."""
    _ensure_loaded()
    bad = BROKEN.get(name)
    if bad is not None:
        REPORTED.add(bad)
        return SpecError(f"op '{name}' is not available: {bad.message}", loc, bad.hints)
    return SpecError(f"unknown op '{name}'", loc, unknown_op_hints(name, blocks))


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


_loaded = False             # the full load has begun (in some thread)
_complete = False           # ... and ended
_LOAD_LOCK = threading.RLock()

# -- plugins: ops from installed packages, through the 'netspec.ops' entry-point group ----------------------------

ENTRY_POINT_GROUP = "netspec.ops"


@dataclass(frozen=True)
class PluginProblem:
    """An entry point that did not become an op: which package, which entry point, and why."""

    package: str
    entry_point: str          # "blur_pool2d = my_plugin:BlurPool2d"
    names: tuple              # the op names it would have provided (its entry point's name, and a class's aliases)
    message: str
    hints: tuple = ()

    def error(self) -> SpecError:
        return SpecError(self.message, None, list(self.hints))


PROBLEMS: list[PluginProblem] = []
BROKEN: dict[str, PluginProblem] = {}      # op name -> why the plugin meant to provide it is not loaded
REPORTED: set = set()                      # problems already given to a spec as its error (not repeated as warnings)


def plugin_problems() -> list[PluginProblem]:
    """The plugins that failed to load (import error, not an Op, bad op, name clash); loads the registry."""
    _ensure_loaded()
    return list(PROBLEMS)


def _describe(ep) -> str:
    return f"{ep.name} = {ep.value}"


def _load_plugins() -> None:
    """Register the ops of every installed package's 'netspec.ops' entry points (each names one Op subclass, under
    the op's name). A plugin that cannot be used is recorded in PROBLEMS (and BROKEN, for its op names) and left
    out; the others, and the built-ins, still work. A name claimed twice is refused for every claimant but a
    built-in, so that which op a spec gets never depends on the order packages were installed in."""
    if not _may_declare_plugins():
        return
    from importlib.metadata import entry_points
    try:
        eps = list(entry_points(group=ENTRY_POINT_GROUP))
    except Exception as e:  # noqa: BLE001  (a broken installation's metadata)
        PROBLEMS.append(PluginProblem("?", "?", (), f"cannot read the installed packages' entry points: "
                                                    f"{type(e).__name__}: {e}"))
        return
    eps.sort(key=lambda ep: (_package(ep), ep.name, ep.value))
    found: list = []          # (entry point, package, class)

    def problem(ep, pkg, names, why, hints=()):
        p = PluginProblem(pkg, _describe(ep), tuple(names),
                          f"plugin package '{pkg}' (entry point '{_describe(ep)}' in group '{ENTRY_POINT_GROUP}'): "
                          f"{why}", tuple(hints) + (f"fix the package '{pkg}', or uninstall it "
                                                    f"(pip uninstall {pkg})",))
        PROBLEMS.append(p)
        for n in names:
            BROKEN.setdefault(n, p)

    for ep in eps:
        pkg = _package(ep)
        try:
            obj = ep.load()
        except BaseException as e:  # noqa: BLE001  (any failure of a third party's import, SystemExit too)
            if isinstance(e, KeyboardInterrupt):
                raise
            problem(ep, pkg, [ep.name], f"cannot be imported: {type(e).__name__}: {e}")
            continue
        if not (isinstance(obj, type) and issubclass(obj, Op)) or obj is Op:
            problem(ep, pkg, [ep.name], f"names {type(obj).__name__} {getattr(obj, '__qualname__', obj)!r}, "
                                        f"which is not a subclass of netspec.ops.Op",
                    ["an entry point in 'netspec.ops' names one op class: 'my_op = my_package:MyOp'"])
            continue
        bad = op_problems(obj)
        if not bad and obj.name != ep.name:
            bad = [f"the entry point is named '{ep.name}' but the class's op name is '{obj.name}'"]
        if bad:
            problem(ep, pkg, [ep.name], "; ".join(bad),
                    ["an entry point's name is its op's name: 'blur_pool2d = my_package:BlurPool2d'"])
            continue
        found.append((ep, pkg, obj))

    # name clashes: with a built-in (the built-in stays), or between plugins (neither is used)
    claims: dict = {}
    for ep, pkg, obj in found:
        for n in (obj.name,) + tuple(obj.aliases):
            claims.setdefault(n, []).append((ep, pkg, obj))
    refused = set()
    for ep, pkg, obj in found:
        names = (obj.name,) + tuple(obj.aliases)
        for n in names:
            if n in REGISTRY or n in ALIASES:
                builtin = REGISTRY[ALIASES.get(n, n)]
                problem(ep, pkg, [x for x in names if x not in REGISTRY and x not in ALIASES],
                        f"op name '{n}' clashes with the built-in op '{builtin.name}' (package 'netspec'); the "
                        f"plugin's op is not loaded", ["rename the plugin's op (its name, aliases and entry point)"])
                refused.add(id(obj))
                break
            others = [(e2, p2) for e2, p2, o2 in claims[n] if o2 is not obj]
            if others:
                e2, p2 = others[0]
                problem(ep, pkg, names, f"op name '{n}' is also claimed by package '{p2}' (entry point "
                                        f"'{_describe(e2)}'); neither is loaded",
                        ["uninstall one of the two packages, or rename one's op"])
                refused.add(id(obj))
                break
    for ep, pkg, obj in found:
        if id(obj) in refused:
            continue
        obj.package = pkg
        REGISTRY[obj.name] = obj
        for a in obj.aliases:
            ALIASES[a] = obj.name


def _may_declare_plugins() -> bool:
    """False only when no installed distribution can declare a 'netspec.ops' entry point (netspec.entry_points)."""
    from ..entry_points import may_declare
    return may_declare(ENTRY_POINT_GROUP)


def _package(ep) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None and getattr(dist, "name", None) else (ep.module or "?").split(".")[0]


_loading_plugins = False


def _ensure_loaded() -> None:
    """Load every family and the plugins, once. Another thread waits until the load is complete (``netspec serve``
    expands specs in several threads); the loading thread itself, asked again while plugins load, goes on."""
    global _loaded, _loading_plugins, _complete
    if _complete:
        return
    with _LOAD_LOCK:
        if _loaded:              # complete, or this very thread is loading
            return
        _loaded = True
        from . import _families  # noqa: F401  (imports every family module, which registers its ops)
        if _LAZY:                # some families came first (lookup): the registry in a full load's order again
            from ._index import FAMILY_OF
            rank = {n: k for k, n in enumerate(FAMILY_OF)}
            for table in (REGISTRY, ALIASES):
                items = sorted(table.items(), key=lambda kv: rank.get(kv[0], len(rank)))
                table.clear()
                table.update(items)
        _loading_plugins = True
        try:
            _load_plugins()
        finally:
            _loading_plugins = False
            _complete = True


# -- helpers shared by the families --------------------------------------------------------------

def given(p, field: str) -> bool:
    """Whether a parameter was written in the spec or differs from its default: an optional constructor argument
    is written where it is given, so that every instance of one spec layer has the same arguments."""
    return field in p.model_fields_set or getattr(p, field) != type(p).model_fields[field].default


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


def case_types(entries) -> list:
    """Case entries (a shape tuple, a (shape tuple, dtype) pair, or None) as TensorTypes (None stays None).

    A dim may be an int, a Dim or its printed form (a str); a TensorType built from an entry with str dims is only
    for comparing with ``str()``.
    """
    out = []
    for e in entries:
        if e is None:
            out.append(None)
        elif len(e) == 2 and isinstance(e[0], (tuple, list)):
            out.append(TensorType(tuple(e[0]), e[1]))
        else:
            out.append(TensorType(tuple(e)))
    return out
