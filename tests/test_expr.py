"""Tests for netspec.spec.expr: the safe expression language of spec files."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netspec.spec.expr import (
    BUILTIN_FUNCS,
    Expr,
    ExprError,
    evaluate,
    looks_like_expression,
    parse,
)

ENV = {
    "planes": 64,
    "i": 0,
    "j": 2,
    "x": 3,
    "stride": 1,
    "ratio": 0.25,
    "a": [1, 2, 3],
    "shape": (8, 16, 32, 32),
    "act": "relu",
}


def channels(t):
    return t[1]


FUNCS = {"channels": channels}


# ---------------------------------------------------------------------------------------------
# good expressions

GOOD = [
    ("planes * 4", 256),
    ("planes // 3", 21),
    ("planes % 3", 1),
    ("-planes + +x", -61),
    ("7 / 2", 3.5),
    ("8 / 2", 4.0),
    ("2 ** 10", 1024),
    ("2 ** -1", 0.5),
    ("(-2) ** 3", -8),
    ("2 ** 62", 2**62),
    ("-(2 ** 62)", -(2**62)),
    ("4611686018427387904", 2**62),
    ("2 if i == 0 else 1", 2),
    ("2 if j == 0 else 1", 1),
    ("1 < x < 5", True),
    ("1 < x < 2", False),
    ("0 <= i <= j != x", True),
    ("stride != 1 or channels(shape) != planes * 4", True),
    ("stride != 1 or channels(shape) != 16", False),
    ("x in [1, 2, 3]", True),
    ("x not in (1, 2)", True),
    ("act in ['relu', 'gelu']", True),
    ("'el' in act", True),
    ("not x", False),
    ("x and 0", 0),
    ("0 or x", 3),
    ("i or 'default'", "default"),
    ("make_divisible(32 * 6, 8)", 192),
    ("make_divisible(0.75 * 32, 8)", 24),
    ("make_divisible(channels(shape) * 6, 8)", 96),
    ("make_divisible(3, 8)", 8),
    ("make_divisible(10, 8, 16)", 16),
    ("make_divisible(planes * ratio, 8)", 16),
    ("a[0]", 1),
    ("a[-1]", 3),
    ("a[1:]", [2, 3]),
    ("a[::-1]", [3, 2, 1]),
    ("shape[2:]", (32, 32)),
    ("[1, 2][i]", 1),
    ("[planes, planes * 2][j - 1]", 128),
    ("(1, 2) + (3,)", (1, 2, 3)),
    ("[1] * 3", [1, 1, 1]),
    ("[[1, 2], [3]]", [[1, 2], [3]]),
    ("'same'", "same"),
    ("'con' + 'cat'", "concat"),
    ("true", True),
    ("false or True", True),
    ("null", None),
    ("none == None", True),
    ("min(3, 1, 2)", 1),
    ("max(a)", 3),
    ("abs(-4)", 4),
    ("int(3.9)", 3),
    ("int('12')", 12),
    ("float(2)", 2.0),
    ("round(2.5)", 2),
    ("round(3.14159, 2)", 3.14),
    ("bool([])", False),
    ("len(shape)", 4),
    ("sum(a)", 6),
    ("ceil(7 / 2)", 4),
    ("floor(7 / 2)", 3),
    ("sqrt(16)", 4.0),
    ("log2(8)", 3.0),
    ("gcd(12, 18)", 6),
    ("lcm(4, 6)", 12),
    ("all([1, True, 'x'])", True),
    ("any([0, False])", False),
    ("  planes + 1", 65),
    ("(planes  # a comment\n + 1)", 65),
    ("(\n  planes\n  * 2\n)", 128),
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_good_expressions(text, expected):
    value = evaluate(text, ENV, FUNCS)
    assert value == expected
    assert type(value) is type(expected)


def test_names_exclude_functions_and_constants():
    e = parse("make_divisible(channels(x) * 6, 8) if stride != 1 and true else planes")
    assert isinstance(e, Expr)
    assert e.text == "make_divisible(channels(x) * 6, 8) if stride != 1 and true else planes"
    assert e.names == frozenset({"x", "stride", "planes"})


def test_parse_once_eval_many():
    e = parse("2 if i == 0 else 1")
    assert [e.eval({"i": k}) for k in range(3)] == [2, 1, 1]


def test_conditional_is_lazy():
    # the branch not taken would divide by zero / use an unknown name
    assert evaluate("1 if x > 0 else 1 / 0", {"x": 1}) == 1
    assert evaluate("nope if x < 0 else 5", {"x": 1}) == 5
    assert evaluate("x == 0 or 1 / x > 0", {"x": 0}) is True
    assert evaluate("x != 0 and 1 / x > 0", {"x": 0}) is False


def test_funcs_extend_and_override_builtins():
    assert evaluate("double(x)", {"x": 4}, {"double": lambda v: v * 2}) == 8
    assert evaluate("max(1, 2)", {}, {"max": lambda *v: -1}) == -1
    assert "max" in BUILTIN_FUNCS and "make_divisible" in BUILTIN_FUNCS
    assert "range" not in BUILTIN_FUNCS


class Dim:
    """A stand-in for netspec's symbolic dimension: supports + - * // % and == with ints."""

    def __init__(self, expr: str):
        self.expr = expr

    def _wrap(self, op, other, rev=False):
        if not isinstance(other, (int, Dim)):
            return NotImplemented
        o = other.expr if isinstance(other, Dim) else str(other)
        return Dim(f"({o} {op} {self.expr})" if rev else f"({self.expr} {op} {o})")

    def __add__(self, o):
        return self._wrap("+", o)

    def __radd__(self, o):
        return self._wrap("+", o, True)

    def __sub__(self, o):
        return self._wrap("-", o)

    def __mul__(self, o):
        return self._wrap("*", o)

    def __rmul__(self, o):
        return self._wrap("*", o, True)

    def __floordiv__(self, o):
        return self._wrap("//", o)

    def __eq__(self, o):
        return isinstance(o, Dim) and o.expr == self.expr

    def __hash__(self):
        return hash(self.expr)

    def __bool__(self):
        raise TypeError("symbolic")


