"""Graph -> Summary: one row per layer (and per block), with output shape, parameters and MACs; totals.

Reads what the expansion annotated (``meta["out"]``, ``meta["weights"]``, ``meta["macs"]``, ``meta["shared_with"]``)
and never recomputes a shape. Weights shared between layers are counted once, at the layer that owns them.
MACs are multiply-accumulates of one forward pass (torchvision's "GFLOPS" column counts the same thing); they stay
symbolic (``576*N*H*W``) until the symbols are bound.

Also home of the container helpers the drawer uses (members, boundary values, subtotals), so that a collapsed
block in a diagram and its row in the summary always agree.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from .errors import Loc, SpecError, did_you_mean
from .graph.ir import Graph, Node
from .limits import LIMITS
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


# -- container helpers (shared with the drawer) ------------------------------------------------------

def members(graph: Graph) -> dict[str, list[str]]:
    """Container path -> ids of the nodes inside it (at any depth), in graph order."""
    out: dict[str, list[str]] = {}
    for n in graph.nodes.values():
        for p in n.scope:
            out.setdefault(p, []).append(n.id)
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
    for nid in ids:
        n = graph.nodes[nid]
        for succ in graph.g.successors(nid):
            if succ in inside:
                continue
            for slot, ref in enumerate(graph.nodes[succ].inputs):
                if ref is not None and ref[0] == nid:
                    outs.setdefault(tuple(ref), None)
        for k in range(len(n.out)):
            if (nid, k) in graph_outs:
                outs.setdefault((nid, k), None)
    pos = pos if pos is not None else positions(graph)
    return list(ins), sorted(outs, key=lambda ref: (pos.get(ref[0], 0), ref[1]))


def positions(graph: Graph) -> dict[str, int]:
    return {nid: i for i, nid in enumerate(graph.nodes)}


def copies(path: str, ids: Iterable[str]) -> int:
    """How many copies a repeat made: the distinct names right under its path (layer1.0, layer1.1 -> 2)."""
    k = len(path) + 1
    return len({nid[k:].split(".", 1)[0] for nid in ids})


def node_counts(node: Node) -> tuple[Any, Any]:
    """(parameters, buffer elements) a node owns; (0, 0) when it uses another layer's weights."""
    if node.meta.get("shared_with"):
        return 0, 0
    params: Any = 0
    buffers: Any = 0
    for shape, kind in node.meta.get("weights", {}).values():
        k: Any = 1
        for d in shape:
            k = k * d
        if kind == "param":
            params = params + k
        else:
            buffers = buffers + k
    return params, buffers


def types_text(graph: Graph, refs: list) -> str:
    return ", ".join(str(graph.type_of(r)) for r in refs)


# -- building a summary ------------------------------------------------------------------------------

def summarize(graph: Graph, bindings: dict | None = None) -> Summary:
    """Summary of an expanded graph (the pass behind ``netspec summary``)."""
    from .memory import estimate, warnings_for
    est = estimate(graph)
    rows: list[Row] = []
    inside = members(graph)
    pos = positions(graph)
    opened: set = set()
    tot_p: Any = 0
    tot_b: Any = 0
    tot_m: Any = 0
    layers = shared = 0
    for n in graph.nodes.values():
        for i, path in enumerate(n.scope):
            if path in opened:
                continue
            opened.add(path)
            rows.append(_container_row(graph, path, i, inside[path], pos))
        p, b = node_counts(n)
        macs = n.meta.get("macs", 0)
        is_input = n.op.name == "input"
        if not is_input:
            layers += 1
            shared += bool(n.meta.get("shared_with"))
            tot_p, tot_b, tot_m = tot_p + p, tot_b + b, tot_m + macs
        rows.append(Row(
            name=n.id, kind="input" if is_input else "layer", depth=len(n.scope), op=n.op.name,
            label="input" if is_input else n.op.label(n.params),
            out=", ".join(str(t) for t in n.out), params=p, buffers=b, macs=macs,
            shared_with=n.meta.get("shared_with"), loc=str(n.loc)))
    return Summary(
        network=graph.name, file=graph.file, bindings=dict(bindings or {}),
        inputs={k: str(t) for k, t in graph.input_types().items()},
        outputs={k: str(t) for k, t in graph.output_types().items()},
        rows=rows, totals=Totals(tot_p, tot_b, tot_m, layers, shared),
        requirements=[r.text for r in graph.requirements],
        memory={"params": est.params, "inputs": est.inputs, "activations": est.activations},
        warnings=warnings_for(graph))


