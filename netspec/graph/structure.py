"""Questions about a graph's structure that the summary, the diagram and the code generator all ask."""
from __future__ import annotations

from typing import Iterable

from .ir import Graph


def members(graph: Graph, levels: int | None = None) -> dict[str, list[str]]:
    """Container path -> ids of the nodes inside it (at any depth), in graph order; only the containers of the
    outermost ``levels`` levels when given (a drawing folded at depth d needs d + 1)."""
    out: dict[str, list[str]] = {}
    for n in graph.nodes.values():
        for p in (n.scope if levels is None else n.scope[:levels]):
            if p in out:
                out[p].append(n.id)
            else:
                out[p] = [n.id]
    return out


def boundary(graph: Graph, ids: Iterable[str], pos: dict | None = None) -> tuple[list, list]:
    """The values entering and leaving a set of nodes: (input refs, output refs), each in graph order, no repeats.

    A value leaves when a node outside the set consumes it or it is a graph output. ``pos`` (node id -> index in
    graph order, from :func:`positions`) saves recomputing it when called for many sets.
    """
    inside = set(ids)
    ins: dict = {}
    outs: dict = {}
    for nid in ids:
        for ref in graph.nodes[nid].inputs:
            if ref is not None and ref[0] not in inside:
                ins.setdefault(tuple(ref), None)
    graph_outs = {tuple(r) for r in graph.outputs.values()}
    users = graph.users()
    # each consumer outside is read once (a concat of thousands of the set's values would otherwise be read once
    # per value)
    outside = {succ: None for nid in ids for succ in users.get(nid, ()) if succ not in inside}
    for succ in outside:
        for ref in graph.nodes[succ].inputs:
            if ref is not None and ref[0] in inside:
                outs.setdefault(tuple(ref), None)
    for ref in graph_outs:
        if ref[0] in inside:
            outs.setdefault(ref, None)
    pos = pos if pos is not None else positions(graph)
    return list(ins), sorted(outs, key=lambda ref: (pos.get(ref[0], 0), ref[1]))


def positions(graph: Graph) -> dict[str, int]:
    return {nid: i for i, nid in enumerate(graph.nodes)}


def copies(path: str, ids: Iterable[str]) -> int:
    """How many copies a repeat made: the distinct names right under its path (layer1.0, layer1.1 -> 2)."""
    k = len(path) + 1
    return len({nid[k:].split(".", 1)[0] for nid in ids})
