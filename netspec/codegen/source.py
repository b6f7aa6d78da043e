"""Graph -> standalone, readable PyTorch source.

Contract: ``generate(graph)`` returns the text of a Python module that imports only torch (plus ``math``, and
``torchvision.ops`` or ``collections.OrderedDict`` where the network needs them) and defines one ``nn.Module``
class per distinct block body and a top class for the network. Module attributes follow the graph's structural
names, so ``state_dict()`` keys equal the node ids (``layer1.0.conv1.weight``). ``forward`` is straight-line code,
one statement per node (or per ``nn.Sequential`` / block call), each with a shape comment and the spec line it
comes from. The text is a pure function of the graph: deterministic, and no spec text reaches it except as a
sanitised identifier or a ``repr()``'d literal.

Block classes are shared between instances: instances whose classes differ only in numbers (channel counts,
strides) become one class whose constructor takes the differing numbers as arguments, named after the block's
parameters where the values match (``Basic(planes=128)``); a structurally different instance (one with the
conditional projection) becomes a second class (``Basic2``).
"""
from __future__ import annotations

import ast
import builtins
import functools
import io
import keyword
import math
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import PurePath

from ..errors import NetspecError
from ..graph.ir import Graph, Node
from ..ops.io import InputOp
from ..shapes import InferCtx, SymCtx, TensorType, Dim, is_sym
from ..spec.names import MODULE_ATTRS

INDENT = "    "

# names the generated code itself uses; a spec name equal to one of these is mangled (``F`` -> ``F_``)
_RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | {
    "self", "torch", "nn", "F", "math", "torchvision", "OrderedDict", "super"}


class CodegenError(NetspecError):
    """The graph cannot be written as PyTorch source (a bug in netspec or an op; the message says which)."""


# -- identifiers and literals --------------------------------------------------------------------------

def is_attr_name(name: str) -> bool:
    """True if ``name`` can be written as ``self.name`` (and assigned as a submodule attribute)."""
    return (name.isidentifier() and name.isascii() and not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
            and not name.startswith("_") and name not in MODULE_ATTRS)


# names no argument may take, whatever the code uses
_HARD = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {
    "self", "torch", "nn", "F", "math", "torchvision", "OrderedDict", "super", "getattr", "None", "True", "False"}
_BUILTINS = frozenset(dir(builtins))


def ident(name: str, taken: set, fallback: str = "h", reserved: frozenset | set = _RESERVED) -> str:
    """A fresh, valid, non-reserved identifier derived from ``name``; records it in ``taken``."""
    s = re.sub(r"[^0-9A-Za-z_]", "_", str(name)) if not (str(name).isidentifier() and str(name).isascii()) else str(name)
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
    """One line of printable text for a comment or docstring (no newlines, no control characters)."""
    s = "".join(c if c.isprintable() else " " for c in str(text).strip())
    if len(s) > limit:
        s = s[: limit - 3] + "..."
    return s


def docstring(text: str) -> str:
    """A docstring literal for ``text``: triple-quoted when that is plainly safe, else ``repr()``."""
    s = clean_text(" ".join(str(text).split()))
    if s and '"' not in s and "\\" not in s:
        return f'"""{s}"""'
    return repr(s)


def comment(text: str) -> str:
    s = clean_text(text, 400)
    return s.encode("ascii", "backslashreplace").decode("ascii")


def fmt_type(t: TensorType, dims: list | None = None) -> str:
    parts = [str(d) for d in (dims if dims is not None else t.shape)]
    s = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    return s if t.dtype == "float32" else f"{s} {t.dtype}"


def where(loc) -> str:
    """'resnet18.yaml:15': the spec line a statement comes from (the file's base name, so the text is portable)."""
    if loc is None:
        return ""
    return f"{_basename(str(loc.file))}:{loc.line}"


@functools.lru_cache(maxsize=256)
def _basename(file: str) -> str:
    return PurePath(file).name


# -- structure -----------------------------------------------------------------------------------------

@dataclass
class Member:
    """A direct child of the root or of a container: a node or a container, with its attribute name."""

    kind: str            # "node" | "container"
    key: str             # node id or container path
    local: str           # attribute name in the parent
    order: float         # position in creation order


@dataclass
class Stmt:
    """One forward statement: assigns ``outs`` from a node's call or a submodule call."""

    outs: list           # ValueRefs assigned
    names: list          # variable base names, aligned with outs
    expr: tuple          # ("node", node, module expression | None) or ("call", module expression, input refs)
    ins: list            # ValueRefs read
    order: float
    loc: object = None
    tuple_out: bool = False