def _container_row(graph: Graph, path: str, depth: int, ids: list[str], pos: dict) -> Row:
    c = graph.containers.get(path)
    p: Any = 0
    b: Any = 0
    m: Any = 0
    for nid in ids:
        n = graph.nodes[nid]
        np_, nb = node_counts(n)
        p, b, m = p + np_, b + nb, m + n.meta.get("macs", 0)
    _, outs = boundary(graph, ids, pos)
    kind = c.kind if c else "seq"
    if kind == "block":
        op, label = c.block or "block", c.block or "block"
    elif kind == "repeat":
        op, label = "repeat", f"x{copies(path, ids)}"
    else:
        op, label = "seq", "seq"
    return Row(name=path, kind=kind, depth=depth, op=op, label=label, out=types_text(graph, outs),
               params=p, buffers=b, macs=m, shared_with=None, loc=str(c.loc) if c else "")


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
    """Path/text/Spec/Graph -> (expanded Graph, validated bindings). Shared by summary and draw."""
    if isinstance(spec_or_path, Graph):
        if bind:
            raise SpecError("cannot bind symbols of an already expanded graph", None,
                            "pass the spec (or its path) instead, or expand it with bindings=...")
        return spec_or_path, {}
    from .graph.expand import expand
    from .graph.verify import verify
    spec = load_spec(spec_or_path, search_path)
    name = pick_network(spec, network)
    bindings = parse_bind(bind)
    check_bindings(spec, name, bindings)
    g = expand(spec, name, params=params, bindings=bindings or None)
    verify(g)
    return g, bindings


def load_spec(spec_or_path, search_path=None):
    from .spec.load import Spec, load
    if isinstance(spec_or_path, Spec):
        return spec_or_path
    return load(spec_or_path, search_path=search_path)


def pick_network(spec, network: str | None) -> str:
    if not spec.networks:
        raise SpecError("this file defines no network (only blocks)", Loc(spec.file, 1, 1),
                        "add 'inputs' and 'layers', or import this file from a spec that does")
    if network is None:
        return next(iter(spec.networks))
    if network not in spec.networks:
        raise SpecError(f"no network named '{network}'", Loc(spec.file, 1, 1),
                        [h for h in [did_you_mean(network, list(spec.networks))] if h] +
                        [f"networks: {', '.join(spec.networks)}"])
    return network


def parse_bind(bind: dict | str | None) -> dict:
    """``"N=1,H=224"`` or a dict -> {symbol: positive int}; anything else is a SpecError with a hint."""
    if bind is None or bind == "":
        return {}
    if isinstance(bind, str):
        items = {}
        for part in bind.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise SpecError(f"cannot read the binding '{part.strip()}'", None, "write SYMBOL=NUMBER, e.g. H=224")
            k, v = part.split("=", 1)
            items[k.strip()] = v.strip()
        bind = items
    out = {}
    for k, v in dict(bind).items():
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v.strip())
        if isinstance(v, bool) or not isinstance(v, int) or v < 1 or v > LIMITS.max_dim:
            raise SpecError(f"symbol {k} must be bound to a positive integer, got {v!r}", None,
                            f"e.g. --bind {k}=224")
        out[str(k)] = v
    return out


def input_symbols(spec, network: str) -> list[str]:
    """The symbols written in a network's input shapes (N, H, W, ...), in order of appearance."""
    net = spec.networks[network]
    names = set(net.raw.get("params") or {})
    symbols: list[str] = []
    for decl in (net.raw.get("inputs") or {}).values():
        shape = decl.get("shape", []) if isinstance(decl, dict) else decl
        for d in shape if isinstance(shape, list) else []:
            if isinstance(d, str) and d.strip().isidentifier() and d.strip() not in names \
                    and d.strip() not in symbols:
                symbols.append(d.strip())
    return symbols


def check_bindings(spec, networks: str | list[str], bindings: dict) -> None:
    """Every bound name must be a symbol of (one of) the networks' inputs: catches typos like h=224."""
    if not bindings:
        return
    networks = [networks] if isinstance(networks, str) else list(networks)
    symbols: list[str] = []
    for name in networks:
        symbols += [s for s in input_symbols(spec, name) if s not in symbols]
    for k in bindings:
        if k not in symbols:
            where = f"network '{networks[0]}'" if len(networks) == 1 else "these networks"
            raise SpecError(f"'{k}' is not a symbol of {where}", spec.networks[networks[0]].loc("inputs"),
                            [h for h in [did_you_mean(k, symbols)] if h] +
                            [f"symbols of the inputs: {', '.join(symbols) or '(none: every size is fixed)'}"])


def summaries(spec_or_path, *, bind: dict | str | None = None, network: str | None = None,
              params: dict | None = None, search_path: list[str] | None = None) -> list[Summary]:
    """One Summary per network of a file (or only ``network``); what ``netspec summary`` prints."""
    spec = load_spec(spec_or_path, search_path)
    names = [pick_network(spec, network)] if network is not None or len(spec.networks) <= 1 else list(spec.networks)
    bindings = parse_bind(bind)
    check_bindings(spec, names, bindings)
    from .graph.expand import expand
    from .graph.verify import verify
    out = []
    for name in names:
        g = expand(spec, name, params=params, bindings=bindings or None)
        verify(g)
        out.append(summarize(g, bindings))
    return out


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
