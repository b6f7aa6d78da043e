"""Safe expressions inside spec files.

Spec files hold small expressions as YAML strings::

    out: "planes * 4"
    stride: "2 if i == 0 else 1"
    if: "stride != 1 or channels(x) != planes * 4"
    hidden: "make_divisible(channels(x) * 6, 8)"

They are evaluated over block parameters, the loop index and queries on input shapes
(functions such as ``channels(x)`` that the caller passes in).

Nothing here ever hands user text to Python's ``eval``/``exec``/``compile``. The text is parsed
with ``ast.parse(text, mode="eval")`` and the tree is walked by a small interpreter that knows a
whitelist of node types; anything else is an :class:`ExprError` that says where (0-based column
inside the expression text) and why.

The language
------------
* literals: ints, floats, strings, ``True``/``False``/``None`` (also ``true``/``false``/``null``/``none``),
  tuples and lists
* names, looked up in the environment (unknown names get a "did you mean" suggestion)
* ``+ - * / // % **``, unary ``-``/``+``, comparisons (chained), ``in``/``not in`` a list or tuple,
  ``and``/``or``/``not``, ``a if cond else b`` (only the taken branch is evaluated)
* ``seq[i]`` and ``seq[i:j:k]`` on lists and tuples
* calls ``name(arg, ...)`` of the functions in :data:`BUILTIN_FUNCS` or those the caller passes

Everything is bounded so that a hostile file ends in an error quickly and in little memory:
the text length, the number of AST nodes, the nesting depth, the magnitude of integers
(``|n| <= 2**62``, checked *before* ``**`` is computed), the finiteness of floats and the size of
strings/lists/tuples built by an expression.
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
import unicodedata
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache

from ..shapes_dim import Dim as _SizeDim      # a symbolic size (``dim(x, 2)``): its arithmetic stays exact

__all__ = [
    "BUILTIN_FUNCS",
    "Expr",
    "ExprError",
    "evaluate",
    "looks_like_expression",
    "parse",
]

MAX_TEXT_LEN = 2000
MAX_NODES = 500
MAX_DEPTH = 50
MAX_INT = 2**62
MAX_STR_LEN = 1000
MAX_ITEMS = 1000  # items in a list/tuple built by an expression, nested items counted

# what a failing operator or function may raise; turned into an ExprError at the node's column
_OP_ERRORS = (TypeError, ValueError, ArithmeticError, LookupError, AttributeError)

_CONST_NAMES: dict[str, object] = {"true": True, "false": False, "null": None, "none": None}


class ExprError(Exception):
    """An expression is malformed, not allowed, or failed to evaluate.

    ``col`` is the 0-based character offset inside the expression text where the problem is.
    """

    def __init__(self, message: str, col: int = 0, hint: str | None = None):
        super().__init__(message, col, hint)
        self.message = message
        self.col = col
        self.hint = hint

    def __str__(self) -> str:
        return self.message


# ----------------------------------------------------------------------------------------------
# helpers


def _tname(v: object) -> str:
    if v is None:
        return "None"
    t = type(v)
    name = getattr(t, "expr_type_name", None)
    return name if isinstance(name, str) else t.__name__


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float))


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _deep_size_exceeds(v: object, limit: int) -> bool:
    """True if a list/tuple holds more than ``limit`` items, nested items counted (early exit)."""
    count = 0
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            count += len(x)
            if count > limit:
                return True
            stack.extend(e for e in x if isinstance(e, (list, tuple)))
    return False


def _check_value(v: object, col: int) -> object:
    """Enforce the bounds on a value an expression computed."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        if -MAX_INT <= v <= MAX_INT:
            return v
        raise ExprError("number too large (the limit is 2**62)", col)
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        if math.isnan(v):
            raise ExprError("result is not a number (nan)", col)
        raise ExprError("number too large (result is infinite)", col)
    if isinstance(v, complex):
        raise ExprError("result is not a real number", col)
    if isinstance(v, str):
        if len(v) > MAX_STR_LEN:
            raise ExprError(f"string too long (the limit is {MAX_STR_LEN} characters)", col)
        return v
    if isinstance(v, (list, tuple)):
        if _deep_size_exceeds(v, MAX_ITEMS):
            raise ExprError(f"{_tname(v)} too large (the limit is {MAX_ITEMS} items)", col)
    return v


def _truth(v: object, col: int) -> bool:
    if v is None or isinstance(v, (bool, int, float, str, list, tuple)):
        return bool(v)
    try:
        return bool(v)
    except _OP_ERRORS:
        raise ExprError(f"cannot use a {_tname(v)} as a condition", col) from None


