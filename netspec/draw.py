"""Graph -> Graphviz diagram (SVG, PNG, PDF or DOT source).

Reads what earlier stages annotated and computes nothing about tensors: node labels come from ``op.label(params)``,
edge labels from ``meta["out"]``, a collapsed block's in/out shapes and parameter count from the summary helpers.

Layout of a diagram:
  * one node per layer (a box coloured by op family); merges (add, concat, multiply, ...) are round and orange;
    graph inputs and outputs are grey ovals;
  * each block instance is a cluster labelled with its structural name and block type (a ``seq`` is a dotted
    cluster; a ``repeat`` is a dashed one where it holds layers or folded blocks, and no box where its copies are
    boxes already); ``depth=K`` draws K levels of containers and folds deeper ones into one double-bordered node
    showing the block's arguments, in/out shapes and parameter count;
  * every edge carries the tensor shape of the value it moves (``N×64×H/4×W/4``);
  * in SVG every node and cluster has a tooltip naming the spec line it came from;
  * a legend of the op families in the picture, under a title with the parameter count.

Graphviz is imported only when drawing; ``import netspec`` stays light.
"""
from __future__ import annotations

import html
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ErrorList, LimitError, NetspecError
from .limits import LIMITS
from .graph.ir import Graph
from .io import OutputError, atomic_write_bytes, is_stdout, output_target, write_new_text, write_output
from .graph.structure import boundary, copies, members, positions
from .summary import human, _count

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
RANKDIRS = ("TB", "LR", "BT", "RL")
HEAD_PORTS = {"TB": "n", "LR": "w", "BT": "s", "RL": "e"}   # edges enter a node from the side facing its inputs
EDGES_PER_DRAWN_NODE = 3          # a drawing may have max_drawn_nodes boxes and three times as many edges
DOT_TIMEOUT_S = 60                # a layout that takes longer is stopped with an error
INSTALL_HINT = ("install Graphviz's 'dot' (Debian/Ubuntu: apt install graphviz; macOS: brew install graphviz; "
                "conda: conda install -c conda-forge graphviz), then run the command again")

FONT = "Helvetica,Arial,sans-serif"

# One fill colour per op family (ColorBrewer Pastel1/Set3 tones): light enough for black text, distinct side by side.
FAMILY_COLOURS = {
    "io": "#E0E0E0",
    "conv": "#A6CEE3",
    "linear": "#CAB2D6",
    "norm": "#FFF2AE",
    "activation": "#CCEBC5",
    "pool": "#B3DE69",
    "merge": "#FDB462",
    "dropout": "#F0F0F0",
    "shape": "#E5D8BD",
    "embedding": "#8DD3C7",
    "attention": "#FCCDE5",
    "recurrent": "#BEBADA",
    "misc": "#FFFFFF",
}
_SPARE_COLOURS = ("#FBB4AE", "#B3CDE3", "#DECBE4", "#FED9A6", "#FFFFCC", "#E5F5E0", "#FDDAEC", "#D9D9D9")
BLOCK_COLOUR = "#EDEDED"          # a folded block
MERGE_SHAPES = {1: "circle"}      # a one-character merge symbol (+, *) sits in a small circle; words in an ellipse


class DrawError(NetspecError):
    """A drawing option is wrong (depth, rankdir), or the diagram would be too large to lay out."""


class GraphvizMissing(OutputError):
    """Graphviz's ``dot`` program is not installed; the DOT source was written to ``dot_path`` instead."""

    def __init__(self, message, loc=None, hints=None, dot_path: Path | None = None):
        super().__init__(message, loc, hints)
        self.dot_path = dot_path


def family_colour(family: str) -> str:
    """The fill colour of an op family; families without a fixed colour get a stable one from a spare palette."""
    if family in FAMILY_COLOURS:
        return FAMILY_COLOURS[family]
    return _SPARE_COLOURS[zlib.crc32(family.encode()) % len(_SPARE_COLOURS)]


def shape_text(t) -> str:
    """A tensor type as an edge label: ``N×64×H/4×W/4`` (dtype appended when not float32)."""
    s = "×".join(str(d) for d in t.shape) if t.shape else "scalar"
    return s if t.dtype == "float32" else f"{s} {t.dtype}"


# -- the drawing, as data -----------------------------------------------------------------------------

@dataclass
class Drawing:
    """What was drawn: the DOT source, and counts that tests and the CLI report."""

    source: str
    nodes: int = 0
    clusters: int = 0
    edges: int = 0
    folded: list = field(default_factory=list)      # container paths drawn as one node
    name: str = ""                                  # the network(s) drawn
    depth: int | None = None                        # the folding depth used (draw() chooses one when not given)
    runs: list = field(default_factory=list)        # long chains drawn as one "run" box each (to fit the limits)
    units: list = field(default_factory=list)       # units of a flat network drawn as one box each (to fit them)
    fans: list = field(default_factory=list)        # wide fans whose middle branches are one box each (to fit)
    boxes: dict = field(default_factory=dict)       # box id -> the layers it stands for (runs, fans and units)

    def svg(self) -> str:
        """The diagram as SVG text (runs Graphviz's ``dot``; GraphvizMissing when it is not installed)."""
        try:
            return render(self, "svg").decode("utf-8")
        except _NoDot:
            raise GraphvizMissing("Graphviz's 'dot' program was not found", None, INSTALL_HINT) from None

    def _repr_svg_(self) -> str | None:
        """Jupyter shows the diagram inline; without Graphviz, the one-line repr."""
        try:
            return self.svg()
        except NetspecError:
            return None

    def __repr__(self) -> str:
        folded = f", {len(self.folded)} folded blocks" if self.folded else ""
        folded += f", {len(self.runs)} long chains shortened" if self.runs else ""
        return f"<Drawing {self.name or 'network'}: {self.nodes} nodes, {self.clusters} clusters, {self.edges} edges" \
               f"{folded}>"


