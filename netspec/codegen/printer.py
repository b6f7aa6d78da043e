"""Code IR -> Python text: the one place where values become source.

``render(expr, ctx)`` writes an expression; the context decides how operands, the node's module and each literal
are written (a literal may become a constructor argument, ``self.heads``, or a spec expression such as
``planes * expansion``). Literals are written with ``literal()``, which accepts only plain values, so no text from
a spec reaches the source except as a ``repr()``'d string.
"""
from __future__ import annotations

import math

from . import ir

# binding strength, for parentheses: higher binds tighter
_PREC = {"if": 0, "or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "in": 4,
         "not in": 4, "|": 5, "^": 6, "&": 7, "+": 9, "-": 9, "*": 10, "/": 10, "//": 10, "%": 10, "@": 10,
         "neg": 11, "**": 12}
_ATOM = 20


def literal(v) -> str:
    """A Python literal for a plain value (int, float, bool, None, str, tuple/list of those; lists as tuples)."""
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, int):
        return repr(int(v))
    if isinstance(v, float):
        if math.isnan(v):
            return 'float("nan")'
        if math.isinf(v):
            return 'float("inf")' if v > 0 else '-float("inf")'
        return repr(float(v))
    if isinstance(v, str):
        return _quote(str(v))
    if isinstance(v, (tuple, list)):      # a spec's list is written as a tuple: torch's sizes take tuples
        inner = ", ".join(literal(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    raise TypeError(f"cannot write {type(v).__name__} as a literal")


def _quote(s: str) -> str:
    """A string literal in double quotes (as ruff/black write it), safe for any content."""
    r = repr(s)
    if r.startswith("'") and '"' not in s:
        return '"' + r[1:-1].replace("\\'", "'") + '"'
    return r


def literal_prec(v) -> int:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and (v < 0 or (isinstance(v, float) and
                                                                              not math.isfinite(v))):
        return _PREC["neg"]
    return _ATOM


class Context:
    """How the leaves of an expression are written. Subclass or pass callables."""

    def __init__(self, operands=(), module: str | None = None, leaf=None):
        self.operands = list(operands)
        self.module = module
        self._leaf = leaf

    def operand(self, k: int) -> str:
        return self.operands[k]

    def leaf(self, e: ir.Lit) -> tuple[str, int]:
        """(text, precedence) of a literal."""
        if self._leaf is not None:
            return self._leaf(e)
        return literal(e.value), literal_prec(e.value)


def render(e, ctx: Context) -> str:
    return _r(e, ctx)[0]


def _wrap(pair, need: int) -> str:
    text, prec = pair
    return f"({text})" if prec < need else text


def _args(args, kwargs, ctx) -> str:
    parts = [_r(a, ctx)[0] for a in args] + [f"{k}={_r(v, ctx)[0]}" for k, v in kwargs]
    return ", ".join(parts)


def _r(e, ctx: Context) -> tuple[str, int]:
    if isinstance(e, ir.Lit):
        return ctx.leaf(e)
    if isinstance(e, ir.Name):
        return e.dotted, _ATOM
    if isinstance(e, ir.Operand):
        return ctx.operand(e.k), _ATOM
    if isinstance(e, ir.Operands):
        return "[" + ", ".join(ctx.operands[e.start:]) + "]", _ATOM
    if isinstance(e, ir.Module):
        if ctx.module is None:
            raise ValueError("this op has no module")
        return ctx.module, _ATOM
    if isinstance(e, ir.Raw):
        return e.text, _ATOM
    if isinstance(e, ir.Call):
        fn = e.fn if isinstance(e.fn, str) else _wrap(_r(e.fn, ctx), _ATOM)
        return f"{fn}({_args(e.args, e.kwargs, ctx)})", _ATOM
    if isinstance(e, ir.Method):
        return f"{_wrap(_r(e.obj, ctx), _ATOM)}.{e.name}({_args(e.args, e.kwargs, ctx)})", _ATOM
    if isinstance(e, ir.Attr):
        return f"{_wrap(_r(e.obj, ctx), _ATOM)}.{e.name}", _ATOM
    if isinstance(e, ir.Neg):
        return "-" + _wrap(_r(e.a, ctx), _PREC["neg"]), _PREC["neg"]
    if isinstance(e, ir.BinOp):
        p = _PREC[e.op]
        if e.op == "**":          # right-associative
            left, right = _wrap(_r(e.a, ctx), p + 1), _wrap(_r(e.b, ctx), p)
        else:
            left, right = _wrap(_r(e.a, ctx), p), _wrap(_r(e.b, ctx), p + 1)
        return f"{left} {e.op} {right}", p
    if isinstance(e, ir.Index):
        items = ", ".join(_r(a, ctx)[0] for a in e.items)
        return f"{_wrap(_r(e.obj, ctx), _ATOM)}[{items}]", _ATOM
    if isinstance(e, ir.Slice):
        parts = ["" if a is None else _wrap(_r(a, ctx), 1) for a in (e.start, e.stop, e.step)]
        if not parts[2]:
            parts = parts[:2]
        return ":".join(parts), _ATOM
    if isinstance(e, ir.Tuple):
        inner = ", ".join(_r(a, ctx)[0] for a in e.items)
        return (f"({inner},)" if len(e.items) == 1 else f"({inner})"), _ATOM
    if isinstance(e, ir.List):
        return "[" + ", ".join(_r(a, ctx)[0] for a in e.items) + "]", _ATOM
    if isinstance(e, ir.Cond):
        return (f"{_wrap(_r(e.a, ctx), 1)} if {_wrap(_r(e.test, ctx), 1)} else {_wrap(_r(e.b, ctx), 0)}",
                _PREC["if"])
    raise TypeError(f"not a code IR node: {e!r}")


def render_op(e, operands, module: str | None = None) -> str:
    """An op's constructor or call, with plain literals (for tests and docs)."""
    return render(e, Context(operands, module))
