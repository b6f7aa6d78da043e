"""einsum: products and sums of tensors written as an index equation ("nhtd,nhsd->nhts"). No weights.

The equation is parsed and checked against the inputs when the network is checked: its characters, one term per
input, one letter per dim (or ``...`` for the rest), the same size wherever a letter repeats, and an output made of
letters the inputs have.
"""
from __future__ import annotations

from pydantic import Field, field_validator

from .base import Op, OpError, Params, In, register, same_dim
from .merge import broadcast
from ..codegen.ir import Operand, P, call
from ..shapes import Dim, InferCtx, TensorType, mul_all, norm

N, T, S, E, H, C = (Dim.sym(s) for s in "NTSEHC")
MAX_EQUATION = 200


class EinsumParams(Params):
    equation: str = Field(description="the index equation, e.g. 'nhtd,nhsd->nhts' (torch.einsum's notation)")

    @field_validator("equation")
    @classmethod
    def _chars(cls, v):
        if len(v) > MAX_EQUATION:
            raise ValueError(f"the equation is longer than {MAX_EQUATION} characters")
        bad = sorted({c for c in v if not (c.isascii() and c.isalpha()) and c not in ",->. "})
        if bad:
            raise ValueError(f"the equation has the character(s) {' '.join(repr(c) for c in bad)}; it may hold only "
                             "letters a-z A-Z, ',', '->' and '...'")
        return v


def _terms(text: str, what: str) -> list[str]:
    """One term's tokens: letters and '...'."""
    toks = []
    i = 0
    while i < len(text):
        if text.startswith("...", i):
            toks.append("...")
            i += 3
        elif text[i] == ".":
            raise OpError(f"einsum: '.' in the {what} is not part of '...'", "write an ellipsis as three dots",
                          param="equation")
        else:
            toks.append(text[i])
            i += 1
    if toks.count("...") > 1:
        raise OpError(f"einsum: the {what} has more than one '...'", param="equation")
    return toks


def parse(equation: str, ranks: list[int]):
    """(input terms, output term) as token lists; raises OpError for an equation that does not fit the ranks."""
    eq = equation.replace(" ", "")
    if eq.count("->") > 1 or ("-" in eq.replace("->", "")) or (">" in eq.replace("->", "")):
        raise OpError(f"einsum: '{equation}' must have at most one '->'", "e.g. 'ij,jk->ik'", param="equation")
    lhs, arrow, rhs = eq.partition("->")
    parts = lhs.split(",")
    if len(parts) != len(ranks):
        raise OpError(f"einsum: the equation '{equation}' has {len(parts)} input term(s), but the layer has "
                      f"{len(ranks)} input(s)", "write one comma-separated term per input, in the order of 'from'",
                      param="equation")
    ins = []
    for k, (part, r) in enumerate(zip(parts, ranks)):
        toks = _terms(part, f"term {k + 1}")
        letters = [t for t in toks if t != "..."]
        if "..." in toks:
            if len(letters) > r:
                raise OpError(f"einsum: term {k + 1} '{part}' names {len(letters)} dims, but input {k} has only {r}",
                              param="equation")
        elif len(letters) != r:
            raise OpError(f"einsum: term {k + 1} '{part}' names {len(letters)} dims, but input {k} has {r}",
                          "one letter per dim, or '...' for the leading ones", param="equation")
        ins.append(toks)
    seen = [t for toks in ins for t in toks if t != "..."]
    any_ellipsis = any("..." in toks for toks in ins)
    if arrow:
        out = _terms(rhs, "output")
        letters = [t for t in out if t != "..."]
        for t in letters:
            if t not in seen:
                raise OpError(f"einsum: the output letter '{t}' is in no input term of '{equation}'",
                              "every output letter must name a dim of an input", param="equation")
        dup = sorted({t for t in letters if letters.count(t) > 1})
        if dup:
            raise OpError(f"einsum: the output names '{dup[0]}' twice in '{equation}'", param="equation")
        if "..." in out and not any_ellipsis:
            raise OpError(f"einsum: the output has '...' but no input term has in '{equation}'", param="equation")
    else:
        out = (["..."] if any_ellipsis else []) + sorted(t for t in set(seen) if seen.count(t) == 1)
    return ins, out


@register
class Einsum(Op):
    """Products and sums over named dims (torch.einsum): 'nhtd,nhsd->nhts' for attention scores."""

    name = "einsum"
    family = "merge"
    inputs = (In("x", variadic=True, min_count=1),)
    Params = EinsumParams
    torch_ref = "torch.einsum"
    cases = [({"equation": "nhtd,nhsd->nhts"}, [(N, 4, T, 16), (N, 4, S, 16)], [(N, 4, T, S)]),
             ({"equation": "ij,jk"}, [(3, 5), (5, 2)], [(3, 2)]),
             ({"equation": "...ij->...ji"}, [(N, T, E)], [(N, E, T)]),
             ({"equation": "bi,bj->bij"}, [(N, 3), (N, 4)], [(N, 3, 4)]),
             ({"equation": "n c h w, c -> n h w"}, [(N, C, 5, 6), (C,)], [(N, 5, 6)]),
             ({"equation": "ii->i"}, [(4, 4)], [(4,)]),
             ({"equation": "...d,...d->..."}, [(N, T, 8), (T, 8)], [(N, T)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        dtype = ins[0].dtype
        for t in ins:
            if t.dtype != dtype:
                raise OpError(f"einsum of different dtypes: {dtype} and {t.dtype}", "convert one with 'to_dtype'")
        terms, out = parse(p.equation, [t.rank for t in ins])
        size, ell = _sizes(p.equation, terms, ins, ctx)
        shape = []
        for tok in out:
            shape.extend(ell if tok == "..." else (size[tok],))
        return [TensorType(tuple(norm(d) for d in shape), dtype)]

    @classmethod
    def weights(cls, ins, p):
        return {}

    @classmethod
    def macs(cls, ins, outs, p):
        """One multiply-add per combination of all the indices, per operand after the first."""
        if len(ins) < 2:
            return 0
        terms, _ = parse(p.equation, [t.rank for t in ins])
        size, ell = _sizes(p.equation, terms, ins, InferCtx())
        return mul_all(list(size.values()) + list(ell)) * (len(ins) - 1)

    @classmethod
    def forward(cls, ins, p):
        return call("torch.einsum", P(p, "equation"), *[Operand(k) for k in range(len(ins))])

    @classmethod
    def label(cls, p):
        return f"einsum {p.equation}"


def _sizes(equation: str, terms: list, ins: list, ctx) -> tuple[dict, tuple]:
    """({letter: size}, the broadcast shape of the '...' dims), unifying every letter's sizes."""
    size: dict = {}
    ell = None
    for k, (toks, t) in enumerate(zip(terms, ins)):
        n_ell = t.rank - (len(toks) - ("..." in toks))
        j = 0
        for tok in toks:
            if tok == "...":
                part = TensorType(tuple(t.shape[j:j + n_ell]))
                ell = part if ell is None else TensorType(broadcast(ell, part, ctx, "einsum"))
                j += n_ell
                continue
            d = t.shape[j]
            if tok in size:
                size[tok] = same_dim(size[tok], d, ctx, f"einsum '{equation}': dim '{tok}' is {size[tok]} in "
                                     f"one place and {d} in input {k} {t}",
                                     "a letter names one size wherever it appears")
            else:
                size[tok] = d
            j += 1
    return size, (tuple(ell.shape) if ell is not None else ())
