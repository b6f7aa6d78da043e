"""Scope: scoped defaults (`defaults: {op: {param: value}}`) flow from a network into the blocks it uses and from a
block into its nested blocks, inner ones and a layer's own values winning; `let:` values derive numbers once; and
arithmetic on symbolic sizes in expressions stays exact."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import netspec
from netspec.spec.expr import ExprError, parse
from netspec.shapes_dim import Dim, SymCtx

sys.path.insert(0, str(Path(__file__).parent))
from guarantee import assert_runs_as_checked  # noqa: E402

SPEC = """netspec: 1
params: {m: 0.01}
defaults: {batchnorm2d: {momentum: m, eps: 0.001}}
inputs: {x: [N, 3, H, W]}
blocks:
  inner:
    layers:
      - {name: bn, op: batchnorm2d}
  outer:
    params: {use_bias: false}
    defaults: {conv2d: {bias: use_bias, kernel: 3, padding: 1}, batchnorm2d: {eps: 0.0001}}
    layers:
      - {name: conv, op: conv2d, out: 8}
      - {name: bn, op: batchnorm2d}
      - {name: nested, op: inner}
      - {name: own, op: batchnorm2d, momentum: 0.5}
layers:
  - {name: stem, op: conv2d, out: 8, kernel: 1}
  - {name: bn, op: batchnorm2d}
  - {name: a, op: outer}
  - {name: b, op: outer, use_bias: true}
"""


def _nodes(text, **params):
    g = netspec.check(netspec.load(text)) if not params else None
    if g is not None:
        assert g.ok, "\n".join(e.format() for e in g.errors)
        return next(iter(g.graphs.values())).nodes
    from netspec.pipeline import graph
    return graph(text, params=params).nodes


def test_network_defaults_reach_into_blocks():
    n = _nodes(SPEC)
    assert (n["bn"].params.momentum, n["bn"].params.eps) == (0.01, 0.001)
    assert (n["a.bn"].params.momentum, n["a.bn"].params.eps) == (0.01, 0.0001)      # the block's eps wins
    assert (n["a.nested.bn"].params.momentum, n["a.nested.bn"].params.eps) == (0.01, 0.0001)   # nested: inherits
    assert n["a.own"].params.momentum == 0.5                                       # the layer's own value wins
    assert n["stem"].params.kernel == 1 and n["stem"].params.bias is True          # no conv defaults out here
    assert (n["a.conv"].params.kernel, n["a.conv"].params.padding) == (3, 1)
    assert n["a.conv"].params.bias is False and n["b.conv"].params.bias is True    # evaluated per instance


def test_defaults_follow_the_parameters():
    n = _nodes(SPEC, m=0.2)
    assert n["a.nested.bn"].params.momentum == 0.2


def test_defaults_run_as_checked():
    assert assert_runs_as_checked(SPEC) >= 1


def test_defaults_shared_by_the_networks_of_a_file():
    text = """netspec: 1
defaults: {leaky_relu: {negative_slope: 0.2}}
networks:
  a:
    inputs: {x: [N, 4]}
    layers: [{name: act, op: leaky_relu}]
  b:
    defaults: {leaky_relu: {negative_slope: 0.1}}
    inputs: {x: [N, 4]}
    layers: [{name: act, op: leaky_relu}]
"""
    res = netspec.check(netspec.load(text))
    assert res.ok
    assert res.graphs["a"].nodes["act"].params.negative_slope == 0.2
    assert res.graphs["b"].nodes["act"].params.negative_slope == 0.1


def test_a_default_of_the_wrong_type_is_located():
    res = netspec.check(netspec.load(SPEC.replace("momentum: m,", "momentum: 'fast',"), name="s.yaml"))
    assert not res.ok
    assert str(res.errors[0].loc) == "s.yaml:3:36"           # the value in the defaults, not the layer
    assert "fast" in res.errors[0].message


LET = """netspec: 1
params: {width: 8}
let: {wide: "width * 4", half: "wide // 2"}
inputs: {x: [N, 6, H, W]}
blocks:
  unit:
    params: {out: int}
    let: {mid: "max(out // 4, channels(x))"}
    layers:
      - {name: reduce, op: conv2d, out: mid, kernel: 1}
      - {name: expand, op: conv2d, out: out, kernel: 1}
layers:
  - {name: a, op: conv2d, out: wide, kernel: 1}
  - {name: b, op: conv2d, out: half, kernel: 1}
  - {name: u, op: unit, out: 64}
  - {name: v, op: unit, out: 8}
"""


def test_let_values():
    n = _nodes(LET)
    assert n["a"].params.out == 32 and n["b"].params.out == 16
    assert n["u.reduce"].params.out == 16                  # max(64 // 4, 16 channels in)
    assert n["v.reduce"].params.out == 64                  # max(8 // 4, 64 channels in)
    assert _nodes(LET, width=2)["b"].params.out == 4
    assert assert_runs_as_checked(LET) >= 1


def test_let_is_not_a_network_parameter():
    g = netspec.check(netspec.load(LET)).graphs["net"]
    assert set(g.params) == {"width"}


# -- arithmetic on symbolic sizes ----------------------------------------------------------------------------

H = Dim.sym("H")


@pytest.mark.parametrize("text, ctx, want", [
    ("h // 2", {"H": 4}, "H/2"),                 # exact where H divides
    ("h // 2", {}, "H//2"),                       # a floor otherwise, never a float
    ("h * 3 // 4 + 1", {"H": 4}, "3*H/4+1"),
    ("h % 4", {"H": 8}, "0"),                     # H is a multiple of 8: no remainder
    ("(h // 4) * 4 - h", {"H": 4}, "0"),
])
def test_size_arithmetic_stays_exact(text, ctx, want):
    got = parse(text).eval({"h": H}, sym=SymCtx(ctx))
    assert str(got) == want
    if want.isdigit():
        assert got == int(want) and type(got) is int


@pytest.mark.parametrize("text, message", [
    ("h / 2", "'/' of a symbolic size is not a whole number"),
    ("h * 0.5", "combines only with whole numbers"),
    ("h // 0", "needs a whole number of 1 or more"),
    ("h // h", "needs a whole number of 1 or more"),
])
def test_size_arithmetic_refuses_inexact(text, message):
    with pytest.raises(ExprError) as e:
        parse(text).eval({"h": H}, sym=SymCtx({}))
    assert message in e.value.message


def test_symbolic_let_in_a_spec():
    text = """netspec: 1
inputs: {x: {shape: [N, 16, T], multiple_of: {T: 4}}}
let: {quarter: "dim(x, 2) // 4", whole: "dim(x, 2) // 4 * 4 - dim(x, 2)"}
layers:
  - {op: conv1d, out: "16 + whole", kernel: 1}
"""
    res = netspec.check(netspec.load(text))
    assert res.ok, "\n".join(e.format() for e in res.errors)
    assert str(res.graphs["net"].output_types()["out"]) == "[N, 16, T]"