class Generator:
    def __init__(self, graph: Graph):
        self.g = graph
        self.order = {nid: i for i, nid in enumerate(graph.nodes)}
        self.children: dict = {}
        self.subtree: dict[str, list[str]] = {p: [] for p in graph.containers}
        self.uses: dict = {}          # ValueRef -> list of consumer node ids
        self.graph_out = set(graph.outputs.values())
        self._module_src: dict[str, str | None] = {}
        self._callable: dict[str, bool] = {}
        self.helpers: dict[str, str] = {}
        self.needs_ordered_dict = False
        self.marks: list = []         # (ValueRef, loc) per '#@k' placeholder of the class being written
        self.local_cache: dict = {}   # see local_types
        self._iface: dict = {}
        self._has_modules: dict = {}
        self._index()

    def add_in_place(self, n) -> bool:
        """Whether an 'add' may accumulate into its first input, as hand-written residual blocks do: the first
        input comes from an op whose backward does not need its output, nothing else reads it, and the sum has its
        shape and dtype (no broadcasting into it)."""
        if n.op.name != "add" or not n.inputs or n.inputs[0] is None:
            return False
        r0 = tuple(n.inputs[0])
        src = self.g.nodes[r0[0]]
        if src.op.backward_needs_output or r0 in self.graph_out:
            return False
        if self.uses.get(r0, []) != [n.id] or any(tuple(r) == r0 for r in n.inputs[1:] if r is not None):
            return False
        return src.out[r0[1]] == n.out[0]

    @staticmethod
    def _reusable(s, i: int, var: dict, last_use: dict) -> str | None:
        """The variable of this statement's first input if that value is read for the last time here and no other
        live value shares the variable; else None."""
        if len(s.outs) != 1 or s.tuple_out or not s.ins or s.ins[0] is None:
            return None
        r0 = tuple(s.ins[0])
        v0 = var.get(r0)
        if v0 is None or last_use.get(r0) != i or tuple(s.outs[0]) in var:
            return None
        for r, v in var.items():
            if v == v0 and r != r0 and last_use.get(r, -1) > i:
                return None
        return v0

    # -- indexing ----------------------------------------------------------------------------------
    def _index(self):
        g = self.g
        for n in g.nodes.values():
            for r in n.inputs:
                if r is not None:
                    self.uses.setdefault(tuple(r), []).append(n.id)
            if n.op is InputOp:
                continue
            for c in n.scope:
                self.subtree[c].append(n.id)
        first: dict = {}
        for p in g.containers:
            nodes = self.subtree[p]
            if nodes:
                first[p] = self.order[nodes[0]]
            else:  # an empty container (all layers passed through): just after its inputs
                c = g.containers[p]
                first[p] = max([self.order.get(r[0], -1) for r in c.inputs] or [-1]) + 0.5
        members: dict = {}
        for n in g.nodes.values():
            if n.op is InputOp:
                continue
            parent = n.scope[-1] if n.scope else None
            members.setdefault(parent, []).append(Member("node", n.id, n.local_name, self.order[n.id]))
        for p, c in g.containers.items():
            parent = c.parent
            local = p[len(parent) + 1:] if parent else p
            members.setdefault(parent, []).append(Member("container", p, local, first[p]))
        for k, ms in members.items():
            ms.sort(key=lambda m: m.order)
        self.children = members

    def node(self, nid: str) -> Node:
        return self.g.nodes[nid]

    def module_src(self, n: Node) -> str | None:
        """The constructor source of a node's own module (None: functional, shared, or an error in the op)."""
        if n.id not in self._module_src:
            if n.meta.get("shared_with"):
                src = None
            else:
                src = n.op.module(list(n.meta.get("in", [])), n.params)
                if src is not None and not isinstance(src, str):
                    raise CodegenError(f"op '{n.op.name}' returned a {type(src).__name__} as module source", n.loc)
            self._module_src[n.id] = src
            for k, v in n.op.helpers().items():
                if k in self.helpers and self.helpers[k] != v:
                    raise CodegenError(f"two ops define the helper class '{k}' differently", n.loc)
                self.helpers.setdefault(k, v)
        return self._module_src[n.id]

    def weight_kind(self, n: Node) -> str | None:
        w = n.meta.get("weights", {}).get("")
        return w[1] if w else None

    def owns_module(self, m: Member) -> bool:
        if m.kind == "node":
            return self.module_src(self.node(m.key)) is not None
        return self.has_modules(m.key)

    def has_modules(self, path: str) -> bool:
        """A block always is a module; a seq or repeat only if a layer inside it has one."""
        if path not in self._has_modules:
            self._has_modules[path] = self.g.containers[path].kind == "block" or \
                any(self.module_src(self.node(n)) is not None for n in self.subtree[path])
        return self._has_modules[path]

    def iface(self, path: str) -> tuple[list, list]:
        """(values entering, values leaving) a container: declared for blocks, computed for seq/repeat."""
        if path not in self._iface:
            self._iface[path] = self._compute_iface(path)
        return self._iface[path]

    def _compute_iface(self, path: str) -> tuple[list, list]:
        c = self.g.containers[path]
        if c.kind == "block":
            return [tuple(r) for r in c.inputs], [tuple(r) for r in c.outputs]
        inside = set(self.subtree[path])
        ins, outs = [], []
        for nid in self.subtree[path]:
            for r in self.node(nid).inputs:
                if r is not None and r[0] not in inside and tuple(r) not in ins:
                    ins.append(tuple(r))
            for k in range(len(self.node(nid).out)):
                ref = (nid, k)
                if ref in self.graph_out or any(u not in inside for u in self.uses.get(ref, [])):
                    outs.append(ref)
        return ins, outs

    # -- sequential chains ---------------------------------------------------------------------------
    def is_callable(self, path: str) -> bool:
        """A block (a class), or a seq/repeat whose members form a plain chain (an nn.Sequential)."""
        if path not in self._callable:
            c = self.g.containers[path]
            self._callable[path] = c.kind == "block" or self.plain_chain(path)
        return self._callable[path]

    def plain_chain(self, path: str) -> bool:
        members = self.children.get(path, [])
        if not members:
            return False
        ins, outs = self.iface(path)
        if len(ins) != 1:
            return False
        prev = ins[0]
        for j, m in enumerate(members):
            if m.kind == "node":
                n = self.node(m.key)
                if (self.module_src(n) is None or self.weight_kind(n) or len(n.out) != 1 or len(n.op.outputs) != 1
                        or [tuple(r) if r is not None else None for r in n.inputs] != [prev]
                        or n.op.call(["__x__"], n.params, "__m__") != "__m__(__x__)"):
                    return False
                out = (n.id, 0)
                inside = {n.id}
            else:
                if not self.is_callable(m.key):
                    return False
                mins, mouts = self.iface(m.key)
                if mins != [prev] or len(mouts) != 1:
                    return False
                out = mouts[0]
                inside = set(self.subtree[m.key])
            if j < len(members) - 1:
                nxt = members[j + 1]
                nxt_nodes = {nxt.key} if nxt.kind == "node" else set(self.subtree[nxt.key])
                if out in self.graph_out or not set(self.uses.get(out, [])) <= nxt_nodes:
                    return False
            prev = out
        return all(o == prev for o in outs)

    # -- constructors (__init__) -------------------------------------------------------------------
    def ctor(self, m: Member, refs: dict) -> list[str]:
        """Source lines of an expression constructing member ``m``; continuation lines are indented.

        ``refs`` maps a block instance's path to the expression constructing it (its class and arguments).
        """
        if m.kind == "node":
            return self.module_src(self.node(m.key)).split("\n")
        c = self.g.containers[m.key]
        if c.kind == "block":
            return [refs[m.key]]
        return self.sequential(m.key, "nn.Sequential", refs)

    def sequential(self, path: str, head: str, refs: dict) -> list[str]:
        """``head(member, member, ...)`` over the members of a plain chain, one per line with a shape mark."""
        members = self.children[path]
        contiguous = [x.local for x in members] == [str(k) for k in range(len(members))]
        if not contiguous:
            self.needs_ordered_dict = True
        lines = [f"{head}(" if contiguous else f"{head}(OrderedDict(["]
        for x in members:
            p = self.ctor(x, refs)
            if not contiguous:
                p = [f"({x.local!r}, {p[0]}"] + p[1:]
                p[-1] += ")"
            p[-1] += ","
            if len(p) == 1:
                p[0] += self.mark(x)
            lines += [INDENT + q for q in p]
        lines.append(")" if contiguous else "]))")
        return lines

    def mark(self, m: Member) -> str:
        """A comment placeholder ``#@k`` for the shape of a Sequential member (filled in per class)."""
        if m.kind == "node":
            ref, loc = (m.key, 0), self.node(m.key).loc
        else:
            outs = self.iface(m.key)[1]
            if len(outs) != 1:
                return ""
            ref, loc = outs[0], self.g.containers[m.key].loc
        self.marks.append((ref, loc))
        return f"  #@{len(self.marks) - 1}"

    def init_lines(self, parent_expr: str, members: list[Member], refs: dict) -> list[str]:
        """Statements creating ``members`` as attributes of ``parent_expr`` (``self`` or a holder)."""
        out: list[str] = []
        for m in members:
            if not self.owns_module(m):
                continue
            if m.kind == "node":
                n = self.node(m.key)
                src = self.module_src(n).split("\n")
                kind = self.weight_kind(n)
                if kind == "buffer":
                    out += _wrap(f"{parent_expr}.register_buffer({m.local!r}, ", src, ")")
                elif kind == "param" and not is_attr_name(m.local):
                    out += _wrap(f"{parent_expr}.register_parameter({m.local!r}, ", src, ")")
                else:
                    out += self._assign(parent_expr, m.local, src)
            elif self.is_callable(m.key):
                out += self._assign(parent_expr, m.local, self.ctor(m, refs))
            elif self.holder_is_list(m.key):
                # a repeat (or seq) whose forward is written inline: its modules in a list
                lines = ["nn.ModuleList(["]
                for x in self.children.get(m.key, []):
                    if self.owns_module(x):
                        p = self.ctor(x, refs)
                        p[-1] += ","
                        lines += [INDENT + q for q in p]
                lines.append("])")
                out += self._assign(parent_expr, m.local, lines)
            else:
                # a holder for a seq whose forward is written inline
                out += self._assign(parent_expr, m.local, ["nn.Module()"])
                out += self.init_lines(self.access(parent_expr, m.local, False), self.children.get(m.key, []), refs)
        return out

    def _assign(self, parent: str, name: str, lines: list[str]) -> list[str]:
        if is_attr_name(name):
            return _wrap(f"{parent}.{name} = ", lines, "")
        if name in MODULE_ATTRS or not name or "." in name:
            raise CodegenError(f"'{name}' cannot name a module attribute (a bug: the spec loader should refuse it)")
        return _wrap(f"{parent}.add_module({name!r}, ", lines, ")")

    def holder_is_list(self, path: str) -> bool:
        """A holder whose modules are all plain submodules named 0..k-1 becomes an nn.ModuleList."""
        own = [x for x in self.children.get(path, []) if self.owns_module(x)]
        simple = all(self.is_callable(x.key) if x.kind == "container" else not self.weight_kind(self.node(x.key))
                     for x in own)
        return bool(own) and simple and [x.local for x in own] == [str(k) for k in range(len(own))]

    @staticmethod
    def access(parent: str, name: str, in_list: bool) -> str:
        if in_list and name.isdigit():
            return f"{parent}[{int(name)}]"
        if is_attr_name(name):
            return f"{parent}.{name}"
        return f"getattr({parent}, {name!r})"

    # -- forward ------------------------------------------------------------------------------------
    def statements(self, members: list[Member], parent_expr: str, prefix: str, in_list: bool, access: dict,
                   stmts: list):
        """Collect the forward statements of a class: members, with holders written inline."""
        for m in members:
            rel = prefix + m.local
            acc = self.access(parent_expr, m.local, in_list)
            if m.kind == "node":
                n = self.node(m.key)
                if self.module_src(n) is not None:
                    access[n.id] = acc
                stmts.append(("node", n, rel))
            elif self.is_callable(m.key):
                stmts.append(("call", m.key, rel, acc))
            else:
                self.statements(self.children.get(m.key, []), acc, rel + ".", self.holder_is_list(m.key), access,
                                stmts)

    def _builtins_used(self, raw: list, access: dict) -> set:
        names: set = set()
        for item in raw:
            if item[0] == "node":
                n = item[1]
                code = n.op.call([f"__a{k}" for k in range(len(n.inputs))], n.params, access.get(n.id, "__m"))
            else:
                code = item[3]
            names |= set(re.findall(r"[A-Za-z_]\w*", code))
        return names & _BUILTINS

    def forward(self, scope_path: str | None, in_refs: list, in_names: list, out_refs: list, out_names: list,
                dict_out: bool) -> tuple[list, list]:
        """(forward lines as (code, ValueRefs assigned, loc), argument names) of the class at scope_path."""
        access: dict = {}
        raw: list = []
        self.statements(self.children.get(scope_path, []), "self", "", False, access, raw)
        taken: set = set(self.helpers)
        var: dict = {}
        args = []
        # the spec's input names stay the argument names (callers pass them by keyword), unless one is a builtin
        # that this class's code calls
        avoid = self._builtins_used(raw, access)
        for r, nm in zip(in_refs, in_names):
            a = ident(nm, taken, "x", reserved=avoid)
            args.append(a)
            var.setdefault(tuple(r), a)
        stmts: list[Stmt] = []
        for item in raw:
            if item[0] == "node":
                n, rel = item[1], item[2]
                outs = [(n.id, k) for k in range(len(n.out))]
                multi = len(n.op.outputs) > 1
                names = [rel] if not multi else [f"{rel}_{n.op.outputs[k] if k < len(n.op.outputs) else k}"
                                                  for k in range(len(outs))]
                mod = access.get(n.id)
                if mod is None and n.meta.get("shared_with"):
                    mod = access.get(n.meta["shared_with"])
                    if mod is None:
                        raise CodegenError(f"'{n.id}' shares the module of '{n.meta['shared_with']}', which is not "
                                           "in the same class", n.loc)
                stmts.append(Stmt(outs, names, ("node", n, mod), [tuple(r) for r in n.inputs if r is not None],
                                  self.order[n.id], n.loc, tuple_out=multi))
            else:
                path, rel, acc = item[1], item[2], item[3]
                c = self.g.containers[path]
                ins, outs = self.iface(path)
                if c.kind == "block":
                    onames = c.output_names
                    names = [rel] if len(outs) == 1 else [f"{rel}_{o}" for o in onames]
                    tuple_out = len(outs) > 1
                else:
                    names, tuple_out = [rel], False
                    if not outs:   # a dead-end chain: its result is unused
                        last = self.children[path][-1]
                        outs = [(last.key, 0)] if last.kind == "node" else self.iface(last.key)[1][:1]
                first = self.order[self.subtree[path][0]] if self.subtree[path] else \
                    max([self.order.get(r[0], -1) for r in ins] or [-1]) + 0.5
                stmts.append(Stmt(outs, names, ("call", acc, ins), ins, first, c.loc, tuple_out=tuple_out))
        stmts = _toposort(stmts, set(var))
        # liveness: a value's last reader; the returned values live to the end
        last_use: dict = {}
        for i, st in enumerate(stmts):
            for r in st.ins:
                if r is not None:
                    last_use[tuple(r)] = i
        for r in out_refs:
            last_use[tuple(r)] = len(stmts)
        lines = []
        for i, s in enumerate(stmts):
            fallback = s.expr[1].op.name if s.expr[0] == "node" else "out"
            kind = s.expr[0]
            reuse = self._reusable(s, i, var, last_use)
            if reuse is not None:
                # the input dies here: its variable takes the result, so the tensor is freed at once (as in
                # hand-written `x = self.bn1(x)`), which keeps the working set of a forward pass small
                vs = [reuse]
            else:
                vs = [ident(nm.replace(".", "_"), taken, fallback) for nm in s.names]
            if kind == "node":
                n, mod = s.expr[1], s.expr[2]
                a = [var[tuple(r)] if r is not None else "None" for r in n.inputs]
                code = n.op.call(a, n.params, mod)
                if self.add_in_place(n):
                    code = a[0] + "".join(f".add_({x})" for x in a[1:])
            else:
                code = f"{s.expr[1]}({', '.join(var[r] for r in s.expr[2])})"
            lhs = ", ".join(vs) if s.tuple_out or len(vs) > 1 else vs[0]
            if s.tuple_out and len(vs) == 1:
                lhs = vs[0] + ","
            for r, v in zip(s.outs, vs):
                if reuse is not None:
                    var[tuple(r)] = v
                else:
                    var.setdefault(tuple(r), v)      # a passed-through input keeps its first name
            lines.append((f"{lhs} = {code}", [tuple(r) for r in s.outs], s.loc))
        for r in out_refs:
            if tuple(r) not in var:
                raise CodegenError(f"the output value {r} is not computed in this class")
        if dict_out:
            ret = "return {" + ", ".join(f"{nm!r}: {var[tuple(r)]}" for r, nm in zip(out_refs, out_names)) + "}"
        elif len(out_refs) == 1:
            ret = f"return {var[tuple(out_refs[0])]}"
        else:
            ret = "return " + ", ".join(var[tuple(r)] for r in out_refs)
        lines.append((ret, None, None))
        return _rename_rebound(lines, args), args