# ----------------------------------------------------------------------------------------------
# built-in functions (each raises ExprError, never TypeError, for bad arguments)


def _builtin(name: str, min_args: int, max_args: int | None):
    def deco(fn: Callable) -> Callable:
        def wrapper(*args):
            n = len(args)
            if n < min_args or (max_args is not None and n > max_args):
                if max_args is None:
                    want = f"at least {min_args}"
                elif min_args == max_args:
                    want = str(min_args)
                else:
                    want = f"{min_args} to {max_args}"
                plural = "" if (max_args if max_args is not None else min_args) == 1 else "s"
                raise ExprError(f"{name}() takes {want} argument{plural}, got {n}")
            try:
                return fn(*args)
            except ExprError:
                raise
            except _OP_ERRORS as e:
                raise ExprError(f"{name}(): {e}") from None

        wrapper.__name__ = name
        wrapper.__qualname__ = name
        wrapper.__doc__ = fn.__doc__
        return wrapper

    return deco


def _need_num(fname: str, v: object) -> None:
    if not _is_num(v):
        raise ExprError(f"{fname}() needs a number, got {_tname(v)}")


def _need_int(fname: str, v: object) -> None:
    if not _is_int(v):
        raise ExprError(f"{fname}() needs an integer, got {_tname(v)}")


def _need_seq(fname: str, v: object) -> None:
    if not isinstance(v, (list, tuple)):
        raise ExprError(f"{fname}() needs a list or tuple, got {_tname(v)}")


def _items(fname: str, args: tuple) -> tuple | list:
    items = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
    if not items:
        raise ExprError(f"{fname}() needs at least one value")
    return items


@_builtin("min", 1, None)
def _f_min(*args):
    """min(a, b, ...) or min(list)."""
    items = _items("min", args)
    try:
        return min(items)
    except _OP_ERRORS:
        raise ExprError(f"min(): cannot compare {', '.join(sorted({_tname(x) for x in items}))}") from None


@_builtin("max", 1, None)
def _f_max(*args):
    """max(a, b, ...) or max(list)."""
    items = _items("max", args)
    try:
        return max(items)
    except _OP_ERRORS:
        raise ExprError(f"max(): cannot compare {', '.join(sorted({_tname(x) for x in items}))}") from None


@_builtin("abs", 1, 1)
def _f_abs(x):
    _need_num("abs", x)
    return abs(x)


@_builtin("int", 1, 1)
def _f_int(x):
    if isinstance(x, str):
        if len(x) > 100:
            raise ExprError("int(): string too long")
        try:
            return int(x.strip())
        except ValueError:
            raise ExprError(f"int(): not an integer: {x[:40]!r}") from None
    _need_num("int", x)
    return int(x)


@_builtin("float", 1, 1)
def _f_float(x):
    if isinstance(x, str):
        if len(x) > 100:
            raise ExprError("float(): string too long")
        try:
            return float(x.strip())
        except ValueError:
            raise ExprError(f"float(): not a number: {x[:40]!r}") from None
    _need_num("float", x)
    return float(x)


@_builtin("round", 1, 2)
def _f_round(x, ndigits=None):
    _need_num("round", x)
    if ndigits is None:
        return round(x)
    _need_int("round", ndigits)
    if abs(ndigits) > 100:
        raise ExprError("round(): number of digits must be between -100 and 100")
    return round(x, ndigits)


@_builtin("bool", 1, 1)
def _f_bool(x):
    return _truth(x, 0)


@_builtin("len", 1, 1)
def _f_len(x):
    if not isinstance(x, (list, tuple, str)):
        raise ExprError(f"len() needs a list, tuple or string, got {_tname(x)}")
    return len(x)


@_builtin("sum", 1, 1)
def _f_sum(x):
    _need_seq("sum", x)
    try:
        return sum(x)
    except _OP_ERRORS:
        raise ExprError(f"sum(): cannot add {', '.join(sorted({_tname(e) for e in x}))}") from None


@_builtin("ceil", 1, 1)
def _f_ceil(x):
    _need_num("ceil", x)
    return math.ceil(x)


@_builtin("floor", 1, 1)
def _f_floor(x):
    _need_num("floor", x)
    return math.floor(x)


@_builtin("sqrt", 1, 1)
def _f_sqrt(x):
    _need_num("sqrt", x)
    if x < 0:
        raise ExprError("sqrt() of a negative number")
    return math.sqrt(x)


