"""Graph -> standalone, readable PyTorch source, through the code IR.

Contract: ``generate(graph)`` returns the text of a Python module that imports only torch (plus ``math`` and
``torchvision.ops`` where the network needs them, and the modules a plugin op lists in ``Op.imports``) and defines one ``nn.Module`` class per distinct block body and a
top class for the network. Module attributes follow the graph's structural names, so ``state_dict()`` keys equal
the node ids (``layer1.0.conv1.weight``). The text is a pure function of the graph.

How it works:
1. Every block instance (and every group of layers that is not a plain chain) is *drafted*: its members'
   constructors and its forward statements are rendered from the ops' code IR with each literal replaced by a
   numbered slot. Instances whose drafts read the same are one class.
2. Each slot of a class is then written once for all its instances, by the first rule that holds in every
   instance: the spec's own expression for the value (``planes * expansion``, ``math.sqrt(d_model)``) over the
   class's constructor parameters (the block's parameters and its input sizes), a constant, a parameter with the
   same values, or else a new constructor argument. The value of every written expression is checked against the
   graph, so the text never changes a number. A value used in ``forward`` is read from ``self``.
3. A chain of modules becomes ``nn.Sequential``; a repeat of identical copies a comprehension; a repeat whose copies
   take extra inputs an ``nn.ModuleList`` and a ``for`` loop; a layer that a condition drops in some instances is
   ``None`` there and called under ``if``.
"""
from __future__ import annotations

import builtins
import functools
import keyword
import operator
import re
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import PurePath

from ..errors import NetspecError
from ..gcpause import paused
from ..graph.ir import Graph, Node
from ..ops.tensors import InputOp
from ..shapes import TensorType, is_sym
from ..spec.expr import ExprError, parse as parse_expr
from ..spec.names import MODULE_ATTRS
from . import ir
from .printer import Context, literal, literal_prec, render
from .pyexpr import to_python

INDENT = "    "
_HARD = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {
    "self", "torch", "nn", "F", "math", "torchvision", "OrderedDict", "super", "make_divisible", "None", "True",
    "False"}
_CALLED = re.compile(r"(?<![.\w])(\w+)\(")          # names called as functions in source text
_BUILTINS = frozenset(dir(builtins))
_RESERVED = _HARD | _BUILTINS
# parameter fields whose value is a size (a conv's 'out'): where an input size is traced back to
_SIZE_FIELDS = ("out", "features", "hidden", "dim", "channels", "embed", "size", "d_model", "units")


_MISSING = object()

# Reuse the draft of an identical earlier block instance instead of drafting every instance (see Writer._draft_key).
# Off: every instance is drafted (the tests compare the two).
REUSE_DRAFTS = True
# Keep each container's set of nodes even where containers are runs of the graph order (the tests compare the two).
FORCE_NODE_SETS = False
# Take the block instances that expansion copied, and that read the same, as copies without looking inside them
# (Index, _verified_copies). Off: every instance is looked at (the tests compare the two).
SKIP_COPIES = True
# Write a literal of the network's own class that no expression writes and no trace can find as its value at once,
# without a slot for _resolve_top (Writer._plain_lit). Off: every literal has a slot (the tests compare the two).
DIRECT_TOP_LITERALS = True


class CodegenError(NetspecError):
    """The graph cannot be written as PyTorch source (a bug in netspec or an op; the message says which)."""


# -- identifiers and text -------------------------------------------------------------------------------------

def is_attr_name(name: str) -> bool:
    """True if ``name`` can be written as ``self.name`` (and assigned as a submodule attribute)."""
    return (name.isidentifier() and name.isascii() and not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
            and not name.startswith("_") and name not in MODULE_ATTRS)


def ident(name: str, taken: set, fallback: str = "h", reserved=_RESERVED) -> str:
    """A fresh, valid, non-reserved identifier derived from ``name``; records it in ``taken``."""
    s = str(name)
    if not (s.isidentifier() and s.isascii()):
        s = re.sub(r"[^0-9A-Za-z_]", "_", s)
    s = s.strip("_") or fallback
    if s[0].isdigit():
        s = fallback + s
    if s in reserved or s in _HARD:
        s = s + "_"
    base, k = s, 1
    while s in taken or s in reserved or s in _HARD:
        k += 1
        s = f"{base}_{k}"
    taken.add(s)
    return s


def camel(name: str, fallback: str) -> str:
    """CamelCase class name from a spec name: 'inverted_residual' -> 'InvertedResidual'."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", str(name)) if p]
    s = "".join(p[:1].upper() + p[1:] for p in parts if p.isascii())
    if not s:
        return fallback
    if s[0].isdigit():
        s = fallback + s
    return s


def clean_text(text: str, limit: int = 300) -> str:
    """One line of printable ASCII for a comment or docstring (no newlines, no control characters)."""
    s = str(text).strip()
    if not s.isprintable():
        s = "".join(c if c.isprintable() else " " for c in s)
    if len(s) > limit:
        s = s[: limit - 3] + "..."
    return s if s.isascii() else s.encode("ascii", "backslashreplace").decode("ascii")


def docstring(text: str, indent: str = "") -> str:
    """A docstring literal, wrapped to fit in 100 columns at ``indent``."""
    s = clean_text(" ".join(str(text).split()), 600)
    if not s or '"' in s or "\\" in s or s.endswith("'"):
        return literal(s)
    if len(indent) + len(s) + 6 <= 100:
        return f'"""{s}"""'
    lines = textwrap.wrap(s, 96 - len(indent))
    if len(lines) == 1:          # two lines, or a formatter would join them back past the limit
        lines = textwrap.wrap(s, max(20, len(s) * 2 // 3))
    return '"""' + lines[0] + "\n" + "".join(f"{indent}{ln}\n" for ln in lines[1:]) + indent + '"""'


def fmt_type(t: TensorType, dims: list | None = None) -> str:
    parts = [str(d) for d in (dims if dims is not None else t.shape)]
    s = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    return s if t.dtype == "float32" else f"{s} {t.dtype}"


@functools.lru_cache(maxsize=256)
def _basename(file: str) -> str:
    return PurePath(file).name


def where(loc) -> str:
    """'resnet18.yaml:15': the spec line a statement comes from."""
    if loc is None:
        return ""
    return f"{_basename(str(loc.file))}:{loc.line}"


# -- structure of a graph -----------------------------------------------------------------------------------

@dataclass(slots=True)
class Member:
    kind: str            # "node" | "container"
    key: str             # node id or container path
    local: str           # attribute name in the parent
    order: float


def _inside(conts: dict, copy_of: dict) -> dict:
    """Each container inside a copy (at any depth) -> the outermost copy it is inside."""
    if not copy_of:
        return {}
    above: dict = {}                      # container -> the outermost copy strictly above it (absent: none)
    done: set = set()
    for p, c in conts.items():
        q = c.parent
        if q is not None:
            if q not in done:             # a parent after its child (expansion adds parents first): walk up
                a = None
                while q is not None:
                    if q in copy_of:
                        a = q
                    q = conts[q].parent
            else:
                a = above.get(q)
                if a is None and q in copy_of:
                    a = q
            if a is not None:
                above[p] = a
        done.add(p)
    return above


def _verified_copies(g: Graph, order: dict, ids: list, uses: dict, graph_out: set, shared_at: list) -> tuple:
    """The block instances that expansion copied from an earlier instance (``Graph.copies``) and that code generation
    would write as that instance again (copy -> the earlier instance), and the containers inside them (``_inside``).

    Expansion adds the same nodes and inner instances for a copy, up to their names. What code generation reads
    beyond that is checked here, node by node: the same op, parameters, types, metadata (weights, expressions) and
    spec lines, the same wiring relative to the instance, the same inputs' types; and what the graph around it
    makes of it: which of its values are read outside it or are outputs of the network; for each input that an
    'add' inside takes first (it may accumulate into it in place only where nothing else reads it), whether it is
    read elsewhere, is a network input or output, or comes from an op whose backward needs its output; that no
    module inside is shared with a node outside, and that neither instance has optional layers. An instance that is
    not the same in all of these is looked at as any other."""
    import bisect
    conts, nodes = g.containers, g.nodes
    total = len(ids)
    cond_set = {k[0] for k in g.conds if k[0] is not None} | {p for p in g.dropped if p is not None}   # optional layers
    cond_paths = sorted(cond_set)
    out: dict = {}
    for x, (y, first, n) in g.copies.items():
        cx, cy = conts.get(x), conts.get(y)
        if cx is None or cy is None or cx.kind != "block" or cy.kind != "block" or cx.block != cy.block or n <= 0:
            continue
        lx, ly = order.get(x + "." + first), order.get(y + "." + first)
        if lx is None or ly is None or lx + n > total or ly + n > total or lx < ly + n:
            continue
        hx, hy = lx + n, ly + n
        if (shared_at and (bisect.bisect_left(shared_at, lx) != bisect.bisect_left(shared_at, hx) or
                           bisect.bisect_left(shared_at, ly) != bisect.bisect_left(shared_at, hy))):
            continue
        if cond_paths and any(q in cond_set or bisect.bisect_left(cond_paths, q + ".") !=
                              bisect.bisect_left(cond_paths, q + "/") for q in (x, y)):     # q or inside it
            continue
        if (len(cx.inputs) != len(cy.inputs) or cx.input_names != cy.input_names or
                cx.output_names != cy.output_names or cx.arg_exprs != cy.arg_exprs or
                repr(tuple(cx.args.items())) != repr(tuple(cy.args.items())) or
                len(set(map(tuple, cx.inputs))) != len(cx.inputs) or len(set(map(tuple, cy.inputs))) != len(cy.inputs)):
            continue
        if _same_copy(g, nodes, ids, order, uses, graph_out, cx, cy, lx, ly, n):
            out[x] = y
    # the earlier instance must be looked at itself: not inside another copy (expansion copies only instances it
    # expanded, so this holds; checked, since a hidden one would have no class)
    while True:
        hidden = _inside(conts, out)
        bad = [x for x, y in out.items() if y in hidden]
        if not bad:
            return out, hidden
        for x in bad:
            del out[x]


def _same_copy(g: Graph, nodes: dict, ids: list, order: dict, uses: dict, graph_out: set, cx, cy, lx: int, ly: int,
               n: int) -> bool:
    hx, hy = lx + n, ly + n
    px, py = cx.path + ".", cy.path + "."
    cut_x, cut_y = len(cx.path), len(cy.path)
    in_x = {tuple(r): k for k, r in enumerate(cx.inputs)}
    in_y = {tuple(r): k for k, r in enumerate(cy.inputs)}
    empty: list = []
    for rx, ry in zip(cx.inputs, cy.inputs):       # the inputs' types
        if g.type_of(rx) != g.type_of(ry):
            return False
    # the outputs, relative to the instance
    if len(cx.outputs) != len(cy.outputs):
        return False
    for rx, ry in zip(cx.outputs, cy.outputs):
        if rx is None or ry is None or rx[1] != ry[1] or order.get(rx[0], -1) - lx != order.get(ry[0], -1) - ly or \
                not lx <= order.get(rx[0], -1) < hx:
            return False
    depth = len(nodes[ids[lx]].scope) - len(nodes[ids[ly]].scope)
    accumulates = set()           # inputs that an 'add' inside takes first (it may accumulate into them)
    for i in range(n):
        ix_, iy = ids[lx + i], ids[ly + i]
        if not ix_.startswith(px) or not iy.startswith(py) or ix_[cut_x:] != iy[cut_y:]:
            return False
        a, b = nodes[ix_], nodes[iy]
        if a.op is not b.op or (a.params is not b.params and a.params != b.params) or a.loc != b.loc or \
                a.meta != b.meta or len(a.inputs) != len(b.inputs) or len(a.scope) - len(b.scope) != depth or \
                a.scope[-1][cut_x:] != b.scope[-1][cut_y:]:
            return False
        for ra, rb in zip(a.inputs, b.inputs):
            if ra is None or rb is None:
                if ra is not rb:
                    return False
                continue
            qa, qb = order[ra[0]], order[rb[0]]
            if lx <= qa < hx:
                if qa - lx != qb - ly or ra[1] != rb[1]:
                    return False
            elif in_x.get(tuple(ra)) != in_y.get(tuple(rb), -1):
                return False
            elif ra is a.inputs[0] and a.op.name == "add":
                accumulates.add(in_x[tuple(ra)])
        for k in range(len(a.out)):     # read outside the instance, or an output of the network
            ra, rb = (ix_, k), (iy, k)
            ua, ub = uses.get(ra), uses.get(rb)
            if ((ra in graph_out) or (ua is not None and order[ua[-1]] >= hx)) != \
                    ((rb in graph_out) or (ub is not None and order[ub[-1]] >= hy)):
                return False
    for k in accumulates:         # what the graph around makes of them (add_in_place)
        rx, ry = tuple(cx.inputs[k]), tuple(cy.inputs[k])
        sx, sy = nodes[rx[0]], nodes[ry[0]]
        if sx.op.backward_needs_output != sy.op.backward_needs_output or (sx.op is InputOp) != (sy.op is InputOp) \
                or (rx in graph_out) != (ry in graph_out):
            return False
        ux, uy = uses.get(rx, empty), uses.get(ry, empty)
        if (bool(ux) and (order[ux[0]] < lx or order[ux[-1]] >= hx)) != \
                (bool(uy) and (order[uy[0]] < ly or order[uy[-1]] >= hy)):
            return False
    return True


class Index:
    """Facts about a graph that every class needs: members per container, uses, interfaces.

    Where every container's nodes are one run of the graph's order (expansion makes them so), a container is its
    span of positions in that order, and its interface is made from its members' interfaces, innermost first: the
    work is linear in the graph, however deep the nesting. Otherwise each container keeps the set of its nodes.

    A block instance that expansion copied from an earlier one and that reads the same to code generation
    (``_verified_copies``) is a copy: its class and arguments are the earlier instance's, so nothing inside it is
    looked at again. The containers inside copies are left out (``hidden``); a copy has no members here, and its
    interface is read from its span."""

    def __init__(self, g: Graph):
        self.g = g
        self.order = order = {nid: i for i, nid in enumerate(g.nodes)}
        self.ids = ids = list(g.nodes)
        self.uses = uses = {}
        self.graph_out = {tuple(r) for r in g.outputs.values()}
        conts = g.containers
        shared_at = []                         # positions of the nodes that share a module, both sides
        for n in g.nodes.values():             # readers of every value, in graph order
            nid = n.id
            for r in n.inputs:
                if r is not None:
                    r = tuple(r)
                    got = uses.get(r)
                    if got is None:
                        uses[r] = [nid]
                    else:
                        got.append(nid)
            if "shared_with" in n.meta:           # (the node and the one whose module it calls)
                shared_at.append(order[nid])
                shared_at.append(order.get(n.meta["shared_with"], -1))
        # copy -> the earlier instance; container inside a copy -> the copy
        self.copy_of, self.hidden = copy_of, hidden = \
            _verified_copies(g, order, ids, uses, self.graph_out, sorted(shared_at)) if g.copies and SKIP_COPIES \
            else ({}, {})
        self.visible = visible = [p for p in conts if p not in hidden] if hidden else list(conts)
        count = {p: 0 for p in visible}       # nodes inside, nested containers' included
        lo: dict = {}                          # position of the first node inside
        hi: dict = {}                          # position of the last node inside
        members: dict = {}
        chain: dict = {}                       # container -> its path of containers, outermost first
        for p in visible:
            stack = []
            q = p
            while q is not None and q not in chain:
                stack.append(q)
                q = conts[q].parent
            up = chain[q] if q is not None else ()
            for x in reversed(stack):
                up = up + (x,)
                chain[x] = up
        scoped = True                          # every node's scope is its innermost container's chain
        for n in g.nodes.values():     # the nodes directly inside each container
            if n.op is not InputOp:
                nid = n.id
                sc = n.scope
                parent = sc[-1] if sc else None
                if parent is not None:
                    i = order[nid]
                    top = hidden.get(parent)
                    if top is not None or parent in copy_of:    # inside a copy: counted in the copy only
                        parent = top or parent
                        count[parent] += 1
                        if parent not in lo:
                            lo[parent] = i
                        hi[parent] = i
                        continue
                    count[parent] += 1
                    if parent not in lo:
                        lo[parent] = i
                    hi[parent] = i
                    if sc is not chain[parent] and sc != chain[parent]:
                        scoped = False
                ms = members.get(parent)
                if ms is None:
                    members[parent] = ms = []
                ms.append(Member("node", nid, n.local_name, order[nid]))
        # innermost first: each container's count and span into its parent's
        self.bottom_up = bottom_up = sorted(visible, key=lambda q: len(chain[q]), reverse=True)
        for p in bottom_up:
            q = conts[p].parent
            if q is not None and count[p]:
                count[q] += count[p]
                if q not in lo or lo[p] < lo[q]:
                    lo[q] = lo[p]
                if q not in hi or hi[p] > hi[q]:
                    hi[q] = hi[p]
        self.count = count
        self.lo = lo
        self.hi = hi
        self.runs = scoped and all(hi[p] - lo[p] + 1 == count[p] for p in lo) and not FORCE_NODE_SETS
        self._subtree = None
        self._in_subtree = None
        first: dict = {}
        for p in visible:
            first[p] = lo[p] if count[p] else max([order.get(r[0], -1) for r in conts[p].inputs] or [-1]) + 0.5
        self.first = first
        for p in visible:
            c = conts[p]
            local = p[len(c.parent) + 1:] if c.parent else p
            members.setdefault(c.parent, []).append(Member("container", p, local, first[p]))
        by_order = operator.attrgetter("order")
        for ms in members.values():
            ms.sort(key=by_order)
        self.children = members
        self._iface: dict = {}
        self._escapes: dict | None = None
        self._reads: dict | None = None
        self._spans: dict = {}

    def _sets(self):
        """Each container's nodes in graph order, and as a set (where containers are not runs of the order)."""
        if self._subtree is None:
            subtree = {p: [] for p in self.g.containers}
            for n in self.g.nodes.values():
                if n.op is not InputOp:
                    for c in n.scope:
                        subtree[c].append(n.id)
            self._subtree = subtree
            self._in_subtree = {p: {self.order[nid] for nid in nodes} for p, nodes in subtree.items()}
        return self._subtree, self._in_subtree

    def nodes(self, path: str) -> list:
        """The ids of the nodes inside a container, in graph order."""
        if self.runs:
            return self.ids[self.lo[path]:self.hi[path] + 1] if self.count[path] else []
        return self._sets()[0][path]

    def span(self, path: str):
        """The graph-order positions of the nodes inside a container (``order[nid] in span``)."""
        got = self._spans.get(path)
        if got is None:
            if self.runs:
                got = range(self.lo[path], self.hi[path] + 1) if self.count[path] else range(0)
            else:
                got = self._sets()[1][path]
            self._spans[path] = got
        return got

    def first_node(self, path: str) -> str | None:
        if not self.count[path]:
            return None
        return self.ids[self.lo[path]] if self.runs else self._sets()[0][path][0]

    def last_node(self, path: str) -> str | None:
        if not self.count[path]:
            return None
        return self.ids[self.hi[path]] if self.runs else self._sets()[0][path][-1]

    def _interfaces(self):
        """Innermost first, for every container: the values read from outside it (first reads, in graph order) and
        the values made inside it that are read outside it or are outputs of the graph (in graph order)."""
        reads: dict = {}
        escapes: dict = {}
        nodes = self.g.nodes
        order = self.order
        uses = self.uses
        graph_out = self.graph_out
        children = self.children
        lo_of = self.lo
        hi_of = self.hi
        ids = self.ids
        copy_of = self.copy_of
        empty: list = []
        for p in self.bottom_up:
            if not self.count[p]:
                reads[p] = escapes[p] = empty
                continue
            lo = lo_of[p]
            hi = hi_of[p]
            rd: list = []
            seen: set = set()
            cand: list = []
            # (is a node, key) of each member; a copy has no members here: its nodes, in graph order
            items = ((True, nid) for nid in ids[lo:hi + 1]) if p in copy_of else \
                ((m.kind == "node", m.key) for m in children.get(p, ()))
            for is_node, key in items:
                if is_node:
                    n = nodes[key]
                    for r in n.inputs:
                        if r is not None and not lo <= order[r[0]] <= hi:
                            r = tuple(r)
                            if r not in seen:
                                seen.add(r)
                                rd.append(r)
                    cand.extend([(key, k) for k in range(len(n.out))])
                else:
                    for r in reads[key]:
                        if not lo <= order[r[0]] <= hi and r not in seen:
                            seen.add(r)
                            rd.append(r)
                    cand.extend(escapes[key])
            reads[p] = rd
            esc = []
            for r in cand:
                if r in graph_out:
                    esc.append(r)
                else:
                    for u in uses.get(r, empty):
                        if not lo <= order[u] <= hi:
                            esc.append(r)
                            break
            escapes[p] = esc
        self._reads = reads
        self._escapes = escapes

    def iface(self, path: str) -> tuple[list, list]:
        """(values entering, values leaving) a container: declared for blocks, computed for the others."""
        got = self._iface.get(path)
        if got is not None:
            return got
        c = self.g.containers[path]
        ins = [tuple(r) for r in c.inputs]
        if self.runs:
            if self._reads is None:
                self._interfaces()
            seen = set(ins)
            ins += [r for r in self._reads[path] if r not in seen]
            outs = list(self._escapes[path]) if c.kind != "block" else None
        else:
            span = self.span(path)
            seen = set(ins)
            nodes = self.g.nodes
            order = self.order
            for nid in self.nodes(path):
                for r in nodes[nid].inputs:
                    if r is not None and order[r[0]] not in span:
                        r = tuple(r)
                        if r not in seen:
                            seen.add(r)
                            ins.append(r)
            outs = None
            if c.kind != "block":
                outs = []
                for nid in self.nodes(path):
                    for k in range(len(nodes[nid].out)):
                        r = (nid, k)
                        if r in self.graph_out or any(order[u] not in span for u in self.uses.get(r, [])):
                            outs.append(r)
        if c.kind == "block":
            outs = [tuple(r) for r in c.outputs]
        else:
            if not outs and c.outputs:
                outs = [tuple(r) for r in c.outputs]
            if not outs and self.count[path]:
                outs = [(self.last_node(path), 0)]
        self._iface[path] = (ins, outs)
        return ins, outs


