"""The graph IR: one Node type for the whole pipeline, annotations in ``node.meta``.

Node ids are structural names (``layer1.0.conv1``): unique in a graph and equal to the torch module path.
Edges in the networkx DiGraph carry ``slot`` (input index of the consumer) and ``out`` (output index of the producer).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Loc, NetspecError
from ..shapes import SymCtx, Requirement, TensorType

ValueRef = tuple  # (node id, output index)


@dataclass(eq=False, slots=True)
class Node:
    id: str
    op: Any                         # the op class (ops.base.Op subclass)
    params: Any                     # the op's validated Params instance
    inputs: list                    # ValueRef per input slot (None for an absent optional input)
    loc: Loc
    scope: tuple = ()               # enclosing container paths, outermost first: ("layer1", "layer1.0")
    param_locs: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)   # "in", "out": list[TensorType]; "weights"; "macs"; "shared_with"
    # Nothing changes a node's param_locs or the lists and dicts in its meta once the node is made (a stage may set a
    # key of meta itself): expansion's copies of a block instance share them with the instance they copy, as they
    # share its Params; a Container's args, input_names, output_names and arg_exprs likewise. tests/test_scale.py
    # runs every stage over such copies and checks that nothing was changed.

    @property
    def out(self) -> list[TensorType]:
        return self.meta.get("out", [])

    def counts(self) -> tuple:
        """(parameters, buffer elements) this node owns; (0, 0) when it uses another layer's weights."""
        if self.meta.get("shared_with"):
            return 0, 0
        params = buffers = 0
        for shape, kind in self.meta.get("weights", {}).values():
            k = 1
            for d in shape:
                k = k * d
            if kind == "param":
                params = params + k
            else:
                buffers = buffers + k
        return params, buffers

    @property
    def local_name(self) -> str:
        if self.scope:
            return self.id[len(self.scope[-1]) + 1:]
        return self.id


@dataclass(slots=True)
class Container:
    """A module that groups nodes: a block instance, an inline 'seq', or the list made by 'repeat'."""

    path: str
    kind: str                       # "block" | "seq" | "repeat"
    block: str | None               # block name for kind == "block"
    loc: Loc
    args: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)      # ValueRefs entering
    input_names: list = field(default_factory=list)
    outputs: list = field(default_factory=list)     # ValueRefs leaving
    output_names: list = field(default_factory=list)
    parent: str | None = None
    arg_exprs: dict = field(default_factory=dict)   # block argument -> the spec's expression text
    index: str = "i"                                # repeat: the loop index's name
    count: int = 0                                  # repeat: number of copies
    count_expr: str | None = None                   # repeat: the spec's expression for the count


@dataclass
class Graph:
    """An expanded network with shapes: what every later stage reads."""

    name: str
    file: str
    nodes: dict[str, Node] = field(default_factory=dict)       # in topological (creation) order
    inputs: dict[str, str] = field(default_factory=dict)        # input name -> node id
    outputs: dict[str, ValueRef] = field(default_factory=dict)  # output name -> value
    output_locs: dict[str, Loc] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    sym: SymCtx = field(default_factory=SymCtx)
    requirements: list[Requirement] = field(default_factory=list)
    warnings: list[NetspecError] = field(default_factory=list)
    params: dict = field(default_factory=dict)                  # evaluated network params
    param_decls: list = field(default_factory=list)             # (name, type, default, required) per network param
    block_decls: dict = field(default_factory=dict)             # block -> [(name, type, default, required)]
    conds: dict = field(default_factory=dict)                   # (container, layer name) -> 'if' expression text
    dropped: dict = field(default_factory=dict)                 # container -> [(name, if text, input ref, order, loc)]
    assertions: list = field(default_factory=list)              # graph.assertions.Assertion: stated shapes, checked
    # block instance -> (the earlier instance it was copied from, the first node's id relative to the instance, its
    # number of nodes): expansion added the same nodes and inner instances up to their names (a hint to code
    # generation, which checks it before it relies on it)
    copies: dict = field(default_factory=dict)
    doc: str | None = None
    spec: Any = None                                            # the Spec it was expanded from
    _nx: Any = field(default=None, repr=False, compare=False)   # the networkx view, made on first use of .g
    _users: Any = field(default=None, repr=False, compare=False)  # (node count, users()), made on first use

    @property
    def g(self):
        """The graph as a networkx ``DiGraph`` (made from ``nodes`` on first use, so that commands that need no
        graph algorithm never import networkx). Edges carry ``slot`` and ``out``."""
        if self._nx is None or self._nx.number_of_nodes() != len(self.nodes):
            import networkx as nx
            dg = nx.DiGraph()
            dg.add_nodes_from(self.nodes)
            dg.add_edges_from((ref[0], node.id, {"slot": slot, "out": ref[1]}) for node in self.nodes.values()
                              for slot, ref in enumerate(node.inputs) if ref is not None)
            self._nx = dg
        return self._nx

    def add(self, node: Node) -> Node:
        self.nodes[node.id] = node
        return node

    def type_of(self, ref: ValueRef) -> TensorType:
        return self.nodes[ref[0]].out[ref[1]]

    def output_types(self) -> dict[str, TensorType]:
        return {k: self.type_of(v) for k, v in self.outputs.items()}

    def input_types(self) -> dict[str, TensorType]:
        return {k: self.nodes[v].out[0] for k, v in self.inputs.items()}

    def num_params(self) -> int:
        """Learned parameters (shared weights counted once): the one count every command prints."""
        return sum(n.counts()[0] for n in self.nodes.values())

    def users(self) -> dict[str, list[str]]:
        """Node id -> the nodes that read its outputs, in graph order, each once: the successors of the networkx
        view, without making it (made on first use, like ``g``)."""
        if self._users is None or self._users[0] != len(self.nodes):
            out: dict = {}
            for node in self.nodes.values():
                nid = node.id
                for ref in node.inputs:
                    if ref is not None:
                        got = out.get(ref[0])
                        if got is None:
                            out[ref[0]] = [nid]
                        elif got[-1] != nid:        # one entry for a node that reads it in several slots
                            got.append(nid)
            self._users = (len(self.nodes), out)
        return self._users[1]

    def consumers(self, node_id: str) -> list[str]:
        return list(self.users().get(node_id, ()))