@_builtin("log2", 1, 1)
def _f_log2(x):
    _need_num("log2", x)
    if x <= 0:
        raise ExprError("log2() needs a positive number")
    return math.log2(x)


@_builtin("make_divisible", 2, 3)
def _f_make_divisible(v, divisor, min_value=None):
    """The MobileNet rounding rule: round v to a multiple of divisor, never going down by more than 10%."""
    _need_num("make_divisible", v)
    _need_int("make_divisible", divisor)
    if divisor <= 0:
        raise ExprError("make_divisible(): divisor must be positive")
    if min_value is None:
        min_value = divisor
    else:
        _need_num("make_divisible", min_value)
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


@_builtin("gcd", 1, None)
def _f_gcd(*args):
    for a in args:
        _need_int("gcd", a)
    return math.gcd(*args)


@_builtin("lcm", 1, None)
def _f_lcm(*args):
    for a in args:
        _need_int("lcm", a)
    return math.lcm(*args)


@_builtin("all", 1, 1)
def _f_all(x):
    _need_seq("all", x)
    return all(_truth(e, 0) for e in x)


@_builtin("any", 1, 1)
def _f_any(x):
    _need_seq("any", x)
    return any(_truth(e, 0) for e in x)


BUILTIN_FUNCS: dict[str, Callable] = {
    "min": _f_min,
    "max": _f_max,
    "abs": _f_abs,
    "int": _f_int,
    "float": _f_float,
    "round": _f_round,
    "bool": _f_bool,
    "len": _f_len,
    "sum": _f_sum,
    "ceil": _f_ceil,
    "floor": _f_floor,
    "sqrt": _f_sqrt,
    "log2": _f_log2,
    "make_divisible": _f_make_divisible,
    "gcd": _f_gcd,
    "lcm": _f_lcm,
    "all": _f_all,
    "any": _f_any,
}


# ----------------------------------------------------------------------------------------------
# source positions


class _Source:
    """Maps AST positions (line, UTF-8 byte column) to 0-based character offsets in the text."""

    __slots__ = ("text", "lines", "starts")

    def __init__(self, text: str, lead: int):
        self.text = text
        self.lines = text[lead:].split("\n")
        self.starts = []
        pos = lead
        for line in self.lines:
            self.starts.append(pos)
            pos += len(line) + 1

    def offset(self, lineno: int | None, col: int | None, *, byte_col: bool = True) -> int:
        n = len(self.text)
        if lineno is None or col is None or lineno < 1:
            return 0
        if lineno > len(self.lines):
            return n
        line = self.lines[lineno - 1]
        col = max(col, 0)
        if byte_col and not line.isascii():
            col = len(line.encode("utf-8", "surrogatepass")[:col].decode("utf-8", "ignore"))
        return max(0, min(self.starts[lineno - 1] + col, n))

    def find(self, start: int, end: int, token: str, default: int) -> int:
        """Offset of ``token`` in text[start:end], skipping comments; ``default`` if absent."""
        text = self.text
        i = start
        while i < end:
            if text[i] == "#":
                nl = text.find("\n", i, end)
                if nl < 0:
                    break
                i = nl
            elif text.startswith(token, i):
                return i
            i += 1
        return default


def _bracket_overflow(text: str) -> int | None:
    """Column of the first bracket nested deeper than MAX_DEPTH (strings and comments skipped)."""
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                return i
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c == "#":
            nl = text.find("\n", i)
            if nl < 0:
                break
            i = nl
        elif c in "\"'":
            q = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else c
            i += len(q)
            while i < n and not text.startswith(q, i):
                if text[i] == "\\":
                    i += 1
                elif len(q) == 1 and text[i] == "\n":
                    break
                i += 1
            i += len(q)
            continue
        i += 1
    return None


# ----------------------------------------------------------------------------------------------
# validation (parse time)

_BINOPS: dict[type, tuple[str, Callable]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow),
}
_BAD_BINOPS = {
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.MatMult: "@",
}
_CMPOPS: dict[type, tuple[str, Callable]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.In: ("in", None),
    ast.NotIn: ("not in", None),
}
_REJECTED: dict[type, tuple[str, str | None]] = {
    ast.Attribute: ("attribute access is not allowed", "use a function such as channels(x) instead of x.attr"),
    ast.Lambda: ("lambda is not allowed", None),
    ast.ListComp: ("comprehensions are not allowed", None),
    ast.SetComp: ("comprehensions are not allowed", None),
    ast.DictComp: ("comprehensions are not allowed", None),
    ast.GeneratorExp: ("generator expressions are not allowed", None),
    ast.JoinedStr: ("f-strings are not allowed", None),
    ast.FormattedValue: ("f-strings are not allowed", None),
    ast.NamedExpr: ("assignment (:=) is not allowed", None),
    ast.Starred: ("starred expressions (*x) are not allowed", None),
    ast.Dict: ("dict displays are not allowed", "use a list or tuple"),
    ast.Set: ("set displays are not allowed", "use a list or tuple"),
    ast.Await: ("await is not allowed", None),
    ast.Yield: ("yield is not allowed", None),
    ast.YieldFrom: ("yield is not allowed", None),
}


