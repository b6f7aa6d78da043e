"""Warnings for specs that check but are probably not what was meant (exit 0; ``check --strict`` makes them errors).

- a requirement that only tiny sizes meet (``ceil(H/8) == ceil(H/16)`` holds for H <= 8 only: a shortcut that forgot
  its ``from:``);
- a requirement that pins a symbol the inputs declare to one number (``1 == N``: the batch can only be 1).
"""
from __future__ import annotations

from ..errors import Warning_
from ..spec.expr import ExprError, parse as parse_expr

CHECKED = 512          # values of a symbol tried (its multiples): a condition true for none of the upper half is finite


def requirement_warnings(g) -> list[Warning_]:
    """Warnings for the graph's requirements, each at the layer that needs it."""
    out = []
    for r in g.requirements:
        if r.symbol or "==" not in r.text or any(c in r.text for c in "<>!"):
            continue                # divisibility, and limits such as T <= 128, are what they say
        try:
            e = parse_expr(r.text)
        except ExprError:
            continue
        if len(e.names) != 1:
            continue
        (s,) = e.names
        step = g.sym.multiple(s) if g.sym is not None else 1
        holds = []
        for j in range(1, CHECKED + 1):
            try:
                if e.eval({s: step * j}) is True:
                    holds.append(step * j)
            except ExprError:
                break
        if not holds or holds[-1] > step * CHECKED // 2:
            continue
        node = g.nodes.get(r.where) if r.where else None
        loc = node.loc if node is not None else None
        where = f" (at '{r.where}')" if node is not None else ""
        if len(holds) == 1:
            out.append(Warning_(f"requires {r.text}{where}: it pins {s} to {holds[0]}, though the inputs declare {s} "
                                "as a size that varies", loc,
                                [f"if {s} is always {holds[0]}, write {holds[0]} in the input's shape; otherwise look "
                                 f"at the inputs of '{r.where}' (a missing or wrong 'from:'?)"]))
        else:
            out.append(Warning_(f"requires {r.text}{where}: it holds only for {s} <= {holds[-1]}", loc,
                                [f"sizes that must agree for only tiny {s} usually mean a layer takes the wrong "
                                 f"input: look at the 'from:' of '{r.where}' (a shortcut that forgot its 'from:'?)"]))
    return out
