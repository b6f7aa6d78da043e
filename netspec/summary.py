"""Graph -> Summary: one row per layer (and per block), with output shape, parameters and MACs; totals.

Reads what the expansion annotated (``meta["out"]``, ``meta["weights"]``, ``meta["macs"]``, ``meta["shared_with"]``)
and never recomputes a shape. Weights shared between layers are counted once, at the layer that owns them.
MACs are multiply-accumulates of one forward pass (torchvision's "GFLOPS" column counts the same thing); they stay
symbolic (``576*N*H*W``) until the symbols are bound.

A block's row totals what is inside it and lists the values leaving it, as ``graph.structure.boundary`` finds them
for a collapsed block in a diagram (tests/test_summary.py holds the two to the same answer).
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import SpecError, did_you_mean
from .graph.ir import Graph
from .pipeline import graph, graphs, parse_bind  # noqa: F401  (parse_bind: part of this module's API)
from .graph.structure import positions
from .shapes import Dim

FORMATS = ("table", "json", "csv", "markdown")


# -- rows and totals ---------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of a summary: a layer, a graph input, or a container (block instance, seq, repeat)."""

    name: str                  # structural name: layer1.0.conv1 (also the state_dict prefix)
    kind: str                  # "input" | "layer" | "block" | "seq" | "repeat"
    depth: int                 # number of enclosing containers
    op: str                    # op name (conv2d), or the block name for a block, or "seq"/"repeat"
    label: str                 # short description: "conv 3x3, 64, /2", "basic", "x2"
    out: str                   # output type(s): "[1, 64, 56, 56]"
    params: int | Dim          # learned parameters owned here (0 where the weights are shared)
    buffers: int | Dim         # elements of constant buffers (running statistics, index tables)
    macs: int | Dim            # multiply-accumulates of one forward pass
    shared_with: str | None    # the layer whose weights this one uses
    loc: str                   # spec file:line:col


@dataclass
class Totals:
    params: int | Dim
    buffers: int | Dim
    macs: int | Dim
    layers: int                # layer rows (inputs and containers not counted)
    shared: int                # layers that use another layer's weights