def _rename_rebound(lines: list, args: list) -> list:
    """Variables bound more than once (a chain that reuses its input's variable) are called ``out``, ``out2``, ...
    as in hand-written modules, so that no name claims to be one layer's output while holding another's.
    Arguments keep their names (``x = self.downsample(x)`` reads as it does in torchvision)."""
    import io
    import tokenize

    counts: dict = {}
    for code, _, _ in lines:
        lhs = code.split(" = ", 1)[0] if " = " in code else ""
        if lhs.isidentifier():
            counts[lhs] = counts.get(lhs, 0) + 1
    rebound = [v for v, c in counts.items() if c > 1 and v not in args]
    if not rebound:
        return lines
    used = set(counts) | set(args)
    mapping: dict = {}
    for v in rebound:
        k, new = 1, "out"
        while new in used or new in mapping.values():
            k += 1
            new = f"out{k}"
        mapping[v] = new
    out = []
    for code, refs, loc in lines:
        toks = list(tokenize.generate_tokens(io.StringIO(code).readline))
        out.append((_retext(code, toks, mapping), refs, loc))
    return out


def _retext(code: str, toks: list, mapping: dict) -> str:
    """``code`` with the NAME tokens in mapping replaced (attributes after '.' untouched), spacing kept."""
    import tokenize
    res, last, prev = [], 0, None
    for t in toks:
        if t.type == tokenize.NAME and t.string in mapping and not (prev is not None and prev.string == "."):
            start = t.start[1]
            res.append(code[last:start])
            res.append(mapping[t.string])
            last = t.end[1]
        if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            prev = t
    res.append(code[last:])
    return "".join(res)


