"""Tests for netspec.shapes_dim: symbolic sizes, conv arithmetic, printing, comparison."""

from __future__ import annotations

import copy
import itertools
import math
import pickle
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.shapes_dim import (
    Dim,
    FloorDiv,
    Requirement,
    SymCtx,
    Verdict,
    ceildiv,
    compare,
    convT_out,
    conv_out,
    exact_div,
    floordiv,
    is_sym,
    min_value,
    mul_all,
    norm,
)

N, C, T, H, W = (Dim.sym(s) for s in "NCTHW")
CTX = SymCtx()


# ---------------------------------------------------------------------------------------------
# reference formulas, written out as PyTorch computes them (aten pooling_output_shape / conv)


def torch_conv(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def torch_pool(size, k, s, p, d, ceil_mode):
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def torch_convT(size, k, s, p, op, d):
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


# ---------------------------------------------------------------------------------------------
# basics


def test_sym_and_canonical_equality():
    assert is_sym(H) and not is_sym(3)
    assert H + 0 == H
    assert H + H == 2 * H
    assert 2 * H == H * 2
    assert hash(H + H) == hash(2 * H)
    assert H * W == W * H
    assert (H + 1) - 1 == H
    assert H - H == 0 and type(H - H) is int
    assert (H + 3) - H == 3 and type((H + 3) - H) is int
    assert H * 0 == 0 and type(H * 0) is int
    assert H != W and H != H + 1
    assert H != 5 and not (H == 5)
    assert -(-H) == H
    assert 3 - H == -(H - 3)
    assert {H + 1: "a"}[1 + H] == "a"


def test_norm_and_mul_all():
    assert norm(7) == 7
    assert norm(H) is H
    assert mul_all([]) == 1
    assert mul_all([2, 3, 4]) == 24 and type(mul_all([2, 3, 4])) is int
    assert mul_all([N, 64, H, W]) == 64 * N * H * W
    assert mul_all([H, 2, H]) == 2 * H * H


def test_free_symbols_and_evaluate():
    x = ceildiv(H, 4, CTX) * W + N
    assert x.free_symbols() == frozenset({"H", "W", "N"})
    assert x.evaluate({"H": 10, "W": 3, "N": 2}) == 3 * 3 + 2
    with pytest.raises(KeyError):
        x.evaluate({"H": 10, "W": 3})
    half = floordiv(H, 2, SymCtx({"H": 2}))
    assert half.evaluate({"H": 10}) == 5
    with pytest.raises(ValueError):  # H=9 breaks the "multiple of 2" assumption
        half.evaluate({"H": 9})


def test_invalid_symbol_and_divisor():
    with pytest.raises(ValueError):
        Dim.sym("2x")
    with pytest.raises(ValueError):
        floordiv(H, 0, CTX)
    with pytest.raises(TypeError):
        H + 1.5
    with pytest.raises(TypeError):
        Dim()


def test_immutable_copy_pickle():
    x = 64 * ceildiv(H, 4, CTX) * W + 3
    assert copy.deepcopy(x) is x
    y = pickle.loads(pickle.dumps(x))
    assert y == x and hash(y) == hash(x) and str(y) == str(x)


# ---------------------------------------------------------------------------------------------
# printing


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda: H, "H"),
        (lambda: 2 * H, "2*H"),
        (lambda: 2 * H - 3, "2*H-3"),
        (lambda: H + 1, "H+1"),
        (lambda: -H + 3, "-H+3"),
        (lambda: 64 * H * W, "64*H*W"),
        (lambda: W * H * 64, "64*H*W"),
        (lambda: mul_all([W, H, T, C, N]), "N*C*T*H*W"),
        (lambda: Dim.sym("b") * Dim.sym("a") * H, "H*a*b"),
        (lambda: T * T * N, "N*T**2"),
        (lambda: H * W + H + W + 1, "H*W+H+W+1"),
        (lambda: floordiv(H, 2, CTX), "H//2"),
        (lambda: floordiv(H - 1, 2, CTX), "(H-1)//2"),
        (lambda: floordiv(H + 5, 2, CTX), "(H+5)//2"),
        (lambda: floordiv(H * W, 4, CTX), "H*W//4"),
        (lambda: ceildiv(H, 4, CTX), "ceil(H/4)"),
        (lambda: ceildiv(H + W, 2, CTX), "ceil((H+W)/2)"),
        (lambda: 2 * floordiv(H, 2, CTX), "2*(H//2)"),
        (lambda: 2 * ceildiv(H, 2, CTX), "2*ceil(H/2)"),
        (lambda: W - floordiv(H, 2, CTX), "W-H//2"),
        (lambda: -floordiv(H, 2, CTX), "-(H//2)"),
        (lambda: floordiv(H, 2, CTX) * floordiv(H, 2, CTX), "(H//2)**2"),
        (lambda: 4 * floordiv(H, 2, CTX) * floordiv(W, 2, CTX), "4*(H//2)*(W//2)"),
        (lambda: floordiv(H, 2, SymCtx({"H": 2})), "H/2"),
        (lambda: floordiv(H, 16, SymCtx({"H": 16})), "H/16"),
        (lambda: 3 * floordiv(H, 4, SymCtx({"H": 4})), "3*H/4"),
        (lambda: floordiv(H * W, 16, SymCtx({"H": 4, "W": 4})), "H*W/16"),
        (lambda: floordiv(H + 3, 2, SymCtx({"H": 2})), "H/2+1"),
        (lambda: -floordiv(H, 2, SymCtx({"H": 2})), "-H/2"),
        (lambda: 64 * ceildiv(H, 4, CTX) * ceildiv(W, 4, CTX), "64*ceil(H/4)*ceil(W/4)"),
    ],
)
def test_str(make, text):
    x = make()
    assert str(x) == text
    assert repr(x) == text
    assert f"{x}" == text


