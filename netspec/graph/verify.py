"""The verifier between stages: the graph is a DAG, every input resolves, outputs exist, annotations present."""
from __future__ import annotations

from ..errors import GraphError
from .ir import Graph


def verify(g: Graph) -> Graph:
    """Check the invariants later stages rely on. Raises GraphError naming the broken one."""
    nodes = g.nodes
    earlier: set = set()        # the nodes before this one
    for node in nodes.values():
        for slot, ref in enumerate(node.inputs):
            if ref is None:
                continue
            src = nodes.get(ref[0])
            if src is None:
                raise GraphError(f"'{node.id}' takes input {slot} from '{ref[0]}', which does not exist", node.loc)
            if ref[0] not in earlier:       # every input comes earlier: that is what makes it a DAG
                _raise_cycle(g)
                raise GraphError(f"'{node.id}' comes before its input '{ref[0]}'", node.loc)
            if ref[1] >= len(src.out):
                raise GraphError(f"'{node.id}' takes output {ref[1]} of '{ref[0]}', which has {len(src.out)}", node.loc)
        if "out" not in node.meta:
            raise GraphError(f"'{node.id}' has no inferred shape", node.loc)
        earlier.add(node.id)
    for name, ref in g.outputs.items():
        if ref[0] not in g.nodes:
            raise GraphError(f"output '{name}' refers to '{ref[0]}', which does not exist", g.output_locs.get(name))
    return g


def _raise_cycle(g: Graph) -> None:
    import networkx as nx
    try:
        cyc = nx.find_cycle(g.g)
    except nx.NetworkXNoCycle:
        return
    raise GraphError("the graph has a cycle: " + " -> ".join(a for a, _ in cyc))