class _Validator:
    def __init__(self, src: _Source):
        self.src = src
        self.names: set[str] = set()
        self.funcs: set[str] = set()

    def col(self, node: ast.AST) -> int:
        return self.src.offset(getattr(node, "lineno", None), getattr(node, "col_offset", None))

    def end(self, node: ast.AST) -> int:
        return self.src.offset(getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None))

    def fail(self, node: ast.AST, message: str, hint: str | None = None, col: int | None = None):
        raise ExprError(message, self.col(node) if col is None else col, hint)

    def check_name(self, node: ast.Name) -> None:
        if node.id.startswith("_"):
            self.fail(node, f"names starting with '_' are not allowed ('{node.id}')")
        written = self.src.text[self.col(node):self.end(node)]
        if not written.isascii():   # Python folds look-alikes (NFKC): 'ｍａｘ' would silently be 'max'
            i, ch = next((i, c) for i, c in enumerate(written) if not c.isascii())
            self.fail(node, f"the name '{written}' contains '{ch}' (U+{ord(ch):04X} "
                            f"{unicodedata.name(ch, 'UNNAMED')}); names are ASCII", col=self.col(node) + i)

    def visit(self, node: ast.AST) -> None:
        t = type(node)
        if t is ast.Constant:
            v = node.value
            if isinstance(v, bool) or v is None or isinstance(v, str):
                return
            if isinstance(v, int):
                if abs(v) > MAX_INT:
                    self.fail(node, "number too large (the limit is 2**62)")
                return
            if isinstance(v, float):
                if not math.isfinite(v):
                    self.fail(node, "number too large (floats must be finite)")
                return
            if isinstance(v, complex):
                self.fail(node, "complex numbers are not allowed")
            if isinstance(v, bytes):
                self.fail(node, "bytes literals are not allowed", "use a plain string")
            self.fail(node, f"literal {type(v).__name__} is not allowed")
        elif t is ast.Name:
            self.check_name(node)
            if node.id not in _CONST_NAMES:
                self.names.add(node.id)
        elif t is ast.BinOp:
            op = type(node.op)
            if op not in _BINOPS:
                sym = _BAD_BINOPS.get(op, op.__name__)
                col = self.src.find(self.end(node.left), self.col(node.right), sym, self.col(node))
                self.fail(node, f"operator '{sym}' is not allowed", col=col)
            self.visit(node.left)
            self.visit(node.right)
        elif t is ast.UnaryOp:
            if isinstance(node.op, ast.Invert):
                self.fail(node, "operator '~' is not allowed")
            self.visit(node.operand)
        elif t is ast.BoolOp:
            for v in node.values:
                self.visit(v)
        elif t is ast.Compare:
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, (ast.Is, ast.IsNot)):
                    col = self.src.find(self.end(left), self.col(right), "is", self.col(node))
                    self.fail(node, "'is' is not allowed; use == or !=", col=col)
                left = right
            self.visit(node.left)
            for c in node.comparators:
                self.visit(c)
        elif t is ast.IfExp:
            self.visit(node.test)
            self.visit(node.body)
            self.visit(node.orelse)
        elif t in (ast.List, ast.Tuple):
            for e in node.elts:
                self.visit(e)
        elif t is ast.Subscript:
            self.visit(node.value)
            s = node.slice
            if isinstance(s, ast.Slice):
                for part in (s.lower, s.upper, s.step):
                    if part is not None:
                        self.visit(part)
            elif isinstance(s, ast.Tuple) and any(isinstance(e, ast.Slice) for e in s.elts):
                self.fail(s, "multi-dimensional indexing is not allowed")
            else:
                self.visit(s)
        elif t is ast.Call:
            f = node.func
            if not isinstance(f, ast.Name):
                self.fail(f, "only calls of named functions, like max(a, b), are allowed")
            self.check_name(f)
            self.funcs.add(f.id)
            for a in node.args:
                self.visit(a)
            for kw in node.keywords:
                if kw.arg is None:
                    self.fail(kw, "**keyword arguments are not allowed")
                self.fail(kw, f"keyword arguments are not allowed ('{kw.arg}=')", "pass arguments by position")
        elif t in _REJECTED:
            message, hint = _REJECTED[t]
            col = None
            if t is ast.Attribute:
                attr_start = self.end(node) - len(node.attr)
                col = self.src.find(self.end(node.value), attr_start, ".", self.col(node))
                message = f"attribute access ('.{node.attr}') is not allowed"
            self.fail(node, message, hint, col=col)
        elif t is ast.Slice:
            self.fail(node, "a slice is only allowed inside [ ]")
        else:
            self.fail(node, f"{t.__name__} is not allowed in expressions")