@dataclass
class Summary:
    """What ``netspec summary`` shows, as data. ``str(summary)`` is the plain-text table."""

    network: str
    file: str
    bindings: dict
    inputs: dict               # input name -> type string
    outputs: dict              # output name -> type string
    rows: list[Row]
    totals: Totals
    requirements: list[str] = field(default_factory=list)
    memory: dict = field(default_factory=dict)     # bytes: params, inputs, activations (None where symbolic)
    warnings: list = field(default_factory=list)   # e.g. more memory than max_alloc_bytes
    data_symbols: list = field(default_factory=list)   # sizes only the data decides (a detector's K): never bound

    @property
    def symbolic(self) -> bool:
        """True when some MAC count still depends on an unbound symbol."""
        return _is_dim(self.totals.macs)

    # -- formats --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready data: ints stay ints, symbolic counts become strings like ``576*N*H*W``."""
        return {
            "network": self.network, "file": self.file, "bindings": dict(self.bindings),
            "inputs": dict(self.inputs), "outputs": dict(self.outputs),
            "rows": [{k: _jsonable(v) for k, v in asdict(r).items()} for r in self.rows],
            "totals": {k: _jsonable(v) for k, v in asdict(self.totals).items()},
            "requirements": list(self.requirements),
            "memory": dict(self.memory),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_csv(self) -> str:
        """One row per line with a header; the last line (kind ``total``) holds the totals."""
        buf = io.StringIO()
        cols = list(Row.__dataclass_fields__)
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in self.rows:
            w.writerow([_csv_cell(getattr(r, c)) for c in cols])
        t = self.totals
        w.writerow([_csv_cell(v) for v in ("total", "total", 0, "", "", "", t.params, t.buffers, t.macs, None, "")])
        return buf.getvalue()

    def to_markdown(self) -> str:
        """A GitHub table; nesting shown by indenting the names."""
        lines = [f"**{_md(self.network)}** ({_md(self.file)}" + (f", {_bind_text(self.bindings)}" if self.bindings
                                                                   else "") + ")", "",
                 "| layer | op | output | params | MACs |", "|---|---|---|---:|---:|"]
        for r in self.rows:
            name = "&nbsp;&nbsp;" * r.depth + ("**" + _md(r.name) + "**" if r.kind in CONTAINER_KINDS else _md(r.name))
            lines.append(f"| {name} | {_md(_op_text(r))} | {_md(r.out)} | {_md(_params_text(r))} | "
                         f"{_md(_macs_text(r))} |")
        t = self.totals
        lines.append(f"| **total** | {t.layers} layers | | **{_count(t.params)}** | **{_count(t.macs)}** |")
        return "\n".join(lines) + "\n"

    def to_text(self, rich: bool = False):
        """The table as aligned plain text, or (``rich=True``) as a rich renderable for a terminal."""
        head = ("layer", "op", "output", "params", "MACs")
        body = [(("  " * r.depth) + r.name, _op_text(r), r.out, _params_text(r), _macs_text(r)) for r in self.rows]
        foot = _footer(self)
        if rich:
            return _rich_table(self, head, body, foot)
        widths = [max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i]) for i in range(5)]
        right = (False, False, False, True, True)

        def fmt(cells):
            return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

        rule = "-" * len(fmt(["-" * w for w in widths]))
        out = [fmt(head), rule] + [fmt(b) for b in body] + [rule] + foot
        return "\n".join(out) + "\n"

    def to_html(self) -> str:
        """The table as an HTML fragment (a <table>; every cell escaped), for notebooks and ``netspec serve``."""
        from html import escape
        head = "".join(f'<th style="text-align:{"right" if i >= 3 else "left"}">{h}</th>'
                       for i, h in enumerate(("layer", "op", "output", "params", "MACs")))
        body = []
        for r in self.rows:
            cells = (_op_text(r), r.out, _params_text(r), _macs_text(r))
            style = ' style="font-weight:bold"' if r.kind in CONTAINER_KINDS else ""
            body.append(f'<tr class="{escape(r.kind)}" data-name="{escape(r.name)}"{style}>'
                        f'<td style="text-align:left;padding-left:{0.2 + 1.2 * r.depth:.1f}em">{escape(r.name)}</td>'
                        + "".join(f'<td style="text-align:{"right" if i >= 2 else "left"}">{escape(c)}</td>'
                                  for i, c in enumerate(cells)) + "</tr>")
        foot = "<br>".join(escape(line) for line in _footer(self))
        return (f'<table class="netspec-summary"><caption style="text-align:left"><b>{escape(self.network)}</b> '
                f'({escape(self.file)})</caption><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
                f'</table><div class="netspec-totals" style="font-family:monospace;white-space:pre">{foot}</div>')

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        t = self.totals
        macs = f", {human(t.macs)}MACs" if not _is_dim(t.macs) else \
            f", MACs depend on {', '.join(sorted(str(x) for x in t.macs.free_symbols()))}"
        return f"<Summary {self.network}: {t.layers} layers, {_count(t.params)} parameters{macs}>"

    def __str__(self) -> str:
        return self.to_text()

    def render(self, fmt: str = "table") -> str:
        """The summary in one of FORMATS as text (``table`` is the plain-text table)."""
        if fmt == "table":
            return self.to_text()
        if fmt == "json":
            return self.to_json() + "\n"
        if fmt == "csv":
            return self.to_csv()
        if fmt == "markdown":
            return self.to_markdown()
        raise SpecError(f"unknown summary format '{fmt}'", None,
                        [h for h in [did_you_mean(fmt, FORMATS)] if h] + [f"formats: {', '.join(FORMATS)}"])


CONTAINER_KINDS = ("block", "seq", "repeat")


def types_text(graph: Graph, refs: list) -> str:
    return ", ".join(str(graph.type_of(r)) for r in refs)


# -- building a summary ------------------------------------------------------------------------------