def to_dot(graphs: Graph | list[Graph], *, depth: int | None = None, rankdir: str = "TB", legend: bool = True,
           title: bool = True, layout: bool = True, runs: bool | None = None,
           plans: "_Plans | None" = None) -> Drawing:
    """Lay a graph (or several networks side by side) out as a Graphviz digraph; returns its DOT source.

    Args:
        graphs: an expanded graph, or a list (several networks of one file), drawn side by side.
        depth: draw this many levels of blocks as clusters and fold deeper blocks into one node
            (0 folds every top-level block); None opens everything.
        rankdir: "TB" (top to bottom) or "LR" (left to right); "BT" and "RL" also work.
        legend: add the colour legend of the op families used.
        title: add a title line (network name, parameters, MACs).
        layout: whether Graphviz will lay the source out (an image); only then are the node and layout-work caps
            applied (DOT source alone costs no layout).
        runs: draw the middle of every long chain (more than ``2 * RUN_KEEP + 1`` boxes one after the other in one
            container: a deep stack written out layer by layer, or a repeat's folded copies) as one box that counts
            what it stands for. None (the default): only where the drawing would not fit the limits otherwise;
            and where that is not enough either, each unit of a flat network is one box (``_units``), or else the
            middle of each wide fan (``_shorten_fans``).
        plans: the drawings ``auto_depth`` worked out for these graphs (so they are not worked out again).
    """
    import graphviz

    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise DrawError(f"depth must be a non-negative integer, got {depth!r}", None,
                        "depth=0 folds every block into one node; leave it out to open every block")
    if rankdir not in RANKDIRS:
        raise DrawError(f"unknown rankdir {rankdir!r}", None, f"use one of {', '.join(RANKDIRS)}")
    if isinstance(graphs, Graph):
        graphs = [graphs]
    # the name is a checked identifier; quoted as plain text anyway (never an HTML string or raw DOT)
    dot = graphviz.Digraph(name=graphviz.nohtml(_tip(graphs[0].name) if len(graphs) == 1 else "networks"),
                           engine="dot")
    dot.attr("graph", rankdir=rankdir, fontname=FONT, fontsize="11", nodesep="0.3", ranksep="0.3",
             newrank="true", compound="false", bgcolor="white", pad="0.2", labeljust="l")
    dot.attr("node", fontname=FONT, fontsize="10", shape="box", style="rounded,filled", penwidth="1",
             color="#555555", margin="0.12,0.04", height="0.3")
    dot.attr("edge", fontname=FONT, fontsize="8", fontcolor="#333333", color="#666666", arrowsize="0.6",
             penwidth="1")
    out = Drawing(source="", name=", ".join(g.name for g in graphs))
    families: dict[str, None] = {}
    titles = []
    pre = _prefix(graphs)
    for g in graphs:
        prefix = pre(g)
        if prefix:
            with dot.subgraph(name=f"cluster_{prefix}") as sub:
                sub.attr(label=f"<<B>{_h(g.name)}</B>>", style="rounded", color="#333333", fontsize="12",
                         tooltip=_tip(f"network {g.name}\n{g.file}"))
                _draw_graph(sub, dot, g, prefix, depth, rankdir, out, families, layout, runs, plans)
            out.clusters += 1
        else:
            _draw_graph(dot, dot, g, prefix, depth, rankdir, out, families, layout, runs, plans)
        titles.append(_title_text(g))
    if title or legend:
        dot.attr("graph", label=_legend_label(titles if title else [], list(families) if legend else [],
                                              bool(out.folded), bool(out.runs), bool(out.units),
                                              bool(out.fans)),
                 labelloc="t")
    out.source = dot.source
    return out


def _draw_graph(where, root, g: Graph, prefix: str, depth, rankdir: str, out: Drawing, families: dict,
                layout: bool = True, runs: bool | None = None, plans: "_Plans | None" = None) -> None:
    """Add one network's nodes (in clusters) to ``where`` and its edges to ``root``."""
    inside = members(g, None if depth is None else depth + 1)
    pos = positions(g)

    # which drawn node stands for each graph node (itself, or the folded container around it), and one edge per
    # value crossing between drawn nodes (values inside a folded block are not drawn)
    plans = plans if plans is not None else _Plans()
    rep, edges, run_members, unit_members, fans = plans.fold(g, depth, prefix)
    if runs or (runs is None and layout and not plans.fits(g, depth, prefix, "fold")):
        rep, edges, run_members, unit_members, fans = plans.short(g, depth, prefix)
        if runs is None and not plans.fits(g, depth, prefix, "short"):
            # no chain to shorten enough: a network written out flat with residual or dense connections (its
            # units, then chains of units shortened), or one with thousands of parallel branches (its fans)
            got = plans.units(g, depth, prefix) or plans.fans(g, depth, prefix)
            if got is not None:
                rep, edges, run_members, unit_members, fans = got
    run_nodes: dict[str, list[str]] = {}
    unit_nodes: dict[str, list[str]] = {}
    for nid, r in rep.items():
        if r in run_members:
            run_nodes.setdefault(r, []).append(nid)
        elif r in unit_members:
            unit_nodes.setdefault(r, []).append(nid)
    n_nodes = len(set(rep.values())) + len(g.outputs)
    if layout:      # DOT source alone costs no layout: only a laid-out drawing has the caps
        _check_size(g, n_nodes, edges, rep, depth)

    # cluster tree: container path -> (child containers, drawn nodes directly inside)
    children: dict[str | None, list[str]] = {}
    direct: dict[str | None, list[tuple[str, str]]] = {}   # container -> [("node"|"folded", id)]
    seen_folded: set = set()
    for n in g.nodes.values():
        scope = n.scope if depth is None else n.scope[:depth]
        parent = None
        for c in scope:
            if c not in children:
                children[c] = []
                children.setdefault(parent, []).append(c)
            parent = c
        r = rep[n.id]
        if r in run_members or r in unit_members:
            if r not in seen_folded:
                seen_folded.add(r)
                direct.setdefault(parent, []).append(("run" if r in run_members else "unit", r))
        elif depth is not None and len(n.scope) > depth:
            c = n.scope[depth]
            if c not in seen_folded:
                seen_folded.add(c)
                direct.setdefault(parent, []).append(("folded", c))
        else:
            direct.setdefault(parent, []).append(("node", n.id))

    import graphviz

    def fill(sub, container: str | None, box: str | None) -> None:
        """Add what is directly inside ``container`` to ``sub``; ``box`` is the innermost container drawn as a box."""
        for kind, ident in direct.get(container, []):
            if kind == "node":
                _node(sub, g, g.nodes[ident], prefix, families)
            elif kind == "run":
                _run_node(sub, g, ident, run_members[ident], run_nodes[ident], prefix, pos,
                          {**{f: run_members[f] for f in fans}, **unit_members}, fans.get(ident))
                (out.fans if ident in fans else out.runs).append(ident)
                out.boxes[ident] = run_nodes[ident]
            elif kind == "unit":
                _unit_node(sub, g, ident, unit_members[ident], unit_nodes[ident], prefix, pos)
                out.units.append(ident)
                out.boxes[ident] = unit_nodes[ident]
            else:
                _folded_node(sub, g, ident, inside[ident], prefix, pos)
                out.folded.append(prefix + ident)
            out.nodes += 1
        for c in children.get(container, []):
            if _redundant(g, c, inside, direct):
                fill(sub, c, box)             # no box of its own: its contents go in the enclosing one
                continue
            cl = graphviz.Digraph(name=f"cluster_{prefix}{c}")
            _cluster_attrs(cl, g, c, inside[c], box, prefix)
            fill(cl, c, c)
            sub.subgraph(cl)
            out.clusters += 1

    fill(where, None, None)

    port = HEAD_PORTS[rankdir]
    merges = {rep[n.id] for n in g.nodes.values() if n.op.family == "merge"}
    drawn_edges, bundles = _bundle(edges)
    for (ref, head), tail in drawn_edges.items():
        # a layer takes its input straight from the side facing its inputs (so edges entering a cluster miss the
        # cluster's label); merges are left free so their inputs can arrive side by side
        _edge(root, g, ref, tail, head, port=None if head in merges else port, bundle=bundles.get((ref, head)))
        out.edges += 1
    for name, ref in g.outputs.items():
        oid = f"{prefix}@out.{name}"
        where.node(graphviz.nohtml(oid), label=f"<{_h(name)}>", shape="oval", fillcolor=FAMILY_COLOURS["io"],
                   tooltip=_tip(f"output {name}: {g.type_of(ref)}" +
                                (f"\n{g.output_locs[name]}" if name in g.output_locs else "")))
        out.nodes += 1
        _edge(root, g, ref, rep[ref[0]], oid, port=port)
        out.edges += 1
        families.setdefault("io", None)