class Tensor:
    expr_type_name = "tensor"


def test_symbolic_objects_use_their_operators():
    h = Dim("H")
    assert evaluate("(h + 2 * 1 - 3) // 2 + 1", {"h": h}).expr == "((((H + 2) - 3) // 2) + 1)"
    assert evaluate("2 * h", {"h": h}).expr == "(2 * H)"
    assert evaluate("h == h", {"h": h}) is True
    assert evaluate("h != 3", {"h": h}) is True


@pytest.mark.parametrize(
    ("text", "message", "col"),
    [
        ("t * 2", "cannot apply '*' to tensor and int", 2),
        ("h ** 2", "cannot apply '**' to Dim and int", 2),
        ("h / 2", "cannot apply '/' to Dim and int", 2),
        ("h if h else 1", "cannot use a Dim as a condition", 5),
        ("-t", "cannot apply unary '-' to tensor", 0),
        ("t[0]", "only lists and tuples can be indexed", 0),
        ("[1] + 2", "cannot apply '+' to list and int", 4),
        ("'a' % 3", "cannot apply '%' to str and int", 4),
        ("'%s' % t", "cannot apply '%' to str and tensor", 5),
        ("None + 1", "cannot apply '+' to None and int", 5),
        ("1 < 'a'", "cannot apply '<' to int and str", 2),
        ("a[3]", "index 3 out of range", 2),
        ("a[0.5]", "index must be an integer", 2),
        ("a[::0]", "slice step cannot be zero", 4),
        ("x in 5", "needs a list or tuple", 2),
        ("abs('a')", "abs() needs a number", 0),
        ("abs(1, 2)", "abs() takes 1 argument", 0),
        ("min()", "min() takes at least 1 argument", 0),
        ("min([])", "min() needs at least one value", 0),
        ("min(1, 'a')", "min(): cannot compare", 0),
        ("sqrt(-1)", "negative", 0),
        ("log2(0)", "positive", 0),
        ("make_divisible(8, 0)", "divisor must be positive", 0),
        ("make_divisible('a', 8)", "needs a number", 0),
        ("sum(3)", "needs a list or tuple", 0),
        ("int('zz')", "not an integer", 0),
        ("float('inf')", "number too large", 0),
        ("round(1, 10**9)", "number of digits", 0),
        ("ceil(1e300)", "number too large", 0),
        ("x + boom(1)", "boom(): bad input", 4),
        ("max", "'max' is a function", 0),
        ("channels([])", "channels(): list index out of range", 0),
        ("channels(3)", "channels():", 0),
    ],
)
def test_runtime_errors(text, message, col):
    env = {**ENV, "h": Dim("H"), "t": Tensor()}

    def boom(v):
        raise ValueError("bad input")

    with pytest.raises(ExprError) as info:
        evaluate(text, env, {**FUNCS, "boom": boom})
    assert message in info.value.message
    assert info.value.col == col