def _wrap(head: str, lines: list[str], tail: str) -> list[str]:
    lines = list(lines)
    lines[0] = head + lines[0]
    lines[-1] = lines[-1] + tail
    return lines


def _toposort(stmts: list[Stmt], defined: set) -> list[Stmt]:
    """Statements in creation order, moved only where a value would be read before it is written."""
    produced = {}
    for i, s in enumerate(stmts):
        for r in s.outs:
            # a block that passes one of its inputs through does not produce it
            if tuple(r) not in defined and tuple(r) not in s.ins:
                produced.setdefault(tuple(r), i)
    deps = []
    for i, s in enumerate(stmts):
        d = set()
        for r in s.ins:
            j = produced.get(tuple(r))
            if j is not None and j != i:
                d.add(j)
            elif j is None and tuple(r) not in defined:
                raise CodegenError(f"a statement reads {r}, which no statement of its class computes")
        deps.append(d)
    import heapq
    indeg = [len(d) for d in deps]
    rdeps: dict = {}
    for i, d in enumerate(deps):
        for j in d:
            rdeps.setdefault(j, []).append(i)
    heap = [(stmts[i].order, i) for i in range(len(stmts)) if indeg[i] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        _, i = heapq.heappop(heap)
        out.append(stmts[i])
        for k in rdeps.get(i, []):
            indeg[k] -= 1
            if indeg[k] == 0:
                heapq.heappush(heap, (stmts[k].order, k))
    if len(out) != len(stmts):
        raise CodegenError("the statements of a class form a cycle")
    return out


# -- local shapes of a block instance ----------------------------------------------------------------------

_SYM_ORDER = {"N": 0, "C": 1, "T": 2, "H": 3, "W": 4}


def local_types(gen: Generator, path: str, names: list | None = None,
                free: dict | None = None) -> tuple[dict, list] | None:
    """Shapes inside a block instance, with its inputs' symbolic sizes renamed to local symbols.

    A block that gets (N, 64, ceil(H/4), ceil(W/4)) is described as getting (N, 64, H, W), so that every instance
    reads the same; an input size that is an exact multiple of another (a U-Net skip at twice the resolution) is
    written in terms of it (2*H). ``names`` forces the names of the local symbols, in order of creation (so that
    instances of one class agree). ``free`` maps (input index, dim) to a symbol name for fixed sizes that differ
    between instances (a 28x28 and a 14x14 input both read as H x W). Returns (types by ValueRef, the local symbols'
    names), or None when re-inferring fails or disagrees with the graph (the caller then uses the global shapes).
    """
    g = gen.g
    c = g.containers[path]
    in_types = [g.type_of(r) for r in c.inputs]
    same = tuple(c.inputs.index(r) for r in c.inputs)
    key = (c.block, repr(c.args), tuple(in_types), same, tuple(names) if names is not None else None,
           tuple(sorted(free.items())) if free else None)
    if key not in gen.local_cache:   # a block instance's body depends only on these (block scopes are closed)
        gen.local_cache[key] = _local_types(gen, path, in_types, names, free)
    return gen.local_cache[key]


def _local_types(gen: Generator, path: str, in_types: list, names, free) -> tuple[dict, list] | None:
    g = gen.g
    c = g.containers[path]
    sym = SymCtx()
    mapping: dict = {}
    dims: list = []
    for t in in_types:
        for d in t.shape:
            if is_sym(d) and d not in dims:
                dims.append(d)
    probe = {s: g.sym.multiple(s) * 64 for d in dims for s in d.free_symbols()}
    try:                        # smallest first: a larger size that is an exact multiple is written as n * it
        by_size = sorted(dims, key=lambda d: d.evaluate(probe))
    except Exception:  # noqa: BLE001
        by_size = list(dims)
    bases: list = []
    multiple: dict = {}
    for d in by_size:
        for b in bases:
            n = _int_ratio(d, b, probe)
            if n and b * n == d:
                multiple[d] = (b, n)
                break
        else:
            bases.append(d)
    created: list = []
    for d in dims:              # local symbols in order of appearance, so that instances agree
        if d in multiple:
            continue
        if names is not None:
            if len(created) >= len(names):
                return None
            name = names[len(created)]
        elif str(d).isidentifier():
            name = str(d)
        else:
            syms = sorted(d.free_symbols(), key=lambda s: (_SYM_ORDER.get(s, 9), s))
            name = syms[0] if syms else "S"
        base, k = name, 1
        while name in created:
            k += 1
            name = f"{base}{k}"
        created.append(name)
        mapping[d] = Dim.sym(name)
        m = _local_multiple(d, g.sym)
        if m > 1:
            sym.multiple_of[name] = m
    for d, (b, n) in multiple.items():
        mapping[d] = mapping[b] * n
    env: dict = {}              # free symbol -> this instance's size
    types: dict = {}            # keyed by rel_key(): the same for every instance
    for j, (r, t) in enumerate(zip(c.inputs, in_types)):
        shape = []
        for k, d in enumerate(t.shape):
            if is_sym(d):
                shape.append(mapping[d])
            elif free and (j, k) in free:
                name = free[(j, k)]
                if name in created or (name in env and env[name] != d):
                    return None
                env[name] = d
                shape.append(Dim.sym(name))
            else:
                shape.append(d)
        k = rel_key(path, c.inputs, r)
        if k not in types:
            types[k] = TensorType(tuple(shape), t.dtype)
    ctx = InferCtx(sym=sym)
    for nid in gen.subtree[path]:
        n = g.nodes[nid]
        try:
            ins = [types[rel_key(path, c.inputs, r)] if r is not None else None for r in n.inputs]
            ctx.node = nid
            outs = n.op.infer(ins, n.params, ctx)
        except Exception:  # noqa: BLE001 - any failure just means: describe with global shapes
            return None
        if len(outs) != len(n.out):
            return None
        for k, (lo, go) in enumerate(zip(outs, n.out)):
            if lo.rank != go.rank or lo.dtype != go.dtype:
                return None
            for a, b in zip(lo.shape, go.shape):
                if is_sym(b):
                    continue
                if is_sym(a):
                    if not a.free_symbols() <= set(env) or a.evaluate(env) != b:
                        return None
                elif a != b:
                    return None
            types[(nid[len(path) + 1:], k)] = lo
    return types, created


def rel_key(path: str, inputs: list, ref) -> tuple:
    """A value inside block instance ``path`` keyed the same way in every instance: relative node id, or input."""
    nid = ref[0]
    if nid.startswith(path + "."):
        return (nid[len(path) + 1:], ref[1])
    return ("\x00in", inputs.index(ref) if ref in inputs else repr(ref))


def _int_ratio(d, b, env) -> int | None:
    """n >= 2 if d looks like n * b at a probe point (the caller checks it exactly)."""
    try:
        vd, vb = d.evaluate(env), b.evaluate(env)
    except Exception:  # noqa: BLE001
        return None
    if vb <= 0 or vd % vb or vd // vb < 2:
        return None
    return vd // vb


def _local_multiple(d, ctx: SymCtx) -> int:
    """The largest integer that divides ``d`` for every allowed value of its symbols (by sampling)."""
    syms = sorted(d.free_symbols())
    acc = 0
    try:
        for t in range(1, 9):
            env = {s: ctx.multiple(s) * t for s in syms}
            acc = math.gcd(acc, abs(int(d.evaluate(env))))
    except Exception:  # noqa: BLE001
        return 1
    return acc or 1


# -- class text, templating and sharing ------------------------------------------------------------------
#
# Each block instance is first written with every number literal in place (its own class). The numbers are then
# taken out ("slots"), and instances of the same block whose texts agree everywhere else share one class. A nested
# block's construction is written as ``__CLS<k>__(<all its slot values>)``, so a parent's text is final before the
# child's arguments are known; once every class knows its arguments the call becomes ``Child(planes=...)``.

_CLS_CALL = re.compile(r"__CLS(\d+)__\(([^()]*)\)")
_SLOT = re.compile("\x00(\\d+)\x00")


@dataclass
class Draft:
    """One block instance's class text, before it is named and parameterised."""

    path: str
    init: list            # __init__ lines
    fwd: list             # (code, ValueRefs assigned | None, loc) per forward statement, the return last
    args: list            # forward argument names
    ins: list             # the ValueRefs of the forward arguments
    types: dict           # ValueRef -> TensorType, local to the block (see local_types)
    symbols: list | None  # the local symbols' names, or None when the types are the global ones
    marks: list = field(default_factory=list)    # (ValueRef, loc) per '#@k' placeholder
    values: list = field(default_factory=list)   # its slot values (number literals, as written)

    def shapes(self, refs) -> list | None:
        if refs is None:
            return None
        return [self.types.get(rel_key(self.path, self.ins, tuple(r))) for r in refs]


@dataclass
class ClassGroup:
    """One emitted block class and the instances that use it."""

    index: int
    block: str
    template: list        # __init__ + forward lines, numbers replaced by slot markers
    n_init: int
    drafts: list = field(default_factory=list)
    order: float = 0.0
    name: str = ""
    args: list = field(default_factory=list)       # (name, values per instance, representative slot)
    slot_text: list = field(default_factory=list)  # per slot: its literal, or the argument that carries it

    def slot_values(self, k: int) -> list[str]:
        return [d.values[k] for d in self.drafts]


def _template(lines: list[str], cache: dict) -> tuple[list[str], list[str]]:
    """Replace every number literal in ``lines`` by a slot marker; returns (template lines, literals)."""
    key = tuple(lines)
    if key not in cache:
        cache[key] = _tokenize_numbers(lines)
    return cache[key]


def _tokenize_numbers(lines: list[str]) -> tuple[list[str], list[str]]:
    text = "\n".join(lines) + "\n"
    try:
        found = [t for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.NUMBER]
    except (tokenize.TokenError, SyntaxError) as e:
        raise CodegenError(f"an op produced source that is not valid Python: {e}") from None
    out = list(lines)
    for i in range(len(found) - 1, -1, -1):
        (r, c0), (r1, c1) = found[i].start, found[i].end
        row = out[r - 1]
        out[r - 1] = row[:c0] + f"\x00{i}\x00" + row[c1:]
    return out, [t.string for t in found]


def _num(s: str):
    try:
        v = ast.literal_eval(s)
    except (ValueError, SyntaxError):
        return None
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _local_or_global_types(gen: Generator, path: str) -> tuple[dict, list | None]:
    lt = local_types(gen, path)
    if lt is not None:
        return lt
    g = gen.g
    ins = [tuple(r) for r in g.containers[path].inputs]
    types = {(nid[len(path) + 1:], k): t for nid in gen.subtree[path] for k, t in enumerate(g.nodes[nid].out)}
    for r in ins:
        types.setdefault(rel_key(path, ins, r), g.type_of(r))
    return types, None


def generate(graph: Graph, *, class_name: str | None = None) -> str:
    """Standalone PyTorch source for ``graph``.

    Args:
        graph: an expanded graph with shapes (``netspec.expand``).
        class_name: the top class's name (default: the network's name in CamelCase).
    Returns:
        the text of a Python module defining the network's ``nn.Module`` classes; deterministic.
    """
    return generate_all([graph], class_names=[class_name])


def generate_all(graphs: list[Graph], *, class_names: list | None = None) -> str:
    """Standalone PyTorch source for several networks (a GAN's generator and discriminator) in one module.

    Class names stay unique across the networks; helper classes are written once.
    """
    return generate_module(graphs, class_names=class_names)[0]


def generate_module(graphs: list[Graph], *, class_names: list | None = None) -> tuple[str, list[str]]:
    """(source, the network classes' names in the order of ``graphs``); see ``generate_all``."""
    helper_names: set = set()
    for g in graphs:
        for n in g.nodes.values():
            helper_names |= set(n.op.helpers())
    taken: set = set()
    parts = [_generate_parts(g, (class_names or [None] * len(graphs))[k], taken, helper_names)
             for k, g in enumerate(graphs)]
    helpers: dict = {}
    for pt in parts:
        for k, v in pt.helpers.items():
            if k in helpers and helpers[k] != v:
                raise CodegenError(f"two ops define the helper class '{k}' differently")
            helpers.setdefault(k, v)
    tops = [pt.top for pt in parts]
    files = sorted({PurePath(str(g.file)).name for g in graphs})
    nets = ", ".join(f"'{g.name}'" for g in graphs)
    head = [docstring(f"{', '.join(tops)}: PyTorch source generated by netspec from {', '.join(files)} "
                      f"(network{'s' if len(graphs) > 1 else ''} {nets}). "
                      "Edit the spec and regenerate it with 'netspec compile', not this file."),
            "import math"]
    texts = [t for pt in parts for t in pt.classes + [pt.top_text]]
    if any(pt.ordered_dict for pt in parts):
        head += ["from collections import OrderedDict"]
    head += ["", "import torch", "import torch.nn as nn", "import torch.nn.functional as F"]
    if "torchvision." in "\n".join(texts + list(helpers.values())):
        head.append("import torchvision.ops")
    out = ["\n".join(head)] + [h.strip("\n") for h in helpers.values()] + [t.strip("\n") for t in texts]
    return "\n\n\n".join(out) + "\n", tops


@dataclass
class _Parts:
    top: str
    top_text: str
    classes: list
    helpers: dict
    ordered_dict: bool


def _generate_parts(graph: Graph, class_name: str | None, taken: set, helper_names: set) -> _Parts:
    """The classes of one network; ``taken`` holds the class names already used (and receives this one's)."""
    gen = Generator(graph)
    g = graph
    # block instances, innermost first, so that a parent's text can construct its children
    blocks = [p for p, c in g.containers.items() if c.kind == "block"]
    nanc = {p: len(_ancestors(g, p)) for p in blocks}
    blocks.sort(key=lambda p: -nanc[p])
    refs: dict = {}             # block path -> its construction in a parent's text (placeholder form)
    template_cache: dict = {}
    groups: dict = {}           # grouping key -> ClassGroup
    by_index: list = []
    for p in blocks:
        c = g.containers[p]
        gen.marks = []
        types, symbols = _local_or_global_types(gen, p)
        sequential = gen.plain_chain(p) and [m.local for m in gen.children[p]] == \
            [str(k) for k in range(len(gen.children[p]))]
        if sequential:   # a plain chain: an nn.Sequential subclass, like torchvision's Conv2dNormActivation
            init = gen.sequential(p, "super().__init__", refs)
            fwd, args = [], [ident(c.input_names[0], set(), "x")]
        else:
            init = ["super().__init__()"] + gen.init_lines("self", gen.children.get(p, []), refs)
            fwd, args = gen.forward(p, c.inputs, c.input_names, c.outputs, c.output_names, False)
        d = Draft(p, init, fwd, args, [tuple(r) for r in c.inputs], types, symbols, list(gen.marks))
        tmpl, d.values = _template(init + [code for code, _, _ in fwd], template_cache)
        shape_key = tuple((tuple((t.rank, t.dtype) if t is not None else None for t in ts) if ts else None, where(loc))
                          for ts, loc in [(d.shapes(refs), loc) for _, refs, loc in fwd] +
                          [(d.shapes([ref]), loc) for ref, loc in d.marks])
        key = (c.block, tuple(tmpl), len(init), shape_key, tuple(args), sequential)
        grp = groups.get(key)
        if grp is None:
            grp = groups[key] = ClassGroup(len(by_index), c.block or "block", tmpl, len(init))
            grp.sequential = sequential
            by_index.append(grp)
        grp.drafts.append(d)
        refs[p] = f"__CLS{grp.index}__({', '.join(d.values)})"
    for grp in by_index:
        grp.drafts.sort(key=lambda d: gen.order.get(gen.subtree[d.path][0], 0) if gen.subtree[d.path] else 0)
        d0 = grp.drafts[0]
        for d in grp.drafts[1:]:      # the same local symbol names in every instance (S and T both read as S)
            if d0.symbols is not None and d.symbols is not None and d.symbols != d0.symbols:
                lt = local_types(gen, d.path, names=d0.symbols)
                if lt is not None:
                    d.types, d.symbols = lt
        grp.order = gen.order.get(gen.subtree[d0.path][0], 0) if gen.subtree[d0.path] else 0
    # names: the network, then per block its variants in order of first use (Basic, Basic2, ...)
    reserved = set(gen.helpers) | helper_names | _RESERVED | taken
    top = class_name if class_name and is_attr_name(class_name) else camel(g.name, "Network")
    if top in reserved:
        top += "Net"
    while top in reserved:
        top += "_"
    taken |= {top} | reserved
    variants: dict = {}
    for grp in sorted(by_index, key=lambda x: (x.order, x.index)):
        variants.setdefault(grp.block, []).append(grp)
    for block, grps in variants.items():
        base, k = camel(block, "Block"), 1
        for grp in grps:
            name = base if k == 1 else f"{base}{k}"
            while name in taken:
                k += 1
                name = f"{base}{k}"
            k += 1
            taken.add(name)
            grp.name = name
    class_names = {grp.name for grp in by_index} | {top}
    for grp in by_index:
        _parameterise(g, grp, class_names)
        _free_sizes(gen, grp)
    # text
    classes = [_class_text(grp, by_index) for grp in sorted(by_index, key=lambda x: _depth_rank(x, nanc))]
    top_text = _top_text(gen, top, refs, by_index)
    taken |= {grp.name for grp in by_index}
    return _Parts(top, top_text, classes, dict(gen.helpers), gen.needs_ordered_dict)


def _depth_rank(grp: ClassGroup, nanc: dict) -> tuple:
    # innermost classes first (a reader meets a class before its use), then in order of first use
    return (-max(nanc[d.path] for d in grp.drafts), grp.order, grp.index)


def _ancestors(g: Graph, path: str) -> list:
    out = []
    c = g.containers[path].parent
    while c is not None:
        out.append(c)
        c = g.containers[c].parent
    return out


def _parameterise(g: Graph, grp: ClassGroup, class_names: set) -> None:
    """Decide which numbers of a shared class become constructor arguments, and name them.

    A number that differs between instances becomes an argument; numbers with the same values in every instance
    share one. It is named after the block parameter (or the input's channel count) with those values.
    """
    conts = [g.containers[d.path] for d in grp.drafts]
    cands: list = []
    for pname in conts[0].args:
        vals = [c.args.get(pname) for c in conts]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            cands.append((pname, vals))
    names_in = conts[0].input_names
    for j, iname in enumerate(names_in):
        vals = []
        for c in conts:
            t = g.type_of(c.inputs[j]) if j < len(c.inputs) else None
            vals.append(t.shape[1] if t is not None and t.rank >= 2 and isinstance(t.shape[1], int) else None)
        if all(v is not None for v in vals):
            cands.append(("in_channels" if len(names_in) == 1 else f"{iname}_channels", vals))
    taken = set(class_names) | {"self"}
    by_vec: dict = {}
    grp.slot_text = []
    n_slots = len(grp.drafts[0].values)
    for k in range(n_slots):
        strs = grp.slot_values(k)
        if len(set(strs)) == 1:
            grp.slot_text.append(strs[0])
            continue
        vec = tuple(strs)
        if vec not in by_vec:
            nums = [_num(s) for s in strs]
            kw = _keyword_before(grp.template, k)
            name = kw if kw and kw not in taken and kw not in [c for c, _ in cands] else f"arg{len(grp.args)}"
            for cname, cvals in cands:
                if all(n is not None and n == v and type(n) is type(v) for n, v in zip(nums, cvals)) and \
                        cname not in taken:
                    name = cname
                    break
            name = ident(name, taken, "arg")
            by_vec[vec] = name
            grp.args.append((name, list(strs), k))
        grp.slot_text.append(by_vec[vec])
    rank = {c: i for i, (c, _) in enumerate(cands)}
    grp.args.sort(key=lambda a: (rank.get(a[0], len(rank)), a[2]))
    grp.arg_vecs = {tuple(v): a for a, v, _ in grp.args}


_FREE_NAMES = {3: {1: "T", 2: "L"}, 4: {2: "H", 3: "W"}, 5: {2: "D", 3: "H", 4: "W"}}


def _free_sizes(gen: Generator, grp: ClassGroup) -> None:
    """Describe fixed input sizes that differ between a class's instances with local symbols, where possible."""
    if len(grp.drafts) < 2:
        return
    g = gen.g
    d0 = grp.drafts[0]
    free: dict = {}
    used: set = set(d0.symbols or [])
    for j in range(len(d0.ins)):
        ts = [g.type_of(g.containers[d.path].inputs[j]) for d in grp.drafts]
        for k in range(ts[0].rank):
            vals = [t.shape[k] if k < t.rank else None for t in ts]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals) or len(set(vals)) == 1:
                continue
            if tuple(str(v) for v in vals) in grp.arg_vecs:
                continue           # a channel count the class takes as an argument: ops need it fixed
            base = _FREE_NAMES.get(ts[0].rank, {}).get(k, "S")
            name, n = base, 1
            while name in used:
                n += 1
                name = f"{base}{n}"
            used.add(name)
            free[(j, k)] = name
    if not free:
        return
    new = []
    for d in grp.drafts:
        lt = local_types(gen, d.path, names=d0.symbols, free=free)
        if lt is None:
            return
        new.append(lt)
    for d, (types, symbols) in zip(grp.drafts, new):
        d.types, d.symbols = types, symbols