def _check_size(g: Graph, n_nodes: int, edges: dict, rep: dict, depth) -> None:
    """Refuse a drawing over ``max_drawn_nodes`` (or three times as many edges) or ``max_layout_cost``."""
    edges = _bundle(edges)[0]
    first = next(iter(g.nodes.values()), None)
    loc = first.loc if first else None
    max_nodes = LIMITS.max_drawn_nodes
    max_edges = EDGES_PER_DRAWN_NODE * max_nodes
    fold = "fold blocks with --depth K (e.g. --depth 1)" if depth != 0 and g.containers else \
        "a picture this large is not readable; 'netspec summary' lists every layer"
    if n_nodes > max_nodes or len(edges) > max_edges:
        what = f"{n_nodes:,} nodes" if n_nodes > max_nodes else f"{len(edges):,} edges"
        limit = f"{max_nodes:,} nodes" if n_nodes > max_nodes else f"{max_edges:,} edges"
        raise LimitError(f"network '{g.name}' would be drawn with {what}, over the limit of {limit} "
                         "(max_drawn_nodes)", loc,
                         [fold, f"raise the limit with --limit max_drawn_nodes={max(n_nodes, len(edges))} if you "
                                "mean it (Graphviz takes about a second per thousand boxes)"])
    cost = layout_cost(g, rep, edges)
    if cost > LIMITS.max_layout_cost:
        raise LimitError(f"network '{g.name}' would take Graphviz about {cost:,} units of layout work ({n_nodes:,} "
                         f"nodes, {len(edges):,} edges and the bends of long edges), over the limit of "
                         f"{LIMITS.max_layout_cost:,} (max_layout_cost)", loc,
                         [fold.replace("(e.g. --depth 1)", "(e.g. --depth 1) to draw fewer nodes and edges"),
                          "raise the limit with --limit max_layout_cost=N if you mean it"])


def _fold(g: Graph, depth, prefix: str = "") -> tuple[dict, dict]:
    """(graph node -> the drawn node standing for it, {(value, head): tail} of the edges drawn) at a depth."""
    rep: dict[str, str] = {}
    for n in g.nodes.values():
        rep[n.id] = prefix + (n.scope[depth] if depth is not None and len(n.scope) > depth else n.id)
    return rep, _edges_of(g, rep)


def _edges_of(g: Graph, rep: dict) -> dict:
    edges: dict = {}
    for n in g.nodes.values():
        head = rep[n.id]
        for ref in n.inputs:
            if ref is not None and rep[ref[0]] != head:
                edges.setdefault((tuple(ref), head), rep[ref[0]])
    return edges


# this many values or more from one box to another are drawn as one edge: BUNDLE_MIN to or from a box that stands
# for several (a shortened chain or fan, a unit; their ids have a '~'), BUNDLE_ANY between any two
BUNDLE_MIN = 4
BUNDLE_ANY = 16


def _bundle(edges: dict) -> tuple[dict, dict]:
    """(the edges drawn, {edge: the values it stands for}): where many values go from one box to another (the
    branches of a shortened fan into their concat), one edge stands for them all."""
    pairs: dict = {}
    for key, tail in edges.items():
        pairs.setdefault((tail, key[1]), []).append(key)
    if len(pairs) == len(edges) or all(len(v) < BUNDLE_MIN for v in pairs.values()):
        return edges, {}
    out: dict = {}
    bundles: dict = {}
    for key, tail in edges.items():
        group = pairs[(tail, key[1])]
        if len(group) < (BUNDLE_MIN if "~" in tail or "~" in key[1] else BUNDLE_ANY):
            out[key] = tail
        elif group[0] is key:
            out[key] = tail
            bundles[key] = [k[0] for k in group]
    return out, bundles


def _fits(g: Graph, rep: dict, edges: dict, depth) -> bool:
    try:
        _check_size(g, len(set(rep.values())) + len(g.outputs), edges, rep, depth)
    except LimitError:
        return False
    return True


RUN_KEEP = 3        # a shortened chain keeps its first and last RUN_KEEP boxes; one box stands for the rest


def _drawn(g: Graph, rep: dict, depth) -> tuple[dict, set]:
    """({drawn node: the container it is drawn in}, in graph order; the drawn nodes that are inputs or failed
    layers, which no box takes in)."""
    cont: dict[str, str | None] = {}
    fixed: set = set()
    for n in g.nodes.values():
        r = rep[n.id]
        if r not in cont:
            scope = n.scope if depth is None else n.scope[:depth]
            cont[r] = scope[-1] if scope else None
        if n.op.name == "input" or n.meta.get("error"):
            fixed.add(r)
    return cont, fixed


def _links(g: Graph, rep: dict, edges: dict, depth) -> tuple[dict, dict, dict, dict]:
    """(pred, succ, container, next) of the drawn nodes: ``next[u] = v`` where v is u's only consumer and u is
    v's only input, both in one container and neither an input, an output or a failed layer (a link of a chain)."""
    succ: dict[str, set] = {}
    pred: dict[str, set] = {}
    for (_ref, head), tail in edges.items():
        succ.setdefault(tail, set()).add(head)
        pred.setdefault(head, set()).add(tail)
    cont, fixed = _drawn(g, rep, depth)
    fixed |= {rep[ref[0]] for ref in g.outputs.values()}
    nxt: dict[str, str] = {}
    for u, heads in succ.items():
        if len(heads) == 1 and u not in fixed:
            v = next(iter(heads))
            if len(pred.get(v, ())) == 1 and v not in fixed and cont[u] == cont[v]:
                nxt[u] = v
    for r in fixed:
        cont[r] = _FIXED
    return pred, succ, cont, nxt


_FIXED = object()         # the container _links gives a drawn node that is never taken into another box


def _paths(cont: dict, nxt: dict) -> list[list[str]]:
    """Every drawn node in one path: the chains of ``nxt`` links, and each node outside them alone; in graph order."""
    linked = set(nxt.values())
    out = []
    for r in cont:
        if r not in linked:
            path = [r]
            while path[-1] in nxt:
                path.append(nxt[path[-1]])
            out.append(path)
    return out


def _boxed(g: Graph, rep: dict, members_of: dict) -> tuple[dict, dict | None]:
    """(rep, edges) with each list of drawn nodes in ``members_of`` drawn as one box (its key); edges None where
    there is none."""
    box_of = {m: rid for rid, ms in members_of.items() for m in ms}
    if not box_of:
        return rep, None
    rep = {nid: box_of.get(r, r) for nid, r in rep.items()}
    return rep, _edges_of(g, rep)