# ---------------------------------------------------------------------------------------------
# hostile expressions

HOSTILE = [
    ("__import__('os')", "names starting with '_'", 0),
    ("().__class__", "attribute access", 2),
    ("x.y", "attribute access", 1),
    ("a[0].real", "attribute access", 4),
    ("lambda: 1", "lambda", 0),
    ("[i for i in range(3)]", "comprehension", 0),
    ("(i for i in a)", "generator", 0),
    ('f"{x}"', "f-string", 0),
    ("10**10**10", "number too large", 2),
    ("2**62*4", "number too large", 5),
    ("2**63", "number too large", 1),
    ("4611686018427387905", "number too large", 0),
    ("1/0", "division by zero", 1),
    ("x // 0", "division by zero", 2),
    ("x % 0", "division by zero", 2),
    ("1.5 % 0.0", "division by zero", 4),
    ("0 ** -1", "division by zero", 2),
    ("open('f')", "function 'open' is not allowed; available:", 0),
    ("mak_divisible(x, 8)", "did you mean 'make_divisible'?", 0),
    ("x(1)", "function 'x' is not allowed", 0),
    ("a[0](1)", "only calls of named functions", 0),
    ("max(a, key=abs)", "keyword arguments are not allowed", 7),
    ("{'a': 1}", "dict displays are not allowed", 0),
    ("{1, 2}", "set displays are not allowed", 0),
    ("(y := 1)", "assignment (:=) is not allowed", 1),
    ("*a", "starred", 0),
    ("max(*a)", "starred", 4),
    ('"a"*10**9', "string too long", 3),
    ("[0]*10**9", "too large", 3),
    ("[[0]*100]*100", "too large", 9),
    ("[[0]*1000]", "too large", 0),
    ("'a' * 600 + 'b' * 600", "string too long", 10),
    ("1e308 * 10", "number too large", 6),
    ("1e309", "number too large", 0),
    ("(-8) ** 0.5", "not a real number", 5),
    ("1j", "complex numbers are not allowed", 0),
    ("b'x'", "bytes literals are not allowed", 0),
    ("x is None", "'is' is not allowed", 2),
    ("x << 2", "operator '<<' is not allowed", 2),
    ("~x", "operator '~' is not allowed", 0),
    ("(yield)", "yield is not allowed", 1),
    ("await x", "await is not allowed", 0),
    ("planes +", "syntax error", 8),
    ("planes + * 2", "syntax error", 9),
    ("a = 1", "syntax error", 2),
    ("", "empty expression", 0),
    ("plnes * 2", "unknown name 'plnes' (did you mean 'planes'?)", 0),
    ("2 * plnes", "unknown name 'plnes' (did you mean 'planes'?)", 4),
    ("zzzzzz", "unknown name 'zzzzzz'", 0),
    ("_private", "names starting with '_'", 0),
    ("a\x00", "null character", 1),
    ("'é' + plnes", "did you mean 'planes'?", 6),
    ("'é' + 1", "cannot apply '+' to str and int", 4),
]


@pytest.mark.parametrize(("text", "message", "col"), HOSTILE)
def test_hostile_expressions(text, message, col):
    with pytest.raises(ExprError) as info:
        evaluate(text, ENV, FUNCS)
    err = info.value
    assert message in err.message, err.message
    assert err.col == col, (err.col, err.message)
    assert str(err) == err.message


def test_unknown_name_hint():
    with pytest.raises(ExprError) as info:
        evaluate("plnes", ENV)
    assert info.value.hint == "did you mean 'planes'?"


def test_too_long():
    text = " + ".join(["planes"] * 400)  # 3597 characters
    assert len(text) > 2000
    with pytest.raises(ExprError, match="too long") as info:
        parse(text)
    assert info.value.col == 0


