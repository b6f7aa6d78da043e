"""Shape assertions: ``shape: [N, 64, H/2, W/2]`` on a layer, a block instance or an output.

A dimension is an integer, a symbol of the network's inputs (``N``, ``H``), a parameter in scope (``planes``), a size
of a tensor in scope (``dim(x, 2)``, ``channels(x)``, ``features(x)``: in a block, its input's), or an expression of
those with ``+ - * / //`` and ``ceil()``/``floor()``. ``/`` is exact division: ``H/2`` is the number
``H/2`` (it equals ``ceil(H/2)`` only where ``H`` is even). Expressions are parsed by the spec's expression parser
(the same whitelist: no attributes, calls only to ``ceil``/``floor``) and evaluated here over symbolic ``Dim``s.

An assertion holds when every dimension equals the inferred one for every size that meets the network's
requirements (``compare`` under the symbols' ``multiple_of`` found while expanding the whole network); it is checked
after expansion, so a divisibility that a later layer requires counts.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor, lcm

from ..errors import Loc, ShapeError, SpecError
from ..shapes import TensorType
from ..shapes_dim import Dim, SymCtx, ceildiv, compare, floordiv, norm
from ..spec.expr import ExprError, parse as parse_expr


@dataclass(frozen=True)
class Assertion:
    """A stated shape: the value it is about, the dims as written and as evaluated, where it was written."""

    ref: tuple                  # (node id, output index)
    what: str                   # "layer 'layer1.0' (basic_block)", "output 'out'"
    written: tuple              # the dims as the spec wrote them (ints and strings)
    dims: tuple                 # ints and Dims (may hold fractions: 'H/2')
    loc: Loc | None
    key: str = "shape"

    def shown(self) -> str:
        """The dims as written, and their values where a parameter or expression makes them differ."""
        written = "[" + ", ".join(str(d) for d in self.written) + "]"
        values = "[" + ", ".join(str(d) for d in self.dims) + "]"
        return written if values == written else f"{written} (here {values})"


class _DimError(Exception):
    pass


def _floor(x, ctx):
    if isinstance(x, int):
        return x
    if isinstance(x, Fraction):
        return floor(x)
    q = _denominator(x)
    return floordiv(norm(x * q), q, ctx) if q > 1 else x


def _ceil(x, ctx):
    if isinstance(x, int):
        return x
    if isinstance(x, Fraction):
        return ceil(x)
    q = _denominator(x)
    return ceildiv(norm(x * q), q, ctx) if q > 1 else x


def _denominator(x: Dim) -> int:
    q = 1
    for c in x._p.values():
        if isinstance(c, Fraction):
            q = lcm(q, c.denominator)
    return q


def _num(v):
    """A Fraction that is whole as an int."""
    if isinstance(v, Fraction) and v.denominator == 1:
        return int(v)
    return norm(v) if isinstance(v, Dim) else v


def _eval(node, names, ctx, tensors=None):
    if isinstance(node, ast.Expression):
        return _eval(node.body, names, ctx, tensors)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and tensors is not None \
            and node.func.id in tensors.funcs and not node.keywords and node.args:
        first = node.args[0]
        t = tensors.get(first.id) if isinstance(first, ast.Name) else None
        if t is None:
            raise _DimError(f"{node.func.id}() takes a tensor in scope (an input or an earlier layer) first")
        rest = [_eval(a, names, ctx, tensors) for a in node.args[1:]]
        try:
            return tensors.funcs[node.func.id](t, *rest)
        except (ExprError, TypeError) as e:
            raise _DimError(getattr(e, "message", str(e))) from None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise _DimError(f"unknown name '{node.id}'")
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand, names, ctx, tensors)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, names, ctx, tensors), _eval(node.right, names, ctx, tensors)
        if isinstance(node.op, ast.Add):
            return _num(a + b)
        if isinstance(node.op, ast.Sub):
            return _num(a - b)
        if isinstance(node.op, ast.Mult):
            return _num(a * b)
        if isinstance(node.op, (ast.Div, ast.FloorDiv)):
            if isinstance(b, Dim):
                raise _DimError("a dimension can only be divided by a number")
            if b == 0:
                raise _DimError("division by zero")
            q = norm(a * (Fraction(1) / b)) if isinstance(a, Dim) else _num(Fraction(a) / b)
            return _floor(q, ctx) if isinstance(node.op, ast.FloorDiv) else _num(q)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("ceil", "floor") \
            and len(node.args) == 1 and not node.keywords:
        v = _eval(node.args[0], names, ctx, tensors)
        return _ceil(v, ctx) if node.func.id == "ceil" else _floor(v, ctx)
    raise _DimError("a dimension is a number, a symbol, a parameter, dim(x, axis), channels(x), features(x), or an "
                    "expression of them with + - * / // and ceil() or floor()")


class Tensors:
    """The tensors a dimension may measure: ``get(name)`` gives one (a value the shape functions take) or None;
    ``funcs`` are the shape functions (``dim``, ``channels``, ``features``)."""

    def __init__(self, get, funcs: dict):
        self.get = get
        self.funcs = funcs


def evaluate_dims(written: list, names: dict, ctx: SymCtx, locs: list, tensors: Tensors | None = None) -> tuple:
    """The dims of an assertion: ``names`` maps the symbols and parameters in scope to ints or Dims, ``tensors``
    gives the tensors in scope; each entry is located by ``locs``. Raises SpecError (located at the bad entry)."""
    out = []
    for d, loc in zip(written, locs):
        if isinstance(d, bool) or not isinstance(d, (int, str)):
            raise SpecError(f"a dimension of a shape assertion is a number or an expression, got {d!r}", loc)
        if isinstance(d, int):
            v = d
        else:
            try:
                parse_expr(d)          # the expression whitelist and size limits
            except ExprError as e:
                raise SpecError(f"in the dimension '{d}': {e.message}", loc) from None
            try:
                v = _eval(ast.parse(d.strip(), mode="eval"), names, ctx, tensors)
            except _DimError as e:
                hint = None
                if str(e).startswith("unknown name"):
                    known = sorted(names)
                    hint = f"names here: {', '.join(known)}" if known else None
                raise SpecError(f"in the dimension '{d}': {e}", loc, hint) from None
        if isinstance(v, Fraction):
            raise SpecError(f"the dimension '{d}' is {v}, not a whole number", loc)
        if not isinstance(v, (int, Dim)):
            raise SpecError(f"the dimension '{d}' is not a size: {v!r}", loc)
        if isinstance(v, int) and v < 1:
            raise SpecError(f"the dimension '{d}' is {v}, not a positive size", loc)
        out.append(v)
    return tuple(out)


def check(a: Assertion, actual: TensorType, ctx: SymCtx) -> ShapeError | None:
    """None when ``actual`` has the asserted shape for every size the requirements allow; else the error."""
    got = f"[{', '.join(str(d) for d in actual.shape)}]"
    hints = []
    if len(a.dims) != actual.rank:
        detail = f"rank {actual.rank}, not {len(a.dims)}"
    else:
        bad = []
        for j, (want, have) in enumerate(zip(a.dims, actual.shape)):
            q = _denominator(want) if isinstance(want, Dim) else 1      # H/2: compare 2*(H/2) with 2*have
            v = compare(norm(want * q), norm(have * q), ctx)
            if v.kind == "equal":
                continue
            if v.kind == "never":
                bad.append(f"dim {j}: {have}, not {a.written[j]}")
            else:
                r = v.requirement
                bad.append(f"dim {j}: {have} equals {a.written[j]} only when {r.text}")
                if r.symbol and r.multiple_of:
                    hints.append(f"if every size meets {r.text}, declare it (symbols: {{{r.symbol}: {{multiple_of: "
                                 f"{r.multiple_of}}}}}), or assert the exact size {have}")
                else:
                    hints.append(f"assert the exact size {have}")
        if not bad:
            return None
        detail = "; ".join(bad)
    if not hints:
        hints.append(f"state the shape the layers give ({got}), or fix the layers above it")
    return ShapeError(f"{a.what} has shape {got}, but '{a.key}' asserts {a.shown()} ({detail})", a.loc, hints)
