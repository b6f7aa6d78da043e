"""Symbolic tensor dimensions.

A tensor shape is a tuple of ``int | Dim``.  A :class:`Dim` is an immutable polynomial with
rational coefficients over *atoms*; an atom is a symbol name (``"N"``, ``"T"``, ``"H"``, ...) or a
:class:`FloorDiv` ``floor(numerator / d)``.  Every operation returns a plain ``int`` as soon as the
result is constant, so code that handles shapes sees ``int`` for known sizes and ``Dim`` only where
a size really depends on a symbol.

Symbols are positive integers; a :class:`SymCtx` may state that a symbol is a multiple of some
integer (``H % 16 == 0``), which lets ``floordiv(H, 2)`` become the exact ``H/2``.

Canonical form (so that structural equality is meaningful):

* a polynomial is a dict ``monomial -> coefficient`` (``int``, or ``Fraction`` when not integral;
  never zero); a monomial is a frozenset of ``(atom, power)`` pairs, the constant monomial is the
  empty frozenset;
* ``floordiv`` takes out of the floor every non-constant term that stays integral after the
  division (under the context's ``multiple_of``), collapses nested floors
  (``floor((floor(x/a) + e)/b) == floor((x + a*e)/(a*b))``), keeps integer coefficients in
  floor numerators and divides out their common factor with the divisor;
* ``c + floor(x/d)`` (one floor atom with coefficient 1 plus an integer) is stored as
  ``floor((x + c*d)/d)``; so conv k3 s2 p1 gives ``floor((H+1)/2)``, printed ``ceil(H/2)``.
  Likewise ``k*floor(x/d) + c`` with an integer ``k >= 2`` becomes
  ``k*floor((x + j*d)/d) + (c - j*k)`` with ``j = c // k`` (so ``2*floor((H-2)/2) + 2``, what
  maxpool 2 then convtranspose 2 gives, is ``2*floor(H/2)``).

Expressions that are equal but built differently may still differ structurally; :func:`compare`
decides such cases numerically.

Printing: ``2*H-3``, ``64*H*W``, ``H/16``, ``3*H/4``, ``H//2``, ``(H-1)//2``, ``ceil(H/4)``,
``2*(H//2)``, ``T**2``; symbols ``N, C, T, H, W`` first, then others alphabetically.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from math import floor, gcd, lcm
from typing import Iterable, Literal, Mapping

__all__ = [
    "Dim",
    "FloorDiv",
    "SymCtx",
    "Verdict",
    "Requirement",
    "norm",
    "is_sym",
    "floordiv",
    "ceildiv",
    "exact_div",
    "mul_all",
    "conv_out",
    "convT_out",
    "compare",
    "min_value",
]

_CONST: frozenset = frozenset()  # the constant monomial
_ORDER = {"N": 0, "C": 1, "T": 2, "H": 3, "W": 4}
# Floors nested deeper than this are refused (printing/hashing recurse through them).
MAX_NESTING = 200


def _cn(x):
    """Normalise a coefficient: integral Fractions become ints."""
    if type(x) is Fraction and x.denominator == 1:
        return x.numerator
    return x


# --------------------------------------------------------------------------------------------
# polynomial helpers (dicts are never mutated once they belong to a Dim)


def _poly(x) -> dict:
    if isinstance(x, Dim):
        return x._p
    if x == 0:
        return {}
    return {_CONST: _cn(x)}


def _add(p: dict, q: dict, negate: bool = False) -> dict:
    if len(q) > len(p) and not negate:
        p, q = q, p
    r = dict(p)
    get = r.get
    for m, c in q.items():
        v = get(m, 0) - c if negate else get(m, 0) + c
        if v:
            r[m] = _cn(v)
        else:
            r.pop(m, None)
    return r


def _mul_mono(m1: frozenset, m2: frozenset) -> frozenset:
    if not m1:
        return m2
    if not m2:
        return m1
    d = dict(m1)
    for a, pw in m2:
        d[a] = d.get(a, 0) + pw
    return frozenset(d.items())


def _scale(p: dict, c) -> dict:
    if not c:
        return {}
    if c == 1:
        return p
    return {m: _cn(k * c) for m, k in p.items()}


def _mul(p: dict, q: dict) -> dict:
    if len(q) == 1 and _CONST in q:
        return _scale(p, q[_CONST])
    if len(p) == 1 and _CONST in p:
        return _scale(q, p[_CONST])
    r: dict = {}
    for m1, c1 in p.items():
        for m2, c2 in q.items():
            m = _mul_mono(m1, m2)
            v = r.get(m, 0) + c1 * c2
            if v:
                r[m] = v
            else:
                r.pop(m, None)
    return {m: _cn(c) for m, c in r.items()}


def _div_mono(m: frozenset, b: frozenset):
    if not b:
        return m
    d = dict(m)
    for a, pw in b:
        have = d.get(a, 0)
        if have < pw:
            return None
        if have == pw:
            del d[a]
        else:
            d[a] = have - pw
    return frozenset(d.items())


def _mono_multiple(m: frozenset, mult: Mapping[str, int]) -> int:
    """Integer that the monomial is always a multiple of (FloorDiv atoms count as 1)."""
    r = 1
    for a, pw in m:
        if type(a) is str:
            k = mult.get(a, 1)
            if k != 1:
                r *= k**pw
    return r


def _integral_term(c, m: frozenset, mult: Mapping[str, int]) -> bool:
    """Is ``c * m`` an integer for every allowed value of its symbols?"""
    if type(c) is int:
        return True
    return (c.numerator * _mono_multiple(m, mult)) % c.denominator == 0


def _wrap(p: dict):
    """Polynomial -> int (constant) or Dim; applies the constant-absorption rule."""
    n = len(p)
    if n == 0:
        return 0
    c = p.get(_CONST)
    if c is not None:
        if n == 1:
            return c
        if n == 2 and type(c) is int:
            # k*floor(x/d) + c  ->  k*floor((x + j*d)/d) + (c - j*k), j = c // k  (k >= 1)
            for m, k in p.items():
                if m and type(k) is int and k >= 1 and len(m) == 1:
                    ((a, pw),) = m
                    if pw == 1 and type(a) is FloorDiv:
                        j = c // k
                        if not j:
                            break
                        num = _wrap(_add(a.num._p, {_CONST: j * a.d}))
                        q = {frozenset(((FloorDiv(num, a.d), 1),)): k}
                        r = c - j * k
                        if r:
                            q[_CONST] = r
                        return Dim._new(q)
    return Dim._new(p)


def _sym_key(s: str):
    return (_ORDER.get(s, 5), s)


def _atom_key(a):
    if type(a) is str:
        return (0, _ORDER.get(a, 5), a)
    return (1, 0, str(a))


def _mono_key(m: frozenset):
    return tuple(sorted((_atom_key(a), pw) for a, pw in m))


# --------------------------------------------------------------------------------------------


class FloorDiv:
    """Atom ``floor(num / d)``: ``num`` a non-constant Dim with integer coefficients, ``d >= 2``."""

    __slots__ = ("num", "d", "depth", "_hash", "_str")

    def __init__(self, num: "Dim", d: int):
        self.num = num
        self.d = d
        depth = 0
        for m in num._p:
            for a, _ in m:
                if type(a) is FloorDiv and a.depth > depth:
                    depth = a.depth
        if depth >= MAX_NESTING:
            raise ValueError(f"symbolic size nested more than {MAX_NESTING} floors deep")
        self.depth = depth + 1
        self._hash = hash((num, d, "floordiv"))
        self._str = None

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        if self is other:
            return True
        if type(other) is not FloorDiv:
            return NotImplemented
        return self._hash == other._hash and self.d == other.d and self.num == other.num

    def __reduce__(self):
        return (FloorDiv, (self.num, self.d))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def evaluate(self, env: Mapping[str, int]) -> int:
        return self.num.evaluate(env) // self.d

    def _form(self):
        """('ceil'|'floor'|'raw', text-without-outer-parentheses)."""
        d = self.d
        p = self.num._p
        k = p.get(_CONST, 0)
        if k == d - 1:
            x = dict(p)
            del x[_CONST]
            xs = _poly_str(x)
            if len(x) > 1:
                xs = f"({xs})"
            return "ceil", f"ceil({xs}/{d})"
        s = _poly_str(p)
        if len(p) > 1:
            s = f"({s})"
        return "floor", f"{s}//{d}"

    def __str__(self):
        if self._str is None:
            self._str = self._form()[1]
        return self._str

    def factor_str(self) -> str:
        kind, s = self._form()
        return s if kind == "ceil" else f"({s})"

    def __repr__(self):
        return f"FloorDiv({self.num!s}, {self.d})"


def _term_str(c, m: frozenset, first: bool) -> str:
    neg = c < 0
    if neg:
        c = -c
    if type(c) is int:
        n, den = c, 1
    else:
        n, den = c.numerator, c.denominator
    if m:
        factors = []
        for a, pw in sorted(m, key=lambda ap: _atom_key(ap[0])):
            if type(a) is str:
                f = a
            elif pw == 1 and len(m) == 1 and n == 1 and den == 1 and not (neg and first):
                f = str(a)  # a lone floor term: "H//2+W", "W-H//2"
            else:
                f = a.factor_str()  # "2*(H//2)", "-(H//2)", "(H//2)**2"
            factors.append(f if pw == 1 else f"{f}**{pw}")
        body = "*".join(factors)
        if n != 1:
            body = f"{n}*{body}"
        if den != 1:
            body = f"{body}/{den}"
    else:
        body = str(n) if den == 1 else f"{n}/{den}"
    if neg:
        return "-" + body
    return body if first else "+" + body


def _poly_str(p: dict) -> str:
    if not p:
        return "0"
    items = sorted(
        p.items(),
        key=lambda mc: (-sum(pw for _, pw in mc[0]), _mono_key(mc[0])),
    )
    return "".join(_term_str(c, m, i == 0) for i, (m, c) in enumerate(items))


class Dim:
    """Symbolic size: an immutable, hashable polynomial over symbols and floor atoms."""

    __slots__ = ("_p", "_hash", "_str", "_syms")

    @classmethod
    def _new(cls, p: dict) -> "Dim":
        self = object.__new__(cls)
        self._p = p
        self._hash = None
        self._str = None
        self._syms = None
        return self

    def __init__(self, *args, **kwargs):  # pragma: no cover - guidance only
        raise TypeError("use Dim.sym(name) and arithmetic to build dimensions")

    @staticmethod
    def sym(name: str) -> "Dim":
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"invalid symbol name {name!r}")
        return Dim._new({frozenset(((name, 1),)): 1})

    # -- structure ------------------------------------------------------------------------
    def terms(self):
        """Iterate ``(monomial, coefficient)``; a monomial is a frozenset of (atom, power)."""
        return iter(self._p.items())

    def free_symbols(self) -> frozenset:
        if self._syms is None:
            s = set()
            for m in self._p:
                for a, _ in m:
                    if type(a) is str:
                        s.add(a)
                    else:
                        s |= a.num.free_symbols()
            self._syms = frozenset(s)
        return self._syms

    def evaluate(self, env: Mapping[str, int]) -> int:
        total = 0
        for m, c in self._p.items():
            t = c
            for a, pw in m:
                v = env[a] if type(a) is str else a.num.evaluate(env) // a.d
                t = t * (v if pw == 1 else v**pw)
            total += t
        if type(total) is Fraction:
            if total.denominator != 1:
                raise ValueError(
                    f"{self} is not an integer for {dict(env)} (the values break a multiple_of assumption)"
                )
            return total.numerator
        return total

    # -- equality / hashing -----------------------------------------------------------------
    def __hash__(self):
        h = self._hash
        if h is None:
            h = self._hash = hash(frozenset(self._p.items()))
        return h

    def __eq__(self, other):
        if self is other:
            return True
        if type(other) is Dim:
            return hash(self) == hash(other) and self._p == other._p
        if isinstance(other, (int, Fraction)):
            return self._p == _poly(other)
        return NotImplemented

    def __reduce__(self):
        return (_rebuild, (tuple(self._p.items()),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    # -- arithmetic -------------------------------------------------------------------------
    def __add__(self, other):
        if type(other) is Dim:
            return _wrap(_add(self._p, other._p))
        if isinstance(other, (int, Fraction)):
            if not other:
                return self
            return _wrap(_add(self._p, {_CONST: other}))
        return NotImplemented

    __radd__ = __add__

    def __sub__(self, other):
        if type(other) is Dim:
            return _wrap(_add(self._p, other._p, negate=True))
        if isinstance(other, (int, Fraction)):
            if not other:
                return self
            return _wrap(_add(self._p, {_CONST: -other}))
        return NotImplemented

    def __rsub__(self, other):
        if isinstance(other, (int, Fraction)):
            return _wrap(_add(_poly(other), self._p, negate=True))
        return NotImplemented

    def __mul__(self, other):
        if type(other) is Dim:
            return _wrap(_mul(self._p, other._p))
        if isinstance(other, (int, Fraction)):
            return _wrap(_scale(self._p, _cn(other)))
        return NotImplemented

    __rmul__ = __mul__

    def __neg__(self):
        return _wrap(_scale(self._p, -1))

    def __pos__(self):
        return self

    # -- display ------------------------------------------------------------------------------
    def __str__(self):
        s = self._str
        if s is None:
            p = self._p
            if len(p) == 1:
                ((m, c),) = p.items()
                if c == 1 and len(m) == 1:
                    ((a, pw),) = m
                    if pw == 1 and type(a) is FloorDiv:
                        s = self._str = str(a)
                        return s
            s = self._str = _poly_str(p)
        return s

    def __repr__(self):
        return str(self)

    def __format__(self, spec):
        return format(str(self), spec)


def _rebuild(items):
    return _wrap(dict(items))


def norm(x):
    """A Dim that is constant becomes an int; everything else is returned unchanged."""
    if type(x) is Dim:
        p = x._p
        if not p:
            return 0
        if len(p) == 1 and _CONST in p:
            return p[_CONST]
    return x


def is_sym(x) -> bool:
    return isinstance(x, Dim)


@dataclass
class SymCtx:
    """Assumptions about symbols: each is a positive integer, a multiple of ``multiple_of[s]``.

    ``data`` holds the data-dependent symbols: sizes an op only knows when it runs (a detector's number of
    detections ``K``). An op introduces one with ``data_dim``; nobody binds it and no requirement names it.
    ``inputs`` holds the symbols of the network's inputs, which a data-dependent symbol never reuses.
    """

    multiple_of: dict = field(default_factory=dict)
    data: set = field(default_factory=set)
    inputs: set = field(default_factory=set)

    def multiple(self, s: str) -> int:
        return self.multiple_of.get(s, 1)

    def copy(self) -> "SymCtx":
        return SymCtx(dict(self.multiple_of), set(self.data), set(self.inputs))


def data_dim(ctx: "SymCtx", name: str, multiple_of: int = 1) -> "Dim":
    """A fresh data-dependent size (a multiple of ``multiple_of``), recorded in ``ctx.data``: ``name``, or ``name2``,
    ``name3``, ... when an input's symbol or another op's size already has that name (two detectors' counts differ).
    """
    base, k = name, 1
    while name in ctx.data or name in ctx.inputs:
        k += 1
        name = f"{base}{k}"
    ctx.data.add(name)
    if multiple_of > 1:
        m = ctx.multiple_of.get(name, 1)
        ctx.multiple_of[name] = lcm(m, multiple_of)
    return Dim.sym(name)


_EMPTY_CTX_MULT: dict = {}


def _mult_of(ctx) -> Mapping[str, int]:
    return _EMPTY_CTX_MULT if ctx is None else ctx.multiple_of


# --------------------------------------------------------------------------------------------
# integer-valued operations


def floordiv(a, d: int, ctx: SymCtx | None = None):
    """``floor(a / d)`` for an integer ``d >= 1``."""
    if type(d) is not int or d < 1:
        raise ValueError(f"floordiv needs an integer divisor >= 1, got {d!r}")
    if type(a) is not Dim:
        if isinstance(a, int):
            return a // d
        if isinstance(a, Fraction):
            return floor(a / d)
        raise TypeError(f"cannot divide {type(a).__name__}")
    if d == 1:
        return a
    mult = _mult_of(ctx)
    exact: dict = {}
    rest: dict = {}
    for m, c in a._p.items():
        if m:
            if type(c) is int:
                ok = (c * _mono_multiple(m, mult)) % d == 0
            else:
                ok = (c.numerator * _mono_multiple(m, mult)) % (c.denominator * d) == 0
            if ok:
                exact[m] = _cn(Fraction(c, d) if type(c) is int else c / d)
                continue
        rest[m] = c
    k = rest.get(_CONST, 0)
    if len(rest) - (_CONST in rest) == 0:
        # everything left is a constant
        q = k // d if type(k) is int else floor(k / d)
        return _wrap(_add(exact, {_CONST: q}) if q else exact)
    if exact:  # what is left may need the constant absorbed again (see _wrap)
        rw = _wrap(rest)
        if rw._p is not rest:
            rest = rw._p
            k = rest.get(_CONST, 0)
    # nested floor: floor((floor(x/a) + e)/d) = floor((x + a*e)/(a*d))
    if type(k) is int and len(rest) == (2 if k else 1):
        for m, c in rest.items():
            if m and c == 1 and len(m) == 1:
                ((at, pw),) = m
                if pw == 1 and type(at) is FloorDiv:
                    inner = floordiv(_wrap(_add(at.num._p, {_CONST: at.d * k})), at.d * d, ctx)
                    return _wrap(_add(exact, _poly(inner)))
    # integer coefficients in the numerator
    q = 1
    for c in rest.values():
        if type(c) is Fraction:
            q = lcm(q, c.denominator)
    D = d
    if q != 1:
        rest = {m: _cn(c * q) for m, c in rest.items()}
        D = d * q
    g = D
    for c in rest.values():
        g = gcd(g, c)
        if g == 1:
            break
    if g != 1:
        rest = {m: c // g for m, c in rest.items()}
        D //= g
    if D == 1:  # cannot happen for a reduced numerator, kept for safety
        return _wrap(_add(exact, rest))
    atom = FloorDiv(Dim._new(rest), D)
    return _wrap(_add(exact, {frozenset(((atom, 1),)): 1}))  # exact may hold the same atom


def ceildiv(a, d: int, ctx: SymCtx | None = None):
    """``ceil(a / d)`` = ``floordiv(a + d - 1, d)``."""
    if type(d) is not int or d < 1:
        raise ValueError(f"ceildiv needs an integer divisor >= 1, got {d!r}")
    return floordiv(a + (d - 1), d, ctx)


def exact_div(a, b, ctx: SymCtx | None = None):
    """``a / b`` when ``b`` is a single term (int or monomial such as ``8*N*T``), the division is
    an exact polynomial division and the quotient is an integer for every value allowed by ctx;
    otherwise None."""
    a = norm(a)
    b = norm(b)
    if type(b) is Dim:
        if len(b._p) != 1:
            return None
        ((bm, bc),) = b._p.items()
    elif isinstance(b, (int, Fraction)):
        if b == 0:
            return None
        bm, bc = _CONST, b
    else:
        return None
    ap = _poly(a)
    mult = _mult_of(ctx)
    r = {}
    for m, c in ap.items():
        qm = _div_mono(m, bm)
        if qm is None:
            return None
        qc = _cn(Fraction(c) / bc)
        if not _integral_term(qc, qm, mult):
            return None
        r[qm] = qc
    return _wrap(r)


def mul_all(xs: Iterable) -> int | Dim:
    r = 1
    for x in xs:
        r = r * x
    return norm(r)


def conv_out(size, kernel: int, stride: int, padding: int, dilation: int = 1, ctx: SymCtx | None = None,
             ceil_mode: bool = False):
    """Output size of torch Conv/MaxPool/AvgPool along one axis (ceil_mode as torch pooling:
    the last window must start inside the input or the left padding)."""
    numer = size + (2 * padding - dilation * (kernel - 1) - 1)
    if not ceil_mode:
        return floordiv(numer, stride, ctx) + 1
    # torch: A = ceil(numer/s); out = A + 1, minus 1 if A*s >= size + padding.
    # With B = floor((size + padding - 1)/s) and delta = padding + stride - dilation*(kernel-1) - 1,
    # A <= B when delta <= 0; A == B or A == B+1 (out = B+1) when 0 < delta <= s; A > B when delta > s.
    delta = padding + stride - dilation * (kernel - 1) - 1
    if delta <= 0:
        return floordiv(numer + (stride - 1), stride, ctx) + 1
    if delta <= stride:
        return floordiv(size + (padding - 1), stride, ctx) + 1
    return floordiv(numer + (stride - 1), stride, ctx)


def convT_out(size, kernel: int, stride: int, padding: int, output_padding: int = 0, dilation: int = 1):
    """Output size of torch ConvTranspose along one axis."""
    return (size - 1) * stride + (dilation * (kernel - 1) + output_padding + 1 - 2 * padding)


# --------------------------------------------------------------------------------------------
# comparison


@dataclass(frozen=True, slots=True)
class Requirement:
    """A condition on the symbols under which a network is valid: ``symbol % multiple_of == 0`` when those are
    set, otherwise only ``text`` (e.g. ``2*(H//2) == H`` or ``T >= 10``); ``where`` names the layer that needs it."""

    text: str
    symbol: str | None = None
    multiple_of: int | None = None
    where: str = ""

    def __str__(self):
        return self.text


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Literal["equal", "never", "requires"]
    requirement: Requirement | None = None

    def __str__(self):
        return self.kind if self.requirement is None else f"{self.kind}: {self.requirement.text}"


_EQUAL = Verdict("equal")
_NEVER = Verdict("never")
_BUDGET = 1800  # evaluations per compare


def _collect_periods(p: dict, out: set) -> None:
    for m, c in p.items():
        if type(c) is Fraction:
            out.add(c.denominator)
        for a, _ in m:
            if type(a) is FloorDiv:
                out.add(a.d)
                _collect_periods(a.num._p, out)


def _period(*dims) -> int:
    s: set = set()
    for x in dims:
        if type(x) is Dim:
            _collect_periods(x._p, s)
    L = 1
    for d in s:
        L = lcm(L, d)
    return L


def _symbols(x) -> frozenset:
    return x.free_symbols() if type(x) is Dim else frozenset()


def _ev(x, env):
    return x.evaluate(env) if type(x) is Dim else x


def compare(a, b, ctx: SymCtx | None = None) -> Verdict:
    """Are sizes ``a`` and ``b`` equal for all allowed symbol values, for none, or under a
    condition?  Structural equality is exact; everything else is decided on sample points that
    cover every residue of the floor divisors involved (bounded work, no caching)."""
    a = norm(a)
    b = norm(b)
    if type(a) is not Dim and type(b) is not Dim:
        return _EQUAL if a == b else _NEVER
    if a == b:
        return _EQUAL
    diff = a - b
    if type(diff) is not Dim:
        return _EQUAL if diff == 0 else _NEVER
    mult = _mult_of(ctx)
    syms = sorted(diff.free_symbols(), key=_sym_key)
    others = sorted((_symbols(a) | _symbols(b)) - set(syms), key=_sym_key)
    L = _period(a, b)
    base = {s: mult.get(s, 1) * 1_000_003 for s in others}  # symbols that cancel: any valid value
    n = len(syms)
    span = 3 * L + 5
    rng = random.Random(0x5EED ^ (L & 0xFFFF) ^ n)

    points: list[tuple[int, ...]] = []
    if n == 1:
        R = min(max(span, 200), 1500)
        points = [(k,) for k in range(1, R + 1)]
        W = min(L + 1, _BUDGET - R)
        for B in (L * 1_000_000, L * 10**15):
            points.extend((B + j,) for j in range(1, max(W // 2, 2) + 1))
    else:
        per = 1
        while (per + 1) ** n <= _BUDGET // 2 and per + 1 <= span:
            per += 1
        if per >= 2:
            grid = [()]
            for _ in range(n):
                grid = [g + (k,) for g in grid for k in range(1, per + 1)]
            points = grid
        hi = max(span, 64)
        while len(points) < _BUDGET:
            if len(points) % 4 == 0:
                points.append(tuple(rng.randrange(1, 10**9) * L + rng.randrange(1, L + 1) for _ in range(n)))
            else:
                points.append(tuple(rng.randrange(1, hi + 1) for _ in range(n)))

    samples: list[tuple[tuple[int, ...], bool]] = []
    invalid: list[tuple[tuple[int, ...], bool]] = []
    env = dict(base)
    ms = [mult.get(s, 1) for s in syms]
    for ks in points:
        for s, m, k in zip(syms, ms, ks):
            env[s] = m * k
        va = _ev(a, env)
        vb = _ev(b, env)
        (samples if va >= 1 and vb >= 1 else invalid).append((ks, va == vb))
    if not samples:  # neither is a valid size anywhere we looked: judge on all points
        samples = invalid
    n_eq = sum(1 for _, e in samples if e)
    if n_eq == len(samples):
        return _EQUAL
    if n_eq == 0:
        return _NEVER

    # Is equality exactly "each symbol S is a multiple of j_S * multiple_of(S)"?
    js = []
    for i in range(n):
        g = 0
        for ks, e in samples:
            if e:
                g = gcd(g, ks[i])
        js.append(g)
    # (a period that divides no floor divisor is a coincidence of the sampled range)
    if all(L % j == 0 for j in js) and all(
        e == all(ks[i] % js[i] == 0 for i in range(n)) for ks, e in samples
    ):
        conds = [(syms[i], js[i] * ms[i]) for i in range(n) if js[i] > 1]
        if len(conds) == 1:
            s, q = conds[0]
            return Verdict("requires", Requirement(f"{s} % {q} == 0", s, q))
        if conds:
            return Verdict("requires", Requirement(" and ".join(f"{s} % {q} == 0" for s, q in conds)))
    return Verdict("requires", Requirement(f"{a} == {b}"))


def min_value(a, ctx: SymCtx | None = None) -> dict | None:
    """Smallest symbol value (respecting multiple_of) for which ``a >= 1``, e.g. ``{"H": 7}``;
    None when ``a >= 1`` already at the smallest allowed value.  With several symbols they are
    set to one common value.  ``{}`` when no value was found (``a`` never positive).  Assumes
    ``a`` grows with its symbols, as output sizes of conv/pool chains do."""
    a = norm(a)
    if type(a) is not Dim:
        return None if a >= 1 else {}
    mult = _mult_of(ctx)
    syms = sorted(a.free_symbols(), key=_sym_key)
    step = 1
    for s in syms:
        step = lcm(step, mult.get(s, 1))

    def ok(k: int) -> bool:
        return a.evaluate({s: step * k for s in syms}) >= 1

    if ok(1):
        return None
    found = None
    for k in range(2, 2049):
        if ok(k):
            found = k
            break
    if found is None:
        lo, hi = 2048, 4096
        while not ok(hi):
            lo, hi = hi, hi * 2
            if hi.bit_length() > 400:
                return {}
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        found = hi
    return {s: step * found for s in syms}


def resimplify(x, ctx: SymCtx | None = None):
    """``x`` rebuilt under ``ctx``'s assumptions: floors that became exact divisions are written as such
    (``ceil(H/2)`` is ``H/2`` once H is known to be even). The value is unchanged wherever the assumptions hold."""
    if type(x) is not Dim:
        return x
    total = 0
    for m, c in x._p.items():
        t = c
        for a, pw in m:
            v = Dim.sym(a) if type(a) is str else floordiv(resimplify(a.num, ctx), a.d, ctx)
            for _ in range(pw):
                t = t * v
        total = total + t
    return norm(total)