# -- drafts: one class instance rendered with numbered slots -------------------------------------------------

@dataclass(slots=True)
class Slot:
    lit: ir.Lit
    node: Node | None = None          # the node whose op wrote the literal (its exprs and inputs)
    cont: object = None               # the block instance whose construction holds the literal
    fwd: bool = False                 # used in forward (read from self)
    env_extra: dict = field(default_factory=dict)   # loop index values
    kw: tuple | None = None           # a keyword argument: (name, the default's text or None)
    copies: list | None = None        # in a comprehension: the slot in every copy (where their values differ)
    loop_index: str | None = None
    loop_var: str | None = None       # the comprehension's variable the slot's expression may read


@dataclass(slots=True)
class Draft:
    scope: str | None                 # container path (None: the network)
    init: list                        # lines (str, with slot marks) of __init__ after super().__init__()
    fwd: list                         # (line, refs assigned or None, loc)
    args: list                        # forward argument names
    in_refs: list
    slots: list                       # Slot per mark
    base: str = "nn.Module"           # or "nn.Sequential" / "nn.ModuleList"
    seq_members: list | None = None   # for an nn.Sequential subclass: the member lines
    # layers with an 'if': name -> Optional (present in this instance) or None (dropped by its condition)
    optional: dict = field(default_factory=dict)
    avoid: frozenset = frozenset()    # builtin names the class calls (no variable may take them)
    opt_ok: bool = True               # every present optional layer rebinds its input's variable


@dataclass(slots=True)
class Optional_:
    """A layer with a condition, present in this instance: its constructor, its statement and their slots."""

    init: str                         # the constructor expression
    fwd: tuple | None                 # (code, refs, loc)
    slots: list
    cond: str | None
    n_init: int = 0                   # slots of the constructor (the statement's follow)


_MARK = "\x00"


def mark(k: int) -> str:
    return f"{_MARK}{k}{_MARK}"


_MARK_RE = re.compile(_MARK + r"(\d+)" + _MARK)
_OPT = "\x02"
_STAND_IN = re.compile("\x00(\\d+)\x00|\x03(\\d+)\x03|\x04")    # Writer.render_slots: a slot, an operand, the module
_STRIP = "\x06"      # in front of a call's argument list: drop the ', ' that follows


def finish_text(text: str) -> str:
    return text.replace(_STRIP + ", ", "").replace(_STRIP, "") if _STRIP in text else text


def opt_mark(name: str) -> str:
    return f"{_OPT}{name}{_OPT}"


class ClassGroup:
    def __init__(self, block: str, key):
        self.block = block
        self.key = key
        self.drafts: list[Draft] = []    # one per instance, but a copy of an earlier instance has none
        self.uses = 0                    # instances, copies included
        self.name = ""
        self.params: list = []           # (name, default or _NODEFAULT, kind) in signature order
        self.values: dict = {}           # param name -> per-instance values
        self.slot_text: list = []
        self.self_attrs: dict = {}       # param name -> attribute name on self (used in forward)
        self.opt_text: dict = {}         # optional layer -> (init, forward, slot shapes) where present
        self.opt_final: dict = {}        # optional layer -> (init line, forward code, condition text or None)
        self.out_exprs: dict = {}        # (output, axis) -> its size as an expression of the parameters
        self.derived: dict = {}          # (input, axis) -> the parameter holding that input size
        self.order = 0
        self.uses_make_divisible = False
        self.uses_math = False


_NODEFAULT = object()


