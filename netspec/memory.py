"""Memory told before it is spent: what a network's weights, inputs and activations need, read from the graph.

``check`` and ``summary`` print the estimate and warn past ``LIMITS.max_alloc_bytes``; ``build`` and ``export`` call
``require`` before they allocate anything, and refuse with a LimitError located at the layer (or input) that needs
the most. Sizes are float32 for weights (as built) and the declared dtype for inputs; a dimension that is still a
symbol makes that figure unknown (None), unless the caller binds it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import LimitError, Loc, Warning_
from .graph.ir import Graph
from .limits import LIMITS, fmt_bytes

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "uint8": 1,
               "bool": 1, "int8": 1, "int16": 2}
LIMIT_HINT = ("raise the limit with --limit max_alloc_bytes=N if the machine has the memory (the default is half of "
              "the memory available when netspec starts); build(..., device='meta') allocates nothing")


@dataclass
class MemoryEstimate:
    """Bytes a network needs; None where a symbolic dimension leaves the figure open."""

    params: int                       # parameters and buffers, as float32 (shared weights once)
    inputs: int | None                # the declared inputs, one forward pass
    activations: int | None           # every layer's output of one forward pass (what training keeps)
    biggest_layer: tuple | None = None     # (node id, bytes, loc)
    biggest_input: tuple | None = None     # (input name, bytes, loc)

    def text(self) -> str:
        parts = [f"parameters {fmt_bytes(self.params)}"]
        parts.append(f"inputs {fmt_bytes(self.inputs)}" if self.inputs is not None else "inputs depend on the symbols")
        if self.activations is not None:
            parts.append(f"activations {fmt_bytes(self.activations)}")
        return ", ".join(parts)


_UNSIZED = object()


def _numel(shape) -> int | None:
    n = 1
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool):
            return None
        n *= d
    return n


def _tensor_bytes(t) -> int | None:
    n = _numel(t.shape)
    return None if n is None else n * DTYPE_BYTES.get(t.dtype, 4)


def estimate(g: Graph) -> MemoryEstimate:
    """The memory estimate of an expanded graph (no torch, no allocation)."""
    params = 0
    biggest = None
    # a spec's layers share a few shape and type objects (expansion makes each once per op, values and input types):
    # each is sized once, by its id (the graph holds them all while this runs)
    numels: dict = {}
    for n in g.nodes.values():
        if n.meta.get("shared_with"):
            continue
        nb = 0
        for shape, _kind in n.meta.get("weights", {}).values():
            k = numels.get(id(shape), _UNSIZED)
            if k is _UNSIZED:
                k = numels[id(shape)] = _numel(shape) or 0
            nb += k * 4
        params += nb
        if nb and (biggest is None or nb > biggest[1]):
            biggest = (n.id, nb, n.loc)
    inputs: int | None = 0
    big_in = None
    for name, nid in g.inputs.items():
        b = _tensor_bytes(g.nodes[nid].out[0])
        if b is None:
            inputs = None
            continue
        if inputs is not None:
            inputs += b
        if big_in is None or b > big_in[1]:
            big_in = (name, b, g.nodes[nid].loc)
    acts: int | None = 0
    sizes: dict = {}
    for n in g.nodes.values():
        for t in n.meta.get("out", []):
            b = sizes.get(id(t), _UNSIZED)
            if b is _UNSIZED:
                b = sizes[id(t)] = _tensor_bytes(t)
            if b is None:
                acts = None
                break
            acts += b
        if acts is None:
            break
    return MemoryEstimate(params, inputs, acts, biggest, big_in)


def warnings_for(g: Graph, est: MemoryEstimate | None = None) -> list[Warning_]:
    """Warnings for ``check`` and ``summary`` when what the network needs exceeds ``max_alloc_bytes`` (``est``: the
    graph's estimate, if the caller has made it)."""
    est = est or estimate(g)
    limit = LIMITS.max_alloc_bytes
    out = []
    if est.params > limit:
        where = est.biggest_layer[2] if est.biggest_layer else Loc(g.file, 1, 1)
        out.append(Warning_(f"the network's weights need {fmt_bytes(est.params)}, more than this machine can give "
                            f"({fmt_bytes(limit)}, max_alloc_bytes): build and export would refuse", where,
                            [f"'{est.biggest_layer[0]}' alone needs {fmt_bytes(est.biggest_layer[1])}"
                             if est.biggest_layer else "", LIMIT_HINT]))
    if est.inputs is not None and est.inputs > limit:
        out.append(Warning_(f"the declared inputs need {fmt_bytes(est.inputs)}, more than this machine can give "
                            f"({fmt_bytes(limit)}, max_alloc_bytes): export would refuse", est.biggest_input[2],
                            LIMIT_HINT))
    elif est.activations is not None and est.activations > limit:
        out.append(Warning_(f"one forward pass keeps {fmt_bytes(est.activations)} of activations at these sizes, "
                            f"more than this machine can give ({fmt_bytes(limit)}, max_alloc_bytes)",
                            est.biggest_input[2] if est.biggest_input else Loc(g.file, 1, 1),
                            "use a smaller input (or batch) size, or a machine with more memory"))
    return out


def require(g: Graph, what: str, *, extra: int = 0, extra_what: str = "", extra_loc: Loc | None = None) -> None:
    """Refuse (LimitError, located) when building ``g`` -- plus ``extra`` bytes of inputs -- exceeds the limit."""
    est = estimate(g)
    limit = LIMITS.max_alloc_bytes
    if est.params > limit:
        where = est.biggest_layer[2] if est.biggest_layer else Loc(g.file, 1, 1)
        raise LimitError(f"{what} '{g.name}' would allocate {fmt_bytes(est.params)} of weights, over the limit of "
                         f"{fmt_bytes(limit)} (max_alloc_bytes)", where,
                         [f"'{est.biggest_layer[0]}' alone needs {fmt_bytes(est.biggest_layer[1])}"
                          if est.biggest_layer else "", LIMIT_HINT])
    if extra and est.params + extra > limit:
        raise LimitError(f"{what} '{g.name}' would allocate {fmt_bytes(extra)} for {extra_what} and "
                         f"{fmt_bytes(est.params)} of weights, over the limit of {fmt_bytes(limit)} "
                         f"(max_alloc_bytes)", extra_loc or Loc(g.file, 1, 1),
                         ["bind the symbols to smaller sizes with --bind, or declare a smaller input", LIMIT_HINT])