def _shorten_chains(g: Graph, rep: dict, edges: dict, depth) -> tuple[dict, dict, dict]:
    """Draw the middle of every long chain as one box: (rep, edges, {run id: the drawn nodes it stands for}).

    A chain is a sequence of drawn nodes in one container, each the only consumer of the one before and consuming
    only it (no branch leaves or enters in between), none an input, an output or a failed layer. One that is longer
    than ``2 * RUN_KEEP + 1`` keeps its first and last ``RUN_KEEP`` boxes; the boxes between become one. Every
    branch, merge and block boundary stays drawn, so the picture still shows the whole structure.
    """
    _pred, _succ, cont, nxt = _links(g, rep, edges, depth)
    members_of: dict[str, list[str]] = {}
    for chain in _paths(cont, nxt):
        if len(chain) > 2 * RUN_KEEP + 1:
            middle = chain[RUN_KEEP:-RUN_KEEP]
            members_of[middle[0] + "~run"] = middle
    new_rep, new_edges = _boxed(g, rep, members_of)
    return (rep, edges, {}) if new_edges is None else (new_rep, new_edges, members_of)


def _shorten_fans(g: Graph, rep: dict, edges: dict, depth, keep: int = 3) -> tuple[dict, dict, dict, dict]:
    """Draw the middle of every wide fan as one box: (rep, edges, {fan id: the drawn nodes it stands for},
    {fan id: how many branches}).

    A fan is a set of parallel branches in one container: paths (chains of ``_links``, or single boxes) that all
    take the same inputs and feed the same consumers (a layer applied to x thousands of times, then one concat). One
    of more than ``2 * keep + 1`` branches keeps its first and last ``keep``; the branches between become one box.
    The fan's source and its merge stay drawn."""
    pred, succ, cont, nxt = _links(g, rep, edges, depth)
    groups: dict = {}
    for path in _paths(cont, nxt):
        c = cont[path[0]]
        if c is _FIXED or cont[path[-1]] is _FIXED:
            continue
        key = (c, frozenset(pred.get(path[0], ())), frozenset(succ.get(path[-1], ())))
        groups.setdefault(key, []).append(path)
    members_of: dict[str, list[str]] = {}
    branches: dict[str, int] = {}
    for paths in groups.values():
        if len(paths) > 2 * keep + 1:
            middle = paths[keep:-keep]
            rid = middle[0][0] + "~fan"
            members_of[rid] = [r for p in middle for r in p]
            branches[rid] = len(middle)
    new_rep, new_edges = _boxed(g, rep, members_of)
    return (rep, edges, {}, {}) if new_edges is None else (new_rep, new_edges, members_of, branches)


UNIT_MAX_LIVE = 3     # a unit's boundary carries at most this many values (one: a residual or dense stage)


def _seams(g: Graph, rep: dict, edges: dict, depth) -> tuple[list, list]:
    """(the drawn nodes in graph order, and after each: the number of values crossing to the nodes after it, or
    None where a cut is always made: an input or failed layer on either side, or a container boundary)."""
    cont, fixed = _drawn(g, rep, depth)
    order = list(cont)
    pos = {r: i for i, r in enumerate(order)}
    m = len(order)
    last: dict = {}               # value -> the position of its last drawn reader (the end: a network output)
    for (ref, head), _tail in edges.items():
        b = pos[head]
        if last.get(ref, -1) < b:
            last[ref] = b
    for ref in g.outputs.values():
        last[tuple(ref)] = m
    diff = [0] * (m + 1)
    for ref, b in last.items():
        a = pos[rep[ref[0]]]
        if b > a:
            diff[a] += 1
            diff[b] -= 1
    live: list = []
    k = 0
    for i, r in enumerate(order):
        k += diff[i]
        nxt = order[i + 1] if i + 1 < m else None
        live.append(None if nxt is None or r in fixed or nxt in fixed or cont[r] != cont[nxt] else k)
    return order, live