class Writer:
    """Writes the classes of one network."""

    def __init__(self, g: Graph, class_name: str | None, taken: set, helpers: dict):
        self.g = g
        self.ix = Index(g)
        self.taken = taken
        self.helpers = helpers
        self.class_name = class_name
        self.groups: dict = {}           # key -> [ClassGroup]
        self.by_path: dict = {}          # container path -> (ClassGroup, instance index)
        self.modes: dict = {}            # container path -> "class" | "seq" | "loop"
        self.ordered_dict = False
        self.needs = set()
        self._ctor_cache: dict = {}
        self._fwd_cache: dict = {}
        self._ir_keys: dict = {}         # node id -> the first part of its _ir_key (a number)
        self._ir_ids: dict = {}          # (op, id(params), input types) -> that number
        self._ir_by_id: dict = {}        # (op, id(params), *ids of the input types) -> that number
        self._ir_cache: dict = {}        # _ir_key -> constructor or forward IR (frozen), shared by equal layers
        self._drafted: dict = {}         # _draft_key -> (draft, its scope): an instance whose draft others reuse
        self._copied: dict = {}          # (_draft_key, _copy_facts) -> (draft, its scope): an instance others copy
        self._cond_scopes: set | None = None
        self._render_cache: dict = {}    # (id(IR), operands, module) -> (IR, texts between its slots, literals)
        self._name_k: dict = {}          # class name base -> the number of the last name given for it
        self._text_keys: dict = {}       # id(draft.init) -> the draft's text in a class key (shared by reused drafts)
        self._text_keep: list = []       # those init lists (their ids stay theirs)
        self._owns: dict = {}            # container path -> whether a node inside it has a module
        self._type_keys: dict = {}       # id(TensorType) -> its key in _copy_facts
        self._where: dict = {}           # Loc -> where()
        self._values_key: dict = {}      # (id(ClassGroup), instance) -> its values in a draft key, or None
        # the network's own slots while it is drafted, and whether its sizes can be traced (_resolve_top): a literal
        # that no expression writes and no trace can find is written as it is, without a slot (render_slots)
        self._top_slots: list | None = None
        self._top_traceable = True

    # -- per-node IR --------------------------------------------------------------------------------------------
    def _ir_key(self, n: Node, *extra):
        """A key under which nodes get the same code IR: the same op, Params object (expansion shares one between
        layers with the same parameters; it is frozen) and input types, numbered (so that the keys made from it hash
        at once), with ``extra`` after it; None if a type is not hashable."""
        base = self._ir_keys.get(n.id, _MISSING)
        if base is _MISSING:
            ins = n.meta.get("in", ())
            # the very same type objects first (a chain passes its types on; the graph keeps them, so their ids
            # stay theirs): the shapes are hashed once per distinct tuple of types, not once per node
            by_id = (n.op, id(n.params), *map(id, ins))
            base = self._ir_by_id.get(by_id, _MISSING)
            if base is _MISSING:
                try:
                    full = (n.op, id(n.params), tuple(None if t is None else (t.shape, t.dtype, t.high) for t in ins))
                    base = self._ir_ids.setdefault(full, len(self._ir_ids))
                except TypeError:
                    base = None
                self._ir_by_id[by_id] = base
            self._ir_keys[n.id] = base
        return base if base is None or not extra else (base,) + extra

    def ctor(self, n: Node):
        if n.id not in self._ctor_cache:
            shared = bool(n.meta.get("shared_with"))
            key = self._ir_key(n, "constructor", shared)
            if key is not None and key in self._ir_cache:     # helpers and imports were taken for this key already
                self._ctor_cache[n.id] = self._ir_cache[key]
                return self._ctor_cache[n.id]
            c = None if shared else n.op.constructor(list(n.meta.get("in", [])), n.params)
            self._ctor_cache[n.id] = c
            self.needs.update(f"import {m}" for m in n.op.imports)
            for k, v in n.op.helpers_used(list(n.meta.get("in", [])), n.params).items():
                if k in self.helpers and self.helpers[k] != v:
                    raise CodegenError(f"two ops define the helper '{k}' differently")
                self.helpers[k] = v
            if key is not None:
                self._ir_cache[key] = c
        return self._ctor_cache[n.id]

    def fwd_ir(self, n: Node):
        if n.id not in self._fwd_cache:
            target = self.g.nodes.get(n.meta.get("shared_with") or "")
            tied = target is not None and target.op is not n.op
            key = self._ir_key(n, "forward", tied)
            f = self._ir_cache.get(key) if key is not None else None
            if f is None:
                if tied:      # tied weights: reads the other module's weight
                    f = n.op.tied_forward(list(n.meta.get("in", [])), n.params)
                else:
                    f = n.op.forward(list(n.meta.get("in", [])), n.params)
                if key is not None:
                    self._ir_cache[key] = f
            self._fwd_cache[n.id] = f
        return self._fwd_cache[n.id]

    def weight_kind(self, n: Node) -> str | None:
        """'param', 'buffer', 'transient' (a buffer left out of the state_dict) or None (a module, or no state)."""
        w = n.meta.get("weights", {}).get("")
        if not w and n.op.transient(n.params):
            return "transient"
        return w[1] if w else None

    def owns_module(self, m: Member) -> bool:
        if m.kind == "node":
            return self.ctor(self.g.nodes[m.key]) is not None
        got = self._owns.get(m.key)
        if got is None and not self.ix.runs:
            got = any(self.ctor(self.g.nodes[nid]) is not None for nid in self.ix.nodes(m.key))
        if got is None:     # a member node with a module, or a nested container that owns one
            got = any(self.ctor(self.g.nodes[x.key]) is not None if x.kind == "node" else self.owns_module(x)
                      for x in self.ix.children.get(m.key, ()))
            self._owns[m.key] = got
        return got

    def add_in_place(self, n: Node) -> bool:
        """A residual 'add' may accumulate into its first input, as hand-written blocks do (``out += identity``)."""
        if n.op.name != "add" or len(n.inputs) < 2 or n.inputs[0] is None:
            return False
        r0 = tuple(n.inputs[0])
        src = self.g.nodes[r0[0]]
        if src.op.backward_needs_output or r0 in self.ix.graph_out or src.op is InputOp:
            return False
        if self.ix.uses.get(r0, []) != [n.id] or any(tuple(r) == r0 for r in n.inputs[1:] if r is not None):
            return False
        return src.out[r0[1]] == n.out[0]

    def plain_call(self, n: Node) -> bool:
        """The node is ``module(x)``: one input, one output, its own module."""
        if self.ctor(n) is None or len(n.out) != 1 or len([r for r in n.inputs if r is not None]) != 1:
            return False
        if self.weight_kind(n) is not None or self.add_in_place(n):
            return False
        return self.fwd_ir(n) == ir.Call(ir.Module(), (ir.Operand(0),), ())

    # -- how each container is written ------------------------------------------------------------------------
    def mode(self, path: str) -> str:
        """'class' (its own class), 'seq' (an nn.Sequential of its members) or 'loop' (a ModuleList and a for)."""
        if path in self.modes:
            return self.modes[path]
        c = self.g.containers[path]
        members = self.ix.children.get(path, [])
        m = "class"
        if c.kind != "block" and members:
            if self._chain(path, members):
                m = "seq"
            elif c.kind == "repeat" and self._loopable(path, members):
                m = "loop"
        self.modes[path] = m
        return m

    def callable_member(self, m: Member) -> bool:
        if m.kind == "node":
            return self.plain_call(self.g.nodes[m.key])
        ins, outs = self.ix.iface(m.key)
        return len(outs) == 1 and len(ins) == 1

    def _chain(self, path: str, members: list) -> bool:
        ins, outs = self.ix.iface(path)
        if len(ins) != 1 or len(outs) != 1:
            return False
        names = [m.local for m in members]
        if names != [str(k) for k in range(len(names))]:      # named layers: a class of their own reads better
            return False
        return self._is_chain(members, ins[0], outs[0])

    def _is_chain(self, members: list, first, last) -> bool:
        """Each member a plain call on the previous one's output, which nothing else reads."""
        prev = first
        for k, m in enumerate(members):
            if not self.callable_member(m):
                return False
            mins, mouts = self._member_iface(m)
            if mins != [prev]:
                return False
            if k + 1 < len(members):
                nxt = members[k + 1]
                order = self.ix.order
                inside = (order[nxt.key],) if nxt.kind == "node" else self.ix.span(nxt.key)
                if mouts[0] in self.ix.graph_out or \
                        any(order[u] not in inside for u in self.ix.uses.get(mouts[0], [])):
                    return False
            prev = mouts[0]
        return prev == last

    def _member_iface(self, m: Member):
        if m.kind == "node":
            n = self.g.nodes[m.key]
            return [tuple(r) for r in n.inputs if r is not None], [(n.id, k) for k in range(len(n.out))]
        return self.ix.iface(m.key)

    def _loopable(self, path: str, members: list) -> bool:
        """Copies called one after the other with the same extra inputs: ``for layer in self.layers``."""
        if not all(m.local == str(k) for k, m in enumerate(members)):
            return False
        prev = None
        rest = None
        for m in members:
            if m.kind == "node":
                n = self.g.nodes[m.key]
                k = len(n.inputs)
                if self.ctor(n) is None or len(n.out) != 1 or any(r is None for r in n.inputs) or \
                        self.fwd_ir(n) != ir.Call(ir.Module(), tuple(ir.Operand(j) for j in range(k)), ()):
                    return False
            elif self.mode(m.key) != "class":
                return False
            ins, outs = self._member_iface(m)
            if len(outs) != 1 or not ins:
                return False
            if prev is not None and ins[0] != prev:
                return False
            if len(ins) < 2:
                return False
            if rest is not None and ins[1:] != rest:
                return False
            rest = ins[1:]
            prev = outs[0]
        return True

    # -- drafting ------------------------------------------------------------------------------------------------
    def write(self) -> Draft:
        """Draft and resolve every class, innermost first; returns the network's own draft.

        Containers are taken by height (the depth of nesting below them): instances of one class have the same
        body, hence the same height, so a class has all its instances before any class that constructs it.
        """
        g = self.g
        visible = self.ix.visible       # (the containers inside copies are not looked at: Index)
        copy_of = self.ix.copy_of
        # the level of a container: above all the containers inside it, and the same for every instance of a
        # block (an instance whose optional layer is dropped is as high as one that has it)
        height: dict = {p: 0 for p in visible}
        order = sorted(visible, key=lambda q: -q.count("."))
        by_name: dict = {}
        for p in visible:            # only blocks: a block never contains itself, while groups of layers that share
            if g.containers[p].kind == "block":      # a name may nest ('0' inside '0')
                by_name.setdefault(self.class_base_name(p), []).append(p)
        changed = True
        while changed:
            changed = False
            for p in order:
                parent = g.containers[p].parent
                if parent is not None and height[parent] < height[p] + 1:
                    height[parent] = height[p] + 1
                    changed = True
            for ps in by_name.values():
                top = max(height[p] for p in ps)
                for p in ps:
                    if height[p] != top:
                        height[p] = top
                        changed = True
        levels: dict = {}
        for p in visible:
            levels.setdefault(height[p], []).append(p)
        for h in sorted(levels):
            new = []
            for p in sorted(levels[h], key=lambda q: self.ix.first[q]):
                if self.mode(p) != "class":
                    continue
                # a copy that expansion made (Index), or one that draft_instance finds: the path of the earlier
                # instance, whose class and column it takes
                d = copy_of.get(p) or self.draft_instance(p)
                if isinstance(d, str):
                    grp, i = self.by_path[d]
                    grp.uses += 1
                    self.by_path[p] = (grp, i)
                    continue
                c = g.containers[p]
                block = self.class_base_name(p)
                text_key = self._text_keys.get(id(d.init))      # a reused draft: its template's
                if text_key is None:
                    text_key = (d.base, tuple(d.init), tuple(x[0] for x in d.fwd), tuple(d.args),
                                tuple(d.seq_members or ()), self._shape_key(d))
                    self._text_keys[id(d.init)] = text_key
                    self._text_keep.append(d.init)
                key = (c.kind, block) + text_key
                if not d.opt_ok:    # optional layers that cannot be written under an 'if': a class of their own
                    key += (tuple((k, None if o is None else (o.init, o.fwd[0] if o.fwd else None))
                                  for k, o in d.optional.items()),)
                grp = next((x for x in self.groups.get(key, []) if self._compatible(x, d)), None)
                if grp is None:
                    grp = ClassGroup(block, key)
                    self.groups.setdefault(key, []).append(grp)
                    grp.kind = c.kind
                    grp.order = self.ix.first[p]
                    self._name_group(grp)
                    new.append(grp)
                grp.drafts.append(d)
                grp.uses += 1
                for k, o in d.optional.items():
                    if o is not None:
                        grp.opt_text.setdefault(k, (o.init, o.fwd[0] if o.fwd else None, self._opt_shape(o)))
                self.by_path[p] = (grp, len(grp.drafts) - 1)
            for grp in new:
                self.resolve(grp)
        if copy_of:         # the instances inside copies are uses of their classes too
            inner: dict = {}
            for p, like in copy_of.items():
                for grp, k in self._inner_uses(like, inner).items():
                    grp.uses += k
        return self.draft(None)

    def traceable(self) -> bool:
        """Whether ``_resolve_top`` may find a size by tracing: only in a producer's expression or a nested class's
        output, so never in a network with neither (a spec written out with numbers)."""
        g = self.g
        return bool(g.containers) or any(isinstance(x, str) for n in g.nodes.values() if "exprs" in n.meta
                                         for f, x in n.meta["exprs"].items() if f in _SIZE_FIELDS)

    def _inner_uses(self, path: str, memo: dict) -> dict:
        """{class: instances} of the class instances inside container ``path`` (at any depth, copies' insides
        included), for a container that is looked at."""
        got = memo.get(path)
        if got is None:
            got = {}
            for m in self.ix.children.get(path, ()):
                if m.kind != "container":
                    continue
                p = m.key
                at = self.by_path.get(p)
                if at is not None:
                    got[at[0]] = got.get(at[0], 0) + 1
                like = self.ix.copy_of.get(p)
                for grp, k in self._inner_uses(like if like is not None else p, memo).items():
                    got[grp] = got.get(grp, 0) + k
            memo[path] = got
        return got

    # -- reusing drafts ------------------------------------------------------------------------------------------
    def draft_instance(self, path: str):
        """``draft(path)``, or the draft of an identical earlier instance with its node ids moved to this one; or,
        where that instance also reads the same in everything its class's resolution asks of an instance, the path
        of that instance (a copy: the class takes it as one more use of the earlier instance's column)."""
        if not REUSE_DRAFTS:
            return self.draft(path)
        key = self._draft_key(path)
        if key is None:
            return self.draft(path)
        got = self._drafted.get(key)
        if got is None:
            d = self.draft(path)
            if not d.optional and all(s.copies is None and s.loop_var is None for s in d.slots):
                self._drafted[key] = (d, path)
                facts = self._copy_facts(path)
                if facts is not None:
                    self._copied[(key, facts)] = (d, path)
            return d
        facts = self._copy_facts(path)
        like = self._copied.get((key, facts)) if facts is not None else None
        if like is not None and like[1] in self.by_path and self._same_exprs(like[0], like[1], path):
            return like[1]
        d = self._moved(got[0], got[1], path)
        if like is None and facts is not None:
            self._copied[(key, facts)] = (d, path)
        return d

    def _copy_facts(self, path: str) -> tuple | None:
        """What resolution reads of an instance beyond its draft: its class's name, the values its expressions may
        name, and the types of its inputs and outputs (None where they do not hash)."""
        ins, outs = self.ix.iface(path)
        env = self.scope_env(path)
        facts = (self.class_base_name(path), repr(tuple(env.items())), self._types_key(ins), self._types_key(outs))
        try:
            hash(facts)
        except TypeError:        # (a size that does not hash: no copies of this instance, only reused drafts)
            return None
        return facts

    def _types_key(self, refs) -> tuple:
        nodes = self.g.nodes
        keys = self._type_keys
        got = []
        for r in refs:
            t = nodes[r[0]].out[r[1]]
            k = keys.get(id(t))
            if k is None:
                k = keys[id(t)] = (t.shape, str(t), repr(t.high), t)      # (t: keeps the id its own)
            got.append(k[:3])
        return tuple(got)

    def _same_exprs(self, d: Draft, scope: str, path: str) -> bool:
        """The spec's expressions behind every slot of draft ``d`` (of ``scope``) are those of the same place in
        ``path``: the layers' expression texts and the nested instances' argument and count expressions."""
        g = self.g
        ix = self.ix
        order = ix.order
        ids = ix.ids
        shift = order[ix.first_node(path)] - order[ix.first_node(scope)]
        cut = len(scope)
        for s in d.slots:
            if s.node is not None and g.nodes[ids[order[s.node.id] + shift]].meta.get("exprs") != \
                    s.node.meta.get("exprs"):
                return False
            if s.cont is not None:
                c = g.containers.get(path + s.cont.path[cut:])
                if c is None or c.kind != s.cont.kind or c.arg_exprs != s.cont.arg_exprs or \
                        c.count_expr != s.cont.count_expr:
                    return False
        return True

    def _draft_key(self, path: str):
        """Everything that ``draft(path)`` reads, with the values and nodes of the instance written relative to it
        (a node as its offset in graph order from the instance's first node, each member node's own offset included,
        an outside value as its position among the instance's inputs), or None where the instance is not one whose
        draft may be reused: it has optional layers, a member that is not a plain node or a class instance, a node
        whose code IR is not shared, a node that shares the module of a node outside it, a nested instance whose
        values are not plain.

        Two instances with equal keys have the same draft up to that renaming: the draft's text depends only on what
        the key holds (members' names, kinds and code IR, the predicates on the graph around them that draft()
        consults, the wiring, the helper names taken so far), and its slots' literals are the same objects (the
        code IR is shared between nodes with the same IR key)."""
        g = self.g
        ix = self.ix
        if self._cond_scopes is None:
            self._cond_scopes = {k[0] for k in g.conds}
        if path in self._cond_scopes or g.dropped.get(path):
            return None
        c = g.containers[path]
        if not ix.count[path]:
            return None
        members = ix.children.get(path, [])
        ins, outs = ix.iface(path)
        order = ix.order
        inside = ix.span(path)
        base = order[ix.first_node(path)]
        inpos = {r: k for k, r in enumerate(ins)}

        def rel(r):
            if r is None:
                return None
            if order[r[0]] in inside:
                return order[r[0]] - base, r[1]
            k = inpos.get(tuple(r))
            if k is None:
                raise _NoReuse()
            return "x", k
        key = [len(self.helpers), c.kind]
        try:
            key.append(tuple([rel(r) for r in ins]))
            key.append(tuple([rel(r) for r in outs]))
            if c.kind == "block":
                key += [tuple(c.input_names), tuple(c.output_names)]
                if members and [m.local for m in members] == [str(k) for k in range(len(members))]:
                    key.append(self._chain_block(path, members, ins, outs))
            nodes_ = g.nodes
            for m in members:
                if m.kind == "node":
                    n = nodes_[m.key]
                    irk = self._ir_keys.get(n.id, _MISSING)
                    if irk is _MISSING:
                        irk = self._ir_key(n)
                    if irk is None:
                        return None
                    shared = n.meta.get("shared_with")
                    if shared:
                        if order[shared] not in inside:
                            return None
                        shared = (order[shared] - base, nodes_[shared].op)
                    loc = n.loc
                    w = n.meta.get("weights", {}).get("")
                    # (the constructor and forward IR are those of the IR key: not asked for here; so is whether the
                    # op's buffer is transient (op and Params), which weight_kind() reads beside the weights; where()
                    # is a function of the file and line)
                    key.append((m.local, order[n.id] - base, irk, shared, len(n.out),
                                tuple([None if r is None else (order[r[0]] - base, r[1]) if order[r[0]] in inside else
                                       rel(r) for r in n.inputs]),
                                w[1] if w else None, n.op.name == "add" and self.add_in_place(n),
                                None if loc is None else (loc.file, loc.line)))
                else:
                    p = m.key
                    if self.mode(p) != "class" or p != path + "." + m.local:
                        return None
                    grp, i = self.by_path[p]
                    cc = g.containers[p]
                    cins, couts = ix.iface(p)
                    vk = self._values_key.get((id(grp), i), _MISSING)
                    if vk is _MISSING:
                        vals = [grp.values[nm][i] for nm, _, _ in grp.params]
                        vk = tuple([(type(v), repr(v)) for v in vals]) if all(_plain_value(v) for v in vals) else None
                        self._values_key[(id(grp), i)] = vk
                    if vk is None:
                        return None
                    at = self._where.get(cc.loc, _MISSING)
                    if at is _MISSING:
                        at = self._where[cc.loc] = where(cc.loc)
                    key.append((m.local, id(grp), vk, tuple([rel(r) for r in cins]), tuple([rel(r) for r in couts]),
                                cc.kind, tuple(cc.output_names) if cc.kind == "block" else None, at))
        except _NoReuse:
            return None
        return tuple(key)

    def _moved(self, d: Draft, scope: str, path: str) -> Draft:
        """The draft ``d`` of instance ``scope``, for the instance ``path`` whose _draft_key is the same."""
        g = self.g
        ix = self.ix
        order = ix.order
        ids = ix.ids
        shift = order[ix.first_node(path)] - order[ix.first_node(scope)]
        inside = ix.span(scope)
        ins = ix.iface(path)[0]
        old_pos = {r: k for k, r in enumerate(d.in_refs)}
        cut = len(scope)

        def ref(r):
            if order[r[0]] in inside:
                return ids[order[r[0]] + shift], r[1]
            return tuple(ins[old_pos[tuple(r)]])
        slots = []
        for s in d.slots:
            node = None if s.node is None else g.nodes[ids[order[s.node.id] + shift]]
            cont = None if s.cont is None else g.containers[path + s.cont.path[cut:]]
            slots.append(Slot(s.lit, node, cont, s.fwd, dict(s.env_extra), s.kw))
        fwd = [(code, None if refs is None else [ref(r) for r in refs], loc) for code, refs, loc in d.fwd]
        return Draft(path, d.init, fwd, d.args, ins, slots, d.base,
                     None if d.seq_members is None else list(d.seq_members), {}, d.avoid, d.opt_ok)

    def size_text(self, grp: ClassGroup, refs: list, axis: int) -> str | None:
        """A size that differs between a class's instances, written over its constructor parameters (for the shape
        comments): ``planes * expansion``; None where it is not one of their expressions."""
        if grp.drafts[0].scope is None or len(refs) != len(grp.drafts):
            return None
        n = len(grp.drafts)
        envs = [self.class_env(grp, i) for i in range(n)]
        in_types = [[self.g.type_of(r) for r in d.in_refs] for d in grp.drafts]
        used: dict = {}

        def derived_name(j, ax):
            nm = grp.derived.get((j, ax))
            if nm is None:
                raise _NoDerived()
            return nm
        self._namer = lambda nm: nm
        try:
            got = self._trace_refs(grp, [tuple(r) for r in refs], axis, [{}] * n, envs, in_types,
                                   grp.drafts[0].args, [p[0] for p in self.scope_decls(grp.drafts[0].scope)], used,
                                   derived_name)
        except _NoDerived:
            return None
        if got is None or not set(used) <= {p[0] for p in grp.params}:
            return None
        return got[0]

    def class_base_name(self, path: str) -> str:
        """What a class is called: its block, or the spec name of a group of layers (a repeat's copies are named
        after the repeat, not their index)."""
        c = self.g.containers[path]
        if c.block:
            return c.block
        local = path.rsplit(".", 1)[-1]
        parent = self.g.containers.get(c.parent) if c.parent else None
        if local.isdigit() and parent is not None and parent.kind == "repeat":
            return parent.path.rsplit(".", 1)[-1]
        return local

    def _compatible(self, grp: ClassGroup, d: Draft) -> bool:
        """An instance joins a class when its optional layers read the same as the class's where both have them."""
        for k, o in d.optional.items():
            if o is not None and k in grp.opt_text and grp.opt_text[k] != (o.init, o.fwd[0] if o.fwd else None,
                                                                          self._opt_shape(o)):
                return False
        return True

    @staticmethod
    def _opt_shape(o: Optional_):
        return tuple((s.lit.src, s.fwd, type(s.lit.value).__name__) for s in o.slots)

    def _shape_key(self, d: Draft):
        return tuple((s.lit.src, s.fwd, type(s.lit.value).__name__ if not isinstance(s.lit.value, (int, float)) or
                      isinstance(s.lit.value, bool) else "num") for s in d.slots)

    def _name_group(self, grp: ClassGroup):
        if grp.name:
            return
        base = camel(grp.block, "Block")
        # the first free one of base, base2, base3, ...: names are only ever taken, so the search goes on from the
        # last name given for this base (not from base again: that was quadratic in the classes of one block)
        k = self._name_k.get(base, 1)
        name = base if k == 1 else f"{base}{k}"
        while name in self.taken or name in _RESERVED or name in self.helpers or name == camel(self.g.name, ""):
            k += 1
            name = f"{base}{k}"
        self._name_k[base] = k
        self.taken.add(name)
        grp.name = name

    def draft(self, scope: str | None) -> Draft:
        """A class body with a slot for every literal."""
        g = self.g
        slots: list = []
        members = self.ix.children.get(scope, [])
        if scope is None:
            self._top_slots = slots
            self._top_traceable = self.traceable()
            in_refs = [(g.inputs[k], 0) for k in g.inputs]
            in_names = list(g.inputs)
            out_refs = [tuple(r) for r in g.outputs.values()]
            out_names = list(g.outputs)
        else:
            in_refs, out_refs = self.ix.iface(scope)
            c = g.containers[scope]
            in_names = list(c.input_names) if c.kind == "block" else []
            while len(in_names) < len(in_refs):
                in_names.append("x" if not in_names else f"x{len(in_names)}")
            out_names = list(c.output_names) if c.kind == "block" else [f"out{k}" for k in range(len(out_refs))]
        # nn.Sequential subclass: a block whose layers are an unnamed chain (torchvision's Conv2dNormActivation)
        if scope is not None and g.containers[scope].kind == "block" and members and \
                [m.local for m in members] == [str(k) for k in range(len(members))] and \
                self._chain_block(scope, members, in_refs, out_refs):
            lines = []
            for m in members:
                lines.append(self.member_expr(m, slots, scope) + ",")
            d = Draft(scope, [], [], [ident(in_names[0], set(), "x")], in_refs, slots, base="nn.Sequential",
                      seq_members=lines)
            return d
        init: list = []
        access: dict = {}
        optional: dict = {}
        is_block = scope is not None and g.containers[scope].kind == "block"
        dropped = sorted(g.dropped.get(scope, []), key=lambda e: e[3]) if is_block else []
        for m in members:
            while dropped and dropped[0][3] <= m.order:
                e = dropped.pop(0)
                optional[e[0]] = None
                init.append(opt_mark(e[0]))
            cond = g.conds.get((scope, m.local)) if is_block else None
            if cond is not None and not (m.kind == "node" and self.weight_kind(g.nodes[m.key])) and \
                    self.owns_module(m):
                oslots: list = []
                expr = self.member_expr(m, oslots, scope)
                access[m.key] = _access("self", m.local)
                optional[m.local] = Optional_(expr, None, oslots, cond, len(oslots))
                init.append(opt_mark(m.local))
            else:
                init += self.init_member(m, slots, access, scope)
        for e in dropped:
            optional[e[0]] = None
            init.append(opt_mark(e[0]))
        n0 = len(slots)
        d = Draft(scope, init, [], [], in_refs, slots, optional=optional)
        d.fwd, d.args = self.forward(scope, members, in_refs, in_names, out_refs, out_names, access, slots, d)
        # a variable may be named like a builtin (an input called 'sum') unless the class calls that builtin
        text = "\n".join(x[0] for x in d.fwd) + "".join(o.fwd[0] for o in optional.values() if o and o.fwd)
        clash = set(_CALLED.findall(text)) & _BUILTINS     # one scan of the text, not one per builtin
        if clash:
            del slots[n0:]
            for o in optional.values():
                if o is not None:
                    o.fwd = None
                    del o.slots[o.n_init:]
            d.avoid = frozenset(clash)
            d.opt_ok = True
            d.fwd, d.args = self.forward(scope, members, in_refs, in_names, out_refs, out_names, access, slots, d)
        return d

    def _chain_block(self, scope, members, in_refs, out_refs) -> bool:
        if len(in_refs) != 1 or len(out_refs) != 1:
            return False
        return self._is_chain(members, in_refs[0], out_refs[0])

    def render_slots(self, e, slots: list, node, fwd=False, env_extra=None, operands=(), module=None) -> str:
        """``render(e)`` with a slot for every literal (as ``leaf_ctx`` makes them).

        Rendering is a pure function of the IR, the operands and the module, which it writes as they are, and it
        takes the literals in a fixed order: so an IR object is rendered once, with stand-ins for its operands, its
        module and its slots, and each node's text is that with its own operands, module and slot numbers."""
        key = (id(e), len(operands), module is None)
        got = self._render_cache.get(key)
        if got is None or got[0] is not e:
            lits: list = []

            def leaf(lit: ir.Lit):
                lits.append(lit)
                return mark(len(lits) - 1), _PREC_SLOT
            text = render(e, Context([f"\x03{k}\x03" for k in range(len(operands))],
                                     None if module is None else "\x04", leaf))
            parts: list = []      # text, and for each stand-in: k >= 0 the k-th slot, -1-k operand k, None module
            at = 0
            n_lit = 0
            for m in _STAND_IN.finditer(text):
                parts.append(text[at:m.start()])
                if m.group(1) is not None:
                    if int(m.group(1)) != n_lit:
                        parts = None
                        break
                    parts.append(n_lit)
                    n_lit += 1
                elif m.group(2) is not None:
                    parts.append(-1 - int(m.group(2)))
                else:
                    parts.append(None)
                at = m.end()
            if parts is None or n_lit != len(lits):      # a stand-in that the IR wrote itself: render each time
                return render(e, Context(list(operands), module, self.leaf_ctx(slots, node=node, fwd=fwd,
                                                                                env_extra=env_extra)))
            parts.append(text[at:])
            got = (e, parts, lits)
            self._render_cache[key] = got
        parts, lits = got[1], got[2]
        if len(parts) == 1:
            return parts[0]
        env = env_extra or {}
        top = slots is self._top_slots and node is not None and not env and DIRECT_TOP_LITERALS
        texts = []          # what each literal is written as: its slot's mark, or (the network's own) its value
        for lit in lits:
            if top and self._plain_lit(node, lit.src):
                texts.append(literal(lit.value))
            else:
                texts.append(mark(len(slots)))
                slots.append(Slot(lit, node, None, fwd, dict(env)))
        out = []
        for x in parts:
            if x.__class__ is str:
                out.append(x)
            elif x is None:
                out.append(module)
            elif x >= 0:
                out.append(texts[x])
            else:
                out.append(operands[-1 - x])
        return "".join(out)

    def _plain_lit(self, node: Node, src) -> bool:
        """A literal of the network's own class that ``_resolve_top`` would write as its value: no expression of
        the spec writes it and no trace could find it."""
        if self._top_traceable and type(src) is tuple and src and src[0] == "in":
            return False
        ex = node.meta.get("exprs")
        return not ex or _node_expr(ex, src) is None

    def leaf_ctx(self, slots: list, node=None, cont=None, fwd=False, env_extra=None):
        def leaf(lit: ir.Lit):
            slots.append(Slot(lit, node, cont, fwd, dict(env_extra or {})))
            return mark(len(slots) - 1), _PREC_SLOT
        return leaf

    def member_expr(self, m: Member, slots: list, scope, env_extra=None) -> str:
        """An expression constructing member ``m`` (a module, a class instance, an nn.Sequential)."""
        g = self.g
        if m.kind == "node":
            n = g.nodes[m.key]
            c = self.ctor(n)
            return self.render_slots(c, slots, n, env_extra=env_extra)
        mode = self.mode(m.key)
        if mode == "class":
            return self.instance_expr(m.key, slots, env_extra)
        kids = self.ix.children.get(m.key, [])
        c = g.containers[m.key]
        head = "nn.Sequential" if mode == "seq" else "nn.ModuleList"
        if c.kind == "repeat" and kids:
            comp = self._comprehension(m.key, kids, slots, env_extra, scope)
            if comp is not None:
                return f"{head}(*{comp})" if mode == "seq" else f"{head}({comp})"
        parts = []
        for k in kids:
            parts.append(self.member_expr(k, slots, scope, env_extra))
        named = not all(k.local.isdigit() for k in kids)
        if named:
            self.ordered_dict = True
            items = ", ".join(f"({literal(k.local)}, {p})" for k, p in zip(kids, parts))
            return f"{head}(OrderedDict([{items}]))"
        if mode == "seq":
            return f"{head}({', '.join(parts)})"
        return f"{head}([{', '.join(parts)}])"

    def _comprehension(self, path, kids, slots, env_extra, scope):
        """``[Block(...) for _ in range(n)]`` when every copy reads the same, values that differ between copies
        being the spec's expressions of the loop index."""
        c = self.g.containers[path]
        if len(kids) < 2:
            return None
        idx = c.index
        trial_texts = []
        trial_slots = []
        for k, m in enumerate(kids):
            s: list = []
            env = dict(env_extra or {})
            env[idx] = k
            trial_texts.append(self.member_expr(m, s, scope, env))
            trial_slots.append(s)
        if len(set(trial_texts)) != 1:
            return None
        # slots: one per position, with every copy's value; a position whose values differ must be written
        # through the loop index (checked when the slot is resolved)
        base = len(slots)
        text = trial_texts[0]
        per_pos = list(zip(*trial_slots))
        new = []
        for pos in per_pos:
            first = pos[0]
            vals = [s.lit.value for s in pos]
            same = all(v == vals[0] and type(v) is type(vals[0]) for v in vals)
            if not same and not self._index_expr(pos, self.scope_env(scope), idx):
                return None
            sl = Slot(first.lit, first.node, first.cont, first.fwd, dict(first.env_extra), first.kw)
            sl.copies = None if same else list(pos)
            sl.loop_index = idx
            new.append(sl)
        slots.extend(new)
        text = _MARK_RE.sub(lambda mm: mark(int(mm.group(1)) + base), text)
        uses_index = any(slots[base + j].copies for j in range(len(per_pos)))
        var = idx if uses_index else "_"
        if uses_index:
            for j in range(len(per_pos)):
                slots[base + j].loop_var = idx
        slots.append(Slot(ir.Lit(c.count, ("count",)), None, c, False, dict(env_extra or {})))
        return f"[{text} for {var} in range({mark(len(slots) - 1)})]"

    def _index_expr(self, pos, scope_env, idx) -> bool:
        """Whether every copy's value at this position is its spec expression over the scope and the loop index."""
        texts = {self._expr_text(s) for s in pos}
        if len(texts) != 1 or None in texts:
            return False
        text = texts.pop()
        try:
            ex = parse_expr(text)
        except ExprError:
            return False
        if ex.functions & {"channels", "features", "dim", "shape", "rank"}:
            return False
        if not ex.names <= set(scope_env) | {idx}:
            return False
        for s in pos:
            env = dict(scope_env)
            env.update(s.env_extra)
            try:
                got = ex.eval(env)
            except Exception:  # noqa: BLE001
                return False
            if not _same_value(tuple(got) if isinstance(got, list) else got, s.lit.value):
                return False
        return True


    def scope_env(self, scope) -> dict:
        """The values an expression in this class may name: the enclosing block's arguments, or the network's
        parameters (a group of layers reads the names around it)."""
        b = self.enclosing_block(scope)
        return dict(self.g.params) if b is None else dict(self.g.containers[b].args)

    def instance_expr(self, path: str, slots: list, env_extra=None) -> str:
        """``Bottleneck(64, planes=64)``: a block instance constructed with its arguments (as slots)."""
        grp, i = self.by_path[path]
        c = self.g.containers[path]
        parts = []
        for name, default, kind in grp.params:
            v = grp.values[name][i]
            if kind == "derived":
                src = ("in",) + next(key for key, v in grp.derived.items() if v == name)
            else:
                src = ("arg", name) if kind in ("block", "default") else ("lift", name)
            sl = Slot(ir.Lit(v, src), None, c, False, dict(env_extra or {}))
            if kind not in ("derived", "block"):      # a keyword argument, left out where it is the default
                sl.kw = (name, literal(default) if kind == "default" else None)
            slots.append(sl)
            parts.append(("" if sl.kw else ", ") + mark(len(slots) - 1))
        return f"{grp.name}({_STRIP}{''.join(parts)})"

    def init_member(self, m: Member, slots: list, access: dict, scope) -> list[str]:
        g = self.g
        if m.kind == "node":
            n = g.nodes[m.key]
            c = self.ctor(n)
            if c is None:                 # no module of its own
                return []
            expr = self.render_slots(c, slots, n)      # (member_expr of a node)
            kind = self.weight_kind(n)
            local = m.local
            plain = is_attr_name(local)
            access[n.id] = _access("self", local, plain)
            if kind == "buffer":
                return [f"self.register_buffer({literal(local)}, {expr})"]
            if kind == "transient":
                return [f"self.register_buffer({literal(local)}, {expr}, persistent=False)"]
            if kind == "param" and not plain:
                return [f"self.register_parameter({literal(local)}, {expr})"]
            return [_assign(local, expr, plain)]
        expr = self.member_expr(m, slots, scope)
        mode = self.mode(m.key)
        acc = _access("self", m.local)
        access[m.key] = acc
        if mode == "class":
            pass
        return [_assign(m.local, expr)]

    # -- forward ---------------------------------------------------------------------------------------------
    def forward(self, scope, members, in_refs, in_names, out_refs, out_names, access, slots, draft=None):
        g = self.g
        stmts = []
        optional = draft.optional if draft is not None else {}
        dropped = sorted([(e[3], e[0]) for e in g.dropped.get(scope, []) if e[0] in optional and
                          optional[e[0]] is None], key=lambda x: x[0])
        for m in members:
            while dropped and dropped[0][0] <= m.order:
                stmts.append(("dropped", dropped.pop(0)[1]))
            if m.kind == "node":
                n = g.nodes[m.key]
                stmts.append(("node", n, m))
            else:
                ins, outs = self.ix.iface(m.key)
                stmts.append(("cont", m.key, m, ins, outs))
        for _, nm in dropped:
            stmts.append(("dropped", nm))
        # arguments: the spec's input names (callers pass them by keyword), unless one is a builtin the class calls
        taken: set = set(self.helpers)
        args = []
        var: dict = {}
        avoid = _HARD | draft.avoid if draft is not None and draft.avoid else _HARD
        for r, nm in zip(in_refs, in_names):
            a = ident(nm, taken, "x", reserved=avoid)
            args.append(a)
            var.setdefault(tuple(r), a)
        # liveness: a value's last reader (one pass)
        last_use: dict = {}
        sins = [[tuple(r) for r in st[1].inputs if r is not None] if st[0] == "node" else self._stmt_ins(st)
                for st in stmts]       # (each statement's inputs, made once: _stmt_ins)
        for i, ins in enumerate(sins):
            for r in ins:
                last_use[r] = i
        for r in out_refs:
            last_use[tuple(r)] = len(stmts) + 1
        # variables: reuse the first input's variable where that value dies here (x = self.bn1(x))
        assigned: dict = {}       # variable -> number of assignments
        plan = []
        for i, st in enumerate(stmts):
            if st[0] == "dropped":
                plan.append((st, [], [], []))
                continue
            ins = sins[i]
            if st[0] == "node" and len(st[1].out) == 1:     # the usual statement: the steps below, for one output
                r0 = (st[1].id, 0)
                if r0 in var:
                    continue
                invars = [var.get(r) for r in ins]
                if ins and ins[0] in var and last_use.get(ins[0]) == i:
                    v = var[ins[0]]
                else:
                    v = ident(st[2].local, taken, "h", reserved=avoid)
                if v != "_":
                    assigned[v] = assigned.get(v, 0) + 1
                    var[r0] = v
                plan.append((st, invars, [v], [r0]))
                continue
            if st[0] == "node":     # (_stmt_outs)
                nid = st[1].id
                outs = [(nid, 0)] if len(st[1].out) == 1 else [(nid, k) for k in range(len(st[1].out))]
            else:
                outs = self._stmt_outs(st)
            invars = [var.get(r) for r in ins]          # (the inputs are tuples already)
            if outs and all(r in var for r in outs):
                continue            # a group of layers that passes its inputs through: nothing to compute
            reuse = None
            if len(outs) == 1 and ins and ins[0] in var and last_use.get(ins[0]) == i:
                reuse = var[ins[0]]
            if reuse is not None:
                vs = [reuse]
            else:
                onames = self._out_names(st)
                vs = [ident(f"{st[2].local}_{o}" if o else st[2].local, taken, "h", reserved=avoid) for o in onames]
                if len(vs) > 1:        # outputs nobody reads (or a value returned twice) are unpacked into '_'
                    vs = [v if last_use.get(r) is not None and r not in outs[:j] else "_"
                          for j, (v, r) in enumerate(zip(vs, outs))]
            for v in vs:
                if v != "_":
                    assigned[v] = assigned.get(v, 0) + 1
            for r, v in zip(outs, vs):
                if r not in var and v != "_":       # a value passed through keeps its variable
                    var[r] = v
            plan.append((st, invars, vs, outs))
        # a variable assigned more than once is called out, out2, ... (it holds no single layer's output)
        rename = {}
        for v, k in assigned.items():
            if (k > 1 or v in args) and v not in args:
                rename[v] = None
        used = set(args) | {v for v in assigned if v not in rename}
        k = 1                  # out, out2, ...: each the first free one (those before it stay used)
        for v in rename:
            nm = "out" if k == 1 else f"out{k}"
            while nm in used:
                k += 1
                nm = f"out{k}"
            used.add(nm)
            rename[v] = nm
        lines = []
        for st, invars, vs, outs in plan:
            if st[0] == "dropped":
                lines.append((opt_mark(st[1]), None, None))
                continue
            if rename:
                invars = [rename.get(v, v) if v is not None else None for v in invars]
                vs = [rename.get(v, v) for v in vs]
            loc = st[1].loc if st[0] == "node" else g.containers[st[1]].loc
            opt = optional.get(st[2].local) if optional and st[2].local in optional else None
            if opt is not None:
                code = self.stmt_code(st, invars, vs, access, opt.slots)
                opt.fwd = (code, outs, loc)
                if len(vs) != 1 or not invars or vs[0] != invars[0]:
                    draft.opt_ok = False
                lines.append((opt_mark(st[2].local), None, None))
                continue
            code = self.stmt_code(st, invars, vs, access, slots)
            lines.append((code, outs, loc))
        final = {}
        for r in out_refs:
            v = var.get(tuple(r))
            if v is None:
                raise CodegenError(f"the output value {r} is not computed in this class")
            final[tuple(r)] = rename.get(v, v)
        if scope is None and len(out_refs) > 1:
            ret = "return {" + ", ".join(f"{literal(nm)}: {final[tuple(r)]}" for r, nm in zip(out_refs, out_names)) + "}"
        elif len(out_refs) == 1:
            ret = f"return {final[tuple(out_refs[0])]}"
        else:
            ret = "return " + ", ".join(final[tuple(r)] for r in out_refs)
        lines.append((ret, None, None))
        return lines, args

    def _stmt_ins(self, st) -> list:
        if st[0] == "dropped":
            return []
        if st[0] == "node":
            return [tuple(r) for r in st[1].inputs if r is not None]
        return [tuple(r) for r in st[3]]

    def _stmt_outs(self, st) -> list:
        if st[0] == "dropped":
            return []
        if st[0] == "node":
            return [(st[1].id, k) for k in range(len(st[1].out))]
        return [tuple(r) for r in st[4]]

    def _out_names(self, st) -> list:
        if st[0] == "node":
            n = st[1]
            if len(n.out) == 1:
                return [""]
            return [n.op.outputs[k] if k < len(n.op.outputs) else str(k) for k in range(len(n.out))]
        outs = st[4]
        if len(outs) == 1:
            return [""]
        c = self.g.containers[st[1]]
        names = c.output_names if c.kind == "block" and len(c.output_names) == len(outs) else \
            [str(k) for k in range(len(outs))]
        return names

    def stmt_code(self, st, invars, vs, access, slots) -> str:
        lhs = ", ".join(vs) if len(vs) > 1 else vs[0]
        if st[0] == "node":
            n = st[1]
            if len(vs) == 1 and len(n.op.outputs) > 1 and len(n.out) == 1:
                lhs = vs[0] + ","
            if self.add_in_place(n):
                a = invars
                if vs[0] == a[0]:
                    return f"{a[0]} += " + " + ".join(a[1:]) if len(a) == 2 else \
                        f"{a[0]} = {a[0]}" + "".join(f".add_({x})" for x in a[1:])
                return f"{lhs} = {a[0]}" + "".join(f".add_({x})" for x in a[1:])
            mod = access.get(n.id)
            if mod is None and n.meta.get("shared_with"):
                mod = access.get(n.meta["shared_with"])
                if mod is None:
                    raise CodegenError(f"'{n.id}' shares the module of '{n.meta['shared_with']}', which is not in "
                                       "the same class", n.loc)
            it = iter(invars)
            operands = ["None" if r is None else next(it) for r in n.inputs]
            code = self.render_slots(self.fwd_ir(n), slots, n, fwd=True, operands=operands, module=mod)
            return f"{lhs} = {code}"
        path = st[1]
        acc = access.get(path)
        mode = self.mode(path)
        if mode == "loop":
            v = vs[0]
            first = invars[0]
            pre = f"{v} = {first}\n" if v != first else ""
            layer = "layer" if "layer" not in invars + vs else "layer_"
            return pre + f"for {layer} in {acc}:\n{INDENT}{v} = {layer}({', '.join([v] + invars[1:])})"
        return f"{lhs} = {acc}({', '.join(invars)})"

    # -- resolving slots --------------------------------------------------------------------------------------
    def class_env(self, grp: ClassGroup, i: int) -> dict:
        return self.scope_env(grp.drafts[i].scope)

    def enclosing_block(self, scope):
        """The block (or None: the network) whose parameters the expressions inside ``scope`` read."""
        c = scope
        while c is not None and self.g.containers[c].kind != "block":
            c = self.g.containers[c].parent
        return c

    def scope_decls(self, scope) -> list:
        b = self.enclosing_block(scope)
        if b is None:
            return list(self.g.param_decls)
        return list(self.g.block_decls.get(self.g.containers[b].block, []))

    def resolve(self, grp: ClassGroup):
        """Write every slot of a class once for all its instances; collect the constructor's parameters."""
        g = self.g
        d0 = grp.drafts[0]
        n_inst = len(grp.drafts)
        decls = self.scope_decls(d0.scope)
        envs = [self.class_env(grp, i) for i in range(n_inst)]
        in_types = [[g.type_of(r) for r in d.in_refs] for d in grp.drafts]
        in_names = d0.args
        used_params: dict = {}      # name -> kind
        derived: dict = {}          # (input index, axis) -> name
        lifted: dict = {}           # values tuple -> name
        taken_names = set(in_names) | {"self"} | {x.name for xs in self.groups.values() for x in xs}
        param_names = [p[0] for p in decls]
        taken_names |= set(param_names)

        def derived_name(j, axis):
            key = (j, axis)
            if key not in derived:
                t = in_types[0][j]
                base = in_names[j] if len(in_names) > 1 else "in"
                what = "channels" if axis == 1 and t.rank >= 3 else ("features" if axis == t.rank - 1 else f"dim{axis}")
                nm = ident(f"{base}_{what}", taken_names, "arg")
                derived[key] = nm
                grp.values[nm] = [in_types[i][j].shape[axis] for i in range(n_inst)]
            return derived[key]

        members = self._member_names(grp)

        def column(per: list, idx: list):
            """The text of one slot, from its value in the instances ``idx``."""
            sub = ClassGroup(grp.block, None)
            sub.drafts = [grp.drafts[i] for i in idx]
            senvs = [envs[i] for i in idx]
            stypes = [in_types[i] for i in idx]
            self._namer = (lambda nm: "self." + _self_attr(grp.self_attrs, nm, members)) if per[0].fwd else \
                (lambda nm: nm)
            attrs = dict(grp.self_attrs)
            text = self._slot_text(sub, per, senvs, stypes, in_names, param_names, used_params, derived_name)
            if text is None:
                # a rejected expression (its value differs from the slot's: a text parameter '-inf' that became the
                # number -inf) leaves no attribute behind for forward
                grp.self_attrs.clear()
                grp.self_attrs.update(attrs)
                vals = [s.lit.value for s in per]
                if all(v == vals[0] and type(v) is type(vals[0]) for v in vals):
                    text = literal(vals[0]), literal_prec(vals[0])
                else:
                    text = self._by_value(sub, per, senvs, param_names, used_params, stypes, derived_name)
            if text is None:
                full = [None] * n_inst
                for i, s in zip(idx, per):
                    full[i] = s.lit.value
                vals = tuple(repr(v) for v in full)
                if vals not in lifted:
                    nm = ident(_src_name(per[0].lit.src), taken_names, "arg")
                    lifted[vals] = nm
                    grp.values[nm] = full
                nm = lifted[vals]
                used_params[nm] = "lift"
                text = self._namer(nm), 20
            return _kw(per[0], text)

        everyone = list(range(n_inst))
        grp.slot_text = [column([d.slots[k] for d in grp.drafts], everyone) for k in range(len(d0.slots))]
        grp.derived = derived
        # the sizes of its outputs, over its parameters (what a class that constructs it traces through)
        self._namer = lambda nm: nm
        outs = [self.ix.iface(d.scope)[1] for d in grp.drafts]
        for jo in range(len(outs[0])):
            refs = [o[jo] for o in outs]
            t = g.type_of(refs[0])
            for axis in range(t.rank):
                if any(is_sym(g.type_of(r).shape[axis]) if axis < g.type_of(r).rank else True for r in refs):
                    continue
                snapshot = dict(used_params)
                got = self._trace_refs(grp, refs, axis, [{}] * n_inst, envs, in_types, in_names, param_names,
                                       used_params, derived_name)
                if got is not None and set(used_params) == set(snapshot):
                    grp.out_exprs[(jo, axis)] = got[0]
                else:
                    used_params.clear()
                    used_params.update(snapshot)
        # optional layers: written once, under their condition where some instances drop them
        for name in d0.optional:
            have = [i for i, d in enumerate(grp.drafts) if d.optional.get(name) is not None]
            if not have:
                grp.opt_final[name] = None
                continue
            o0 = grp.drafts[have[0]].optional[name]
            texts = [column([grp.drafts[i].optional[name].slots[k] for i in have], have) for k in range(len(o0.slots))]
            init = finish_text(_MARK_RE.sub(lambda m: texts[int(m.group(1))][0], o0.init))
            fwd = finish_text(_MARK_RE.sub(lambda m: texts[int(m.group(1))][0], o0.fwd[0])) if o0.fwd else None
            cond = None
            if len(have) < n_inst:
                cond = self._cond_text(grp, name, have, envs, in_types, in_names, param_names, used_params,
                                       derived_name)
                if cond is None:        # not expressible: the caller says whether to build it
                    full = [i in have for i in range(n_inst)]
                    nm = ident(f"use_{name}", taken_names, "arg")
                    lifted[tuple(repr(v) for v in full) + ("cond", name)] = nm
                    grp.values[nm] = full
                    used_params[nm] = "lift"
                    cond = nm
            grp.opt_final[name] = (init, fwd, cond)
        # signature: derived sizes, required block parameters, lifted values, defaulted block parameters
        params = []
        for (j, axis), nm in sorted(derived.items(), key=lambda kv: kv[0]):
            if nm in used_params:
                params.append((nm, _NODEFAULT, "derived"))
        for pname, ptype, default, required in decls:
            if used_params.get(pname) == "block" and (required or not _plain_default(default)):
                params.append((pname, _NODEFAULT, "block"))
                grp.values[pname] = [e[pname] for e in envs]
        for nm in lifted.values():
            if nm in used_params:
                params.append((nm, _NODEFAULT, "lift"))
        for pname, ptype, default, required in decls:
            if used_params.get(pname) == "block" and not required and _plain_default(default):
                params.append((pname, default, "default"))
                grp.values[pname] = [e[pname] for e in envs]
        grp.params = params

    def _cond_text(self, grp, name, have, envs, in_types, in_names, param_names, used_params, derived_name):
        """The layer's 'if' written over the class's parameters, if it gives the right answer in every instance."""
        texts = set()
        for i, d in enumerate(grp.drafts):
            o = d.optional.get(name)
            if o is not None:
                texts.add(o.cond)
            else:
                texts |= {e[1] for e in self.g.dropped.get(d.scope, []) if e[0] == name}
        if len(texts) != 1 or not isinstance(next(iter(texts)), str):
            return None
        per = [Slot(ir.Lit(i in have), None, None, False, {}) for i in range(len(grp.drafts))]
        self._namer = lambda nm: nm
        got = self._expr_in_class(next(iter(texts)), grp, per, envs, in_types, in_names, param_names, used_params,
                                  derived_name)
        return got[0] if got is not None else None

    def _member_names(self, grp):
        d0 = grp.drafts[0]
        return {m.local for m in self.ix.children.get(d0.scope, [])}

    def _slot_text(self, grp, per, envs, in_types, in_names, param_names, used_params, derived_name):
        """The spec's own expression for a slot, if it holds in every instance."""
        lit0 = per[0].lit
        texts = [self._expr_text(s) for s in per]
        if texts[0] is not None and all(t == texts[0] for t in texts):
            got = self._expr_in_class(texts[0], grp, per, envs, in_types, in_names, param_names, used_params,
                                      derived_name)
            if got is not None:
                return got
        src = lit0.src
        if isinstance(src, tuple) and src and src[0] == "in":
            got = self._trace(grp, per, envs, in_types, in_names, param_names, used_params, derived_name)
            if got is not None:
                return got
        return None

    def _expr_text(self, s: Slot):
        src = s.lit.src
        if s.node is not None:
            return _node_expr(s.node.meta.get("exprs", {}), src)
        if s.cont is not None and isinstance(src, tuple) and src[0] == "arg":
            if s.cont.kind != "block":          # a group of layers passes on the names around it
                return src[1]
            return s.cont.arg_exprs.get(src[1])
        if s.cont is not None and src == ("count",):
            return s.cont.count_expr
        return None

    def _expr_in_class(self, text, grp, per, envs, in_types, in_names, param_names, used_params, derived_name):
        """``text`` written over the class's parameters, if its value is right in every instance."""
        from ..graph.expand import SHAPE_FUNCS, TensorVal
        loop_var = per[0].loop_var
        allowed = set(param_names) if grp is not None else set()
        scope_params = allowed
        refs_used: set = set()
        derived_used: dict = {}

        def rename(nm):
            if loop_var is not None and nm == loop_var:
                return nm
            if nm in scope_params:
                refs_used.add(nm)
                return self._namer(nm)
            return None

        def shape(fn, arg, extra):
            if arg not in in_names:
                return None
            j = in_names.index(arg)
            t = in_types[0][j]
            if fn == "channels" and t.rank >= 2:
                axis = 1
            elif fn == "features" and t.rank >= 1:
                axis = t.rank - 1
            elif fn == "dim" and extra and -t.rank <= extra[0] < t.rank:
                axis = extra[0] % t.rank
            else:
                return None
            if any(is_sym(in_types[i][j].shape[axis]) for i in range(len(in_types))):
                return None
            nm = derived_name(j, axis)
            derived_used[nm] = True
            return self._namer(nm)
        res = to_python(text, rename, shape)
        if res is None:
            return None
        py, needs = res
        # check the value in every instance (and every copy of a loop)
        try:
            ex = parse_expr(text)
        except ExprError:
            return None
        checks = []
        for i, s in enumerate(per):
            env = dict(envs[i])
            env.update(s.env_extra)
            for j, nm in enumerate(in_names):
                if j < len(in_types[i]):
                    env.setdefault(nm, TensorVal(in_types[i][j]))
            cps = s.copies
            if cps is not None:
                for cp in cps:
                    e2 = dict(env)
                    e2.update(cp.env_extra)
                    checks.append((e2, cp.lit.value))
            else:
                checks.append((env, s.lit.value))
        for env, want in checks:
            try:
                got = ex.eval(env, SHAPE_FUNCS)
            except Exception:  # noqa: BLE001  (any failure: do not use the expression)
                return None
            if isinstance(got, list):
                got = tuple(got)
            if not _same_value(got, want):
                return None
        for nm in refs_used:
            used_params.setdefault(nm, "block")
        for nm in derived_used:
            used_params[nm] = "derived"
        if "math" in needs:
            self.needs.add("math")
        if "make_divisible" in needs:
            self.needs.add("make_divisible")
        return py, 0

    def _trace(self, grp, per, envs, in_types, in_names, param_names, used_params, derived_name):
        """An input size traced back to where it was set: a class input, or a producer's size parameter."""
        src = per[0].lit.src
        j, axis = src[1], src[2]
        s0 = per[0]
        if s0.node is not None:
            refs = [tuple(s.node.inputs[j]) if j < len(s.node.inputs) and s.node.inputs[j] is not None else None
                    for s in per]
        elif s0.cont is not None:
            refs = []
            for s in per:
                ins, _ = self.ix.iface(s.cont.path)
                refs.append(ins[j] if j < len(ins) else None)
        else:
            return None
        if any(r is None for r in refs):
            return None
        return self._trace_refs(grp, refs, axis, [s.env_extra for s in per], envs, in_types, in_names, param_names,
                                used_params, derived_name)

    def _trace_refs(self, grp, refs, axis, extras, envs, in_types, in_names, param_names, used_params,
                    derived_name, depth=0):
        """The size on ``axis`` of the values ``refs`` (one per instance), written over the class's parameters:
        a class input's size, a producer's size parameter, or a nested class's output size."""
        g = self.g
        if depth > 8:
            return None
        for _ in range(256):
            # a class input?
            pos = [d.in_refs.index(r) if r in d.in_refs else None for d, r in zip(grp.drafts, refs)] \
                if grp.drafts[0].scope is not None else [None]
            if pos[0] is not None and all(p == pos[0] for p in pos):
                t = in_types[0][pos[0]]
                if axis < t.rank and not any(is_sym(in_types[i][pos[0]].shape[axis]) for i in range(len(refs))):
                    nm = derived_name(pos[0], axis)
                    used_params[nm] = "derived"
                    return self._namer(nm), 20
                return None
            if any(r in d.in_refs for d, r in zip(grp.drafts, refs)):
                return None
            nodes = [g.nodes[r[0]] for r in refs]
            for nd, d in zip(nodes, grp.drafts):
                if d.scope is not None and self.ix.order[nd.id] not in self.ix.span(d.scope):
                    return None
            want = [nd.out[r[1]].shape[axis] if axis < nd.out[r[1]].rank else None for nd, r in zip(nodes, refs)]
            if any(w is None or is_sym(w) for w in want):
                return None
            # the output of a nested class: its output size, written over its arguments
            kids = [self._class_child(d.scope, nd) for d, nd in zip(grp.drafts, nodes)]
            if kids[0] is not None:
                if any(k is None for k in kids):
                    return None
                return self._child_out(grp, kids, refs, axis, extras, envs, in_types, in_names, param_names,
                                       used_params, derived_name, depth)
            n0 = nodes[0]
            if any(nd.op is not n0.op for nd in nodes):
                return None
            ex = n0.meta.get("exprs", {})
            for f in _SIZE_FIELDS:
                if isinstance(ex.get(f), str) and all(getattr(nd.params, f, None) == w for nd, w in zip(nodes, want)):
                    fake = [Slot(ir.Lit(w, f), nd, None, False, e) for nd, w, e in zip(nodes, want, extras)]
                    got = self._expr_in_class(ex[f], grp, fake, envs, in_types, in_names, param_names, used_params,
                                              derived_name)
                    if got is not None:
                        return got
            # a layer that keeps this size of its input (a norm, an activation, a pool's channels): look through it
            if all(r[1] == 0 and nd.inputs and nd.inputs[0] is not None and nd.meta.get("in") and
                   nd.meta["in"][0] is not None and axis < nd.meta["in"][0].rank and
                   nd.op.keeps(nd.params, nd.meta["in"][0].rank) > axis and
                   nd.meta["in"][0].shape[axis] == w for nd, r, w in zip(nodes, refs, want)):
                refs = [tuple(nd.inputs[0]) for nd in nodes]
                continue
            return None
        return None

    def _class_child(self, scope, nd: Node):
        """The class instance directly under ``scope`` (through inline containers) that holds node ``nd``."""
        sc = nd.scope
        k = sc.index(scope) + 1 if scope is not None and scope in sc else (0 if scope is None else None)
        if k is None:
            return None
        for p in sc[k:]:
            if self.mode(p) == "class":
                return p
        return None

    def _child_out(self, grp, kids, refs, axis, extras, envs, in_types, in_names, param_names, used_params,
                   derived_name, depth):
        """A nested class's output size, with the class's parameters replaced by this instance's arguments."""
        import ast
        outs = [self.ix.iface(k)[1] for k in kids]
        if any(r not in o for r, o in zip(refs, outs)):
            return None
        jo = outs[0].index(refs[0])
        if any(o.index(r) != jo for r, o in zip(refs, outs)):
            return None
        child = self.by_path[kids[0]][0]
        if any(self.by_path[k][0] is not child for k in kids):
            return None
        text = child.out_exprs.get((jo, axis))
        if text is None:
            return None
        tree = ast.parse(text, mode="eval")
        kinds = {nm: kind for nm, _, kind in child.params}
        subst: dict = {}
        for nm in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}:
            if nm not in kinds:
                return None
            idxs = [self.by_path[k][1] for k in kids]
            vals = [child.values[nm][i] for i in idxs]
            conts = [self.g.containers[k] for k in kids]
            if kinds[nm] == "derived":
                jj, ax = next(key for key, v in child.derived.items() if v == nm)
                rr = [self.ix.iface(k)[0][jj] for k in kids]
                got = self._trace_refs(grp, rr, ax, extras, envs, in_types, in_names, param_names, used_params,
                                       derived_name, depth + 1)
            elif kinds[nm] in ("block", "default"):
                texts = {c.arg_exprs.get(nm) if c.kind == "block" else nm for c in conts}
                got = None
                if len(texts) == 1 and None not in texts:
                    fake = [Slot(ir.Lit(v, ("arg", nm)), None, c, False, e) for v, c, e in zip(vals, conts, extras)]
                    got = self._expr_in_class(texts.pop(), grp, fake, envs, in_types, in_names, param_names,
                                              used_params, derived_name)
                elif texts == {None} and all(v == vals[0] and type(v) is type(vals[0]) for v in vals):
                    got = literal(vals[0]), literal_prec(vals[0])
            else:
                got = (literal(vals[0]), literal_prec(vals[0])) if all(v == vals[0] for v in vals) else None
            if got is None:
                return None
            subst[nm] = got[0]

        class Sub(ast.NodeTransformer):
            def visit_Name(self, node):
                return ast.parse(f"({subst[node.id]})", mode="eval").body
        new = Sub().visit(tree)
        if not any(isinstance(n, ast.Name) for n in ast.walk(new)):     # all constants: write the number
            want = [self.g.type_of(r).shape[axis] for r in refs]
            if all(v == want[0] for v in want):
                return literal(want[0]), literal_prec(want[0])
        return ast.unparse(new), 0

    def _by_value(self, grp, per, envs, param_names, used_params, in_types, derived_name):
        """A parameter (or an input size) with exactly these values in every instance."""
        vals = [s.lit.value for s in per]
        if len(per) < 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            return None
        for pname in param_names:
            pv = [e.get(pname) for e in envs]
            if all(type(a) is type(b) and a == b for a, b in zip(pv, vals)):
                used_params.setdefault(pname, "block")
                return self._namer(pname), 20
        if grp.drafts[0].scope is not None:
            for j in range(len(in_types[0])):
                t = in_types[0][j]
                for axis in range(1, t.rank):
                    dv = [in_types[i][j].shape[axis] if axis < in_types[i][j].rank else None for i in range(len(per))]
                    if all(isinstance(a, int) and a == b for a, b in zip(dv, vals)):
                        nm = derived_name(j, axis)
                        used_params[nm] = "derived"
                        return self._namer(nm), 20
        return None