# ----------------------------------------------------------------------------------------------
# evaluation


class _Evaluator:
    __slots__ = ("src", "env", "funcs", "steps", "sym")

    def __init__(self, src: _Source, env: Mapping[str, object], funcs: Mapping[str, Callable], sym=None):
        self.src = src
        self.env = env
        self.funcs = funcs
        self.steps = 0
        self.sym = sym          # the divisibility assumptions (shapes_dim.SymCtx) under which sizes divide exactly

    def col(self, node: ast.AST) -> int:
        return self.src.offset(node.lineno, node.col_offset)

    def end(self, node: ast.AST) -> int:
        return self.src.offset(node.end_lineno, node.end_col_offset)

    def eval(self, node: ast.AST) -> object:
        """Evaluate ``node``; ``steps`` counts the work: one per node, plus a sixteenth of each list or string made."""
        v = getattr(self, "e_" + type(node).__name__)(node)
        self.steps += 1 + (len(v) >> 4 if type(v) in (list, tuple, str) else 0)
        return v

    # leaves
    def e_Constant(self, node: ast.Constant) -> object:
        return node.value

    def e_Name(self, node: ast.Name) -> object:
        name = node.id
        if name in _CONST_NAMES:
            return _CONST_NAMES[name]
        env = self.env
        if name in env:
            return env[name]
        if name in self.funcs:
            raise ExprError(f"'{name}' is a function; call it like {name}(...)", self.col(node))
        candidates = [k for k in env if isinstance(k, str) and not k.startswith("_")]
        candidates += [k for k in self.funcs if isinstance(k, str)]
        match = difflib.get_close_matches(name, candidates, n=1)
        if match:
            hint = f"did you mean '{match[0]}'?"
            raise ExprError(f"unknown name '{name}' ({hint})", self.col(node), hint)
        known = sorted(k for k in env if isinstance(k, str) and not k.startswith("_"))
        hint = f"names available here: {', '.join(known[:30])}" if known else None
        raise ExprError(f"unknown name '{name}'", self.col(node), hint)

    # displays
    def e_List(self, node: ast.List) -> object:
        return _check_value([self.eval(e) for e in node.elts], self.col(node))

    def e_Tuple(self, node: ast.Tuple) -> object:
        return _check_value(tuple(self.eval(e) for e in node.elts), self.col(node))

    # operators
    def e_BinOp(self, node: ast.BinOp) -> object:
        a = self.eval(node.left)
        b = self.eval(node.right)
        sym, fn = _BINOPS[type(node.op)]
        col = self.src.find(self.end(node.left), self.col(node.right), sym, self.col(node))
        return self.binop(sym, fn, a, b, col)

    def binop(self, sym: str, fn: Callable, a: object, b: object, col: int) -> object:
        if type(a) is _SizeDim or type(b) is _SizeDim:
            return self.size_op(sym, fn, a, b, col)
        seqs = (str, list, tuple)
        if isinstance(a, seqs) or isinstance(b, seqs):
            return self.seq_op(sym, a, b, col)
        if _is_num(a) and _is_num(b):
            if sym == "**":
                self.check_pow(a, b, col)
        elif sym == "**":
            raise ExprError(f"cannot apply '**' to {_tname(a)} and {_tname(b)}", col)
        try:
            result = fn(a, b)
        except ZeroDivisionError:
            raise ExprError("division by zero", col) from None
        except OverflowError:
            raise ExprError("number too large", col) from None
        except _OP_ERRORS:
            raise ExprError(f"cannot apply '{sym}' to {_tname(a)} and {_tname(b)}", col) from None
        return _check_value(result, col)

    def size_op(self, sym: str, fn: Callable, a: object, b: object, col: int) -> object:
        """Arithmetic on a symbolic size (``dim(x, 2) // 2``): whole numbers only, exact under the divisibility the
        spec declares (``H // 4`` is ``H/4`` where H is a multiple of 4, else ``H//4``)."""
        from ..shapes_dim import floordiv, norm
        whole = all((type(v) is int) or type(v) is _SizeDim for v in (a, b))
        if not whole:
            raise ExprError(f"cannot apply '{sym}' to {_tname(a)} and {_tname(b)}: a symbolic size combines only "
                            "with whole numbers", col)
        if sym in ("+", "-", "*"):
            try:
                return norm(fn(a, b))
            except _OP_ERRORS:
                raise ExprError(f"cannot apply '{sym}' to {_tname(a)} and {_tname(b)}", col) from None
        if sym in ("//", "%"):
            if type(b) is not int or b < 1:
                raise ExprError(f"'{sym}' on a symbolic size needs a whole number of 1 or more on its right, got "
                                f"{b}", col)
            q = floordiv(a, b, self.sym)
            return norm(q if sym == "//" else a - q * b)
        if sym == "/":
            raise ExprError("'/' of a symbolic size is not a whole number", col,
                            "use '//' (floor division): 'dim(x, 2) // 2' is exact where the size divides")
        raise ExprError(f"cannot apply '{sym}' to {_tname(a)} and {_tname(b)}", col)

    @staticmethod
    def check_pow(a: int | float, b: int | float, col: int) -> None:
        if isinstance(a, int) and isinstance(b, int):
            if b < 0:
                if a == 0:
                    raise ExprError("division by zero (0 to a negative power)", col)
                return  # a float of magnitude <= 1
            if abs(a) <= 1:
                return
            if b > 64 or (abs(a).bit_length() - 1) * b > 62:
                raise ExprError("number too large (the limit is 2**62)", col)
        # floats: libm pow is fast; overflow and complex results are caught afterwards

    def seq_op(self, sym: str, a: object, b: object, col: int) -> object:
        bad = ExprError(f"cannot apply '{sym}' to {_tname(a)} and {_tname(b)}", col)
        if sym == "+":
            for t in (str, list, tuple):
                if isinstance(a, t) and isinstance(b, t):
                    break
            else:
                raise bad
            if isinstance(a, str):
                if len(a) + len(b) > MAX_STR_LEN:
                    raise ExprError(f"string too long (the limit is {MAX_STR_LEN} characters)", col)
            elif _deep_size_exceeds(a, MAX_ITEMS) or _deep_size_exceeds(b, MAX_ITEMS) or (
                _deep_size_exceeds([a, b], MAX_ITEMS + 2)
            ):
                raise ExprError(f"{_tname(a)} too large (the limit is {MAX_ITEMS} items)", col)
            try:
                return _check_value(a + b, col)
            except _OP_ERRORS:
                raise bad from None
        if sym == "*":
            if _is_int(b) or isinstance(b, bool):
                seq, n = a, b
            elif _is_int(a) or isinstance(a, bool):
                seq, n = b, a
            else:
                raise bad
            if not isinstance(seq, (str, list, tuple)):
                raise bad
            n = max(int(n), 0)
            if isinstance(seq, str):
                if len(seq) * n > MAX_STR_LEN:
                    raise ExprError(f"string too long (the limit is {MAX_STR_LEN} characters)", col)
            else:
                size = MAX_ITEMS + 1 if _deep_size_exceeds(seq, MAX_ITEMS) else _deep_size(seq)
                if size * n > MAX_ITEMS:
                    raise ExprError(f"{_tname(seq)} too large (the limit is {MAX_ITEMS} items)", col)
            try:
                return _check_value(seq * n, col)
            except _OP_ERRORS:
                raise bad from None
        raise bad

    def e_UnaryOp(self, node: ast.UnaryOp) -> object:
        v = self.eval(node.operand)
        col = self.col(node)
        if isinstance(node.op, ast.Not):
            return not _truth(v, self.col(node.operand))
        sym, fn = ("-", operator.neg) if isinstance(node.op, ast.USub) else ("+", operator.pos)
        if isinstance(v, (str, list, tuple)) or v is None:
            raise ExprError(f"cannot apply unary '{sym}' to {_tname(v)}", col)
        try:
            result = fn(v)
        except _OP_ERRORS:
            raise ExprError(f"cannot apply unary '{sym}' to {_tname(v)}", col) from None
        return _check_value(result, col)

    def e_BoolOp(self, node: ast.BoolOp) -> object:
        is_and = isinstance(node.op, ast.And)
        v: object = None
        for operand in node.values:
            v = self.eval(operand)
            t = _truth(v, self.col(operand))
            if t != is_and:  # `and` stops at the first falsy value, `or` at the first truthy one
                return v
        return v

    def e_Compare(self, node: ast.Compare) -> object:
        left_node = node.left
        left = self.eval(left_node)
        result: object = True
        for op, right_node in zip(node.ops, node.comparators):
            right = self.eval(right_node)
            sym, fn = _CMPOPS[type(op)]
            token = "not" if sym == "not in" else sym
            col = self.src.find(self.end(left_node), self.col(right_node), token, self.col(node))
            if fn is None:  # in / not in
                if isinstance(right, (list, tuple)):
                    pass
                elif isinstance(right, str) and isinstance(left, str):
                    pass
                else:
                    raise ExprError(f"'{sym}' needs a list or tuple on the right, got {_tname(right)}", col)
                try:
                    result = (left in right) if sym == "in" else (left not in right)
                except _OP_ERRORS:
                    raise ExprError(f"cannot apply '{sym}' to {_tname(left)} and {_tname(right)}", col) from None
            else:
                try:
                    result = fn(left, right)
                except _OP_ERRORS:
                    raise ExprError(f"cannot apply '{sym}' to {_tname(left)} and {_tname(right)}", col) from None
            if not _truth(result, col):
                return result
            left, left_node = right, right_node
        return result

    def e_IfExp(self, node: ast.IfExp) -> object:
        if _truth(self.eval(node.test), self.col(node.test)):
            return self.eval(node.body)
        return self.eval(node.orelse)

    def e_Subscript(self, node: ast.Subscript) -> object:
        seq = self.eval(node.value)
        s = node.slice
        if not isinstance(seq, (list, tuple)):
            raise ExprError(f"cannot index a {_tname(seq)}; only lists and tuples can be indexed", self.col(node))
        if isinstance(s, ast.Slice):
            parts = []
            for part in (s.lower, s.upper, s.step):
                if part is None:
                    parts.append(None)
                    continue
                v = self.eval(part)
                if not _is_int(v):
                    raise ExprError(f"slice bounds must be integers, got {_tname(v)}", self.col(part))
                parts.append(v)
            if parts[2] == 0:
                raise ExprError("slice step cannot be zero", self.col(s.step))
            return seq[parts[0] : parts[1] : parts[2]]
        i = self.eval(s)
        if not _is_int(i):
            raise ExprError(f"index must be an integer, got {_tname(i)}", self.col(s))
        if not -len(seq) <= i < len(seq):
            raise ExprError(f"index {i} out of range for a {_tname(seq)} of length {len(seq)}", self.col(s))
        return seq[i]

    def e_Call(self, node: ast.Call) -> object:
        name = node.func.id  # validated: a Name
        col = self.col(node)
        fn = self.funcs.get(name)
        if fn is None:
            available = sorted(k for k in self.funcs if isinstance(k, str))
            match = difflib.get_close_matches(name, available, n=1)
            hint = f"did you mean '{match[0]}'?" if match else None
            message = f"function '{name}' is not allowed"
            if hint:
                message += f" ({hint})"
            message += f"; available: {', '.join(available)}"
            raise ExprError(message, col, hint)
        args = [self.eval(a) for a in node.args]
        try:
            result = fn(*args)
        except ExprError as e:
            raise ExprError(e.message, col, e.hint) from None
        except _OP_ERRORS as e:
            raise ExprError(f"{name}(): {e}", col) from None
        return _check_value(result, col)