def test_printed_form_is_python_with_ceil():
    # every printed form reads back as the same integer: Python syntax plus ceil, with "/" exact
    exprs = [
        floordiv(H - 1, 2, CTX),
        W - floordiv(H, 2, CTX),
        -floordiv(H, 2, CTX) + 7,
        2 * floordiv(H, 2, CTX) + 1,
        ceildiv(H + W, 3, CTX) * floordiv(W, 2, CTX),
        floordiv(3 * floordiv(H, 2, CTX) + 1, 2, CTX),
        floordiv(H * W - 3, 4, CTX) * floordiv(H, 2, CTX) - 2 * H,
        5 * ceildiv(H, 4, CTX) + 3,
    ]
    for x in exprs:
        src = str(x)
        for h, w in itertools.product(range(1, 20), range(1, 7)):
            env = {"H": Fraction(h), "W": Fraction(w)}
            got = eval(src, {"__builtins__": {}, "ceil": math.ceil}, env)
            assert got == x.evaluate({"H": h, "W": w}), (src, h, w)
    ctx = SymCtx({"H": 4})
    x = 3 * floordiv(H, 4, ctx) + floordiv(H, 8, ctx)
    for k in range(1, 30):
        assert eval(str(x), {"ceil": math.ceil}, {"H": Fraction(4 * k)}) == x.evaluate({"H": 4 * k})


# ---------------------------------------------------------------------------------------------
# floordiv / ceildiv