def _keyword_before(template: list[str], k: int) -> str | None:
    """The keyword a slot fills where it first appears: 'padding' in ``padding=(<k>, <k>)``."""
    mark = f"\x00{k}\x00"
    for line in template:
        j = line.find(mark)
        if j >= 0:
            m = re.search(r"(\w+)=\(?(?:\x00\d+\x00, )*$", line[:j])
            return m.group(1) if m and m.group(1).isidentifier() else None
    return None


def _call_children(line: str, by_index: list) -> str:
    """``__CLS3__(64, planes, 1)`` -> ``Basic(planes=planes)``: a nested block constructed with its arguments."""
    def repl(m):
        child = by_index[int(m.group(1))]
        vals = [v.strip() for v in m.group(2).split(",")] if m.group(2).strip() else []
        return f"{child.name}(" + ", ".join(f"{a}={vals[rep]}" for a, _, rep in child.args) + ")"
    return _CLS_CALL.sub(repl, line)


def _render_dims(grp: ClassGroup, per_inst: list) -> str:
    """The shapes of one comment, written once for every instance of a shared class.

    A size that is the same in every instance is written as is; one that differs is written as the argument
    with the same values, or as '*'.
    """
    first = per_inst[0]
    if not first or any(ts is None or len(ts) != len(first) or any(t is None for t in ts) for ts in per_inst):
        return ""
    out = []
    for j, t in enumerate(first):
        dims = []
        for k in range(t.rank):
            vals = [str(ts[j].shape[k]) if k < ts[j].rank else "?" for ts in per_inst]
            dims.append(vals[0] if len(set(vals)) == 1 else grp.arg_vecs.get(tuple(vals), "*"))
        out.append(fmt_type(t, dims))
    return ", ".join(out)