def _deep_size(v: object) -> int:
    count = 0
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            count += len(x)
            stack.extend(e for e in x if isinstance(e, (list, tuple)))
    return count


# ----------------------------------------------------------------------------------------------
# public API


class Expr:
    """A parsed, validated expression. Immutable; evaluate it any number of times with :meth:`eval`."""

    __slots__ = ("text", "names", "functions", "_body", "_src")

    text: str
    names: frozenset[str]  # free variable names (not function names, not true/false/null/none)
    functions: frozenset[str]  # names of the functions it calls

    def __init__(self, text: str, body: ast.expr, src: _Source, names: frozenset[str], functions: frozenset[str]):
        self.text = text
        self.names = names
        self.functions = functions
        self._body = body
        self._src = src

    def eval(self, env: Mapping[str, object], funcs: Mapping[str, Callable] | None = None,
             meter: list | None = None, sym=None) -> object:
        """Evaluate over ``env``; ``funcs`` extends/overrides :data:`BUILTIN_FUNCS`. With ``meter`` (a one-item list),
        the work done -- nodes evaluated, plus the sizes of the lists and strings they made -- is added to it.
        ``sym`` (a ``shapes_dim.SymCtx``) holds the divisibility under which symbolic sizes divide exactly."""
        if env is None:
            env = {}
        merged = {**BUILTIN_FUNCS, **funcs} if funcs else BUILTIN_FUNCS
        ev = _Evaluator(self._src, env, merged, sym)
        try:
            return ev.eval(self._body)
        finally:
            if meter is not None:
                meter[0] += ev.steps

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("Expr", self.text))