def summarize(graph: Graph, bindings: dict | None = None) -> Summary:
    """Summary of an expanded graph (the pass behind ``netspec summary``)."""
    from .memory import estimate, warnings_for
    est = estimate(graph)
    rows: list = []
    boxes: dict = {}            # container path -> _Box, in the order they open (each before the nodes inside it)
    tot_p: Any = 0
    tot_b: Any = 0
    tot_m: Any = 0
    layers = shared = 0
    last: tuple = ()
    for n in graph.nodes.values():
        sc = n.scope
        if sc is not last:
            # the containers this node opens: a suffix of its scope (whoever opened a container opened its parents)
            k = len(sc)
            while k and sc[k - 1] not in boxes:
                k -= 1
            for i in range(k, len(sc)):
                boxes[sc[i]] = _Box(sc[i], i, sc[i - 1] if i else None, len(rows))
                rows.append(None)               # its row, filled once everything inside it is counted
            last = sc
        p, b = n.counts()
        macs = n.meta.get("macs", 0)
        if sc:
            box = boxes[sc[-1]]
            box.p, box.b, box.m = box.p + p, box.b + b, box.m + macs
            box.names.add(n.id[len(sc[-1]) + 1:].split(".", 1)[0])
        is_input = n.op.name == "input"
        if not is_input:
            layers += 1
            shared += bool(n.meta.get("shared_with"))
            tot_p, tot_b, tot_m = tot_p + p, tot_b + b, tot_m + macs
        rows.append(Row(
            name=n.id, kind="input" if is_input else "layer", depth=len(sc), op=n.op.name,
            label="input" if is_input else n.op.label(n.params),
            out=", ".join(str(t) for t in n.out), params=p, buffers=b, macs=macs,
            shared_with=n.meta.get("shared_with"), loc=str(n.loc)))
    if boxes:
        _leaving(graph, boxes)
        pos = positions(graph)
        for box in reversed(boxes.values()):    # inner containers first: each adds its totals to its parent's
            if box.parent is not None:
                up = boxes[box.parent]
                up.p, up.b, up.m = up.p + box.p, up.b + box.b, up.m + box.m
                up.names.add(box.path[len(box.parent) + 1:].split(".", 1)[0])
            rows[box.row] = _container_row(graph, box, pos)
    return Summary(
        network=graph.name, file=graph.file, bindings=dict(bindings or {}),
        inputs={k: str(t) for k, t in graph.input_types().items()},
        outputs={k: str(t) for k, t in graph.output_types().items()},
        rows=rows, totals=Totals(tot_p, tot_b, tot_m, layers, shared),
        requirements=[r.text for r in graph.requirements],
        memory={"params": est.params, "inputs": est.inputs, "activations": est.activations},
        warnings=warnings_for(graph), data_symbols=sorted(graph.sym.data))


class _Box:
    """A container while the summary is made: its totals, the values leaving it, the names right under it."""

    __slots__ = ("path", "depth", "parent", "row", "p", "b", "m", "outs", "names")

    def __init__(self, path: str, depth: int, parent: str | None, row: int):
        self.path, self.depth, self.parent, self.row = path, depth, parent, row
        self.p: Any = 0
        self.b: Any = 0
        self.m: Any = 0
        self.outs: dict = {}
        self.names: set = set()


def _leaving(graph: Graph, boxes: dict) -> None:
    """Each container's values that leave it (consumed outside it, or a graph output), as ``structure.boundary``
    finds them, in one pass over the edges: a value leaves the containers of its producer that do not hold its
    consumer, which are the innermost ones up to the first that does (scopes are chains, outermost first)."""
    nodes = graph.nodes
    for n in nodes.values():
        sc = n.scope
        for ref in n.inputs:
            if ref is None:
                continue
            sp = nodes[ref[0]].scope
            if sp is sc:
                continue
            for i in range(len(sp) - 1, -1, -1):
                if i < len(sc) and sc[i] == sp[i]:
                    break
                boxes[sp[i]].outs.setdefault(tuple(ref), None)
    for ref in graph.outputs.values():
        for path in nodes[ref[0]].scope:
            boxes[path].outs.setdefault(tuple(ref), None)


def _container_row(graph: Graph, box: _Box, pos: dict) -> Row:
    c = graph.containers.get(box.path)
    outs = sorted(box.outs, key=lambda ref: (pos.get(ref[0], 0), ref[1]))
    kind = c.kind if c else "seq"
    if kind == "block":
        op, label = c.block or "block", c.block or "block"
    elif kind == "repeat":
        op, label = "repeat", f"x{len(box.names)}"
    else:
        op, label = "seq", "seq"
    return Row(name=box.path, kind=kind, depth=box.depth, op=op, label=label, out=types_text(graph, outs),
               params=box.p, buffers=box.b, macs=box.m, shared_with=None, loc=str(c.loc) if c else "")


# -- the public entry point ---------------------------------------------------------------------------

def summary(spec_or_path, *, bind: dict | str | None = None, network: str | None = None,
            params: dict | None = None, search_path: list[str] | None = None) -> Summary:
    """Summarise a network: per-layer output shapes, parameters and MACs, and totals. No weights, no forward pass.

    Args:
        spec_or_path: a spec file path, spec text, a loaded ``Spec``, or an expanded ``Graph``.
        bind: values for the symbolic dimensions, e.g. ``{"N": 1, "H": 224, "W": 224}`` or ``"N=1,H=224,W=224"``;
            unbound symbols stay symbolic in shapes and MAC counts.
        network: which network of a file with several (default: the first).
        params: network parameters, as for ``netspec.build``.
        search_path: extra folders imports may come from.
    Returns:
        a :class:`Summary` (``rows``, ``totals``; ``str()`` gives the table, ``render(fmt)`` other formats).
    """
    graph, bindings = load_graph(spec_or_path, bind=bind, network=network, params=params, search_path=search_path)
    return summarize(graph, bindings)