_MARK = re.compile(r"  #@(\d+)$")


def _fill_marks(line: str, render) -> str:
    """Replace a trailing ``#@k`` placeholder by the k-th member's shape comment (or drop it)."""
    m = _MARK.search(line)
    if not m:
        return line
    text = render(int(m.group(1)))
    return line[:m.start()] + ("  # " + comment(text) if text else "")


def _class_text(grp: ClassGroup, by_index: list) -> str:
    lines = [_SLOT.sub(lambda m: grp.slot_text[int(m.group(1))], line) for line in grp.template]
    lines = [_call_children(line, by_index) for line in lines]
    init, fwd = lines[:grp.n_init], lines[grp.n_init:]
    d0 = grp.drafts[0]

    def mark(k):
        loc = d0.marks[k][1]
        s = _render_dims(grp, [d.shapes([d.marks[k][0]]) for d in grp.drafts])
        return "  ".join(([s] if s else []) + ([where(loc)] if loc is not None else []))

    used = f" It is used {len(grp.drafts)} times." if len(grp.drafts) > 1 else ""
    base = "nn.Sequential" if grp.sequential else "nn.Module"
    ins = [_render_dims(grp, [d.shapes([d.ins[j]]) for d in grp.drafts]) for j in range(len(d0.args))]
    sig_comment = "  # " + comment(", ".join(f"{a}: {s}" for a, s in zip(d0.args, ins))) if d0.args and all(ins) else ""
    out = [f"class {grp.name}({base}):",
           INDENT + docstring(f"The '{grp.block}' block.{used}"),
           "",
           f"{INDENT}def __init__(self{''.join(', ' + a for a, _, _ in grp.args)}):{sig_comment if grp.sequential else ''}"]
    out += [INDENT * 2 + _fill_marks(line, mark) for line in init]
    if grp.sequential:
        return "\n".join(out) + "\n"
    out += ["", f"{INDENT}def forward(self{''.join(', ' + a for a in d0.args)}):{sig_comment}"]
    for k, code in enumerate(fwd):
        _, refs0, loc = d0.fwd[k]
        cm = []
        if refs0 is not None:
            s = _render_dims(grp, [d.shapes(d.fwd[k][1]) for d in grp.drafts])
            if s:
                cm.append(s)
        if loc is not None:
            cm.append(where(loc))
        out.append(INDENT * 2 + code + ("  # " + comment("  ".join(cm)) if cm else ""))
    return "\n".join(out) + "\n"


