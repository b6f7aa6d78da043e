"""Graph <-> JSON: the expanded graph as data other tools can read (``netspec export --format json``).

The document (format ``netspec-graph``, version ``FORMAT_VERSION``) holds one network: its nodes in topological
order (structural name, op, parameters as resolved plus the spec's expressions, input and output types, weights,
parameter count, MACs, spec location), its edges (producer node/output -> consumer node/input), inputs, outputs,
block containers and the requirements on the symbols. Its JSON Schema (draft 2020-12) is ``graph.schema.json`` in
this package (``netspec schema --graph``).

``graph_from_json`` reads a document back into a ``GraphData`` (plain data; no ops are looked up, nothing is
imported or evaluated), whose ``to_json()`` writes the same bytes again.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources

from ..errors import Loc, NetspecError
from .ir import Graph

FORMAT = "netspec-graph"
FORMAT_VERSION = 1
SCHEMA_FILE = "graph.schema.json"


class GraphDataError(NetspecError):
    """A graph document that is not what ``export --format json`` writes."""


def graph_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a graph document."""
    return json.loads(resources.files("netspec").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


# -- Graph -> data --------------------------------------------------------------------------------------------------

def _count(v) -> int | str:
    """An int count, or a symbolic one as its expression text (``576*N*H*W``)."""
    return v if isinstance(v, int) and not isinstance(v, bool) else str(v)


def _dim(d) -> int | str:
    return d if isinstance(d, int) and not isinstance(d, bool) else str(d)


def _type(t) -> dict:
    return {"shape": [_dim(d) for d in t.shape], "dtype": t.dtype}


def _loc(loc: Loc | None) -> dict | None:
    return None if loc is None else {"file": loc.file, "line": loc.line, "col": loc.col}


def _value(v):
    """A parameter value as JSON: numbers, strings, booleans, null, lists, objects; anything else as its text."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        return [_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _value(x) for k, x in v.items()}
    return str(v)


def _params(n) -> dict:
    p = n.params
    if p is None:
        return {}
    try:
        data = p.model_dump(mode="json")
    except Exception:       # a params value pydantic cannot serialise: fall back to the plain values
        data = dict(p) if hasattr(p, "__iter__") else {}
    return {str(k): _value(v) for k, v in data.items()}


def to_data(g: Graph) -> dict:
    """The graph as a JSON-ready dict (the document ``export --format json`` writes)."""
    nodes = []
    for n in g.nodes.values():
        params, buffers = n.counts()
        nodes.append({
            "name": n.id,
            "op": n.op.name,
            "params": _params(n),
            "exprs": {str(k): str(v) for k, v in (n.meta.get("exprs") or {}).items()},
            "inputs": [None if t is None else _type(t) for t in n.meta.get("in", [])],   # null: optional, absent
            "outputs": [_type(t) for t in n.out],
            "weights": {k: {"shape": [_dim(d) for d in shape], "kind": kind}
                        for k, (shape, kind) in n.meta.get("weights", {}).items()},
            "parameters": _count(params),
            "buffers": _count(buffers),
            "macs": _count(n.meta.get("macs", 0)),
            "shared_with": n.meta.get("shared_with"),
            "scope": list(n.scope),
            "loc": _loc(n.loc),
        })
    edges = []
    for n in g.nodes.values():
        for slot, ref in enumerate(n.inputs):
            if ref is not None:
                edges.append({"from": {"node": ref[0], "output": ref[1]}, "to": {"node": n.id, "input": slot}})
    containers = [{"path": c.path, "kind": c.kind, "block": c.block, "parent": c.parent,
                   "args": {str(k): _value(v) for k, v in c.args.items()}, "loc": _loc(c.loc)}
                  for c in g.containers.values()]
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "file": g.file,
        "network": g.name,
        "network_params": {str(k): _value(v) for k, v in g.params.items()},
        "inputs": {k: {"node": v, **_type(g.nodes[v].out[0])} for k, v in g.inputs.items()},
        "outputs": {k: {"node": r[0], "output": r[1], **_type(g.type_of(r)), "loc": _loc(g.output_locs.get(k))}
                    for k, r in g.outputs.items()},
        "nodes": nodes,
        "edges": edges,
        "containers": containers,
        "requirements": [{"text": r.text, "symbol": r.symbol, "multiple_of": r.multiple_of, "where": r.where}
                         for r in g.requirements],
        "totals": {"parameters": _count(g.num_params()), "nodes": len(nodes), "edges": len(edges)},
    }


def dumps(data: dict) -> str:
    """The canonical text of a graph document: two-space indent, keys in the order written, a final newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def to_json(g: Graph) -> str:
    """The graph document as text (what ``netspec export --format json`` writes)."""
    return dumps(to_data(g))


# -- data -> GraphData ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TypeData:
    """A tensor type read back: dims are ints or symbolic expressions as text; ``str()`` prints as ``check`` does."""

    shape: tuple
    dtype: str = "float32"

    def __str__(self) -> str:
        s = "[" + ", ".join(str(d) for d in self.shape) + "]"
        return s if self.dtype == "float32" else f"{s} {self.dtype}"


@dataclass
class NodeData:
    name: str
    op: str
    params: dict
    inputs: list[TypeData]
    outputs: list[TypeData]
    parameters: int | str
    macs: int | str
    loc: Loc | None
    raw: dict = field(repr=False, default_factory=dict)


@dataclass
class GraphData:
    """A graph document read back (``graph_from_json``): nodes by name, edges as ((node, output), (node, input))."""

    file: str
    network: str
    nodes: dict[str, NodeData]
    edges: list[tuple]
    inputs: dict[str, TypeData]
    outputs: dict[str, TypeData]
    requirements: list[str]
    raw: dict = field(repr=False, default_factory=dict)

    def to_data(self) -> dict:
        return self.raw

    def to_json(self) -> str:
        return dumps(self.raw)

    def __repr__(self) -> str:
        return f"<GraphData {self.network} ({self.file}): {len(self.nodes)} nodes, {len(self.edges)} edges>"


def _type_back(d: dict) -> TypeData:
    return TypeData(tuple(d["shape"]), d["dtype"])


def graph_from_json(text_or_data: str | bytes | dict, name: str = "<graph>") -> GraphData:
    """Read a graph document (text or parsed JSON) back; validated against the published schema first.

    Raises GraphDataError (with the JSON path of the first problem) for anything the schema refuses, an unknown
    version, or edges that name no node.
    """
    if isinstance(text_or_data, (str, bytes)):
        try:
            data = json.loads(text_or_data)
        except ValueError as e:
            raise GraphDataError(f"not JSON: {e}", Loc(name, getattr(e, "lineno", 1), getattr(e, "colno", 1))) \
                from None
        except RecursionError:
            raise GraphDataError("not a graph document: nested too deeply to read", Loc(name, 1, 1)) from None
    else:
        data = text_or_data
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GraphDataError(f"not a netspec graph document (no \"format\": \"{FORMAT}\")", Loc(name, 1, 1),
                             "write one with: netspec export SPEC --format json -o graph.json")
    if data.get("version") != FORMAT_VERSION:
        raise GraphDataError(f"graph document version {data.get('version')!r}; this netspec reads version "
                             f"{FORMAT_VERSION}", Loc(name, 1, 1), "export the graph again with this netspec")
    _validate(data, name)
    try:
        return _read(data, name)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:   # only without jsonschema
        raise GraphDataError(f"the graph document is malformed: {type(e).__name__}: {str(e)[:200]}",
                             Loc(name, 1, 1), "netspec schema --graph prints the schema") from None


def _read(data: dict, name: str) -> GraphData:
    nodes = {}
    for d in data["nodes"]:
        loc = d.get("loc")
        nodes[d["name"]] = NodeData(d["name"], d["op"], d["params"], [None if t is None else _type_back(t) for t in d["inputs"]],
                                    [_type_back(t) for t in d["outputs"]], d["parameters"], d["macs"],
                                    Loc(loc["file"], loc["line"], loc["col"]) if loc else None, d)
    if len(nodes) != len(data["nodes"]):
        raise GraphDataError("two nodes have the same name", Loc(name, 1, 1))
    edges = []
    for k, e in enumerate(data["edges"]):
        a, b = e["from"], e["to"]
        for end in (a, b):
            if end["node"] not in nodes:
                raise GraphDataError(f"edges[{k}] names the node '{end['node']}', which is not in 'nodes'",
                                     Loc(name, 1, 1))
        if a["output"] >= len(nodes[a["node"]].outputs) or b["input"] >= len(nodes[b["node"]].inputs):
            raise GraphDataError(f"edges[{k}] names an output or input its node does not have", Loc(name, 1, 1))
        edges.append(((a["node"], a["output"]), (b["node"], b["input"])))
    _consistent(data, nodes, edges, name)
    return GraphData(data["file"], data["network"], nodes, edges,
                     {k: _type_back(v) for k, v in data["inputs"].items()},
                     {k: _type_back(v) for k, v in data["outputs"].items()},
                     [r["text"] for r in data["requirements"]], data)


def _consistent(data: dict, nodes: dict, edges: list, name: str) -> None:
    """What the schema cannot say: the document describes one graph, and its parts agree. Every input slot that
    holds a type is fed by exactly one edge (an absent optional input, null, by none) carrying that type; the edges
    make no cycle; inputs and outputs name nodes and types that exist; a node's parameter count is what its weights
    hold (numbers only; a node that shares another's weights owns none)."""
    def bad(msg: str):
        raise GraphDataError(msg, Loc(name, 1, 1), "export the graph again: netspec export SPEC --format json")

    fed: dict = {}
    for k, ((src, out), (dst, slot)) in enumerate(edges):
        if (dst, slot) in fed:
            bad(f"edges[{k}] feeds input {slot} of '{dst}', which edges[{fed[(dst, slot)]}] feeds already")
        fed[(dst, slot)] = k
        t = nodes[dst].inputs[slot]
        if t is None:
            bad(f"edges[{k}] feeds input {slot} of '{dst}', which the node says is absent (null)")
        if t != nodes[src].outputs[out]:
            bad(f"edges[{k}] carries {_show(nodes[src].outputs[out])} from '{src}' into input {slot} of '{dst}', "
                f"which says it takes {_show(t)}")
    for n in nodes.values():
        for slot, t in enumerate(n.inputs):
            if t is not None and (n.name, slot) not in fed:
                bad(f"input {slot} of '{n.name}' ({_show(t)}) is fed by no edge")
    import graphlib
    order = graphlib.TopologicalSorter({n: set() for n in nodes})
    for (src, _), (dst, _) in edges:
        order.add(dst, src)
    try:
        order.prepare()
    except graphlib.CycleError as e:
        bad(f"the edges make a cycle: {' -> '.join(map(str, e.args[1][:8]))}")
    for key in ("inputs", "outputs"):
        for k, v in data[key].items():
            node = nodes.get(v["node"])
            out = v.get("output", 0)
            if node is None or out >= len(node.outputs):
                bad(f"{key} '{k}' names the node '{v['node']}'" + (f" output {out}" if node else "") +
                    ", which the document does not have")
            if _type_back(v) != node.outputs[out]:
                bad(f"{key} '{k}' says {_show(_type_back(v))}, but '{v['node']}' gives {_show(node.outputs[out])}")
    for n in nodes.values():
        shared = n.raw.get("shared_with")
        total = 0
        for w in (n.raw.get("weights") or {}).values():
            if w.get("kind") != "param":
                continue
            k = 1
            for d in w.get("shape", ()):
                k = k * d if isinstance(d, int) and isinstance(k, int) else None
            total = total + k if isinstance(total, int) and isinstance(k, int) else None
        want = 0 if shared else total
        if isinstance(want, int) and isinstance(n.parameters, int) and n.parameters != want:
            bad(f"node '{n.name}' says {n.parameters:,} parameters, but its weights hold {want:,}"
                + (f" (it shares the weights of '{shared}')" if shared else ""))


def _show(t) -> str:
    return str(t) if t is not None else "nothing"


def _validate(data: dict, name: str) -> None:
    try:
        import jsonschema
    except ImportError:      # the schema check needs jsonschema; the structural checks below still run
        _shallow_check(data, name)
        return
    validator = jsonschema.Draft202012Validator(graph_schema())
    err = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))), None)
    if err is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path) or "(top)"
        raise GraphDataError(f"the graph document does not fit its schema at {where}: {err.message[:300]}",
                             Loc(name, 1, 1), "netspec schema --graph prints the schema")


def _shallow_check(data: dict, name: str) -> None:
    for key, kind in (("nodes", list), ("edges", list), ("inputs", dict), ("outputs", dict), ("requirements", list),
                      ("file", str), ("network", str)):
        if not isinstance(data.get(key), kind):
            raise GraphDataError(f"the graph document has no valid '{key}'", Loc(name, 1, 1))


graph_to_json = to_json      # the public API's name (netspec.graph_to_json)
