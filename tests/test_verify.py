"""The verifier between stages refuses a graph whose invariants are broken (what a hand-made or edited Graph could
break): each broken one named."""
from __future__ import annotations

import pytest

from netspec.errors import GraphError
from netspec.graph.expand import expand
from netspec.graph.verify import verify
from netspec.spec.load import load

TEXT = """netspec: 1
name: t
inputs:
  x: [N, 8]
layers:
  - {name: a, op: linear, out: 8}
  - {name: b, op: relu}
  - {name: c, op: linear, out: 4}
"""


def _graph():
    return expand(load(TEXT))


def test_a_good_graph_passes():
    g = _graph()
    assert verify(g) is g


@pytest.mark.parametrize("tamper, message", [
    (lambda g: g.nodes["b"].inputs.__setitem__(0, ("nope", 0)), "takes input 0 from 'nope', which does not exist"),
    (lambda g: g.nodes["a"].inputs.__setitem__(0, ("c", 0)), "the graph has a cycle: "),
    (lambda g: g.nodes["b"].inputs.__setitem__(0, ("b", 0)), "the graph has a cycle: "),
    (lambda g: g.nodes["b"].inputs.__setitem__(0, ("a", 3)), "takes output 3 of 'a', which has 1"),
    (lambda g: g.nodes["c"].meta.pop("out"), "'c' has no inferred shape"),
    (lambda g: g.outputs.__setitem__("out", ("gone", 0)), "output 'out' refers to 'gone', which does not exist"),
])
def test_each_broken_invariant_is_named(tamper, message):
    g = _graph()
    g._nx = None
    tamper(g)
    with pytest.raises(GraphError) as e:
        verify(g)
    assert message in str(e.value)


def test_an_input_from_a_later_node_without_a_cycle_is_refused():
    g = _graph()
    g.nodes["b"].inputs[0] = ("c", 0)       # b reads c, c reads b: a cycle
    g.nodes["c"].inputs[0] = ("a", 0)       # now c reads a: no cycle, but b comes before its input
    g._nx = None
    with pytest.raises(GraphError) as e:
        verify(g)
    assert "'b' comes before its input 'c'" in str(e.value)


def test_users_are_the_networkx_successors():
    """Graph.users() (what boundary and consumers read) lists what the networkx view's successors list, in order."""
    from netspec.pipeline import graph
    for text in (TEXT, "mlp", "resnet18", "googlenet", "unet", "transformer_explicit"):
        g = graph(text)
        users = g.users()
        for nid in g.nodes:
            assert users.get(nid, []) == list(g.g.successors(nid)), nid
            assert g.consumers(nid) == list(g.g.successors(nid))
