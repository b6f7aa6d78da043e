"""The one path from text to a verified Graph: load, pick the network, bind, expand (with shapes), verify.

Every command and API entry (check, summary, draw, compile, build, export, train) gets its graphs from here:

    text or path --load--> Spec --pick--> network --bind--> sizes --expand--> Graph --verify--> Graph
"""
from __future__ import annotations

import os

from . import cache
from .errors import Loc, SpecError, did_you_mean
from .graph.ir import Graph
from .limits import LIMITS


def load_spec(source, search_path=None):
    """A Spec from a Spec, a path or spec text."""
    from .spec.load import Spec, load
    if isinstance(source, Spec):
        return source
    return load(source, search_path=search_path)


def is_path(source) -> bool:
    """Whether ``load`` reads ``source`` as a file path (not as spec text, a Spec or a Graph)."""
    if isinstance(source, os.PathLike):
        return True
    return isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{")


def pick_network(spec, network: str | None) -> str:
    """The named network of a file, or its first; a located error with the names there are otherwise."""
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


def networks_of(spec, network: str | None) -> list[str]:
    """The chosen network, or every network of the file when none is chosen."""
    return [pick_network(spec, network)] if network is not None or len(spec.networks) <= 1 else list(spec.networks)


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


def graphs(source, network: str | None = None, *, params: dict | None = None, bind: dict | str | None = None,
           search_path: list[str] | None = None, every: bool = True) -> list[Graph]:
    """Verified graphs of a source: the chosen network, or (``every``) each network of the file when none is chosen.

    Args:
        source: a path, spec text, a loaded ``Spec``, or an expanded ``Graph`` (returned as it is).
        network: which network of the file.
        params: the network's parameters (``{"num_classes": 10}``).
        bind: sizes for symbols (``{"H": 224}`` or ``"H=224,W=224"``); the others stay symbolic.
        search_path: folders besides the spec's own that imports may read from.
    Returns:
        Graphs with shapes, weights, MACs and requirements; raises NetspecError with locations otherwise.
    """
    if isinstance(source, Graph):
        if bind:
            raise SpecError("cannot bind symbols of an already expanded graph", None,
                            "pass the spec (or its path) instead, or expand it with bind=...")
        return [source]
    if is_path(source):
        args = {"network": network, "params": params, "bind": bind, "search_path": search_path, "every": every}
        return cache.cached("graphs", source, args, lambda: _graphs(source, network, params, bind, search_path, every))
    return _graphs(source, network, params, bind, search_path, every)


def _graphs(source, network, params, bind, search_path, every) -> list[Graph]:
    from .graph.expand import expand
    from .graph.verify import verify
    spec = load_spec(source, search_path)
    names = networks_of(spec, network) if every else [pick_network(spec, network)]
    bindings = parse_bind(bind)
    check_bindings(spec, names, bindings)
    out = []
    for name in names:
        g = expand(spec, name, params=params or None, bindings=bindings or None)
        verify(g)
        out.append(g)
    return out


def graph(source, network: str | None = None, **kw) -> Graph:
    """The verified graph of one network (the chosen one, or the file's first); see ``graphs``."""
    return graphs(source, network, every=False, **kw)[0]
