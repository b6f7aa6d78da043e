"""A layer dropped by 'if' passes its first input through under every output name it would have had
(`halves.out1`), in the network and inside blocks whose instances differ, and the built module runs as checked."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import netspec

sys.path.insert(0, str(Path(__file__).parent))
from guarantee import assert_runs_as_checked  # noqa: E402

GATE = """netspec: 1
params: {split: false}
inputs: {x: [N, 8, H, W]}
blocks:
  gate:
    params: {split: false}
    layers:
      - {name: halves, op: chunk, chunks: 2, dim: 1, if: split}
      - {name: a, op: relu, from: halves.out0}
      - {name: b, op: sigmoid, from: halves.out1}
      - {name: prod, op: multiply, from: [a, b]}
  pair:
    outputs: {left: l, right: r}
    layers:
      - {name: l, op: relu}
      - {name: r, op: tanh, from: x}
layers:
  - {name: g1, op: gate, split: true}
  - {name: g2, op: gate}
  - {name: g3, op: gate, split: split}
  - {name: p, op: pair, if: split}
  - {name: both, op: add, from: [p.left, p.right]}
"""


@pytest.mark.parametrize("split", [False, True])
def test_every_output_of_a_dropped_layer_passes_its_input(split):
    g = netspec.check(netspec.load(GATE.replace("split: false}\ninputs", f"split: {str(split).lower()}}}\ninputs"))
                      ).graphs["net"]
    nodes = g.nodes
    assert "g2.halves" not in nodes and nodes["g2.b"].inputs == nodes["g2.a"].inputs      # both took g1's output
    assert str(nodes["g2.b"].meta["in"][0]) == "[N, 4, H, W]"
    assert ("g3.halves" in nodes) == split and ("p.l" in nodes) == split
    want = "[N, 2, H, W]" if split else "[N, 4, H, W]"
    assert str(g.output_types()["out"]) == want
    if not split:                                   # p dropped: p.left and p.right are both g3's output
        assert nodes["both"].inputs[0] == nodes["both"].inputs[1]


@pytest.mark.parametrize("split", [False, True])
def test_runs_as_checked(split):
    assert assert_runs_as_checked(GATE.replace("split: false}\ninputs", f"split: {str(split).lower()}}}\ninputs")) >= 1


def test_an_output_the_layer_never_has_is_still_an_error():
    res = netspec.check(netspec.load(GATE.replace("from: [p.left, p.right]", "from: [p.left, p.middle]"),
                                     name="g.yaml"))
    assert not res.ok
    assert "'p' has no output 'middle'" in res.errors[0].message
    assert "left, right" in res.errors[0].hints[0]


def test_a_dropped_source_has_nothing_to_pass():
    text = """netspec: 1
inputs: {x: [N, 4]}
layers:
  - {name: t, op: param, shape: [4], if: false}
  - {name: s, op: add, from: [x, t.out]}
"""
    res = netspec.check(netspec.load(text))
    assert not res.ok and "has no input to pass through" in res.errors[0].message