def parse(text: str) -> Expr:
    """Parse and validate ``text``; raises :class:`ExprError` (syntax errors too) with a column."""
    if not isinstance(text, str):
        raise ExprError(f"an expression must be a string, got {type(text).__name__}")
    return _parse_cached(text)


@lru_cache(maxsize=2048)
def _parse_cached(text: str) -> Expr:
    if len(text) > MAX_TEXT_LEN:
        raise ExprError(f"expression too long ({len(text)} characters; the limit is {MAX_TEXT_LEN})", 0)
    nul = text.find("\x00")
    if nul >= 0:
        raise ExprError("null character in expression", nul)
    body_text = text.lstrip(" \t\n\r\f")
    lead = len(text) - len(body_text)
    if not body_text.strip():
        raise ExprError("empty expression", 0)
    deep = _bracket_overflow(text)
    if deep is not None:
        raise ExprError(f"expression nested too deeply (the limit is {MAX_DEPTH} levels)", deep)
    src = _Source(text, lead)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(body_text + "\n", mode="eval")
    except SyntaxError as e:
        raise _syntax_error(e, text, src) from None
    except (RecursionError, MemoryError):
        raise ExprError(f"expression nested too deeply (the limit is {MAX_DEPTH} levels)", 0) from None
    except ValueError as e:  # e.g. invalid characters the tokenizer rejects
        raise ExprError(f"invalid expression: {e}", 0) from None

    # size and depth, iteratively (the validator below recurses)
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            count += 1
            if count > MAX_NODES:
                raise ExprError(f"expression too complex (more than {MAX_NODES} parts)", 0)
        if depth > MAX_DEPTH:
            raise ExprError(
                f"expression nested too deeply (the limit is {MAX_DEPTH} levels)",
                src.offset(getattr(node, "lineno", None), getattr(node, "col_offset", None)),
            )
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1))

    v = _Validator(src)
    v.visit(tree.body)
    return Expr(text, tree.body, src, frozenset(v.names), frozenset(v.funcs))