_PREC_SLOT = 20


def _node_expr(ex: dict, src):
    """The spec's expression (a node's ``exprs``) that wrote the literal from ``src``, or None."""
    if isinstance(src, str):
        t = ex.get(src)
        return t if isinstance(t, str) else None
    if isinstance(src, tuple) and len(src) == 2 and isinstance(src[0], str) and isinstance(src[1], int):
        t = ex.get(src[0])
        if isinstance(t, list) and src[1] < len(t):
            return t[src[1]]
    return None


def _kw(slot: Slot, text: tuple) -> tuple:
    """A keyword argument's slot: ', name=value', or nothing where the value is the default."""
    kw = slot.kw
    if kw is None:
        return text
    if kw[1] is not None and text[0] == kw[1]:
        return "", 20
    return f", {kw[0]}={text[0]}", 20


def _self_attr(attrs: dict, nm: str, members: set) -> str:
    """The attribute that holds constructor parameter ``nm`` for ``forward`` (not a submodule's name)."""
    if nm not in attrs:
        a = nm
        while not is_attr_name(a) or a in members or a in attrs.values():
            a += "_"
        attrs[nm] = a
    return attrs[nm]


def _same_value(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b and (isinstance(a, float) == isinstance(b, float) or float(a).is_integer())
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _plain_value(v) -> bool:
    """A value that its type and repr() determine (a draft key compares values by them)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return type(v) in (type(None), bool, int, float, str)
    if type(v) in (tuple, list):
        return all(_plain_value(x) for x in v)
    return False


def _plain_default(v) -> bool:
    if isinstance(v, str):
        return False     # may be an expression over earlier parameters
    if isinstance(v, (list, tuple)):
        return all(_plain_default(x) for x in v)
    return v is None or isinstance(v, (int, float, bool))


def _src_name(src) -> str:
    if isinstance(src, str):
        return src
    if isinstance(src, tuple) and src:
        if src[0] == "in":
            return "size"
        if src[0] in ("arg", "lift"):
            return str(src[1])
        if isinstance(src[0], str):
            return f"{src[0]}{src[1]}" if len(src) > 1 else src[0]
    return "arg"


def _access(parent: str, name: str, plain: bool | None = None) -> str:
    """``parent.name``, or ``getattr(parent, "name")`` (``plain``: is_attr_name(name), where the caller knows it)."""
    if is_attr_name(name) if plain is None else plain:
        return f"{parent}.{name}"
    return f"getattr({parent}, {literal(name)})"


def _assign(name: str, expr: str, plain: bool | None = None) -> str:
    if is_attr_name(name) if plain is None else plain:
        return f"self.{name} = {expr}"
    return f"self.add_module({literal(name)}, {expr})"


# -- text ---------------------------------------------------------------------------------------------------

def _fill(text: str, grp: ClassGroup | None, slot_texts: list) -> str:
    def sub(m):
        return slot_texts[int(m.group(1))][0]
    return finish_text(_MARK_RE.sub(sub, text) if _MARK in text else text)


def _class_text(w: Writer, grp: ClassGroup) -> str:
    d0 = grp.drafts[0]
    sig = "".join(f", {nm}" if default is _NODEFAULT else f", {nm}={literal(default)}"
                  for nm, default, _ in grp.params)
    used = f" It is used {grp.uses} times." if grp.uses > 1 else ""
    what = f"The '{grp.block}' block." if grp.kind == "block" else f"The layers of '{grp.block}'."
    out = [f"class {grp.name}({d0.base}):", INDENT + docstring(what + used, INDENT), "", f"{INDENT}def __init__(self{sig}):"]
    if d0.base == "nn.Sequential":
        out.append(f"{INDENT * 2}super().__init__(")
        for k, line in enumerate(d0.seq_members):
            out.append(INDENT * 3 + _fill(line, grp, grp.slot_text) + _shape_comment(w, grp, [grp_member_ref(w, d, k)
                                                                                              for d in grp.drafts]))
        out.append(f"{INDENT * 2})")
        return "\n".join(out) + "\n"
    out.append(f"{INDENT * 2}super().__init__()")
    for nm, attr in grp.self_attrs.items():
        out.append(f"{INDENT * 2}self.{attr} = {nm}")
    for line in d0.init:
        if line.startswith(_OPT):
            name = line.strip(_OPT)
            fin = grp.opt_final.get(name)
            if fin is not None:
                init, _, cond = fin
                out.append(INDENT * 2 + _assign(name, init if cond is None else f"{init} if {cond} else None"))
            continue
        out.append(INDENT * 2 + _fill(line, grp, grp.slot_text))
    ins = ", ".join(f"{a}: {_dims(w, grp, [d.in_refs[j] for d in grp.drafts])}" for j, a in enumerate(d0.args))
    out += ["", f"{INDENT}def forward(self{''.join(', ' + a for a in d0.args)}):" + (f"  # {ins}" if ins else "")]
    for k, (code, refs, loc) in enumerate(d0.fwd):
        if code.startswith(_OPT):
            name = code.strip(_OPT)
            fin = grp.opt_final.get(name)
            if fin is None or fin[1] is None:
                continue
            haves = [d for d in grp.drafts if d.optional.get(name) is not None]
            _, orefs, oloc = haves[0].optional[name].fwd
            cm = [", ".join(_dims(w, grp, [d.optional[name].fwd[1][j] for d in haves], haves)
                            for j in range(len(orefs)))] if orefs else []
            cm += [where(oloc)] if oloc is not None else []
            if fin[2] is None:
                out += _code_lines(fin[1], cm)
            else:
                out.append(f"{INDENT * 2}if {_access('self', name)} is not None:")
                out += [INDENT + ln for ln in _code_lines(fin[1], cm)]
            continue
        code = _fill(code, grp, grp.slot_text)
        cm = []
        if refs:
            cm.append(", ".join(_dims(w, grp, [d.fwd[k][1][j] for d in grp.drafts]) for j in range(len(refs))))
        if loc is not None:
            cm.append(where(loc))
        out += _code_lines(code, cm)
    return "\n".join(out) + "\n"


def grp_member_ref(w: Writer, d: Draft, k: int):
    members = w.ix.children.get(d.scope, [])
    m = members[k]
    return w._member_iface(m)[1][0]


def _shape_comment(w, grp, refs) -> str:
    s = _dims(w, grp, refs)
    return f"  # {s}" if s else ""


def _dims(w: Writer, grp: ClassGroup | None, refs: list, drafts: list | None = None) -> str:
    """One shape for all instances of a class: a size that differs is written as the parameter with its values,
    or as its axis letter when it is the same as the class input's on that axis, else '*'."""
    g = w.g
    ts = [g.type_of(r) for r in refs]
    t0 = ts[0]
    drafts = drafts if drafts is not None else (grp.drafts if grp is not None else None)
    if any(t.rank != t0.rank for t in ts):
        return "*"
    dims = []
    ins = None
    for a in range(t0.rank):
        vals = [t.shape[a] for t in ts]
        v0 = vals[0]
        s0 = str(v0)
        if all(v is v0 for v in vals) or all(str(v) == s0 for v in vals):     # (the same object: the same text)
            dims.append(s0)
            continue
        name = None
        if grp is not None:      # a constructor parameter with these values (the block's own first)
            order = sorted(grp.params, key=lambda p: p[2] == "derived")
            for nm, _, _ in order:
                if [str(x) for x in grp.values.get(nm, [])] == [str(v) for v in vals]:
                    name = nm
                    break
        if ins is None:       # (the class inputs' types: only where a size differs)
            ins = [g.type_of(d.in_refs[0]) if d.in_refs else None for d in drafts] if drafts else []
        if name is None and ins and all(t is not None and t.rank == t0.rank and str(t.shape[a]) == str(v)
                                        for t, v in zip(ins, vals)):
            name = _AXIS_NAMES.get(t0.rank, {}).get(a)      # the class input's own size on this axis
        if name is None and grp is not None and drafts is grp.drafts and all(isinstance(v, int) for v in vals):
            name = w.size_text(grp, refs, a)
        dims.append(name or "*")
    return fmt_type(t0, dims)


_AXIS_NAMES = {3: {1: "T", 2: "L"}, 4: {2: "H", 3: "W"}, 5: {2: "D", 3: "H", 4: "W"}}


def _code_lines(code: str, cm: list) -> list:
    if "\n" not in code:
        return [INDENT * 2 + code + "  # " + clean_text("  ".join(cm), 200) if cm else INDENT * 2 + code]
    lines = code.split("\n")
    out = [INDENT * 2 + ln for ln in lines]
    if cm:
        out[0] += "  # " + clean_text("  ".join(cm), 200)
    return out


def _top_text(w: Writer, name: str, d: Draft, texts: list) -> str:
    g = w.g
    sig = "".join(f", {nm}={literal(v)}" for nm, v in w.top_params)
    out = [f"class {name}(nn.Module):", INDENT + docstring(g.doc or f"The network '{g.name}'.", INDENT), "",
           f"{INDENT}def __init__(self{sig}):", f"{INDENT * 2}super().__init__()"]
    for nm, attr in w.top_self.items():
        out.append(f"{INDENT * 2}self.{attr} = {nm}")
    for line in d.init:
        if _MARK in line:
            line = _MARK_RE.sub(lambda m: texts[int(m.group(1))], line)
        out.append(INDENT * 2 + finish_text(line))
    ins = ", ".join(f"{a}: {fmt_type(g.type_of(r))}" for a, r in zip(d.args, d.in_refs))
    out += ["", f"{INDENT}def forward(self{''.join(', ' + a for a in d.args)}):" + (f"  # {ins}" if ins else "")]
    nodes = g.nodes
    shown: dict = {}          # id(type) -> its text: a network repeats a few types on every line (the graph holds them)
    for code, refs, loc in d.fwd:
        if _MARK in code:
            code = _MARK_RE.sub(lambda m: texts[int(m.group(1))], code)
        code = finish_text(code)
        cm = []
        if refs:
            parts = []
            for r in refs:
                t = nodes[r[0]].out[r[1]]
                txt = shown.get(id(t))
                if txt is None:
                    txt = shown[id(t)] = fmt_type(t)
                parts.append(txt)
            cm.append(", ".join(parts))
        if loc is not None:
            cm.append(where(loc))
        out += _code_lines(code, cm)
    return "\n".join(out) + "\n"


def _resolve_top(w: Writer, d: Draft) -> list:
    """Slots of the network's class: the spec's expressions over the network's parameters, else values."""
    g = w.g
    pnames = [p[0] for p in g.param_decls]
    banned = getattr(w, "banned", ())
    used: dict = {}
    texts = []
    fake = ClassGroup("", None)
    fake.drafts = [d]
    envs = [dict(g.params)]
    in_types = [[g.type_of(r) for r in d.in_refs]]
    self_attrs: dict = {}
    members = {m.local for m in w.ix.children.get(None, [])}

    def no_derived(j, axis):
        raise _NoDerived()
    traceable = w._top_traceable        # (Writer.traceable, asked when the network's class was drafted)
    for s in d.slots:
        def namer(nm, fwd=s.fwd):
            if nm in banned:              # not an argument of the class: its value, as generated
                return f"({literal(g.params[nm])})"
            return "self." + _self_attr(self_attrs, nm, members) if fwd else nm
        w._namer = namer
        got = None
        t = w._expr_text(s)
        copies = s.copies
        try:
            if t is not None:
                got = w._expr_in_class(t, fake, [s], envs, in_types, [], pnames, used, no_derived)
            if got is None and traceable and isinstance(s.lit.src, tuple) and s.lit.src and s.lit.src[0] == "in" and \
                    copies is None:
                got = w._trace(fake, [s], envs, in_types, [], pnames, used, no_derived)
        except _NoDerived:
            got = None
        if got is None:
            if copies is not None:
                raise CodegenError("a repeat's copies differ in a value that is not written through the loop index")
            got = literal(s.lit.value), 0
        texts.append(_kw(s, got)[0])
    w.top_params = [(p, g.params[p]) for p in pnames if p in used and p not in banned and _plain_default(g.params[p])]
    w.top_self = self_attrs
    return texts


class _NoDerived(Exception):
    pass


class _NoReuse(Exception):
    pass


# -- whole modules -----------------------------------------------------------------------------------------

MAKE_DIVISIBLE = '''def make_divisible(v, divisor, min_value=None):
    """Round v to a multiple of divisor, never going down by more than 10% (MobileNet's rule)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v'''


@dataclass
class _Parts:
    top: str
    texts: list
    needs: set
    ordered_dict: bool


# graphs larger than this are not re-generated to prove that a network parameter may be a constructor argument
GENERIC_CHECK_MAX_NODES = 4000


def _network_parts(g: Graph, class_name: str | None, taken: set, helpers: dict, readable: bool = True) -> _Parts:
    # a source only to run (build) constructs its class with the defaults: no parameter needs proving there
    banned = _baked_params(g, class_name, helpers) if readable else \
        {p for p, v in g.params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    w = Writer(g, class_name, taken, helpers)
    w.banned = banned
    top = w.write()
    texts_top = _resolve_top(w, top)
    # the top class's name
    name = class_name if class_name and is_attr_name(class_name) else camel(g.name, "Network")
    while name in taken or name in _RESERVED or name in helpers:
        name += "Net" if not name.endswith("Net") else "_"
    taken.add(name)
    classes = sorted((x for xs in w.groups.values() for x in xs), key=lambda grp: grp.order)
    texts = [_class_text(w, grp) for grp in _dependency_order(w, classes)]
    texts.append(_top_text(w, name, top, texts_top))
    return _Parts(name, texts, w.needs, w.ordered_dict)


_USE_COUNT = re.compile(r" It is used \d+ times\.")


def _top_text_with(g: Graph, class_name, helpers: dict, defaults: dict | None, banned: set) -> str:
    w = Writer(g, class_name, set(), dict(helpers))
    w.banned = banned
    top = w.write()
    texts_top = _resolve_top(w, top)
    if defaults is not None:
        w.top_params = [(p, defaults.get(p, v)) for p, v in w.top_params]
    classes = sorted((x for xs in w.groups.values() for x in xs), key=lambda grp: grp.order)
    text = "\n".join([_class_text(w, grp) for grp in _dependency_order(w, classes)] +
                     [_top_text(w, "Net", top, texts_top)])
    # the code, not its comments, nor the use counts in docstrings (a repeat count parameter changes them)
    return "\n".join(_USE_COUNT.sub("", line.split("  # ", 1)[0]) for line in text.splitlines())


def _baked_params(g: Graph, class_name, helpers: dict) -> set:
    """The network parameters that cannot be constructor arguments of the generated class: those whose other
    values would give code that differs in more than the argument's default (a size the generator could only write
    as a number). Proven by generating the network again at another value of each parameter."""
    from ..graph.expand import expand
    spec = getattr(g, "spec", None)
    numeric = [p for p, v in g.params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numeric:
        return set()
    if spec is None or len(g.nodes) > GENERIC_CHECK_MAX_NODES:
        return set(numeric)
    first = _top_text_with(g, class_name, helpers, None, set())
    used = {p for p in numeric if re.search(rf"\b{re.escape(p)}\b", first)}
    banned = set(numeric) - used
    for p in sorted(used):
        v = g.params[p]
        ok = False
        for alt in ([v * 2, v + 1] if isinstance(v, int) else [v * 2 if v else 0.5, v + 0.25]):
            try:
                g2 = expand(spec, g.name, params={**g.params, p: alt}, bindings=None)
            except NetspecError:
                continue
            ok = _top_text_with(g2, class_name, helpers, dict(g.params), set()) == first
            break
        if not ok:
            banned.add(p)
    return banned


def _dependency_order(w: Writer, classes: list) -> list:
    """Classes before the classes that construct them."""
    names = {grp.name: grp for grp in classes}
    out, seen = [], set()

    def visit(grp):
        if grp.name in seen:
            return
        seen.add(grp.name)
        body = "\n".join(grp.drafts[0].init + (grp.drafts[0].seq_members or []))
        for nm in re.findall(r"\b([A-Z]\w*)\(", body):
            if nm in names and nm != grp.name:
                visit(names[nm])
        out.append(grp)
    for grp in classes:
        visit(grp)
    # 'visit' refers to itself through its closure: a reference cycle that would keep every class and draft of the
    # network (through 'names') alive until the cyclic GC ran, and make that run scan them all
    visit = None
    return out


def generate_module(graphs: list[Graph], *, class_names: list | None = None, weights_file: str | None = None,
                    readable: bool = True) -> tuple[str, list[str]]:
    """(source, the network classes' names in the order of ``graphs``).

    ``readable=False`` is the source ``build`` runs: the same classes, but the network's parameters are written as
    the values it was built with (nothing to prove by generating it again) and the text is not run through ruff."""
    taken: set = set()
    helpers: dict = {}
    parts = []
    # The writer makes millions of small objects and almost no reference cycles: the cyclic GC's young-generation
    # scans alone were 12-15% of generating a 100k-node network (netspec.gcpause)
    with paused():
        for k, g in enumerate(graphs):
            cn = class_names[k] if class_names else None
            parts.append(_network_parts(g, cn, taken, helpers, readable))
    texts = [t for p in parts for t in p.texts]
    body = "\n\n\n".join([h.strip("\n") for h in helpers.values()] + [t.strip("\n") for t in texts])
    needs = set().union(*(p.needs for p in parts)) if parts else set()
    pre = []
    if "make_divisible" in needs:
        pre.append(MAKE_DIVISIBLE)
    files = sorted({_basename(g.file) for g in graphs})
    nets = ", ".join(f"'{clean_text(g.name, 60)}'" for g in graphs)
    head = [docstring(f"{', '.join(p.top for p in parts)}: PyTorch source generated by netspec from "
                      f"{', '.join(clean_text(f, 80) for f in files)} (network{'s' if len(graphs) > 1 else ''} "
                      f"{nets}). Edit the spec and regenerate it with 'netspec compile', not this file."), ""]
    post = []
    if weights_file is not None:      # a trained model.py: the weights beside it, loaded with torch alone
        post.append(f'''def load_trained(path=None):
    {docstring(f"{parts[0].top} with its trained weights ({weights_file}, beside this file).", INDENT)}
    path = path or os.path.join(os.path.dirname(os.path.abspath(__file__)), {literal(weights_file)})
    model = {parts[0].top}()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model''')
    code = body + "\n".join(post)
    # the substring test first: the regex alone scans the whole text for a module that is not used
    std = [m for m in ("math", "os") if f"{m}." in code and re.search(rf"\b{m}\.", code)]
    head += [f"import {m}" for m in std]          # the standard library first, as isort orders it
    if any(p.ordered_dict for p in parts):
        head.append("from collections import OrderedDict")
    if len(head) > 2:
        head.append("")
    if "torch." in code and re.search(r"\btorch\.", code):
        head.append("import torch")
    if "F." in code and re.search(r"\bF\.", code):
        head.append("import torch.nn.functional as F")
    if "torchvision.models." in code:           # the detector ops (ops/detection.py) build on torchvision's parts
        head.append("import torchvision.models.detection")
    if "torchvision." in code:
        head.append("import torchvision.ops")
    if "nn." in code and re.search(r"\bnn\.", code):
        head.append("from torch import nn")
    head += sorted(n for n in needs if n.startswith("import "))     # plugin ops' own modules (Op.imports)
    src = "\n".join(head) + "\n\n\n" + "\n\n\n".join(pre + [body] + post) + "\n"
    return (format_source(src) if readable else src), [p.top for p in parts]


def format_source(src: str) -> str:
    """The source as ``ruff format`` writes it (100 columns), so that it reads like code a person formatted.

    Without ruff (it is a dependency, but an environment may lack it) the source is returned as it is: valid,
    only with long lines."""
    try:
        from ruff.__main__ import find_ruff_bin
        exe = find_ruff_bin()
    except Exception:  # noqa: BLE001
        return src
    out = _ruff_eliding(exe, src) if src.count("\n") >= ELIDE_MIN_LINES else None
    if out is None:
        out = _ruff(exe, src)
    return _fit_comments(out) if out else src


# Sources of this many lines and more go to ruff with their runs of plain statements left out (_ruff_eliding);
# the tests set it to 0 to compare the two ways on every spec.
ELIDE_MIN_LINES = 3000


def _ruff(exe: str, src: str) -> str | None:
    try:
        r = subprocess.run([exe, "format", "--isolated", "--line-length", "100", "-"], input=src,
                           capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 and r.stdout else None


# A plain statement in a method's body, a line of its own that fits in 100 columns: no string, escape, tab or colon
# (so no compound statement, slice, lambda or annotation), a comment only as the writer puts it ('  # ...'), no
# trailing space; its brackets must balance within the line as well (_plain).
_PLAIN_LINE = re.compile(r"        (?!(?:if|elif|else|for|while|with|try|except|finally|def|class|async|match|case|"
                         r"lambda|return|yield|import|from|global|nonlocal|del|assert|raise|pass|break|continue|"
                         r"await|print)\b)[A-Za-z_][^\"'\\#\t:]*(?:  # [^\"'\\\t]*)?(?<! )")
_ZERO_DIGITS = str.maketrans("123456789", "000000000")
_ELIDED = "_netspec_elided_"


def _plain(line: str) -> bool:
    if len(line) > 100 or not _PLAIN_LINE.fullmatch(line):
        return False
    code = line.split("  #", 1)[0]
    return code.count("(") == code.count(")") and code.count("[") == code.count("]") and \
        code.count("{") == code.count("}")


def _ruff_eliding(exe: str, src: str) -> str | None:
    """``ruff format`` of ``src`` with each run of plain one-line statements (the bulk of a big network's
    ``__init__`` and ``forward``) replaced by one stand-in statement, and put back after; None where that cannot
    be relied on (then the caller formats the whole source).

    A plain statement that fits in 100 columns is written by ruff as it is when another statement of its shape
    is: the same text up to its digits (``self.fc12`` and ``self.fc40``, line 17 and line 49), hence of the same
    length. So each shape goes to ruff as well, written with zeros for its digits (still the same tokens), in a
    class of its own at the end; the runs are left out only if ruff leaves every one of those as it is. Otherwise,
    and wherever the stand-ins do not come back one each, in order, as they were sent, the whole source is
    formatted. Whether a line is plain is a question about its shape too, so it is asked once per shape."""
    if _ELIDED in src or not src.endswith("\n"):
        return None
    lines = src.split("\n")[:-1]
    shapes = src.translate(_ZERO_DIGITS).split("\n")[:-1]
    plain = {z: _plain(z) for z in dict.fromkeys(shapes)}
    sent: list = []
    runs: list = []           # (first line, end)
    start = None
    triple, depth, cont = None, 0, False        # a string open across lines, brackets open, a backslash before
    for i, z in enumerate(shapes):
        if plain[z] and triple is None and not depth and not cont:
            if start is None:
                start = i
            continue
        if start is not None:
            sent.append(f"        {_ELIDED}{len(runs)} = 0")
            runs.append((start, i))
            start = None
        line = lines[i]
        sent.append(line)
        triple, depth, cont = _scan_line(line, triple, depth)
    if start is not None:
        sent.append(f"        {_ELIDED}{len(runs)} = 0")
        runs.append((start, len(lines)))
    if not runs:
        return None
    marker = f"class {_ELIDED}shapes:"
    exemplars = list(dict.fromkeys(z for a, b in runs for z in shapes[a:b]))
    got = _ruff(exe, "\n".join(sent).rstrip("\n") + "\n\n\n" + marker + "\n    def f(self):\n" +
                "\n".join(exemplars) + "\n")
    if got is None:
        return None
    out = got.split("\n")
    try:
        k = len(out) - 1 - out[::-1].index(marker)
    except ValueError:
        return None
    if out[k + 1:] != ["    def f(self):"] + exemplars + [""]:
        return None           # ruff writes a statement of some shape otherwise: format everything
    body = out[:k]
    while body and not body[-1]:
        body.pop()
    result: list = []
    j = 0
    for line in body:
        if line.startswith("        " + _ELIDED):
            if j >= len(runs) or line != f"        {_ELIDED}{j} = 0":
                return None
            result.extend(lines[runs[j][0]:runs[j][1]])
            j += 1
        else:
            result.append(line)
    if j != len(runs):
        return None
    return "\n".join(result) + "\n"


def _scan_line(line: str, triple, depth: int) -> tuple:
    """(the quotes of a string still open, brackets still open, whether a backslash continues it) after ``line``,
    given those before it."""
    i, n = 0, len(line)
    quote = None           # a one-line string being read
    while i < n:
        ch = line[i]
        if triple is not None:
            if ch == "\\":
                i += 2
                continue
            if line.startswith(triple, i):
                i += 3
                triple = None
                continue
            i += 1
            continue
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch == "#":
            break
        if ch in "\"'":
            if line.startswith(ch * 3, i):
                triple = ch * 3
                i += 3
                continue
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        i += 1
    return triple, depth, line.endswith("\\") and triple is None


_SHAPE_COMMENT = re.compile(r"^(?P<code>.*[):])  # (?P<shapes>.*?\S)(?:  (?P<loc>\S+\.(?:yaml|yml|json):\d+))?$")


def _fit_comments(src: str) -> str:
    """Shorten the shape comments that the formatter left past 100 columns (a detector's many outputs with long
    sizes): the shapes end in '...', the spec location stays."""
    out = []
    for line in src.split("\n"):
        m = _SHAPE_COMMENT.match(line) if len(line) > 100 else None
        if m:
            loc = f"  {m['loc']}" if m["loc"] else ""
            room = 100 - len(m["code"]) - len(loc) - 7
            line = (f"{m['code']}  # {m['shapes'][:room].rstrip()}...{loc}" if room >= 8
                    else f"{m['code']}  #{loc}" if loc else m["code"])
        out.append(line)
    return "\n".join(out)


def generate(graph: Graph, *, class_name: str | None = None, readable: bool = True) -> str:
    """Standalone PyTorch source for ``graph``; its last class is the network."""
    return generate_module([graph], class_names=[class_name], readable=readable)[0]


def generate_all(graphs: list[Graph], *, class_names: list | None = None) -> str:
    """Standalone PyTorch source for several networks (a GAN's generator and discriminator) in one module."""
    return generate_module(graphs, class_names=class_names)[0]