def _units(g: Graph, rep: dict, seams: tuple, live_max: int) -> tuple[dict, dict | None, dict]:
    """The units of a flat drawing: (rep, edges, {unit id: the drawn nodes it stands for}); edges None where there
    is no unit.

    The drawn nodes of one container, in graph order (a topological order), are cut wherever at most ``live_max``
    values cross from the nodes before to the nodes after (``_seams``): in a network written out layer by layer,
    these are the seams between its residual units, dense stages or cells, where one value (or a few) carries
    everything on. Each stretch between two cuts with two or more boxes becomes one box, unless it would hold more
    than a quarter of the drawing (then it is not a unit of the network but most of it, and stays open). Inputs,
    failed layers and container boundaries are always cuts: they stay drawn as they are."""
    order, live = seams
    cap = max(2, len(order) // 4)
    members_of: dict = {}
    start = 0
    for i, k in enumerate(live):
        if k is not None and k > live_max:
            continue
        if 2 <= i + 1 - start <= cap:           # (an input or failed layer is a stretch of one)
            seg = order[start:i + 1]
            members_of[seg[0] + "~unit"] = seg
        start = i + 1
    new_rep, new_edges = _boxed(g, rep, members_of)
    return new_rep, new_edges, members_of


def _prefix(graphs: list) -> Callable[[Graph], str]:
    """Each network's prefix in the ids of a drawing: its name and a slash where several are drawn side by side."""
    return (lambda g: f"{g.name}/") if len(graphs) > 1 else (lambda g: "")


class _Plans:
    """The drawings of each graph at each depth (``fold``: blocks folded below it; ``short``: and long chains
    shortened; ``units``: a flat network's units drawn as one box each, ``_unit_drawing``; ``fans``: the middle of
    wide fans drawn as one box, then long chains shortened), each worked out once: ``auto_depth`` tries them and
    ``to_dot`` draws the one chosen from the same work. Each is (rep, edges, {run or fan id: boxes},
    {unit id: boxes}, {fan id: branches}); ``units`` and ``fans`` are None where they do not fit."""

    def __init__(self):
        self._memo: dict = {}
        self._graphs: list = []        # the graphs keyed by id, kept alive while the ids are keys

    def _get(self, g: Graph, depth, prefix: str, what: str):
        key = (id(g), depth, prefix, what)
        if key in self._memo:
            return self._memo[key]
        if what == "fold":
            got = (*_fold(g, depth, prefix), {}, {}, {})
        elif what == "short":
            rep, edges = self.fold(g, depth, prefix)[:2]
            got = (*_shorten_chains(g, rep, edges, depth), {}, {})
        elif what == "units":
            rep, edges = self.fold(g, depth, prefix)[:2]
            got = _unit_drawing(g, rep, edges, depth)
        elif what == "fans":          # the first and last three branches kept, else one each
            got = None
            for keep in (RUN_KEEP, 1):
                rep, edges, fans, branches = _shorten_fans(g, *self.fold(g, depth, prefix)[:2], depth, keep)
                rep, edges, runs = _shorten_chains(g, rep, edges, depth)
                if branches and _fits(g, rep, edges, depth):
                    got = (rep, edges, {**fans, **runs}, {}, branches)
                    break
        else:           # "fits " + a drawing's name
            d = self._get(g, depth, prefix, what[5:])
            got = d is not None and _fits(g, d[0], d[1], depth)
        self._graphs.append(g)
        self._memo[key] = got
        return got

    def fold(self, g: Graph, depth, prefix: str = "") -> tuple:
        return self._get(g, depth, prefix, "fold")

    def short(self, g: Graph, depth, prefix: str = "") -> tuple:
        return self._get(g, depth, prefix, "short")

    def units(self, g: Graph, depth, prefix: str = "") -> tuple | None:
        return self._get(g, depth, prefix, "units")

    def fans(self, g: Graph, depth, prefix: str = "") -> tuple | None:
        return self._get(g, depth, prefix, "fans")

    def fits(self, g: Graph, depth, prefix: str, what: str) -> bool:
        return self._get(g, depth, prefix, "fits " + what)


def _unit_drawing(g: Graph, rep: dict, edges: dict, depth) -> tuple | None:
    """(rep, edges, runs, units, {}) of the drawing of ``g``'s units (``_units``), their long chains shortened, with the
    fewest values across a unit's boundary that fits the limits; None where none fits."""
    seams = _seams(g, rep, edges, depth)
    for live_max in range(1, UNIT_MAX_LIVE + 1):
        urep, uedges, units = _units(g, rep, seams, live_max)
        if uedges is None:
            continue
        srep, sedges, runs = _shorten_chains(g, urep, uedges, depth)
        if _fits(g, srep, sedges, depth):
            return srep, sedges, runs, units, {}
    return None


def auto_depth(graphs: Graph | list[Graph], plans: _Plans | None = None) -> int | None:
    """The folding depth ``draw`` uses when none is given: every block open (None) where the drawing fits the
    limits (``max_drawn_nodes``, ``max_layout_cost``), otherwise the deepest level of blocks that fits, so that a
    big network still shows its whole structure, its deeper blocks folded into one box each. None also where no
    depth fits (the drawing then refuses, with the hints of an open drawing)."""
    if isinstance(graphs, Graph):
        graphs = [graphs]
    deepest = max((len(n.scope) for g in graphs for n in g.nodes.values()), default=0)
    # drawn nodes per depth, counted in one pass: the nodes at most d deep plus the distinct containers at level d
    shallow = [0] * (deepest + 1)
    level = [0] * (deepest + 1)             # distinct containers at each level
    for g in graphs:
        counted: set = set()                # containers counted: whoever counted one counted its parents
        last = None
        for n in g.nodes.values():
            sc = n.scope
            shallow[len(sc)] += 1
            if sc is last:
                continue
            last = sc
            d = len(sc) - 1
            while d >= 0 and sc[d] not in counted:
                counted.add(sc[d])
                level[d] += 1
                d -= 1
    outputs = sum(len(g.outputs) for g in graphs)
    counts = [sum(shallow[:d + 1]) + level[d] + outputs for d in range(deepest)]
    depths = [None] + list(range(deepest - 1, -1, -1))
    plans = plans if plans is not None else _Plans()
    pre = _prefix(graphs)
    for depth in depths:             # folding alone, the deepest level that fits
        n_nodes = (sum(len(g.nodes) for g in graphs) + outputs) if depth is None else counts[depth]
        if n_nodes <= LIMITS.max_drawn_nodes and all(plans.fits(g, depth, pre(g), "fold") for g in graphs):
            return depth
    for depth in depths:             # then with long chains shortened (a deep stack written out layer by layer)
        if all(plans.fits(g, depth, pre(g), "short") for g in graphs):
            return depth
    for depth in depths:             # then a flat network's units or wide fans drawn as one box each
        if all(plans.fits(g, depth, pre(g), "short") or plans.units(g, depth, pre(g)) is not None or
               plans.fans(g, depth, pre(g)) is not None for g in graphs):
            return depth
    return None


def layout_cost(g: Graph, rep: dict, edges: dict) -> int:
    """What laying out the drawing costs Graphviz, estimated before it runs: the sum over ranks of the square of the
    rank's width. ``dot`` routes an edge that spans several ranks through one virtual node per rank, and orders the
    nodes of every rank to reduce crossings, in time that grows with the square of the widths: dense skip connections
    (a DenseNet drawn open) make wide ranks of virtual nodes, a chain costs one per node."""
    rank: dict[str, int] = {}
    into: dict[str, list] = {}
    for (_ref, head), tail in edges.items():
        into.setdefault(head, []).append(tail)
    for n in g.nodes.values():                       # creation order is topological
        r = rep[n.id]
        best = rank.get(r, 0)
        for t in into.get(r, ()):
            if t != r:
                best = max(best, rank.get(t, 0) + 1)
        rank[r] = best
    depth = max(rank.values(), default=0) + 2
    width = [0] * (depth + 1)
    for r in rank.values():
        width[r] += 1
    width[depth - 1] += len(g.outputs)
    spans = [0] * (depth + 1)                        # virtual nodes: +1 on every rank strictly between tail and head
    for (_ref, head), tail in edges.items():
        a, b = sorted((rank.get(tail, 0), rank.get(head, 0)))
        if b - a > 1:
            spans[a + 1] += 1
            spans[b] -= 1
    cost, open_ = 0, 0
    for r in range(depth + 1):
        open_ += spans[r]
        cost += (width[r] + open_) ** 2
    return cost


def _redundant(g: Graph, c: str, inside: dict, direct: dict) -> bool:
    """Containers drawn without a box of their own (their contents go in the parent's):

    * a repeat whose copies are all open clusters: the copies' names (layer1.0, layer1.1) already say it, and
      the extra border only crowds the edges that pass between the copies;
    * a repeat/seq holding exactly its parent's layers (a block that is one repeat).
    A repeat whose copies are layers or folded blocks keeps its box (``encoder.layers ×6``).
    """
    cont = g.containers.get(c)
    if cont is None or cont.kind == "block":
        return False
    if cont.kind == "repeat" and not direct.get(c):
        return True
    if cont.parent is None:
        return False
    return len(inside.get(c, ())) == len(inside.get(cont.parent, ()))


def _node(where, g: Graph, n, prefix: str, families: dict) -> None:
    import graphviz
    fam = n.op.family
    families.setdefault(fam, None)
    label = n.op.label(n.params) if n.op.name != "input" else n.id
    tip = [f"{n.id}: {n.op.name}", str(n.loc)]
    p, b = n.counts()
    if p:
        tip.append(f"{_count(p)} parameters")
    shared = n.meta.get("shared_with")
    if shared:
        tip.append(f"uses the weights of {shared}")
    macs = n.meta.get("macs", 0)
    if macs:
        tip.append(f"{_count(macs)} MACs")
    error = n.meta.get("error")
    if error:
        tip.append(f"error: {error}")
    attrs: dict[str, Any] = {"fillcolor": family_colour(fam), "tooltip": _tip("\n".join(tip)), "id": prefix + n.id}
    if fam == "merge":
        attrs.update(shape=MERGE_SHAPES.get(len(label), "ellipse"), style="filled", penwidth="1.2",
                     margin="0.02", fontsize="12" if len(label) == 1 else "10", width="0.3", height="0.3")
        html_label = f"<<B>{_h(label)}</B>>"
    elif n.op.name == "input":
        attrs.update(shape="oval")
        html_label = f"<{_h(label)}>"
    else:
        sub = n.local_name
        if sub in (label, n.op.name, label.split(" ")[0]):
            sub = ""                      # the name only repeats the op ("relu", "conv" under "conv 3x3, 64")
        if shared:
            owner = shared[len(n.scope[-1]) + 1:] if n.scope and shared.startswith(n.scope[-1] + ".") else shared
            sub = (sub + " " if sub else "") + f"(= {owner})"
        small = f'<BR/><FONT POINT-SIZE="8" COLOR="#555555">{_h(sub)}</FONT>' if sub else ""
        html_label = f"<{_h(label)}{small}>"
        if shared:
            attrs["style"] = "rounded,filled,dashed"
    if error:                             # the layer whose shape rule failed: red, with the message
        attrs.update(fillcolor=ERROR_FILL, color=ERROR_LINE, penwidth="2", fontcolor=ERROR_LINE)
        html_label = html_label[:-1] + f'<BR/><FONT POINT-SIZE="8">{"<BR/>".join(map(_h, _wrap(error)))}</FONT>>'
    where.node(graphviz.nohtml(prefix + n.id), label=html_label, **attrs)


ERROR_FILL = "#fbd5d5"
ERROR_LINE = "#c00000"


def _wrap(text: str, width: int = 48) -> list[str]:
    """A message cut to a few lines for a node label (the full message is in the tooltip and the error output)."""
    import textwrap
    lines = textwrap.wrap(text, width)
    return lines[:3] + ["..."] if len(lines) > 3 else lines


def _io_rows(g: Graph, ins: list, outs: list) -> list[str]:
    """The 'in: ...' and 'out: ...' label rows of a box that stands for several layers (up to three shapes each)."""
    rows = []
    for word, refs in (("in", ins), ("out", outs)):
        if refs:
            txt = ", ".join(shape_text(g.type_of(r)) for r in refs[:3]) + (" ..." if len(refs) > 3 else "")
            rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8">{word}: {_h(txt)}</FONT></TD></TR>')
    return rows


def _folded_node(where, g: Graph, path: str, ids: list[str], prefix: str, pos: dict) -> None:
    import graphviz
    c = g.containers.get(path)
    ins, outs = boundary(g, ids, pos)
    p: Any = 0
    m: Any = 0
    for nid in ids:
        np_, _ = g.nodes[nid].counts()
        p, m = p + np_, m + g.nodes[nid].meta.get("macs", 0)
    rows = [f'<TR><TD ALIGN="LEFT"><B>{_h(path)}</B>  {_h(_kind_text(g, path, ids))}</TD></TR>']
    rows += _io_rows(g, ins, outs)
    rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8">{_h(_params_short(p))} params, '
                f'{len(ids)} layers</FONT></TD></TR>')
    label = '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"
    tip = [f"{path}: {_kind_text(g, path, ids)}", str(c.loc) if c else "", f"{_count(p)} parameters"]
    if m:
        tip.append(f"{_count(m)} MACs")
    where.node(graphviz.nohtml(prefix + path), label=label, shape="box", style="rounded,filled,bold",
               fillcolor=BLOCK_COLOUR, peripheries="2", tooltip=_tip("\n".join(t for t in tip if t)),
               id=prefix + path)