def test_too_many_nodes():
    text = "[" + ",".join(["1"] * 600) + "]"
    with pytest.raises(ExprError, match="too complex"):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 200 + "1" + ")" * 200,
        "(" * 200 + ")" * 200,
        "[" * 200 + "]" * 200,
        "-" * 1999 + "1",
        "not " * 450 + "x",
        "1" + "+1" * 900,
        "2" + "**2" * 600,
        "a" + "[0]" * 600,
        "1 if x else " * 150 + "1",
    ],
)
def test_deep_nesting(text):
    start = time.process_time()
    with pytest.raises(ExprError, match="nested too deeply|too complex"):
        evaluate(text, ENV)
    assert time.process_time() - start < 2.0


def test_deep_parens_column():
    with pytest.raises(ExprError) as info:
        parse("(" * 200 + ")" * 200)
    assert info.value.col == 50


def test_brackets_inside_strings_do_not_count():
    assert evaluate("'" + "(" * 100 + "'", {}) == "(" * 100


def test_huge_power_is_instant():
    start = time.process_time()
    for text in ["10**10**10", "9**9**9**9", "2.0 ** 10 ** 9", "(2**62) ** 2", "lcm(2**62, 2**62 - 1)"]:
        with pytest.raises(ExprError, match="number too large"):
            evaluate(text, {})
    assert time.process_time() - start < 2.0


def test_big_list_comparison_is_bounded():
    start = time.process_time()
    with pytest.raises(ExprError):
        evaluate("[[[1] * 1000] * 1000] * 1000 == [[[1] * 1000] * 1000] * 1000", {})
    assert time.process_time() - start < 2.0


def test_non_string_input():
    with pytest.raises(ExprError):
        parse(12)  # type: ignore[arg-type]


def test_error_is_pickleable():
    import pickle

    err = pickle.loads(pickle.dumps(ExprError("boom", 3, "hint")))
    assert (err.message, err.col, err.hint) == ("boom", 3, "hint")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("planes * 4", True),
        ("stride", True),
        ("max(a, 1)", True),
        ("-x", True),
        ("3", False),
        ("-3", False),
        ("'same'", False),
        ("[1, 2]", False),
        ("true", False),
        ("x.y", False),
        ("planes +", False),
        ("hello world", False),
        ("", False),
    ],
)
def test_looks_like_expression(text, expected):
    assert looks_like_expression(text) is expected


# ---------------------------------------------------------------------------------------------
# property tests: anything at all ends in a value or an ExprError, quickly

SMALL_ENV = {"x": 3, "planes": 64, "a": [1, 2, 3], "s": "ab", "f": 0.5, "h": Dim("H")}


def _parse_and_eval(text: str) -> None:
    start = time.process_time()
    try:
        evaluate(text, SMALL_ENV, {"channels": channels})
    except ExprError as e:
        assert isinstance(e.message, str) and e.message
        assert isinstance(e.col, int) and 0 <= e.col <= len(text)
    assert time.process_time() - start < 2.0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_only_raises_expr_error(text):
    _parse_and_eval(text)


TOKENS = [
    "x", "planes", "a", "s", "f", "h", "0", "1", "2", "-1", "62", "10", "0.5", "1e308", "'q'",
    "True", "None", "null", "+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", ">=", "in",
    "not", "and", "or", "if", "else", "(", ")", "[", "]", ",", ":", "max", "min", "sum", "len",
    "make_divisible", "channels", "abs", "int", "float", "round", "sqrt", "log2", "gcd", "lcm",
    "all", "any", "ceil", "floor", "bool", ".", "_", "lambda", "=", "{", "}", "*", "~", "is",
]  # fmt: skip


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join))
def test_token_soup_only_raises_expr_error(text):
    _parse_and_eval(text)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.one_of(
            st.integers(-(2**70), 2**70).map(str),
            st.floats(allow_nan=False, allow_infinity=False).map(repr),
            st.sampled_from(["x", "planes", "a", "s", "h", "f"]),
        ),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<", "==", "and", "or"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(st.sampled_from(["max", "min", "abs", "make_divisible", "round", "sum"]), st.lists(inner, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"
            ),
            st.lists(inner, max_size=3).map(lambda v: "[" + ", ".join(v) + "]"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        ),
        max_leaves=20,
    )
)
def test_structured_expressions_only_raise_expr_error(text):
    _parse_and_eval(text)