def test_floordiv_rules():
    assert floordiv(7, 2, CTX) == 3 and floordiv(-7, 2, CTX) == -4
    assert floordiv(H, 1, CTX) is H
    assert floordiv(4 * H + 2, 2, CTX) == 2 * H + 1  # exact terms come out
    assert floordiv(2 * H + W, 2, CTX) == H + floordiv(W, 2, CTX)
    ctx2 = SymCtx({"H": 2})
    assert floordiv(H + 3, 2, ctx2) == floordiv(H, 2, ctx2) + 1  # floor(H/2 + 3/2) = H/2 + 1
    # nested floors collapse
    assert floordiv(floordiv(H, 2, CTX), 2, CTX) == floordiv(H, 4, CTX)
    assert floordiv(floordiv(H + 1, 2, CTX) + 1, 3, CTX) == floordiv(H + 3, 6, CTX)
    # constants are absorbed into a lone floor
    assert floordiv(H, 2, CTX) + 1 == floordiv(H + 2, 2, CTX)
    assert floordiv(H, 2, CTX) - 1 == floordiv(H - 2, 2, CTX)
    (atom_mono, coef), = (floordiv(H, 2, CTX) + 1).terms()
    assert coef == 1
    # what stays in the floor after exact terms leave is put in canonical form again
    fl = floordiv(H, 2, CTX)
    assert floordiv(2 * fl + 3 * W + 5, 3, CTX) == W + floordiv(2 * fl + 5, 3, CTX)
    assert floordiv(fl + 2 * W + 3, 2, CTX) == W + floordiv(fl + 3, 2, CTX) == W + floordiv(H + 6, 4, CTX)
    # the new floor atom may already be among the exact terms
    assert floordiv(2 * fl + H, 2, CTX) == 2 * fl
    # common factors with the divisor are divided out
    assert floordiv(2 * H + 2, 4, CTX) == floordiv(H + 1, 2, CTX)
    # fractional coefficients are multiplied through: floor((H/4)/2) = H//8
    assert floordiv(floordiv(H, 4, SymCtx({"H": 4})), 2, SymCtx({"H": 4})) == floordiv(H, 8, CTX)
    # the atom itself
    x = floordiv(H + 1, 2, CTX)
    ((mono, c),) = x.terms()
    ((atom, pw),) = mono
    assert isinstance(atom, FloorDiv) and atom.d == 2 and atom.num == H + 1 and pw == 1


def test_ceildiv():
    assert ceildiv(7, 2, CTX) == 4
    assert ceildiv(H, 2, CTX) == floordiv(H + 1, 2, CTX)
    assert str(ceildiv(ceildiv(H, 2, CTX), 2, CTX)) == "ceil(H/4)"
    assert ceildiv(H, 2, SymCtx({"H": 2})) == floordiv(H, 2, SymCtx({"H": 2}))