RUN_COLOUR = "#FFFFFF"


def _ops_text(g: Graph, ids: list[str]) -> tuple[str, Any]:
    """('linear ×2, relu ×1, add ×1': the three commonest ops of some layers, their parameter count)."""
    ops: dict[str, int] = {}
    p: Any = 0
    for nid in ids:
        n = g.nodes[nid]
        ops[n.op.name] = ops.get(n.op.name, 0) + 1
        p = p + n.counts()[0]
    top = sorted(ops.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{op} ×{k:,}" for op, k in top[:3]) + (", ..." if len(top) > 3 else ""), p


def _run_node(where, g: Graph, rid: str, drawn: list[str], ids: list[str], prefix: str, pos: dict,
              inner: dict | None = None, branches: int | None = None) -> None:
    """One box for the middle of a long chain or, with ``branches``, of a wide fan (``drawn``: the boxes it
    replaces, layers, folded blocks, units or fans (``inner``: the boxes of those that stand for several);
    ``ids``: the layers in them): how many, their ops, in/out shapes, parameters."""
    import graphviz
    inner = inner or {}
    units = [d for d in drawn if d.endswith("~unit")]
    ins, outs = boundary(g, ids, pos)
    what, p = _ops_text(g, ids)
    strip = len(prefix)
    first = (inner[drawn[0]][0] if drawn[0] in inner else drawn[0])[strip:]
    last = (inner[drawn[-1]][-1] if drawn[-1] in inner else drawn[-1])[strip:]
    blocks = len(drawn) < len(ids)      # the boxes were folded blocks, units or fans: count their kinds in the label
    if blocks:
        kinds: dict[str, int] = {}
        for d in drawn:
            c = g.containers.get(d[strip:])
            k = "unit" if d.endswith("~unit") else "fan" if d.endswith("~fan") else \
                str(c.block) if c is not None and c.kind == "block" else (c.kind if c is not None else "seq")
            kinds[k] = kinds.get(k, 0) + 1
        top_kinds = sorted(kinds.items(), key=lambda kv: -kv[1])
        layers_what, what = what, ", ".join(f"{k} ×{n:,}" for k, n in top_kinds[:3]) + \
            (", ..." if len(top_kinds) > 3 else "")
        what_tip = f"{what}; layers: {layers_what}"
    else:
        what_tip = what
    word = "units" if len(units) == len(drawn) else "boxes" if units or any(d.endswith("~fan") for d in drawn) else \
        "blocks" if blocks else "layers"
    boxes = f"{len(drawn):,} {word}" if branches is None else \
        f"{branches:,} parallel branches" + (f" ({len(drawn):,} {word})" if len(drawn) != branches else "")
    rows = [f'<TR><TD ALIGN="LEFT"><B>{"⋮" if branches is None else "⋯"} {_h(boxes)}</B></TD></TR>',
            f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8">{_h(first)} ... {_h(last)}</FONT></TD></TR>',
            f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8">{_h(what)}</FONT></TD></TR>']
    rows += _io_rows(g, ins, outs)
    layers = f", {len(ids):,} layers" if blocks else ""
    rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8">{_h(_params_short(p))} params{layers}</FONT></TD></TR>')
    label = '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"
    whole = "a chain" if branches is None else f"{branches:,} parallel branches"
    tip = [f"{first} ... {last}: {len(drawn):,} boxes of {whole} drawn as one, to keep the drawing within "
           f"max_drawn_nodes / max_layout_cost", what_tip, f"{_count(p)} parameters",
           "netspec summary lists every layer"]
    where.node(graphviz.nohtml(rid), label=label, shape="box", style="rounded,filled,dashed",
               fillcolor=RUN_COLOUR, tooltip=_tip("\n".join(tip)), id=rid)


UNIT_COLOUR = "#F7F7F7"


def _unit_node(where, g: Graph, uid: str, drawn: list[str], ids: list[str], prefix: str, pos: dict) -> None:
    """One box for a unit of a flat network (``_units``; ``drawn``: the boxes it replaces, ``ids``: the layers in
    them): its first and last box, its ops, in/out shapes, parameters."""
    import graphviz
    ins, outs = boundary(g, ids, pos)
    what, p = _ops_text(g, ids)
    strip = len(prefix)
    first, last = drawn[0][strip:], drawn[-1][strip:]
    rows = [f'<TR><TD ALIGN="LEFT"><B>{_h(first)} ... {_h(last)}</B></TD></TR>',
            f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8">{_h(what)}</FONT></TD></TR>']
    rows += _io_rows(g, ins, outs)
    rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8">{_h(_params_short(p))} params, '
                f'{len(ids):,} layers</FONT></TD></TR>')
    label = '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"
    tip = [f"{first} ... {last}: {len(drawn):,} boxes drawn as one, a unit of the network (only "
           f"{len(ins)} value{'s' if len(ins) != 1 else ''} in, {len(outs)} out), to keep the drawing within "
           "max_drawn_nodes / max_layout_cost", what, f"{_count(p)} parameters", "netspec summary lists every layer"]
    where.node(graphviz.nohtml(uid), label=label, shape="box", style="rounded,filled", fillcolor=UNIT_COLOUR,
               peripheries="2", tooltip=_tip("\n".join(tip)), id=uid)


def _cluster_attrs(cl, g: Graph, path: str, ids: list[str], box: str | None, prefix: str) -> None:
    c = g.containers.get(path)
    kind = c.kind if c else "seq"
    # Short labels in the top-right corner: dot routes edges through cluster labels, and edges enter a cluster
    # on the left, where it puts the main chain. A block shows its full name over its type (the arguments are in
    # the tooltip and in folded nodes); a seq or repeat inside a box shows its name relative to that box.
    name = path[len(box) + 1:] if box and kind != "block" and path.startswith(box + ".") else path
    label = f"<<B>{_h(name)}</B>"
    if kind == "block":
        label += f'<BR ALIGN="RIGHT"/><FONT POINT-SIZE="9" COLOR="#555555">{_h(c.block)}</FONT>'
    elif kind == "repeat":
        label += f'<BR ALIGN="RIGHT"/><FONT POINT-SIZE="9" COLOR="#555555">{_h(_kind_text(g, path, ids))}</FONT>'
    label += '<BR ALIGN="RIGHT"/>>'
    style = {"block": ("rounded,filled", "#F6F8FB", "#7A8799"),
             "repeat": ("rounded,dashed", "white", "#9A9A9A"),
             "seq": ("rounded,dotted", "white", "#9A9A9A")}.get(kind, ("rounded", "white", "#9A9A9A"))
    cl.attr(label=label, style=style[0], fillcolor=style[1], color=style[2], fontsize="10", fontcolor="#333333",
            labeljust="r", margin="16", tooltip=_tip(f"{path}: {_kind_text(g, path, ids)}\n{c.loc if c else ''}"),
            id=f"cluster_{prefix}{path}")


def _kind_text(g: Graph, path: str, ids: list[str]) -> str:
    """'basic(planes=128, stride=2)', 'x2' (a repeat), 'seq'."""
    c = g.containers.get(path)
    if c is None:
        return "seq"
    if c.kind == "block":
        args = ", ".join(f"{k}={_arg(v)}" for k, v in c.args.items())
        text = f"{c.block}({args})" if args else str(c.block)
        return text if len(text) <= 64 else text[:61] + "...)"
    if c.kind == "repeat":
        return f"×{copies(path, ids)}"
    return "seq"


def _arg(v) -> str:
    s = repr(v) if isinstance(v, str) else str(v)
    return s if len(s) <= 16 else s[:13] + "..."


def _edge(root, g: Graph, ref, tail: str, head: str, port: str | None = None, bundle: list | None = None) -> None:
    """An edge carrying a value, labelled with its shape (and the output's name for multi-output ops); or, with
    ``bundle``, several values: how many, and their shape where they have one."""
    import graphviz
    node = g.nodes[ref[0]]
    t = node.out[ref[1]]
    text = shape_text(t)
    if bundle is not None:
        shapes = {shape_text(g.type_of(r)) for r in bundle}
        text = f"{len(bundle):,} values" + (f" of {text}" if len(shapes) == 1 else "")
        tip = f"{len(bundle):,} values to {head.split('/', 1)[-1]}: " + ", ".join(r[0] for r in bundle[:5]) + \
            (", ..." if len(bundle) > 5 else "")
    else:
        if len(node.out) > 1:
            names = node.op.outputs if len(node.op.outputs) == len(node.out) else \
                [f"out{i}" for i in range(len(node.out))]
            text = f"{names[ref[1]]}: {text}"
        tip = f"{ref[0]} -> {head.split('/', 1)[-1]}: {text}"
    attrs = {"label": f"<{_h(text)}&nbsp;&nbsp;>",            # the spaces keep the text off cluster borders
             "tooltip": _tip(tip)}
    if port:
        attrs["headport"] = port
    root.edge(graphviz.nohtml(tail), graphviz.nohtml(head), **attrs)


def _params_short(p) -> str:
    if isinstance(p, int) and p >= 10_000:
        return human(p).replace(" ", "")
    return _count(p)


def _title_text(g: Graph) -> str:
    # the totals of the summary (summarize's sums, in its order), without its rows: a big graph's title costs a pass
    params: Any = 0
    macs: Any = 0
    for n in g.nodes.values():
        if n.op.name != "input":
            params = params + n.counts()[0]
            macs = macs + n.meta.get("macs", 0)
    ins = ", ".join(f"{k}: {shape_text(v)}" for k, v in g.input_types().items())
    parts = [f"<B>{_h(g.name)}</B>", _h(ins), f"{_h(_count(params))} params"]
    if isinstance(macs, int) and macs:
        parts.append(f"{_h(human(macs))}MACs")
    return "  ·  ".join(parts)


def _legend_label(titles: list[str], families: list[str], folded: bool, runs: bool = False,
                  units: bool = False, fans: bool = False) -> str:
    rows = []
    for t in titles:
        rows.append(f'<TR><TD ALIGN="LEFT" BORDER="0"><FONT POINT-SIZE="12">{t}</FONT></TD></TR>')
    def cell(colour: str, style: str, text: str) -> str:
        return (f'<TD BGCOLOR="{colour}" BORDER="1" COLOR="#888888" STYLE="{style}">'
                f'<FONT POINT-SIZE="9">{text}</FONT></TD>')
    cells = "".join(cell(family_colour(f), "rounded", _h(f)) for f in families)
    for shown, colour, style, text in ((folded, BLOCK_COLOUR, "rounded", "folded block"),
                                       (runs, RUN_COLOUR, "dashed", "⋮ shortened chain"),
                                       (fans, RUN_COLOUR, "dashed", "⋯ shortened fan"),
                                       (units, UNIT_COLOUR, "rounded", "first ... last: a unit drawn as one")):
        if shown:
            cells += cell(colour, style, text)
    if cells:
        rows.append('<TR><TD ALIGN="LEFT" BORDER="0"><TABLE BORDER="0" CELLSPACING="3" CELLPADDING="2"><TR>'
                    + cells + "</TR></TABLE></TD></TR>")
    return '<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">' + "".join(rows) + "</TABLE>>"


def _h(s) -> str:
    """Escape text for a Graphviz HTML-like label."""
    return html.escape(str(s), quote=True)


def _tip(s: str) -> str:
    """A tooltip (a DOT escString): backslashes doubled, newlines as \\n, '&' as '&amp;' (Graphviz reads entities
    in strings, so a file name holding '&lt;' would show as '<'); Graphviz XML-escapes the result in SVG."""
    return str(s).replace("&", "&amp;").replace("\\", "\\\\").replace("\n", "\\n")


# -- rendering and writing ----------------------------------------------------------------------------

class _NoDot(Exception):
    pass


def render(drawing: Drawing | str, fmt: str, timeout: float = DOT_TIMEOUT_S) -> bytes:
    """Run Graphviz's ``dot`` on the source and return the rendered bytes (``fmt`` = svg, png, pdf).

    Runs ``dot`` directly (not ``graphviz.pipe``) so that a layout can be stopped after ``timeout`` seconds.
    PNG is drawn by cairo and written by gd where that plugin exists: the same picture, in a third of the bytes
    and half the time (a palette PNG); plain ``-Tpng`` otherwise.
    """
    import shutil
    import subprocess
    src = (drawing.source if isinstance(drawing, Drawing) else drawing).encode("utf-8")
    exe = shutil.which("dot")
    if exe is None:
        raise _NoDot()
    for target in (["png:cairo:gd", "png"] if fmt == "png" else [fmt]):
        try:
            proc = subprocess.run([exe, f"-T{target}"], input=src, capture_output=True, timeout=timeout)
        except FileNotFoundError:
            raise _NoDot() from None
        except subprocess.TimeoutExpired:
            raise DrawError(f"Graphviz did not finish the layout within {timeout:g} s", None,
                            "fold blocks with --depth K (e.g. --depth 1) to draw fewer nodes") from None
        if proc.returncode == 0 and proc.stdout:
            return proc.stdout
        if b"not recognized" not in proc.stderr:
            break
    err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    raise OutputError(f"Graphviz could not draw the diagram: {err[-1] if err else 'exit ' + str(proc.returncode)}",
                      None, "this is likely a bug in netspec's drawing; write a .dot file to inspect the source")


def output_format(path: str | os.PathLike) -> str:
    """The format a path asks for, from its suffix; an OutputError for anything else."""
    p = Path(path)
    if is_stdout(p):
        return "dot"
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        what = f"'{p.suffix}'" if p.suffix else "no suffix"
        raise OutputError(f"cannot draw to '{p}': {what} is not a diagram format", None,
                          "name the output .svg, .png, .pdf or .dot (the format comes from the suffix)")
    output_target(p)        # a regular file (or a new one) in a folder that exists: refused now, before any work
    return fmt


def draw(spec_or_path, path: str | os.PathLike | None = None, *, depth: int | None = None, rankdir: str = "TB",
         network: str | None = None, bind: dict | str | None = None, params: dict | None = None,
         legend: bool = True, search_path: list[str] | None = None) -> Drawing:
    """Draw a network to a file; the format comes from the suffix (.svg, .png, .pdf, .dot).

    Args:
        spec_or_path: a spec file path, spec text, a loaded ``Spec``, or an expanded ``Graph``.
        path: where to write; written atomically (a failed render leaves an existing file as it was); ``-`` writes
            the DOT source to standard output; None writes nothing (in a notebook the returned Drawing shows itself).
        depth: levels of blocks drawn as clusters; deeper blocks become one node with in/out shapes and
            parameter count (0 folds every block). None: every block open where the drawing fits
            ``max_drawn_nodes`` and ``max_layout_cost``, otherwise the deepest level that fits (``auto_depth``).
        rankdir: "TB" (top to bottom, the default) or "LR" (left to right).
        network: which network of a file with several; by default all of them, side by side.
        bind: values for symbols (``{"H": 224}`` or ``"H=224,W=224"``), so edges show numbers.
        params: network parameters.
        legend: add the title line and the colour legend.
    Returns:
        the :class:`Drawing` (DOT source and counts of nodes, clusters and edges).
    Raises:
        GraphvizMissing: ``dot`` is not installed; the DOT source was written next to ``path`` (``.dot``), or,
            where a file of that name exists, to a fresh name beside it (never replacing anything).
    """
    p = Path(path) if path is not None else None
    fmt = output_format(p) if p is not None else None
    try:
        graphs = _graphs(spec_or_path, network, bind, params, search_path)
    except ErrorList as e:
        partial = getattr(e, "graph", None)
        if p is None or partial is None or not any(n.meta.get("error") for n in partial.nodes.values()):
            raise
        # a shape error: draw what was built, the failing layers in red, then report the errors (exit 1)
        plans = _Plans()
        if depth is None and fmt != "dot":
            depth = auto_depth([partial], plans)
        drawing = to_dot([partial], depth=depth, rankdir=rankdir, legend=legend, title=legend, layout=fmt != "dot",
                         plans=plans)
        _write(p, fmt, drawing)
        e.errors[-1].hints.append(f"wrote {p} anyway: the failing layer is in red" if not is_stdout(p) else
                                  "the diagram on standard output marks the failing layer in red")
        raise
    plans = _Plans()
    if depth is None and fmt != "dot":      # a laid-out drawing folds what does not fit; DOT source opens all
        depth = auto_depth(graphs, plans)
    drawing = to_dot(graphs, depth=depth, rankdir=rankdir, legend=legend, title=legend, layout=fmt != "dot",
                     plans=plans)
    drawing.depth = depth
    if p is None:
        return drawing
    _write(p, fmt, drawing)
    return drawing


def _write(p: Path, fmt: str, drawing: Drawing) -> None:
    """Write a drawing: DOT source as it is, other formats laid out by Graphviz."""
    if fmt == "dot":
        write_output(p, drawing.source)
        return
    try:
        data = render(drawing, fmt)
    except _NoDot:
        dot_path = write_new_text(p.with_suffix(".dot"), drawing.source)   # a new file: an existing one is kept
        raise GraphvizMissing(f"Graphviz's 'dot' program was not found, so '{p}' was not drawn; "
                              f"wrote its source to the new file '{dot_path}'", None, INSTALL_HINT,
                              dot_path=dot_path) from None
    atomic_write_bytes(p, data)


def _graphs(spec_or_path, network, bind, params, search_path) -> list[Graph]:
    from .pipeline import graphs
    return graphs(spec_or_path, network, params=params, bind=bind, search_path=search_path)