def _syntax_error(e: SyntaxError, text: str, src: _Source) -> ExprError:
    msg = e.msg or "invalid syntax"
    if e.lineno is None or not e.offset:
        col = len(text.rstrip())
    else:
        col = src.offset(e.lineno, e.offset - 1, byte_col=False)
    if col >= len(text.rstrip()):
        col = len(text.rstrip())
        if msg == "invalid syntax":
            msg = "invalid syntax: the expression ends too early"
    if msg.startswith("unexpected indent") or msg.startswith("unindent"):
        msg = "invalid syntax: unexpected indentation"
    hint = None
    if text.startswith("*", col) and not text.startswith("**", col):
        hint = "starred expressions (*x) are not allowed"
    elif text.startswith("=", col) and not text.startswith("==", col):
        hint = "use == to compare; assignment is not allowed"
    if hint:
        msg = f"{msg} ({hint})"
    return ExprError(f"syntax error: {msg}", col, hint)


def evaluate(text: str, env: Mapping[str, object], funcs: Mapping[str, Callable] | None = None) -> object:
    """``parse(text).eval(env, funcs)``."""
    return parse(text).eval(env, funcs)


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id in _CONST_NAMES
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return isinstance(node.operand, ast.Constant)
    if isinstance(node, (ast.List, ast.Tuple)):
        return all(_is_literal(e) for e in node.elts)
    return False


def looks_like_expression(s: str) -> bool:
    """True if ``s`` parses under the whitelist and is more than a bare literal.

    ``"planes * 4"``, ``"stride"`` and ``"max(a, 1)"`` are expressions; ``"3"``, ``"'same'"``,
    ``"[1, 2]"`` and text that does not parse are not. Never raises.
    """
    try:
        e = parse(s)
    except ExprError:
        return False
    return not _is_literal(e._body)