def test_floordiv_evaluates_for_all_values():
    ctxs = [SymCtx(), SymCtx({"H": 2}), SymCtx({"H": 3}), SymCtx({"H": 16})]
    for ctx in ctxs:
        m = ctx.multiple("H")
        for num, d in itertools.product(
            [H, H + 1, H - 1, 3 * H + 1, 2 * H + 5, H * H, floordiv(H, 3, ctx) * 2 + H], [1, 2, 3, 4, 8]
        ):
            x = floordiv(num, d, ctx)
            y = ceildiv(num, d, ctx)
            for k in range(1, 60):
                env = {"H": m * k}
                assert x.evaluate(env) == num.evaluate(env) // d
                assert y.evaluate(env) == -(-num.evaluate(env) // d)


def test_symctx_copy():
    a = SymCtx({"H": 16})
    b = a.copy()
    b.multiple_of["H"] = 2
    assert a.multiple("H") == 16 and a.multiple("W") == 1


# ---------------------------------------------------------------------------------------------
# conv arithmetic


CONV_CASES = list(
    itertools.product(
        [1, 2, 3, 5, 7, 8, 31, 32, 224],  # size
        [1, 2, 3, 4, 7],  # kernel
        [1, 2, 3, 4],  # stride
        [0, 1, 2, 3],  # padding
        [1, 2],  # dilation
    )
)


@pytest.mark.parametrize("size, k, s, p, d", CONV_CASES)
def test_conv_out_int_matches_torch(size, k, s, p, d):
    assert conv_out(size, k, s, p, d, CTX) == torch_conv(size, k, s, p, d)
    assert conv_out(size, k, s, p, d, CTX, ceil_mode=False) == torch_pool(size, k, s, p, d, False)
    assert conv_out(size, k, s, p, d, CTX, ceil_mode=True) == torch_pool(size, k, s, p, d, True)


@pytest.mark.parametrize("k, s, p, d", list(itertools.product([1, 2, 3, 4, 5, 7], [1, 2, 3, 4], [0, 1, 2, 3, 5], [1, 2])))
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_conv_out_symbolic_matches_torch(k, s, p, d, ceil_mode):
    x = conv_out(H, k, s, p, d, CTX, ceil_mode=ceil_mode)
    for h in range(1, 80):
        assert x.evaluate({"H": h}) == torch_pool(h, k, s, p, d, ceil_mode), (k, s, p, d, h, str(x))


def test_convT_out():
    for size, k, s, p, op, d in itertools.product([1, 2, 5, 8], [1, 2, 3, 4], [1, 2, 3], [0, 1], [0, 1], [1, 2]):
        assert convT_out(size, k, s, p, op, d) == torch_convT(size, k, s, p, op, d)
        x = convT_out(H, k, s, p, op, d)
        assert norm(x).evaluate({"H": size}) == torch_convT(size, k, s, p, op, d)


def test_resnet_stem_and_stages():
    x = conv_out(H, 7, 2, 3, 1, CTX)
    assert str(x) == "ceil(H/2)"
    x = conv_out(x, 3, 2, 1, 1, CTX)  # maxpool 3/2/1
    assert str(x) == "ceil(H/4)"
    for h in range(1, 301):
        ref = torch_pool(torch_conv(h, 7, 2, 3, 1), 3, 2, 1, 1, False)
        assert x.evaluate({"H": h}) == ref
    # stride-1 blocks keep the size structurally
    assert conv_out(conv_out(x, 3, 1, 1, 1, CTX), 3, 1, 1, 1, CTX) == x
    # three more stride-2 stages: main path conv3x3 s2 p1, shortcut conv1x1 s2 p0 agree structurally
    for _ in range(3):
        main = conv_out(conv_out(x, 3, 2, 1, 1, CTX), 3, 1, 1, 1, CTX)
        short = conv_out(x, 1, 2, 0, 1, CTX)
        assert main == short
        assert compare(main, short, CTX).kind == "equal"
        x = main
    assert str(x) == "ceil(H/32)"
    for h in range(1, 301):
        ref = h
        ref = torch_conv(ref, 7, 2, 3, 1)
        ref = torch_pool(ref, 3, 2, 1, 1, False)
        for _ in range(3):
            ref = torch_conv(ref, 3, 2, 1, 1)
        assert x.evaluate({"H": h}) == ref
    # global average pooling + flatten: 512 channels
    assert mul_all([512, 1, 1]) == 512


def test_unet_skip_requires_even():
    down = conv_out(H, 2, 2, 0, 1, CTX)  # maxpool 2/2
    assert str(down) == "H//2"
    up = convT_out(down, 2, 2, 0, 0, 1)
    assert up == 2 * floordiv(H, 2, CTX)
    assert str(up) == "2*(H//2)"
    v = compare(up, H, CTX)
    assert v.kind == "requires"
    assert v.requirement == Requirement("H % 2 == 0", "H", 2)
    assert compare(H, up, CTX).requirement.multiple_of == 2

    ctx = SymCtx({"H": 2})
    assert str(floordiv(H, 2, ctx)) == "H/2"
    down = conv_out(H, 2, 2, 0, 1, ctx)
    assert str(down) == "H/2"
    up = convT_out(down, 2, 2, 0, 0, 1)
    assert up == H
    assert compare(up, H, ctx).kind == "equal"


def test_unet_four_levels():
    ctx = SymCtx({"H": 16, "W": 16})
    skips = []
    x = H
    for _ in range(4):
        x = conv_out(x, 3, 1, 1, 1, ctx)
        skips.append(x)
        x = conv_out(x, 2, 2, 0, 1, ctx)
    assert str(x) == "H/16"
    for skip in reversed(skips):
        x = convT_out(x, 2, 2, 0, 0, 1)
        assert compare(x, skip, ctx).kind == "equal"
        assert x == skip
    assert x == H
    # without the assumption the deepest merge needs H % 16 == 0
    x = H
    for _ in range(4):
        x = conv_out(x, 2, 2, 0, 1, CTX)
    assert str(x) == "H//16"
    up = x
    for _ in range(4):
        up = convT_out(up, 2, 2, 0, 0, 1)
    v = compare(up, H, CTX)
    assert v.kind == "requires" and v.requirement.symbol == "H" and v.requirement.multiple_of == 16
    assert v.requirement.text == "H % 16 == 0"
    # with H known to be even the requirement is still 16
    ctx2 = SymCtx({"H": 2})
    x = H
    for _ in range(4):
        x = conv_out(x, 2, 2, 0, 1, ctx2)
    for _ in range(4):
        x = convT_out(x, 2, 2, 0, 0, 1)
    assert compare(x, H, ctx2).requirement.multiple_of == 16


# ---------------------------------------------------------------------------------------------
# compare


def test_compare_basic():
    assert compare(3, 3, CTX).kind == "equal"
    assert compare(3, 4, CTX).kind == "never"
    assert compare(H, H + 1, CTX).kind == "never"
    assert compare(2 * H, H * 2, CTX).kind == "equal"
    assert compare(H, W, CTX).kind == "requires"
    assert compare(H, 5, CTX) == Verdict("requires", Requirement("H == 5"))
    # equal but structurally different
    a = floordiv(3 * H + 1, 2, CTX)
    b = H + ceildiv(H, 2, CTX)
    assert a != b
    assert compare(a, b, CTX).kind == "equal"
    assert compare(ceildiv(H, 2, CTX) + 1, floordiv(H + 3, 2, CTX), CTX).kind == "equal"
    assert compare(2 * ceildiv(H, 2, CTX), H + 1, CTX).requirement.text == "2*ceil(H/2) == H+1"


def test_compare_multiple_symbols():
    a = 4 * floordiv(H, 2, CTX) * floordiv(W, 2, CTX)
    v = compare(a, H * W, CTX)
    assert v.kind == "requires"
    assert v.requirement.symbol is None and v.requirement.text == "H % 2 == 0 and W % 2 == 0"
    v = compare(2 * floordiv(H, 2, CTX) * W, H * W, CTX)
    assert v.requirement == Requirement("H % 2 == 0", "H", 2)
    assert compare(N * T * 512, T * N * 512, CTX).kind == "equal"
    assert compare(N * T + 1, N * T, CTX).kind == "never"
    v = compare(H * W, 64, CTX)
    assert v.kind == "requires" and v.requirement.symbol is None


def test_compare_ignores_invalid_sizes():
    # both sides are only equal where they are not positive sizes
    assert compare(H - 10, 2 * H - 20, CTX).kind == "never"  # equal only at H=10, where both are 0


@pytest.mark.parametrize("d", [2, 3, 4, 6, 8, 32])
def test_compare_requirement_is_exact(d):
    up = d * floordiv(H, d, CTX)
    v = compare(up, H, CTX)
    assert v.requirement == Requirement(f"H % {d} == 0", "H", d)
    for h in range(1, 5 * d):
        assert (up.evaluate({"H": h}) == h) == (h % d == 0)


# ---------------------------------------------------------------------------------------------
# exact_div, min_value


def test_exact_div():
    assert exact_div(N * T * 512, N * T * 8, CTX) == 64
    assert type(exact_div(N * T * 512, N * T * 8, CTX)) is int
    assert exact_div(64 * H * W, H, CTX) == 64 * W
    assert exact_div(H + 1, 2, CTX) is None
    assert exact_div(2 * H + 4, 2, CTX) == H + 2
    assert exact_div(H, 2, CTX) is None
    assert str(exact_div(H, 2, SymCtx({"H": 2}))) == "H/2"
    assert exact_div(H, H + 1, CTX) is None  # not a single term
    assert exact_div(H, W, CTX) is None
    assert exact_div(6, 3, CTX) == 2 and exact_div(7, 3, CTX) is None
    assert exact_div(H, 0, CTX) is None
    assert exact_div(0, H, CTX) == 0
    assert exact_div(3, H, CTX) is None
    assert exact_div(N * H * W * 96, 3 * H, CTX) == 32 * N * W
    assert exact_div(ceildiv(H, 2, CTX) * 8, 4, CTX) == 2 * ceildiv(H, 2, CTX)


def test_min_value():
    assert min_value(H, CTX) is None
    assert min_value(conv_out(H, 7, 1, 0, 1, CTX), CTX) == {"H": 7}
    assert min_value(conv_out(H, 7, 1, 0, 1, CTX), SymCtx({"H": 4})) == {"H": 8}
    x = H
    for _ in range(5):
        x = conv_out(x, 3, 2, 0, 1, CTX)
    h = min_value(x, CTX)["H"]
    assert x.evaluate({"H": h}) >= 1 and x.evaluate({"H": h - 1}) < 1
    assert min_value(5, CTX) is None and min_value(0, CTX) == {}
    assert min_value(H - 5000, CTX) == {"H": 5001}
    assert min_value(-H, CTX) == {}


# ---------------------------------------------------------------------------------------------
# long chains stay small and correct (no timing asserted; see the benchmark note in the report)


def test_long_chain():
    x = H
    for i in range(10_000):
        x = conv_out(x, 3, 1, 1, 1, CTX)
        if i % 1000 == 0:
            x = conv_out(x, 3, 2, 1, 1, CTX)
    assert str(x) == "ceil(H/1024)"
    assert x.evaluate({"H": 5000}) == -(-5000 // 1024)


# ---------------------------------------------------------------------------------------------
# property: symbolic chains evaluate like the same chain on integers

_op = st.one_of(
    st.tuples(st.just("conv"), st.integers(1, 7), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3),
              st.booleans()),
    st.tuples(st.just("convT"), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(0, 1),
              st.integers(1, 2)),
    st.tuples(st.just("floordiv"), st.integers(1, 8)),
    st.tuples(st.just("ceildiv"), st.integers(1, 8)),
    st.tuples(st.just("add"), st.integers(-4, 6)),
    st.tuples(st.just("mul"), st.integers(1, 4)),
    st.tuples(st.just("addsym")),
    st.tuples(st.just("subsym")),
    st.tuples(st.just("mulsym")),
    st.tuples(st.just("addfloor"), st.integers(1, 4), st.integers(-3, 3)),
)


def _apply(x, h, op, ctx):
    kind = op[0]
    if kind == "conv":
        _, k, s, p, d, cm = op
        return conv_out(x, k, s, p, d, ctx, ceil_mode=cm)
    if kind == "convT":
        _, k, s, p, o, d = op
        return convT_out(x, k, s, p, o, d)
    if kind == "floordiv":
        return floordiv(x, op[1], ctx)
    if kind == "ceildiv":
        return ceildiv(x, op[1], ctx)
    if kind == "add":
        return x + op[1]
    if kind == "mul":
        return x * op[1]
    if kind == "addsym":
        return x + h
    if kind == "subsym":
        return x - h
    if kind == "mulsym":
        return x * h
    if kind == "addfloor":
        return x + op[2] * floordiv(h, op[1], ctx)
    raise AssertionError(kind)


def _apply_int(x, h, op):
    kind = op[0]
    if kind == "conv":
        _, k, s, p, d, cm = op
        return torch_pool(x, k, s, p, d, cm)
    if kind == "convT":
        _, k, s, p, o, d = op
        return torch_convT(x, k, s, p, o, d)
    if kind == "floordiv":
        return x // op[1]
    if kind == "ceildiv":
        return -(-x // op[1])
    if kind == "add":
        return x + op[1]
    if kind == "mul":
        return x * op[1]
    if kind == "addsym":
        return x + h
    if kind == "subsym":
        return x - h
    if kind == "mulsym":
        return x * h
    if kind == "addfloor":
        return x + op[2] * (h // op[1])
    raise AssertionError(kind)


@settings(max_examples=400, deadline=None)
@given(
    ops=st.lists(_op, min_size=1, max_size=12),
    m=st.sampled_from([1, 2, 3, 4, 8, 16]),
    ks=st.lists(st.integers(1, 300), min_size=1, max_size=8),
)
def test_property_chain_matches_int(ops, m, ks):
    ctx = SymCtx({"H": m})
    x = H
    for op in ops:
        x = _apply(x, H, op, ctx)
        assert not isinstance(x, Dim) or isinstance(norm(x), Dim)
    for k in ks:
        h = m * k
        ref = h
        for op in ops:
            ref = _apply_int(ref, h, op)
        got = x.evaluate({"H": h}) if isinstance(x, Dim) else x
        assert got == ref, (str(x), h)


@settings(max_examples=150, deadline=None)
@given(
    ops_a=st.lists(_op, min_size=0, max_size=6),
    ops_b=st.lists(_op, min_size=0, max_size=6),
    m=st.sampled_from([1, 2, 4]),
)
def test_property_compare_consistent(ops_a, ops_b, m):
    ctx = SymCtx({"H": m})
    a, b = H, H
    for op in ops_a:
        a = _apply(a, H, op, ctx)
    for op in ops_b:
        b = _apply(b, H, op, ctx)
    v = compare(a, b, ctx)
    vals = []
    for k in range(1, 40):
        env = {"H": m * k}
        va = a.evaluate(env) if isinstance(a, Dim) else a
        vb = b.evaluate(env) if isinstance(b, Dim) else b
        vals.append((k * m, va, vb))
    if v.kind == "equal":
        assert all(va == vb for _, va, vb in vals if va >= 1 and vb >= 1)
    if v.kind == "requires" and v.requirement.symbol == "H":
        q = v.requirement.multiple_of
        assert q % m == 0
        assert all((va == vb) == (h % q == 0) for h, va, vb in vals if va >= 1 and vb >= 1)
    if a == b:
        assert v.kind == "equal"


# random expression trees over H and W: sums and products of floors, then divided again
_leaf = st.one_of(st.just(("H",)), st.just(("W",)), st.tuples(st.just("int"), st.integers(-3, 4)))
_tree = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*"]), kids, kids),
        st.tuples(st.sampled_from(["floordiv", "ceildiv"]), kids, st.integers(1, 4)),
    ),
    max_leaves=8,
)


def _build(t, env, ctx):
    """(symbolic, integer) value of the tree; env maps symbol names to their integer values."""
    kind = t[0]
    if kind in ("H", "W"):
        return Dim.sym(kind), env[kind]
    if kind == "int":
        return t[1], t[1]
    if kind in ("+", "-", "*"):
        (a, ai), (b, bi) = _build(t[1], env, ctx), _build(t[2], env, ctx)
        if kind == "+":
            return a + b, ai + bi
        if kind == "-":
            return a - b, ai - bi
        return a * b, ai * bi
    a, ai = _build(t[1], env, ctx)
    d = t[2]
    if kind == "floordiv":
        return floordiv(a, d, ctx), ai // d
    return ceildiv(a, d, ctx), -(-ai // d)


@settings(max_examples=500, deadline=None)
@given(
    tree=_tree,
    mh=st.sampled_from([1, 2, 4]),
    mw=st.sampled_from([1, 3]),
    vals=st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=6),
)
def test_property_expression_trees(tree, mh, mw, vals):
    ctx = SymCtx({"H": mh, "W": mw})
    for kh, kw in vals:
        env = {"H": mh * kh, "W": mw * kw}
        sym, ref = _build(tree, env, ctx)
        got = sym.evaluate(env) if isinstance(sym, Dim) else sym
        assert got == ref, (str(sym), env)
        assert norm(sym) is sym or sym == norm(sym)