def load_graph(spec_or_path, *, bind=None, network=None, params=None, search_path=None) -> tuple[Graph, dict]:
    """Path/text/Spec/Graph -> (verified Graph, bindings): ``pipeline.graph`` plus the parsed bindings."""
    g = graph(spec_or_path, network, params=params, bind=bind, search_path=search_path)
    return g, ({} if isinstance(spec_or_path, Graph) else parse_bind(bind))


def summaries(spec_or_path, *, bind: dict | str | None = None, network: str | None = None,
              params: dict | None = None, search_path: list[str] | None = None) -> list[Summary]:
    """One Summary per network of a file (or only ``network``); what ``netspec summary`` prints."""
    bindings = parse_bind(bind)
    return [summarize(g, bindings) for g in graphs(spec_or_path, network, params=params, bind=bind,
                                                   search_path=search_path)]


# -- formatting helpers -------------------------------------------------------------------------------

def _is_dim(v) -> bool:
    return isinstance(v, Dim)


def _jsonable(v):
    return str(v) if _is_dim(v) else v


def _csv_cell(v):
    if v is None:
        return ""
    return str(v) if _is_dim(v) else v


def _count(v) -> str:
    if _is_dim(v):
        return str(v)
    return f"{v:,}" if v else "0" if v == 0 else str(v)


def human(v) -> str:
    """1814073344 -> '1.81 G'; symbolic counts are returned as they print."""
    if _is_dim(v):
        return str(v)
    for unit, k in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= k:
            return f"{v / k:.2f} {unit}"
    return str(v)


def _params_text(r: Row) -> str:
    if r.shared_with:
        return f"(shared: {r.shared_with})"
    return _count(r.params) if r.params or r.kind != "input" else ""


def _macs_text(r: Row) -> str:
    return "" if r.kind == "input" else _count(r.macs)


def _op_text(r: Row) -> str:
    if r.kind == "block":
        return f"[{r.op}]"
    if r.kind == "repeat":
        return f"repeat {r.label}"
    if r.kind in ("seq", "input"):
        return r.kind
    if r.op in ("add", "multiply", "subtract"):
        return r.op
    return r.label


def _bind_text(b: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in b.items())


def _md(s: str) -> str:
    return str(s).replace("|", "\\|").replace("*", "\\*") if s else ""


def _footer(s: Summary) -> list[str]:
    t = s.totals
    mb = ""
    if not _is_dim(t.params):
        mb = f" ({t.params * 4 / 2**20:.1f} MiB as float32)"
    lines = [f"{s.network}: {t.layers} layers" + (f", {t.shared} sharing weights" if t.shared else ""),
             f"  parameters: {_count(t.params)}{mb}"]
    if t.buffers:
        lines.append(f"  buffers:    {_count(t.buffers)} elements")
    macs = f"  MACs:       {_count(t.macs)}"
    if not _is_dim(t.macs):
        macs += f" ({human(t.macs)}MACs)"
    lines.append(macs)
    ins = ", ".join(f"{k} {v}" for k, v in s.inputs.items())
    outs = ", ".join(f"{k} {v}" for k, v in s.outputs.items())
    lines.append(f"  inputs: {ins}   outputs: {outs}")
    if s.memory:
        from .memory import MemoryEstimate
        lines.append(f"  memory: {MemoryEstimate(s.memory['params'], s.memory['inputs'], s.memory['activations']).text()}")
    if s.bindings:
        lines.append(f"  bound: {_bind_text(s.bindings)}")
    return lines


def _rich_table(s: Summary, head, body, foot):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text
    t = Table(title=f"{s.network}  ({s.file})", title_justify="left", show_lines=False, pad_edge=False,
              header_style="bold", box=None if os.environ.get("NETSPEC_PLAIN") else _box())
    for i, h in enumerate(head):
        t.add_column(h, justify="right" if i >= 3 else "left", no_wrap=i != 2)
    for r, cells in zip(s.rows, body):
        if r.kind in CONTAINER_KINDS:
            style = "bold cyan"
        elif r.kind == "input":
            style = "dim"
        elif r.shared_with:
            style = "magenta"
        else:
            style = ""
        t.add_row(*(Text(c) for c in cells), style=style)
    return Group(t, Text("\n".join(foot)))


def _box():
    from rich import box
    return box.SIMPLE_HEAD