def _top_text(gen: Generator, name: str, refs: dict, by_index: list) -> str:
    g = gen.g
    gen.marks = []
    init = gen.init_lines("self", gen.children.get(None, []), refs)
    init = [_call_children(line, by_index) for line in init]
    types = {(nid, k): t for nid, n in g.nodes.items() for k, t in enumerate(n.out)}

    def mark(k):
        ref, loc = gen.marks[k]
        t = types.get(tuple(ref))
        return "  ".join(([fmt_type(t)] if t is not None else []) + ([where(loc)] if loc is not None else []))

    in_names = list(g.inputs)
    in_refs = [(g.inputs[k], 0) for k in in_names]
    out_names = list(g.outputs)
    out_refs = [tuple(g.outputs[k]) for k in out_names]
    fwd, args = gen.forward(None, in_refs, in_names, out_refs, out_names, len(out_refs) > 1)
    out = [f"class {name}(nn.Module):", INDENT + docstring(g.doc or f"The network '{g.name}'."), "",
           f"{INDENT}def __init__(self):", f"{INDENT * 2}super().__init__()"]
    out += [INDENT * 2 + _fill_marks(line, mark) for line in init]
    sig = f"{INDENT}def forward(self{''.join(', ' + a for a in args)}):"
    if args:
        sig += "  # " + comment(", ".join(f"{a}: {fmt_type(types[r])}" for a, r in zip(args, in_refs)))
    out += ["", sig]
    for code, refs, loc in fwd:
        ts = [types.get(r) for r in refs] if refs is not None else None
        cm = []
        if ts is not None and all(t is not None for t in ts):
            cm.append(", ".join(fmt_type(t) for t in ts))
        if loc is not None:
            cm.append(where(loc))
        out.append(INDENT * 2 + code + ("  # " + comment("  ".join(cm)) if cm else ""))
    return "\n".join(out) + "\n"


def count_params(graph: Graph) -> int:
    """Number of learned parameters (a shared module counted once), from the graph's weight shapes."""
    total = 0
    for n in graph.nodes.values():
        if n.meta.get("shared_with"):
            continue
        for shape, kind in n.meta.get("weights", {}).values():
            if kind == "param":
                k = 1
                for d in shape:
                    k *= d
                total += k
    return total
