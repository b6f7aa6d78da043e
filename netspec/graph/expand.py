"""Spec -> Graph: expand blocks, repeats, conditions and expressions into a flat DAG with shapes.

Contract: the result holds one Node per op instance, named structurally, with validated concrete params,
``meta["in"]``/``meta["out"]`` tensor types, ``meta["weights"]`` (state_dict shapes) and ``meta["macs"]``.
Every error found is collected (a failed layer poisons only what depends on it) and raised together.

Shapes are inferred while expanding because expressions may ask for them (``channels(x)``); the rules live
in the ops, this pass only calls them in order and records the results.
"""
from __future__ import annotations

import dataclasses
import itertools

from dataclasses import dataclass, field
import math
import re
import functools
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import (ErrorList, GraphError, LimitError, Loc, NetspecError, ShapeError, SpecError, Warning_,
                      did_you_mean)
from ..gcpause import paused
from ..limits import LIMITS
from ..ops.base import OpError, lookup, unknown_op_error
from ..ops.tensors import InputOp
from ..shapes import InferCtx, Requirement, SymCtx, TensorType, Dim, is_sym, norm
from ..shapes_dim import resimplify
from ..spec.expr import ExprError, parse as parse_expr
from ..spec.load import BlockRef, NetworkRef, Spec, exact_value
from ..spec.parse import Source
from ..spec.models import LAYER_KEYS, assertion_key, loop_index, op_owns_index, owns_shape
from . import assertions
from ..spec.names import input_name_problem, is_template, name_problem, template_parts
from .ir import Container, Graph, Node


# what one op, seq or block instance costs of LIMITS.max_work, against one step of an expression (a node evaluated,
# or 16 items of a list made): an instance takes about as long as 25 such steps
INSTANCE_WORK = 25
EMPTY_BLOCK_WORK = 100        # more for a block instance that adds no node: real networks have few of them


_MISSING = object()


class _Poison(Exception):
    """A layer depends on one that already failed: skip it without a second error."""


@dataclass(slots=True)
class Entry:
    """A name in a scope: the values it stands for."""

    refs: list                     # ValueRef per output
    names: list                    # output names
    loc: Loc | None = None
    poisoned: bool = False
    source: bool = False           # a layer without inputs (param, buffer)
    disabled: bool = False
    passes: tuple = ()             # a layer dropped by 'if': the outputs it would have, each passing its input on
    children: dict | None = None   # a group (seq, repeat): its members by structural name ('0', 'conv1'), for body.0


class TensorVal:
    """A tensor as seen by expressions: only the shape functions can look inside."""

    __slots__ = ("t",)

    def __init__(self, t: TensorType):
        self.t = t

    def __repr__(self) -> str:
        return f"tensor{self.t}"


def _tensor(v, fn: str) -> TensorType:
    if not isinstance(v, TensorVal):
        raise ExprError(f"{fn}() takes a tensor (a layer or input name), got {type(v).__name__}")
    return v.t


def _dim_value(d):
    return norm(d)


def _f_channels(t):
    tt = _tensor(t, "channels")
    if tt.rank < 2:
        raise ExprError(f"channels() needs a tensor of rank >= 2, got {tt}")
    return _dim_value(tt.shape[1])


def _f_features(t):
    tt = _tensor(t, "features")
    if tt.rank < 1:
        raise ExprError("features() needs a tensor of rank >= 1")
    return _dim_value(tt.shape[-1])


def _f_shape(t):
    return tuple(_dim_value(d) for d in _tensor(t, "shape").shape)


def _f_dim(t, i):
    tt = _tensor(t, "dim")
    if not isinstance(i, int) or not -tt.rank <= i < tt.rank:
        raise ExprError(f"dim(): index {i!r} out of range for a rank-{tt.rank} tensor")
    return _dim_value(tt.shape[i])


def _f_rank(t):
    return _tensor(t, "rank").rank


SHAPE_FUNCS = {"channels": _f_channels, "features": _f_features, "shape": _f_shape, "dim": _f_dim, "rank": _f_rank}


@dataclass
class _Default:
    """One scoped default: its value, where it is written, its expression text, and the block depth it is written
    at (a layer at that depth may keep the expression in generated code)."""

    value: Any
    loc: Loc
    text: str | None
    depth: int


class _Env(dict):
    """Expression environment: values, plus scope names resolved lazily to tensors."""

    def __init__(self, values: dict, lookup_tensor):
        super().__init__(values)
        self._lookup = lookup_tensor

    def __missing__(self, key):
        v = self._lookup(key)
        if v is None:
            raise KeyError(key)
        return v

    def __contains__(self, key):
        if dict.__contains__(self, key):
            return True
        return self._lookup(key) is not None

    def keys_for_hint(self):
        return list(dict.keys(self))


@functools.lru_cache(maxsize=None)
def _adapter(annotation) -> TypeAdapter:
    return TypeAdapter(annotation)


@dataclass
class _Scope:
    entries: dict                           # local name -> Entry
    parent: "_Scope | None" = None          # lexical parent (for 'seq' only)
    names_here: set = field(default_factory=set)   # all layer names of this body (for hints)
    children: dict = field(default_factory=dict)   # structural name -> Entry of each layer present ('0', 'conv1')

    def get(self, name: str):
        s = self
        while s is not None:
            if name in s.entries:
                return s.entries[name]
            s = s.parent
        return None

    def all_names(self):
        """The names a layer may refer to (a repeat's name template is none of them)."""
        out = []
        s = self
        while s is not None:
            out += [n for n in s.entries if not is_template(n) and not n.startswith("#")]
            s = s.parent
        return out


_COPYABLE_META = frozenset(("in", "out", "weights", "macs", "exprs"))


class _Kept:
    """A block instance that may be copied, not yet recorded (``Expander._keep``)."""
    __slots__ = ("what",)

    def __init__(self, what: tuple):
        self.what = what


class Expander:
    def __init__(self, spec: Spec, net: NetworkRef, params: dict | None, bindings: dict | None, sym: SymCtx):
        self.spec = spec
        self.net = net
        self.user_params = dict(params or {})
        self.bindings = dict(bindings or {})
        self.sym = sym
        self.graph = Graph(name=net.name, file=spec.file, sym=sym, doc=net.raw.get("doc"))
        self.ctx = InferCtx(sym=sym, requirements=self.graph.requirements)
        self.errors: list[NetspecError] = []
        self.block_stack: list[str] = []
        self.param_bytes = 0
        self.all_local_names: dict[str, str] = {}   # local name -> a full id (for "inside another block" hints)
        self.work = [0]                 # the expansion budget spent (LIMITS.max_work): instances, expression steps
        self.eval_cache: dict = {}      # (text, the values it reads) -> value: an expression is evaluated once
        self.dim_names: dict = {}       # what a shape assertion's dims may name: the inputs' symbols (or bound sizes)
        # scoped defaults in force, innermost last: {op name: {field: _Default}} (network, then each block instance)
        self.defaults: list[dict] = [{}]
        self.simple_blocks: dict = {}   # block name -> whether its instances may be copied (_simple_block)
        self.block_memo: dict = {}      # (block, arguments, input types, ...) -> a recorded instance (_record)
        self.body_memo: dict = {}       # (list of layers, flat_of, names in scope) -> its names and dependencies
        self.assert_keys: dict = {}     # op or block name -> the key of its layers' shape assertions
        self.ops: dict = {}             # op name -> Op class or None: the registry does not change while expanding
        self.params_memo: dict = {}     # (op, the values given) -> validated Params (frozen, so shared)
        self.infer_memo: dict = {}      # (op, params, input types, symbol state) -> (outs, weights, macs, bytes)
        self.infer_by_id: dict = {}     # the same, keyed by the input types' ids -> (those types, the result)
        self.scope_memo: dict = {}      # container -> its nodes' scope (_scopes)
        self.sources: dict = {}         # op name -> whether it takes no input (_is_source)

    def _lookup(self, name) -> Any:
        op = self.ops.get(name, _MISSING)
        if op is _MISSING:
            op = self.ops[name] = lookup(name)
        return op

    # -- entry point -----------------------------------------------------------------------------
    def run(self) -> Graph:
        net, src = self.net, self.net.src
        env = self._network_params()
        scope = _Scope({})
        first = None
        inputs = net.raw.get("inputs") or {}
        for iname, decl in inputs.items():
            loc = src.loc(net.path + ("inputs", iname), key=True)
            prob = input_name_problem(iname)
            if prob:
                raise SpecError(f"{prob}: it cannot name an input", loc, "rename the input")
            t = self._input_type(decl, env, src, net.path + ("inputs", iname))
            node = Node(iname, InputOp, InputOp.Params(shape=[], dtype=t.dtype), [], loc,
                        meta={"in": [], "out": [t], "weights": {}, "macs": 0})
            self.graph.add(node)
            self.graph.inputs[iname] = iname
            scope.entries[iname] = Entry([(iname, 0)], ["out"], loc)
            first = first or scope.entries[iname]
        for t in self.graph.input_types().values():
            for d in t.shape:
                if is_sym(d):
                    self.dim_names.update({x: Dim.sym(x) for x in d.free_symbols()})
        self.dim_names.update({k: int(v) for k, v in self.bindings.items()})
        env = self._let(net.raw.get("let"), env, scope, [first] if first else [], src, net.path)
        self.defaults.append(self._scoped_defaults(net.raw.get("defaults"), env, src, net.path))
        last = self._body(net.raw.get("layers") or [], src, net.path + ("layers",), scope, "", env, first, None)
        try:
            self._outputs(net.raw.get("outputs"), scope, last, src, net.path + ("outputs",), self.graph.outputs,
                          self.graph.output_locs, loc_default=net.loc("layers"), env=self._layer_env(env, scope, []))
        except _Poison:
            pass
        except NetspecError as e:
            self.errors.append(e)
        self._warn_unused()
        if self.errors:
            err = ErrorList(self.errors)
            err.graph = self.graph      # what was built, failing layers marked (meta["error"]): draw shows it
            raise err
        _inplace_safety(self.graph)
        return self.graph

    # -- params and inputs ----------------------------------------------------------------------
    def _network_params(self) -> dict:
        src, raw = self.net.src, self.net.raw
        decls = raw.get("params") or {}
        env: dict = {}
        unknown = [k for k in self.user_params if k not in decls]
        for k in unknown:
            raise SpecError(f"unknown parameter '{k}' for network '{self.net.name}'", self.net.loc(),
                            [h for h in [did_you_mean(k, list(decls))] if h] +
                            [f"parameters: {', '.join(decls) or '(none)'}"])
        for pname, decl in decls.items():
            ptype, default, required = _param_decl(decl)
            path = self.net.path + ("params", pname)
            if pname in self.user_params:
                val = self.user_params[pname]
            elif required:
                raise SpecError(f"network parameter '{pname}' has no default and was not given",
                                src.loc(path, key=True), "pass it, e.g. netspec.build(spec, {pname}=...)")
            else:
                val = default
            env[pname] = self._typed(val, ptype, env, src, path, f"parameter '{pname}'")
        self.graph.params = dict(env)
        self.graph.param_decls = [(k, *_param_decl(d)) for k, d in decls.items()]
        return env

    def _input_type(self, decl, env, src: Source, path) -> TensorType:
        if isinstance(decl, dict):
            shape, dtype = decl.get("shape", []), decl.get("dtype", "float32")
            spath = path + ("shape",)
        else:
            shape, dtype, spath = decl, "float32", path
        dims = []
        for j, d in enumerate(shape):
            loc = src.loc(spath + (j,))
            if isinstance(d, bool):
                raise SpecError(f"a dimension must be a number or a symbol, got {d!r}", loc)
            if isinstance(d, int):
                if d < 1 or d > LIMITS.max_dim:
                    raise SpecError(f"dimension {d} is not a positive size", loc) if d < 1 else \
                        LimitError(f"dimension {d:,} is over the limit of {LIMITS.max_dim:,}", loc,
                                   "raise the limit with --limit max_dim=N if you mean it")
                dims.append(d)
                continue
            s = str(d).strip()
            if s.isidentifier() and s not in env:
                self.sym.inputs.add(s)
                if s in self.bindings:
                    dims.append(int(self.bindings[s]))
                else:
                    dims.append(Dim.sym(s))
                continue
            val = self._eval(s, env, loc)
            if isinstance(val, bool) or not isinstance(val, (int, Dim)):
                raise SpecError(f"a dimension must be an integer, got {val!r}", loc)
            if isinstance(val, int) and val < 1:
                raise SpecError(f"dimension {val} is not a positive size", loc)
            if is_sym(val):
                self.sym.inputs.update(val.free_symbols())
            if is_sym(val) and _least_value(val, self.sym) > LIMITS.max_dim:
                raise LimitError(f"dimension '{_clip(s)}' is at least {_big(_least_value(val, self.sym))}, over the "
                                 f"limit of {LIMITS.max_dim:,}", loc,
                                 "raise the limit with --limit max_dim=N if you mean it")
            dims.append(val)
        return TensorType(tuple(dims), dtype)

    # -- expressions --------------------------------------------------------------------------------
    def _spend(self, n: int, loc: Loc) -> None:
        """Spend ``n`` units of the expansion budget; refuse (located) when it runs out."""
        self.work[0] += n
        if self.work[0] > LIMITS.max_work:
            raise LimitError(f"expanding the network takes more than {LIMITS.max_work:,} steps (block instances, "
                             "repeat copies, expression work)", loc,
                             "the spec asks for far more work than its size suggests (deep repeats of blocks, "
                             "costly expressions in repeats); raise the limit with --limit max_work=N if you mean it")

    def _eval(self, text: str, env, loc: Loc):
        try:
            e = parse_expr(text)
            key = _cache_key(text, e.names, env)
            if key is not None and key in self.eval_cache:
                self._spend(1, loc)
                return self.eval_cache[key]
            v = e.eval(env, SHAPE_FUNCS, meter=self.work, sym=self.sym)   # bounded: 500 nodes, 1000 items
            self._spend(1, loc)
            if key is not None:
                self.eval_cache[key] = v
            return v
        except ExprError as e:
            hints = [e.hint] if e.hint else []
            hints = [h for h in hints if h not in e.message]
            raise SpecError(f"in expression '{_clip(text)}': {e.message}", loc, hints) from None
        except _Poison:
            raise
        except RecursionError:
            raise SpecError(f"expression '{_clip(text)}' is nested too deeply", loc) from None

    def _typed(self, val, ptype: str, env, src: Source, path, what: str):
        loc = src.loc(path)
        if isinstance(val, str) and ptype == "str" and val.isidentifier() and dict.__contains__(env, val) \
                and isinstance(dict.__getitem__(env, val), str):
            val = dict.__getitem__(env, val)       # a text parameter passed on by name (act: act)
        elif isinstance(val, str) and ptype not in ("str",):
            val = self._eval(val, env, loc)
        elif isinstance(val, list):
            val = [self._eval(v, env, loc) if isinstance(v, str) and ptype != "str" else v for v in val]
        ok = {
            "int": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or is_sym(v),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
            "str": lambda v: isinstance(v, str),
            "list": lambda v: isinstance(v, (list, tuple)),
            "int_or_list": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, (list, tuple)),
            "any": lambda v: True,
        }[ptype]
        if isinstance(val, float) and ptype == "int" and val.is_integer():
            val = int(val)
        if not ok(val):
            raise SpecError(f"{what} must be {ptype}, got {val!r}", loc)
        return val

    # -- bodies ---------------------------------------------------------------------------------
    def _body(self, layers: list, src: Source, lpath: tuple, scope: _Scope, prefix: str, env: dict,
              first: Entry | None, container: str | None, counter: list | None = None,
              flat_of: str | None = None) -> Entry | None:
        """Expand a list of layers into the graph. Returns the entry of the last layer (the body's result).

        Unnamed layers are numbered by their position among the layers that are present (as in nn.Sequential):
        ``counter`` holds the next number, shared with 'flat' layers that number their contents in this list.
        ``flat_of`` names the block whose body is being spliced into the enclosing list (its layers must be unnamed).
        """
        counter = counter if counter is not None else [0]
        # what depends only on the list of layers (names, references, the chain) is worked out once per list and
        # place: a repeated block's body is the same list for every copy
        mkey = (id(layers), flat_of, tuple(scope.entries))
        known = self.body_memo.get(mkey)
        if known is None or known[0] is not layers:
            known = self.body_memo[mkey] = (layers,) + self._body_names(layers, src, lpath, scope, prefix, flat_of)
        _, names, auto, seen, deps = known
        scope.names_here = set(names)
        # dependencies inside this body: explicit refs, names used in expressions, the implicit chain
        edges: list = []
        prev_of: dict[int, int | None] = {}
        for i, refs, used, implicit, prev, feeds_itself in deps:
            if feeds_itself:
                raise GraphError(f"layer '{names[i]}' takes its own output as input",
                                 src.loc(lpath + (i, "from")), "a layer cannot feed itself; did you mean the previous layer?")
            for b in refs:
                edges.append((b, i))
            for n in used:
                if n in env:          # in an expression a name is the parameter (or let value)
                    where = _tensor_use(layers[i], n)
                    if where is not None:
                        raise GraphError(f"'{n}' in '{where[1]}' is ambiguous: '{n}' is both a parameter (or let "
                                         "value) and a layer of this block", src.loc(lpath + (i, where[0])),
                                         f"in an expression a name is the parameter, but {where[2]}() takes a tensor:"
                                         f" rename the layer '{n}' or the parameter")
                elif seen[n] != i:
                    edges.append((seen[n], i))
            if implicit:
                prev_of[i] = prev
                if prev is not None:
                    edges.append((prev, i))
        if all(a < b for a, b in edges):
            order = list(range(len(layers)))        # every layer reads only earlier ones: the list is the order
        else:
            import networkx as nx
            deps = nx.DiGraph()
            deps.add_nodes_from(range(len(layers)))
            deps.add_edges_from(edges)
            try:
                order = list(nx.lexicographical_topological_sort(deps))
            except nx.NetworkXUnfeasible:     # a cycle: find it only now (find_cycle is slow on long bodies)
                cyc = nx.find_cycle(deps)
                chain = " -> ".join(names[a] for a, _ in cyc) + " -> " + names[cyc[0][0]]
                raise GraphError(f"the layers form a cycle: {chain}", src.loc(lpath + (cyc[0][1],)),
                                 "a network is a DAG: one of these layers must take its input from an earlier "
                                 "one") from None
        last_entry = first
        results: dict[int, Entry] = {}
        for i in order:
            raw = layers[i]
            path = lpath + (i,)
            if i in prev_of:
                p = prev_of[i]
                chain_in = results.get(p) if p is not None else first
            else:
                chain_in = None
            numbered = counter[0]
            try:
                ent = self._layer(raw, src, path, scope, prefix, None if i in auto else names[i], env, chain_in,
                                  container, counter)
            except _Poison:
                ent = Entry([], [], src.loc(path), poisoned=True)
            except NetspecError as e:
                if isinstance(e, ErrorList):
                    self.errors.extend(e.errors)
                else:
                    self.errors.append(e)
                ent = Entry([], [], src.loc(path), poisoned=True)
            results[i] = ent
            scope.entries[names[i]] = ent
            if i not in auto:
                scope.children[names[i]] = ent
            elif counter[0] == numbered + 1 and not ent.poisoned:   # numbered like nn.Sequential: body.0
                scope.children[str(numbered)] = ent
        # the body's result is its last layer in list order (not in evaluation order)
        if layers:
            last_i = len(layers) - 1
            last_entry = results[last_i]
        return last_entry

    def _body_names(self, layers: list, src: Source, lpath: tuple, scope: _Scope, prefix: str,
                    flat_of: str | None):
        """The names of a body's layers and what each depends on (see ``_body``). Returns (names, auto, seen, deps):
        deps holds per layer (index, layers it refers to, layer names its expressions use, implicit, previous,
        whether it refers to itself)."""
        names: list[str] = []
        auto: set[int] = set()
        seen: dict[str, int] = {}
        for i, raw in enumerate(layers):
            nm = raw.get("name")
            if nm is None:
                auto.add(i)
                names.append(f"#{i}")          # a placeholder: unnamed layers cannot be referred to
                continue
            if type(nm) is not str:
                nm = str(nm)
            if flat_of is not None:
                raise GraphError(f"layer '{nm}' of block '{flat_of}' has a name, but the block is used with 'flat: true'",
                                 src.loc(lpath + (i, "name")),
                                 "a flat block's layers are numbered in the enclosing list: remove their names, "
                                 "or use the block without 'flat'")
            template = "{" in nm and is_template(nm)
            if template and raw.get("repeat") is None:
                raise SpecError(f"the name '{nm}' is a template, but the layer has no 'repeat'",
                                src.loc(lpath + (i, "name")),
                                "a template ({...} in a name) names the copies of a repeat: add 'repeat: n', or "
                                "write a plain name")
            prob = name_problem(nm) if not template and not nm.isdigit() else None
            if prob:
                raise SpecError(f"{prob}: it cannot name a layer", src.loc(lpath + (i, "name")),
                                "choose another name, e.g. with a suffix: '" + (nm.strip('_') or 'layer') + "1'")
            if nm in seen:
                raise GraphError(f"two layers are named '{nm}' (the first is at line {src.loc(lpath + (seen[nm],)).line})",
                                 src.loc(lpath + (i, "name")), "names must be unique within a block")
            if nm in scope.entries:
                raise GraphError(f"layer name '{nm}' is already used by an input of this block", src.loc(lpath + (i, "name")),
                                 "rename the layer")
            seen[nm] = i
            names.append(nm)
            self.all_local_names.setdefault(nm, prefix + nm)
        deps: list = []
        prev = None
        for i, raw in enumerate(layers):
            f = raw.get("from")
            implicit = f is None
            refs = [] if implicit else _refs_of(f)
            if raw.get("op") == "seq":
                refs += _nested_refs(raw)
            ref_from: list = []
            feeds_itself = False
            for r in refs:
                base = r.split(".")[0]
                if base in seen and seen[base] != i:
                    ref_from.append(seen[base])
                elif base in seen and seen[base] == i:
                    feeds_itself = True         # reported in _body, after the layers before it
                    break
            used = _expr_names(raw)
            deps.append((i, ref_from, [n for n in used if n in seen] if used else [], implicit, prev, feeds_itself))
            if not self._is_source(raw):
                prev = i
        return names, auto, seen, deps

    def _is_source(self, raw: dict) -> bool:
        name = raw.get("op")
        got = self.sources.get(name) if type(name) is str else False
        if got is None:
            op = self._lookup(name)
            got = self.sources[name] = op is not None and len(op.inputs) == 0
        return got

    # -- one layer ------------------------------------------------------------------------------
    def _layer(self, raw: dict, src: Source, path: tuple, scope: _Scope, prefix: str, name: str | None, env: dict,
               chain_in: Entry | None, container: str | None, counter: list) -> Entry:
        ent = self._plain_layer(raw, src, path, scope, prefix, name, chain_in, container, counter)
        if ent is not None:
            return ent
        loc = src.loc(path)
        opname = raw.get("op")
        shown = name if name is not None else f"{prefix}#{path[-1]}"
        ins, in_locs, slot_names = self._inputs(raw, src, path, scope, chain_in, shown)
        lenv = self._layer_env(env, scope, ins)
        # condition
        if raw.get("if") is not None:
            cond = raw["if"]
            if isinstance(cond, str):
                cond = self._eval(cond, lenv, src.loc(path + ("if",)))
            if not isinstance(cond, bool):
                raise SpecError(f"'if' must be true or false, got {cond!r}", src.loc(path + ("if",)))
            if isinstance(raw["if"], str) and name is not None:
                self.graph.conds[(container, name)] = raw["if"]
            if not cond:
                if name is not None and raw.get("repeat") is None:
                    self.graph.dropped.setdefault(container, []).append(
                        (name, raw["if"], ins[0].refs[0] if ins and ins[0] is not None and ins[0].refs else None,
                         len(self.graph.nodes), loc))
                passes = self._output_names(opname)
                if ins and ins[0] is not None:
                    return Entry(ins[0].refs[:1], ["out"], loc, disabled=True, passes=passes)
                return Entry([], [], loc, disabled=True, passes=passes)
        # repeat
        n = None
        if raw.get("repeat") is not None:
            rv = raw["repeat"]
            if isinstance(rv, str):
                rv = self._eval(rv, lenv, src.loc(path + ("repeat",)))
            if isinstance(rv, float) and rv.is_integer():
                rv = int(rv)
            if not isinstance(rv, int) or isinstance(rv, bool) or rv < 0:
                raise SpecError(f"'repeat' must be a non-negative integer, got {rv!r}", src.loc(path + ("repeat",)))
            if rv > LIMITS.max_repeat:
                raise LimitError(f"repeat count {rv:,} is over the limit of {LIMITS.max_repeat:,}",
                                 src.loc(path + ("repeat",)), "raise it with --limit max_repeat=N if you mean it")
            n = rv
        flat = raw.get("flat") or False       # True: splice contents; "copies": number a repeat's copies only
        splice = flat is True and (opname == "seq" or opname in self.spec.blocks)
        if n is None:
            if splice:
                return self._instance(raw, src, path, scope, prefix, opname, ins, slot_names, lenv, env, container,
                                      flat_counter=counter)
            if name is None:
                name = str(counter[0])
            ent = self._instance(raw, src, path, scope, prefix + name, opname, ins, slot_names, lenv, env, container)
            counter[0] += 1
            return ent
        if n == 0:
            if ins and ins[0] is not None:
                return Entry(ins[0].refs[:1], ["out"], loc, disabled=True)
            return Entry([], [], loc, disabled=True)
        template = name if is_template(name) else None
        if template and flat:
            raise SpecError(f"'{template}' names each copy already: 'flat' cannot number them as well",
                            src.loc(path + ("flat",)), "remove 'flat', or give the layer a plain name")
        if flat or template:
            rpath = None         # the copies are numbered (or named by the template) in the enclosing list
        else:
            if name is None:
                name = str(counter[0])
            counter[0] += 1
            rpath = prefix + name
            self._claim(rpath, loc)
            # its inputs in the repeated layer's slot order, so a loop passes them as each copy takes them
            self.graph.containers[rpath] = Container(rpath, "repeat", None, loc, parent=container,
                                                     inputs=[e.refs[0] for e in ins if e is not None and e.refs],
                                                     index=loop_index(raw), count=n,
                                                     count_expr=raw["repeat"] if isinstance(raw["repeat"], str) else None)
        idx = loop_index(raw)
        cur = ins
        ent = None
        copies: dict = {}                    # a repeat's copies by number, for rep.0
        before = len(self.graph.nodes)
        work_first = self.work[0]
        for k in range(n):
            kenv = dict(env)
            kenv[idx] = k
            klenv = self._layer_env(kenv, scope, cur)
            if rpath is not None:
                ent = self._instance(raw, src, path, scope, f"{rpath}.{k}", opname, cur, slot_names, klenv, kenv, rpath)
                copies[str(k)] = ent
            elif template:                                            # each copy named by the template
                copy_name = self._copy_name(template, klenv, src, path)
                if scope.get(copy_name) is not None or copy_name in scope.names_here:
                    raise GraphError(f"the template '{template}' names a copy '{copy_name}', which another layer or "
                                     "input of this block is already called", src.loc(path + ("name",)))
                ent = self._instance(raw, src, path, scope, prefix + copy_name, opname, cur, slot_names, klenv, kenv,
                                     container)
                scope.entries[copy_name] = ent      # a later layer may name one copy (from: stage2)
                scope.children[copy_name] = ent
            elif splice:                                              # flat: each copy's layers spliced
                ent = self._instance(raw, src, path, scope, prefix, opname, cur, slot_names, klenv, kenv, container,
                                     flat_counter=counter)
            else:
                ent = self._instance(raw, src, path, scope, f"{prefix}{counter[0]}", opname, cur, slot_names, klenv,
                                     kenv, container)
                counter[0] += 1
            if ent.poisoned:
                raise _Poison()
            if k == 0:
                work_first = self.work[0]
            if k == 1:      # copy 1 (expressions that do not read the index are cached by now) tells what each costs
                each_work = self.work[0] - work_first
                if self.work[0] + each_work * (n - k - 1) > LIMITS.max_work:
                    raise LimitError(f"repeating '{shown}' {n:,} times would take about "
                                     f"{self.work[0] + each_work * (n - k - 1):,} expansion steps, over the limit of "
                                     f"{LIMITS.max_work:,}", src.loc(path + ("repeat",)),
                                     f"one copy takes {each_work:,} steps (block instances, also those whose layers "
                                     "'if' drops, and expression work); raise the limit with --limit max_work=N "
                                     "if you mean it")
            if k == 0:   # refuse now what the limit would refuse after building most of it
                each = len(self.graph.nodes) - before
                if before + each * n > LIMITS.max_nodes:
                    raise LimitError(f"repeating '{shown}' {n:,} times would make about {before + each * n:,} nodes, "
                                     f"over the limit of {LIMITS.max_nodes:,}", src.loc(path + ("repeat",)),
                                     f"one copy has {each:,} nodes; raise the limit with --limit max_nodes=N if you mean it")
            cur = [ent] + list(cur[1:]) if cur else [ent]
        self._warn_chained_merge(raw, src, path, opname, shown, n, cur)
        if rpath is not None:
            ent = dataclasses.replace(ent, children=copies)
        return ent

    def _warn_chained_merge(self, raw, src, path, opname, shown, n, cur) -> None:
        """A repeated merge: each copy after the first takes the previous copy as its first input (the chain) and
        the other inputs as written; that mix of an implicit and explicit inputs is rarely what was meant."""
        op = self._lookup(opname) if isinstance(opname, str) else None
        if op is None or op.family != "merge" or n < 2 or len(cur) < 2 or raw.get("from") is None:
            return
        f = raw["from"]
        first = f[0] if isinstance(f, list) and f else next(iter(f.values()), None) if isinstance(f, dict) else f
        self.graph.warnings.append(Warning_(
            f"'{shown}' repeats a merge ({op.name}) {n} times: copies after the first take the previous copy as their "
            f"first input, implicitly, instead of '{first}', and the other inputs as written",
            src.loc(path + ("from",)),
            ["if every copy should merge the inputs as written, write the copies as separate layers (or a block); "
             "if the chain is meant, make it explicit with a block whose input is the chain"]))

    def _assume(self, start: int) -> None:
        """A divisibility a layer needs (U-Net's H % 16 == 0) is assumed at once for all later shapes."""
        sym = self.ctx.sym
        for r in self.ctx.requirements[start:]:
            symbol, mult = r.symbol, r.multiple_of
            if not (symbol and mult):
                symbol, mult = _sufficient_multiple(r.text, sym) or (None, None)
            if symbol and mult:
                m = sym.multiple_of.get(symbol, 1)
                sym.multiple_of[symbol] = m * mult // math.gcd(m, mult)

    def _copy_name(self, template: str, env, src: Source, path) -> str:
        """One copy's name from a template: 'denselayer{i+1}' -> 'denselayer3'."""
        loc = src.loc(path + ("name",))
        out = ""
        for part in template_parts(template):
            if isinstance(part, tuple):
                v = self._eval(part[0], env, loc)
                if isinstance(v, bool) or not isinstance(v, (int, str)):
                    raise SpecError(f"'{{{part[0]}}}' in the name '{template}' gives {v!r}: a name takes a number "
                                    "or text", loc)
                out += str(v)
            else:
                out += part
        prob = name_problem(out) if not out.isdigit() else None
        if prob:
            raise SpecError(f"the template '{template}' names a copy '{out}': {prob}", loc)
        return out

    def _claim(self, node_id: str, loc: Loc) -> None:
        """Refuse a second node or container with the same structural name (one module path, one module)."""
        if node_id in self.graph.nodes or node_id in self.graph.containers:
            first = self.graph.nodes[node_id].loc if node_id in self.graph.nodes else self.graph.containers[node_id].loc
            raise GraphError(f"two layers would both be named '{node_id}' (the other is at line {first.line})", loc,
                             "name the layers explicitly; unnamed layers are numbered by their position among the "
                             "layers present, and 'flat' layers number their contents in the enclosing list")

    def _layer_env(self, env: dict, scope: _Scope, ins: list) -> _Env:
        def lookup_tensor(name):
            e = scope.get(name)
            if e is None:
                if name == "input" and ins and ins[0] is not None and ins[0].refs:
                    e = ins[0]
                else:
                    return None
            if e.poisoned:
                raise _Poison()
            if not e.refs:
                return None
            return TensorVal(self.graph.type_of(e.refs[0]))
        return _Env(env, lookup_tensor)

    def _inputs(self, raw, src: Source, path, scope: _Scope, chain_in: Entry | None, name: str):
        """Resolve 'from' into entries. Returns (list of Entry|None, list of locs, slot names or None)."""
        f = raw.get("from")
        if f is None:
            if self._is_source(raw):
                return [], [], None
            if chain_in is None:
                raise GraphError(f"layer '{name}' has no input: it is the first layer and there is none to chain from",
                                 src.loc(path), "give it 'from: <input name>'")
            if chain_in.poisoned:
                raise _Poison()
            if not chain_in.refs:
                raise GraphError(f"layer '{name}' takes its input from a layer that produces nothing (disabled by 'if')",
                                 src.loc(path), "give it an explicit 'from'")
            return [chain_in], [src.loc(path)], None
        if isinstance(f, dict):
            ents, locs, slots = [], [], []
            for slot, ref in f.items():
                loc = src.loc(path + ("from", slot))
                ents.append(self._resolve(ref, scope, loc, name))
                locs.append(loc)
                slots.append(slot)
            return ents, locs, slots
        refs = [f] if isinstance(f, str) else list(f)
        ents, locs = [], []
        for j, ref in enumerate(refs):
            loc = src.loc(path + ("from",) + ((j,) if not isinstance(f, str) else ()))
            ents.append(self._resolve(ref, scope, loc, name))
            locs.append(loc)
        return ents, locs, None

    def _resolve(self, ref: str, scope: _Scope, loc: Loc, name: str, who: str | None = None) -> Entry:
        """The entry a reference names: a layer or input ('conv1', '2', 'block1-0'), then steps that are a group's
        members by structural name ('body.0': seq and repeat) or a layer's outputs by declared name ('lstm.h')."""
        base, *steps = ref.split(".")
        e = scope.get(base)
        if e is None:
            hints = []
            dym = did_you_mean(base, scope.all_names())
            if dym:
                hints.append(dym)
            if base in self.all_local_names and self.all_local_names[base] != base:
                hints.append(f"'{base}' exists inside another block ({self.all_local_names[base]}); a layer can only "
                             "refer to names in its own block: its inputs and its sibling layers")
            elif base in scope.names_here:
                pass
            hints.append("names in scope: " + ", ".join(scope.all_names()) if scope.all_names() else "")
            raise GraphError(f"{who or f'layer {name!r}'} refers to '{base}', which is not defined here", loc,
                             [h for h in hints if h])
        here = base
        for k, step in enumerate(steps):
            if e.poisoned:
                raise _Poison()
            kids = e.children or {}
            outs = e.passes if e.disabled else e.names
            same = step in kids and step in e.names and kids[step].refs[:1] == e.refs[e.names.index(step):][:1]
            if step in kids and step in outs and not same:
                raise GraphError(f"'{here}.{step}' is ambiguous: '{step}' is both a member of the group '{here}' and "
                                 "an output of its last layer (a different tensor)", loc,
                                 f"rename the member '{step}', or name the last layer and refer to its output "
                                 "through it")
            if step in kids:
                e, here = kids[step], f"{here}.{step}"
                continue
            if k < len(steps) - 1:
                hint = (f"its members: {', '.join(kids)}" if kids else
                        f"'{here}' is not a group (seq or repeat); only a group's members can be named after a '.', "
                        "and then an output last")
                dym = did_you_mean(step, list(kids)) if kids else None
                raise GraphError(f"'{here}' has no member '{step}'", loc, [h for h in (dym, hint) if h])
            return self._output_of(e, here, step, ref, loc, name, kids)
        if e.poisoned:
            raise _Poison()
        if not e.refs:
            raise GraphError(f"layer '{name}' refers to '{here}', which was dropped by its 'if' and has no input to "
                             "pass through", loc, "refer to another layer, or make the condition true")
        return e

    def _output_of(self, e: Entry, base: str, out: str, ref: str, loc: Loc, name: str, kids: dict) -> Entry:
        """Output ``out`` of the layer entry ``e`` (named ``base`` in the reference)."""
        if e.disabled and out in e.passes:          # every output of a dropped layer passes its input on
            if not e.refs:
                raise GraphError(f"layer '{name}' refers to '{ref}', but '{base}' was dropped by its 'if' and has no "
                                 "input to pass through", loc, "refer to another layer, or make the condition true")
            return Entry(e.refs[:1], [out], e.loc)
        if out not in e.names:
            hints = [h for h in (did_you_mean(out, list(e.passes or e.names) + list(kids)),) if h]
            hints.append(f"its outputs: {', '.join(e.passes or e.names) or '(none)'}"
                         + (f"; its members: {', '.join(kids)}" if kids else ""))
            raise GraphError(f"'{base}' has no output {'or member ' if kids else ''}'{out}'", loc, hints)
        k = e.names.index(out)
        return Entry([e.refs[k]], [out], e.loc)

    def _plain_layer(self, raw: dict, src: Source, path: tuple, scope: _Scope, prefix: str, name: str | None,
                     chain_in: Entry | None, container: str | None, counter: list) -> Entry | None:
        """A layer of a built-in op with constant parameters, its inputs the previous layer or plain names, and
        nothing else (no if, repeat, share, flat, shape, index, doc), whose parameters and inference an earlier
        layer has already validated and worked out: the node ``_layer`` (``_instance``, ``_op``) would add, in fewer
        steps, as a network written out layer by layer is made of such layers. Anything else, or anything that
        could be an error or reach a limit, returns None with nothing done, and the long way handles it."""
        opname = raw.get("op")
        op = self._lookup(opname) if type(opname) is str else None
        if op is None or self.defaults[-1].get(op.name):
            return None
        info = _op_info(op)
        spec_in = op.inputs
        ref = None
        values: dict = {}
        for key, val in raw.items():
            if key == "name" or key == "op":
                continue
            if key == "from":            # one plain name, or a list of them (the inputs of an add or concat)
                if type(val) is str:
                    if "." in val:
                        return None
                elif type(val) is not list or not val or \
                        not all(type(x) is str and "." not in x for x in val):
                    return None
                ref = val
                continue
            t = type(val)
            if key in info.skip or not (t is int or t is float or t is bool or val is None):
                return None
            fname = info.by_alias.get(key, key)
            if (t is bool and fname in info.bool_as_number) or (fname in info.number_as_bool and t is not bool):
                return None
            values[key] = val
        if ref is not None:
            if not spec_in:
                return None
            ins = []
            for r in ([ref] if type(ref) is str else ref):
                e = scope.get(r)
                if e is None or e.poisoned or not e.refs:
                    return None
                ins.append(e)
        elif not spec_in:
            ins = []
        elif chain_in is None or chain_in.poisoned or not chain_in.refs:
            return None
        else:
            ins = [chain_in]
        if spec_in:
            if spec_in[0].variadic:     # a list in 'from', as many as the op needs (_slots)
                if type(ref) is not list or len(ins) < spec_in[0].min_count:
                    return None
            elif len(ins) > len(spec_in) or not all(s.optional for s in spec_in[len(ins):]):
                return None
        pkey = _values_key(op, values)
        params = self.params_memo.get(pkey) if pkey is not None else None
        if params is None:
            return None
        nodes = self.graph.nodes
        in_refs = [x.refs[0] for x in ins]
        in_types = [nodes[r[0]].meta["out"][r[1]] for r in in_refs]
        got = self.infer_by_id.get((pkey, tuple(map(id, in_types)), self._infer_state()))
        if got is None:
            return None
        hit = got[1]
        node_id = prefix + (name if name is not None else str(counter[0]))
        if self.work[0] + INSTANCE_WORK > LIMITS.max_work or node_id.count(".") > 4 * LIMITS.max_block_depth or \
                len(nodes) >= LIMITS.max_nodes or self.param_bytes + hit[3] > LIMITS.max_param_bytes or \
                node_id in nodes or node_id in self.graph.containers:
            return None
        # what the long way does, in its order
        loc = src.loc(path)
        param_locs = {info.by_alias.get(k, k): src.loc(path + (k,)) for k in values}
        self.work[0] += INSTANCE_WORK
        self.ctx.node = node_id
        outs = list(hit[0])
        self.param_bytes += hit[3]
        nodes[node_id] = Node(node_id, op, params, in_refs, loc, self._scopes(container), param_locs,
                              meta={"in": in_types, "out": outs, "weights": dict(hit[1]), "macs": hit[2]})
        counter[0] += 1
        return _op_entry(node_id, op, len(outs), loc)

    # -- instances: op, seq or block ----------------------------------------------------------------
    def _instance(self, raw, src, path, scope, node_id, opname, ins, slot_names, lenv, env, container,
                  flat_counter: list | None = None) -> Entry:
        """One op node, seq or block instance at ``node_id``; with ``flat_counter``, a seq or block whose layers are
        spliced into the enclosing list (``node_id`` is then the enclosing prefix)."""
        loc = src.loc(path)
        self._spend(INSTANCE_WORK, loc)  # every instance counts, even one whose layers 'if' drops
        if node_id.count(".") > 4 * LIMITS.max_block_depth:
            raise LimitError("blocks are nested too deeply", loc,
                             "raise the limit with --limit max_block_depth=N if you mean it")
        if len(self.graph.nodes) >= LIMITS.max_nodes:
            raise LimitError(f"the network has more than {LIMITS.max_nodes:,} nodes", loc,
                             "raise it with --limit max_nodes=N if you mean it")
        ent = self._instance_of(raw, src, path, scope, node_id, opname, ins, slot_names, lenv, env, container,
                                flat_counter)
        key = self.assert_keys.get(opname) if isinstance(opname, str) else None
        if key is None:
            key = assertion_key(raw, self.spec.blocks)
            if isinstance(opname, str):
                self.assert_keys[opname] = key
        if raw.get(key) is not None and ent.refs and not ent.disabled:
            kind = "layer" if self._lookup(opname) is not None else "group" if opname == "seq" else "block instance"
            shown = node_id.rstrip(".") or opname
            self._assert_shape(raw[key], ent.refs[0], f"{kind} '{shown}' ({opname})", src, path + (key,), key, lenv)
        return ent

    def _instance_of(self, raw, src, path, scope, node_id, opname, ins, slot_names, lenv, env, container,
                     flat_counter) -> Entry:
        loc = src.loc(path)
        if raw.get("share") is not None and self._lookup(opname) is None:      # a seq or block instance: never ignored
            raise GraphError(f"'share: {raw['share']}' on a {'seq' if opname == 'seq' else 'block instance'}: only a "
                             "single layer (an op) can share another's module", src.loc(path + ("share",)),
                             "share each layer inside it instead, or use one instance for both inputs")
        if opname == "seq":
            return self._seq(raw, src, path, scope, node_id, ins, env, container, flat_counter)
        op = self._lookup(opname)
        if op is not None:
            return self._op(raw, src, path, scope, node_id, op, ins, slot_names, lenv, container)
        if opname in self.spec.blocks:
            nodes_before = len(self.graph.nodes)
            ent = self._block(raw, src, path, node_id, self.spec.blocks[opname], ins, slot_names, lenv, container,
                              flat_counter)
            if len(self.graph.nodes) == nodes_before:    # pure overhead: a block whose layers 'if' dropped
                self._spend(EMPTY_BLOCK_WORK, loc)
            return ent
        raise unknown_op_error(opname, src.loc(path + ("op",)), list(self.spec.blocks))

    def _assert_shape(self, written, ref, what: str, src: Source, kpath: tuple, key: str, env) -> None:
        """Record a shape assertion (checked in ``expand`` once every requirement is known)."""
        loc = src.loc(kpath, key=True)
        if not isinstance(written, list):
            raise SpecError(f"'{key}' asserts a shape: a list of dimensions, got {written!r}", loc,
                            f"e.g. {key}: [N, 64, H/2, W/2]")
        names = dict(self.dim_names)
        # data-dependent sizes introduced so far (a detector's K detections) may be stated like the inputs' symbols
        names.update({x: Dim.sym(x) for x in self.sym.data if x not in names})
        for k, v in dict.items(env) if isinstance(env, dict) else ():
            if isinstance(v, int) and not isinstance(v, bool):
                names[k] = v
        def tensor(name):
            if isinstance(env, _Env) and not dict.__contains__(env, name):
                try:
                    v = env[name]
                except KeyError:
                    return None
                return v if isinstance(v, TensorVal) else None
            return None
        dims = assertions.evaluate_dims(written, names, self.sym, [src.loc(kpath + (j,)) for j in range(len(written))],
                                        assertions.Tensors(tensor, {k: SHAPE_FUNCS[k] for k in ("dim", "channels",
                                                                                                "features")}))
        self.graph.assertions.append(assertions.Assertion(tuple(ref), what, tuple(written), dims, loc, key))

    def _op(self, raw, src, path, scope, node_id, op, ins, slot_names, lenv, container) -> Entry:
        loc = src.loc(path)
        values: dict = {}
        param_locs: dict = {}
        exprs: dict = {}                # field -> the spec's expression text (or a list of them), for codegen
        info = _op_info(op)
        fields, by_alias = info.fields, info.by_alias
        for key, val in raw.items():
            if key in info.skip:
                continue
            fname = by_alias.get(key, key)
            ploc = src.loc(path + (key,))
            param_locs[fname] = ploc
            if isinstance(val, (str, list)):
                v = self._param_value(val, fields[fname].annotation if fname in fields else Any, lenv, ploc)
                if isinstance(val, str) and v is not val:
                    exprs[fname] = val
                elif isinstance(val, list) and any(isinstance(x, str) for x in val):
                    exprs[fname] = [x if isinstance(x, str) and w is not x else None for x, w in zip(val, v)]
            else:
                v = val
            values[key] = v
            if isinstance(v, bool) and fname in info.bool_as_number:
                # pydantic would read true as 1: 'out: true' or 'out: "a < b"' would silently make a size of 1
                raise SpecError(f"'{key}' of layer '{node_id}' ({op.name}) must be a number, not {v}", ploc,
                                "true and false (and comparisons like 'a < b') are not numbers")
            if fname in info.number_as_bool and not isinstance(v, bool):
                # pydantic would read 0, 0.0 or 'off' as false: 'bias: "a - a"' would silently drop the bias
                raise SpecError(f"'{key}' of layer '{node_id}' ({op.name}) must be true or false, not "
                                f"{v!r}", ploc, "write true or false, or a comparison like 'a > b'")
        for fname, d in self.defaults[-1].get(op.name, {}).items():
            key = fields[fname].alias or fname
            if key in values:
                continue                            # the layer's own value wins
            values[key] = d.value
            param_locs[fname] = d.loc
            if d.text is not None and d.depth == len(self.block_stack):
                exprs[fname] = d.text               # written in this block: the expression reads its names
        pkey = _values_key(op, values)
        params = self.params_memo.get(pkey) if pkey is not None else None
        if params is None:
            params = self._validate(op, values, node_id, loc, param_locs, by_alias)
            if pkey is not None:
                self.params_memo[pkey] = params
        # inputs -> slots
        in_types, in_refs = self._slots(op, ins, slot_names, src, path, node_id)
        sym = self.sym
        ikey = fkey = hit = None
        if pkey is not None:
            state = self._infer_state()
            # the very same input type objects (a chain passes its types on): no need to hash their shapes
            fkey = (pkey, tuple(map(id, in_types)), state)
            got = self.infer_by_id.get(fkey)
            if got is not None:
                hit = got[1]
            else:
                try:
                    ikey = (pkey, tuple(None if t is None else (t.shape, t.dtype, t.high) for t in in_types)) + state
                    hit = self.infer_memo.get(ikey)
                except TypeError:           # an unhashable bound (high): inferred afresh
                    ikey = hit = None
                if hit is not None:
                    self.infer_by_id[fkey] = (tuple(in_types), hit)     # the types kept: their ids stay theirs
        self.ctx.node = node_id
        if hit is not None:
            # the same op, parameters and input types under the same assumptions: the same result (a repeat's copies)
            outs, weights, macs, nbytes = list(hit[0]), dict(hit[1]), hit[2], hit[3]
        else:
            nreq = len(self.ctx.requirements)
            outs, weights, macs, nbytes = self._infer(op, params, in_types, in_refs, node_id, loc, param_locs,
                                                      container)
            if ikey is not None and nreq == len(self.ctx.requirements) and ikey[2:] == self._infer_state():
                hit = self.infer_memo[ikey] = (tuple(outs), dict(weights), macs, nbytes)
                self.infer_by_id[fkey] = (tuple(in_types), hit)
        share = raw.get("share")
        shared_with = None
        if share is not None:
            target = scope.get(share)
            sloc = src.loc(path + ("share",))
            if share == raw.get("name"):
                raise GraphError(f"layer '{share}' shares its own module", sloc,
                                 "name an earlier layer of the same op whose weights this one should use")
            if target is None and share in scope.names_here:
                raise GraphError(f"'share: {share}' names a later layer", sloc,
                                 "a layer can only share the module of a layer above it")
            if target is not None and target.disabled:
                raise GraphError(f"'share: {share}' names a layer dropped by its 'if'", sloc,
                                 "make its condition true, or share another layer")
            if target is None or not target.refs:
                raise GraphError(f"'share: {share}' names no layer in this block", sloc,
                                 [h for h in [did_you_mean(share, scope.all_names())] if h])
            tnode = self.graph.nodes.get(target.refs[0][0])
            if tnode is not None and tnode.local_name != share:   # its value comes from inside a group of layers
                kind = next((c.kind for c in map(self.graph.containers.get, tnode.scope)
                             if c is not None and c.path.rsplit(".", 1)[-1] == share), "group")
                what = {"block": "a block instance", "seq": "a 'seq' group", "repeat": "a repeated layer"}.get(kind, "a group")
                raise GraphError(f"'share: {share}' names {what}, not a single layer", sloc,
                                 "share one layer of the same op (a layer inside a block can share only within it)")
            tied = tnode is not None and tnode.op is not op and tnode.op.name in op.ties_to
            if tnode is None or (tnode.op is not op and not tied):
                also = "".join(f" or an '{t}' layer" for t in op.ties_to)
                raise GraphError(f"'{node_id}' can only share the module of another '{op.name}' layer{also}", sloc,
                                 "a linear layer with bias: false may share a token embedding's weight (tied "
                                 "input and output embeddings)" if op.ties_to else None)
            tw = tnode.meta["weights"]
            if tied and {k: v[0] for k, v in tw.items()} != {k: v[0] for k, v in weights.items()}:
                want = ", ".join(f"{k} {list(v[0])}" for k, v in tw.items())
                have = ", ".join(f"{k} {list(v[0])}" for k, v in weights.items())
                raise ShapeError(f"'{node_id}' cannot use the weights of '{tnode.id}': it needs {have}, "
                                 f"'{tnode.id}' has {want}", sloc,
                                 "a tied output layer has bias: false, out: the vocabulary size and the embedding "
                                 "size as its input features")
            if not tied and ({k: v[0] for k, v in tw.items()} != {k: v[0] for k, v in weights.items()} or
                             tnode.params != params):
                raise ShapeError(f"'{node_id}' cannot share '{tnode.id}': their parameters differ "
                                 f"({tnode.params} vs {params})", sloc, "shared layers need the same op, parameters and input sizes")
            shared_with = tnode.meta.get("shared_with") or tnode.id
        else:
            self.param_bytes += nbytes
            if self.param_bytes > LIMITS.max_param_bytes:
                raise LimitError(f"the network's weights would need {self.param_bytes / 2**30:,.1f} GiB "
                                 f"(float32), over the limit of {LIMITS.max_param_bytes / 2**30:,.1f} GiB",
                                 loc, f"'{node_id}' alone needs {nbytes / 2**30:,.2f} GiB; raise the limit with "
                                      "--limit max_param_bytes=N if you mean it")
        scopes = self._scopes(container)
        self._claim(node_id, loc)
        node = Node(node_id, op, params, in_refs, loc, scopes, param_locs,
                    meta={"in": in_types, "out": outs, "weights": weights, "macs": macs})
        if shared_with:
            node.meta["shared_with"] = shared_with
        if exprs:
            node.meta["exprs"] = exprs
        self.graph.nodes[node_id] = node
        return _op_entry(node_id, op, len(outs), loc)

    def _validate(self, op, values, node_id, loc, param_locs, by_alias):
        try:
            return op.Params.model_validate(values)
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            key = err["loc"][0] if err["loc"] else None
            if err["type"] == "missing":        # left out where no scoped default gives it
                raise SpecError(f"layer '{node_id}' ({op.name}) is missing the required field '{key}'", loc,
                                f"write it, or give it with 'defaults: {{{op.name}: {{{key}: ...}}}}' in this block "
                                "or around it") from None
            ploc = param_locs.get(by_alias.get(key, key), loc) if key is not None else loc
            msg = err["msg"].removeprefix("Value error, ")
            what = f"'{key}' of " if key is not None else ""
            raise SpecError(f"{what}layer '{node_id}' ({op.name}): {msg}", ploc,
                            _param_hint(op, err)) from None

    def _infer(self, op, params, in_types, in_refs, node_id, loc, param_locs, container):
        """Shape rule, weights and MACs of one op node, with the checks on its output sizes and weights.
        Returns (outs, weights, macs, weight bytes)."""
        self.ctx.node = node_id
        try:
            before = len(self.ctx.requirements)
            outs = op.infer(in_types, params, self.ctx)
            self._no_data_requirement(before)
            self._assume(before)
            weights = op.weights(in_types, params)
            macs = op.macs(in_types, outs, params)
        except OpError as e:
            where = param_locs.get(e.param, loc) if e.param else loc
            self._failed(node_id, op, params, in_refs, in_types, loc, param_locs, container, e.message)
            raise ShapeError(f"{node_id} ({op.name}): {e.message}", where, e.hints) from None
        except ExprError as e:
            raise ShapeError(f"{node_id} ({op.name}): {e.message}", loc) from None
        for o in outs:
            for d in o.shape:
                if isinstance(d, int) and (d < 1 or d > LIMITS.max_dim):
                    hint = "the input is too small for this layer (or the sizes do not fit)" if d < 1 else None
                    raise ShapeError(f"{node_id} ({op.name}): the output shape {o} has a dimension of {d}",
                                     loc, hint)
                if is_sym(d) and _least_value(d, self.sym) > LIMITS.max_dim:
                    raise LimitError(f"{node_id} ({op.name}): an output dimension is at least "
                                     f"{_big(_least_value(d, self.sym))} at any size of "
                                     f"{', '.join(sorted(d.free_symbols()))}, over the limit of {LIMITS.max_dim:,}",
                                     loc, "raise the limit with --limit max_dim=N if you mean it")
        nbytes = 0
        for wname, (wshape, kind) in weights.items():
            numel = 1
            for d in wshape:
                if not isinstance(d, int):
                    raise ShapeError(f"{node_id} ({op.name}): the size of '{wname}' depends on the input size ({d})",
                                     loc, "fix the symbol to a number in 'inputs', or pool to a fixed size first")
                numel *= d
            nbytes += numel * 4
        return outs, weights, macs, nbytes

    def _let(self, raw, env: dict, scope: _Scope, ins: list, src: Source, path: tuple) -> dict:
        """``let:`` values of a network or block, in order: each an expression over the parameters, earlier let
        values and the shapes of the inputs. Returns the environment with them added."""
        if not raw:
            return env
        env = dict(env)
        for name, val in raw.items():
            loc = src.loc(path + ("let", name), key=True)
            if name in env:
                raise SpecError(f"'let: {name}' has the name of a parameter (or an earlier let value)", loc,
                                "give the derived value a name of its own")
            vloc = src.loc(path + ("let", name))
            lenv = self._layer_env(env, scope, ins)
            if isinstance(val, str):
                val = self._eval(val, lenv, vloc)
            elif isinstance(val, list):
                val = [self._eval(v, lenv, vloc) if isinstance(v, str) else v for v in val]
            env[name] = val
        return env

    def _scoped_defaults(self, raw, env: dict, src: Source, path: tuple) -> dict:
        """The defaults in force inside a network or block: the enclosing ones, overridden op by op and field by
        field by its own ``defaults:`` (evaluated here, where they are written)."""
        outer = self.defaults[-1]
        if not raw:
            return outer
        merged = {k: dict(v) for k, v in outer.items()}
        depth = len(self.block_stack)
        for opname, fields in raw.items():
            op = lookup(opname)
            for fname, val in (fields or {}).items():
                loc = src.loc(path + ("defaults", opname, fname))
                f = op.Params.model_fields[fname]
                value = self._param_value(val, f.annotation, env, loc)
                text = val if isinstance(val, str) and value is not val else None
                merged.setdefault(op.name, {})[fname] = _Default(value, loc, text, depth)
        return merged

    def _output_names(self, opname) -> tuple:
        """The outputs a layer of this op, block or seq has (what a reference to a dropped one may name)."""
        op = self._lookup(opname) if isinstance(opname, str) else None
        if op is not None:
            return tuple(op.outputs)
        bref = self.spec.blocks.get(opname) if isinstance(opname, str) else None
        outs = bref.raw.get("outputs") if bref is not None else None
        if isinstance(outs, dict):
            return tuple(outs)
        if isinstance(outs, list):
            return tuple(str(r).replace(".", "_") for r in outs)
        return ("out",)

    def _failed(self, node_id, op, params, in_refs, in_types, loc, param_locs, container, message: str) -> None:
        """Keep a layer whose shape rule failed as a node without outputs, marked with the message, so that a
        diagram of the spec can show where it fails (the expansion ends in an error either way)."""
        if node_id not in self.graph.nodes:
            self.graph.add(Node(node_id, op, params, in_refs, loc, self._scopes(container), param_locs,
                                meta={"in": in_types, "out": [], "weights": {}, "macs": 0, "error": message}))

    def _param_value(self, val, annotation, lenv, loc: Loc):
        if isinstance(val, str):
            if val.isidentifier() and isinstance(lenv.get(val), str):
                return lenv[val]                     # a str parameter passed on (an einsum equation)
            try:
                _adapter(annotation).validate_python(val)
                return val                           # a literal string the param accepts ('same', 'bilinear')
            except (ValidationError, TypeError, Exception):
                pass
            choices = _str_choices(annotation)
            if choices and val.isidentifier() and val not in lenv:
                raise SpecError(f"invalid value '{val}'", loc,
                                [h for h in [did_you_mean(val, choices)] if h] + ["choose one of: " + ", ".join(choices)])
            return self._value(self._eval(val, lenv, loc), loc)
        if isinstance(val, list):
            choices = _str_choices(annotation)
            return [v if not isinstance(v, str) or v in choices else self._value(self._eval(v, lenv, loc), loc)
                    for v in val]
        return val

    def _value(self, v, loc):
        if is_sym(v):
            raise SpecError(f"this value depends on the input size ({v}); parameters must be fixed numbers", loc,
                            "fix the symbol to a number in 'inputs'")
        if isinstance(v, tuple):
            return [self._value(x, loc) for x in v]
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            return v  # pydantic turns 3.0 into 3 for int fields
        return v

    def _no_data_requirement(self, start: int) -> None:
        """A condition on a size only the data decides (``R == K``: two detectors' counts) can never be promised by
        the user: it is the op's error, not a printed requirement."""
        if not self.sym.data:
            return
        for r in self.ctx.requirements[start:]:
            names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", r.text)) & self.sym.data
            if names:
                raise OpError(f"the sizes only agree when {r.text}, and {', '.join(sorted(names))} "
                              f"{'is a size' if len(names) == 1 else 'are sizes'} only the data decides",
                              "connect tensors that come from the same op (the same boxes, the same detections)")

    def _slots(self, op, ins, slot_names, src, path, node_id):
        """Map resolved input entries onto the op's input slots. Returns (types, refs)."""
        spec_in = op.inputs
        if slot_names is None and spec_in and len(ins) <= len(spec_in) and not spec_in[0].variadic and \
                all(e is not None for e in ins) and all(s.optional for s in spec_in[len(ins):]):
            # the usual layer: its inputs in order, every required one given
            nodes = self.graph.nodes
            refs = [e.refs[0] for e in ins]
            return [nodes[r[0]].meta["out"][r[1]] for r in refs], refs
        loc = src.loc(path)
        if not spec_in:
            if ins:
                raise GraphError(f"'{node_id}' ({op.name}) takes no inputs, but 'from' gives {len(ins)}",
                                 src.loc(path + ("from",)), "remove 'from'")
            return [], []
        if spec_in[0].variadic:
            if slot_names is not None:
                raise GraphError(f"'{node_id}' ({op.name}) takes a list of inputs, not named ones",
                                 src.loc(path + ("from",)), "write from: [a, b]")
            if len(ins) < spec_in[0].min_count:
                raise GraphError(f"'{node_id}' ({op.name}) needs at least {spec_in[0].min_count} inputs, got {len(ins)}",
                                 src.loc(path + ("from",)) if raw_has(src, path, "from") else loc,
                                 "list them: from: [a, b]")
            refs = [e.refs[0] for e in ins]
            return [self.graph.type_of(r) for r in refs], refs
        names = [s.name for s in spec_in]
        slots: list = [None] * len(spec_in)
        if slot_names is not None:
            for sn, e in zip(slot_names, ins):
                if sn not in names:
                    raise GraphError(f"'{node_id}' ({op.name}) has no input named '{sn}'",
                                     src.loc(path + ("from", sn), key=True),
                                     [h for h in [did_you_mean(sn, names)] if h] + [f"its inputs: {', '.join(names)}"])
                slots[names.index(sn)] = e
        else:
            if len(ins) > len(spec_in):
                raise GraphError(f"'{node_id}' ({op.name}) takes at most {len(spec_in)} inputs ({', '.join(names)}), "
                                 f"got {len(ins)}", src.loc(path + ("from",)))
            for k, e in enumerate(ins):
                slots[k] = e
        for k, s in enumerate(spec_in):
            if slots[k] is None and not s.optional:
                raise GraphError(f"'{node_id}' ({op.name}) is missing its input '{s.name}'",
                                 src.loc(path + ("from",)) if raw_has(src, path, "from") else loc,
                                 f"its inputs: {', '.join(names)}; write from: {{{s.name}: <layer>}}")
        refs = [e.refs[0] if e is not None else None for e in slots]
        # drop trailing absent optionals
        while refs and refs[-1] is None:
            refs.pop()
        types = [self.graph.type_of(r) if r is not None else None for r in refs]
        return types, refs

    def _scopes(self, container: str | None) -> tuple:
        """The enclosing containers of a node in ``container``, outermost first (one tuple per container, shared by
        its nodes: a container's parent never changes)."""
        if container is None:
            return ()
        out = self.scope_memo.get(container)
        if out is None:
            out = self.scope_memo[container] = self._scopes(self.graph.containers[container].parent) + (container,)
        return out

    def _seq(self, raw, src, path, scope, node_id, ins, env, container, flat_counter=None) -> Entry:
        loc = src.loc(path)
        if len(ins) > 1:
            raise GraphError(f"'{node_id}' (seq) takes one input, got {len(ins)}", src.loc(path + ("from",)))
        if flat_counter is not None:
            inner = _Scope({}, parent=scope)
            last = self._body(raw.get("layers") or [], src, path + ("layers",), inner, node_id, env,
                              ins[0] if ins else None, container, flat_counter, flat_of="seq")
            if last is None or last.poisoned:
                raise _Poison()
            return Entry(last.refs, last.names, loc)
        self._claim(node_id, loc)
        self.graph.containers[node_id] = Container(node_id, "seq", None, loc, parent=container,
                                                   inputs=[e.refs[0] for e in ins], input_names=["x"])
        inner = _Scope({}, parent=scope)
        first = ins[0] if ins else None
        last = self._body(raw.get("layers") or [], src, path + ("layers",), inner, node_id + ".", env, first, node_id)
        if last is None or last.poisoned:
            raise _Poison()
        c = self.graph.containers[node_id]
        c.outputs = last.refs[:1]
        c.output_names = ["out"]
        return Entry(last.refs, last.names, loc, children=inner.children)

    def _block(self, raw, src, path, node_id, bref: BlockRef, ins, slot_names, lenv, container,
               flat_counter=None) -> Entry:
        loc = src.loc(path)
        if bref.name in self.block_stack:
            chain = " -> ".join(self.block_stack[self.block_stack.index(bref.name):] + [bref.name])
            raise GraphError(f"block '{bref.name}' contains itself: {chain}", loc,
                             "blocks cannot be recursive; use 'repeat' for a chain of copies")
        if len(self.block_stack) >= LIMITS.max_block_depth:
            raise LimitError(f"blocks are nested more than {LIMITS.max_block_depth} deep", loc,
                             "raise the limit with --limit max_block_depth=N if you mean it")
        bdef = bref.raw
        # arguments
        decls = bdef.get("params") or {}
        args = {k: v for k, v in raw.items() if k not in LAYER_KEYS or (k == "shape" and "shape" in decls)}
        if "out_shape" in raw and "shape" not in decls:
            raise SpecError(f"block '{bref.name}' has no parameter 'shape': its shape assertion is written 'shape'",
                            src.loc(path + ("out_shape",), key=True), "rename 'out_shape' to 'shape'")
        benv: dict = {}
        for k in args:
            if k not in decls:
                raise SpecError(f"block '{bref.name}' has no parameter '{k}'", src.loc(path + (k,), key=True),
                                [h for h in [did_you_mean(k, list(decls))] if h] +
                                [f"its parameters: {', '.join(decls) or '(none)'}"])
        for pname, decl in decls.items():
            ptype, default, required = _param_decl(decl)
            if pname in args:
                val = args[pname]
                vsrc, vpath, venv = src, path + (pname,), lenv
            elif required:
                raise SpecError(f"block '{bref.name}' needs the parameter '{pname}'", loc,
                                f"add {pname}: <value> to this layer")
            else:
                val = default
                vsrc, vpath = bref.src, bref.path + ("params", pname)
                venv = _Env(dict(benv), lambda n: None)     # defaults may use earlier params
            benv[pname] = self._typed(val, ptype, venv, vsrc, vpath, f"parameter '{pname}' of block '{bref.name}'")
            choices = decl.get("choices") if isinstance(decl, dict) else None
            if choices is not None and benv[pname] not in choices:
                raise SpecError(f"parameter '{pname}' of block '{bref.name}' must be one of {choices}, got {benv[pname]!r}",
                                vsrc.loc(vpath))
        # inputs
        bins = bdef.get("inputs", ["x"])
        bin_names = list(bins) if isinstance(bins, (list, dict)) else ["x"]
        if slot_names is not None:
            for sn in slot_names:
                if sn not in bin_names:
                    raise GraphError(f"block '{bref.name}' has no input '{sn}'", src.loc(path + ("from", sn), key=True),
                                     [h for h in [did_you_mean(sn, bin_names)] if h] + [f"its inputs: {', '.join(bin_names)}"])
            mapping = dict(zip(slot_names, ins))
        else:
            if len(ins) > len(bin_names):
                raise GraphError(f"block '{bref.name}' takes {len(bin_names)} input(s) ({', '.join(bin_names)}), got {len(ins)}",
                                 src.loc(path + ("from",)))
            mapping = dict(zip(bin_names, ins))
        for bn in bin_names:
            if bn not in mapping:
                raise GraphError(f"block '{bref.name}' needs its input '{bn}'", loc,
                                 f"write from: {{{bn}: <layer>}} or list all inputs in order")
        in_refs = [mapping[b].refs[0] for b in bin_names]
        flat = flat_counter is not None
        if not flat:
            self._claim(node_id, loc)
            if bref.name not in self.graph.block_decls:
                self.graph.block_decls[bref.name] = [(k, *_param_decl(d)) for k, d in decls.items()]
            cont = self.graph.containers[node_id] = Container(
                node_id, "block", bref.name, loc, args=dict(benv), parent=container, inputs=list(in_refs),
                input_names=bin_names, arg_exprs={k: v for k, v in args.items() if isinstance(v, str)
                                                  and _param_decl(decls[k])[0] != "str"} if args else {})
        memo_key = marks = None
        if not flat and self._simple_block(bref):
            memo_key = self._block_key(bref, benv, in_refs)
            rec = self.block_memo.get(memo_key) if memo_key is not None else None
            if type(rec) is _Kept:          # the first instance: recorded now that it is copied
                rec = self.block_memo[memo_key] = self._record(*rec.what)
            outs = self._replay(rec, node_id, in_refs) if rec else None
            if outs is not None:
                cont.outputs = list(outs.values())
                cont.output_names = list(outs)
                return Entry(list(outs.values()), list(outs), loc)
            marks = self._marks() if memo_key is not None and memo_key not in self.block_memo else None
        bscope = _Scope({})
        for bn in bin_names:
            e = mapping[bn]
            bscope.entries[bn] = Entry(e.refs[:1], ["out"], e.loc)
        self.block_stack.append(bref.name)
        pushed = False
        try:
            first = bscope.entries[bin_names[0]] if bin_names else None
            benv = self._let(bdef.get("let"), benv, bscope, [first] if first else [], bref.src, bref.path)
            self.defaults.append(self._scoped_defaults(bdef.get("defaults"), benv, bref.src, bref.path))
            pushed = True
            last = self._body(bdef.get("layers") or [], bref.src, bref.path + ("layers",), bscope,
                              node_id if flat else node_id + ".", benv, first, container if flat else node_id,
                              flat_counter, flat_of=bref.name if flat else None)
            outs: dict = {}
            olocs: dict = {}
            spec_out = bdef.get("outputs")
            self._outputs(spec_out, bscope, last, bref.src, bref.path + ("outputs",), outs, olocs,
                          loc_default=bref.loc("layers"),
                          env=self._layer_env(benv, bscope, []) if spec_out is not None else None,
                          owner=node_id.rstrip("."))
        finally:
            self.block_stack.pop()
            if pushed:
                self.defaults.pop()
        if not flat:
            c = self.graph.containers[node_id]
            c.outputs = list(outs.values())
            c.output_names = list(outs)
        if marks is not None:
            self._keep(memo_key, marks, node_id, in_refs, outs)
        return Entry(list(outs.values()), list(outs), loc)

    # -- block instances expanded once, copied after ---------------------------------------------------------------
    # A block whose layers are plain ops or block instances (no 'let', 'defaults', 'if', 'repeat', 'share', 'flat' or
    # seq) and whose expansion evaluated no expression, added only block instances and plain nodes and reported
    # nothing gives the same nodes and inner instances (params, types, weights, MACs, locations) for every instance
    # with the same arguments and input types under the same defaults and symbol assumptions, up to their names: the
    # deep chain of a repeat, a deep nesting. The first such instance is noted (_keep), recorded when a second one
    # comes (_record) and copied from then on (_replay); a copy that a limit, a name clash or a block containing
    # itself would stop is expanded layer by layer instead, which reports it.

    def _simple_block(self, bref: BlockRef) -> bool:
        ok = self.simple_blocks.get(bref.name)
        if ok is None:
            bdef = bref.raw
            layers = bdef.get("layers")
            ok = not bdef.get("let") and not bdef.get("defaults") and isinstance(layers, list) and bool(layers) and all(
                isinstance(l, dict) and isinstance(l.get("op"), str)
                and (self._lookup(l["op"]) is not None or l["op"] in self.spec.blocks)
                and not any(l.get(k) is not None for k in ("if", "repeat", "share", "flat")) for l in layers)
            self.simple_blocks[bref.name] = ok
        return ok

    def _block_key(self, bref: BlockRef, benv: dict, in_refs: list):
        if len(set(in_refs)) != len(in_refs):
            return None
        try:
            types = tuple((t.shape, t.dtype, t.high) for t in map(self.graph.type_of, in_refs))
            key = (bref.name, id(bref), _values_key(None, benv), types, len(self.block_stack),
                   id(self.defaults[-1]), self._sym_state())
            hash(key)
        except TypeError:
            return None
        return None if key[2] is None else key

    def _infer_state(self) -> tuple:
        """What an op's inference reads besides its parameters and input types: the symbols' assumptions."""
        sym = self.sym
        return tuple(sym.multiple_of.items()), len(sym.data), len(sym.inputs)

    def _sym_state(self) -> tuple:
        return self._infer_state() + (len(self.ctx.requirements),)

    def _marks(self) -> tuple:
        g = self.graph
        return (len(g.nodes), len(self.errors), len(g.warnings), len(g.requirements), len(g.assertions),
                len(g.containers), len(g.conds), len(g.dropped), self.work[0], self._sym_state(), len(self.eval_cache),
                self.defaults[-1], self.param_bytes)

    def _keep(self, key, marks: tuple, node_id: str, in_refs: list, outs: dict) -> None:
        """Note the first instance with ``key`` if nothing on its way stops copying it; it is recorded (``_record``)
        only when a second instance comes (most instances of a deep nesting never have one)."""
        g = self.graph
        n = len(g.nodes) - marks[0]
        k = len(g.containers) - marks[5]
        if n <= 0 or self._marks()[1:11] != marks[1:5] + (marks[5] + k,) + marks[6:8] + \
                (marks[8] + INSTANCE_WORK * (n + k),) + marks[9:11]:
            return                          # an error, warning, requirement, expression or dropped layer on the way
        self.block_memo[key] = _Kept((marks, node_id, in_refs, outs, (n, k, self.param_bytes - marks[12])))

    def _record(self, marks: tuple, node_id: str, in_refs: list, outs: dict, size: tuple):
        """What instance ``node_id`` added (its nodes and the block instances inside it, relative to it), to copy;
        None where it cannot be copied (see above)."""
        g = self.graph
        n, k, total = size                  # nodes, block instances and weight bytes it added
        prefix = node_id + "."
        cut = len(prefix)
        scopes = self._scopes(node_id)
        own: dict = {}                      # node id -> its position among the nodes added
        in_pos = {r: j for j, r in enumerate(in_refs)}

        def ref(r):                         # (1, position of an added node, output) or (0, input position)
            if r is None:
                return None
            j = own.get(r[0])
            if j is not None:
                return (1, j, r[1])
            return (0, in_pos[r])           # KeyError: something from outside the block (not copied)

        # the containers inside: block instances only, each below this one (relative paths, parents first)
        conts = []
        where = {node_id: None}             # container -> its path relative to this instance (None: this one)
        blocks = set()
        try:
            for c in itertools.islice(g.containers.values(), marks[5], marks[5] + k):
                if c.kind != "block" or not c.path.startswith(prefix) or c.parent not in where:
                    return None
                where[c.path] = c.path[cut:]
                blocks.add(c.block)
                conts.append((c.path[cut:], where[c.parent], c.block, c.loc, c.args, c.arg_exprs,
                               c.input_names, c.output_names))
            items = []
            memo = self.scope_memo
            for node in itertools.islice(g.nodes.values(), marks[0], marks[0] + n):
                inner = node.scope[-1] if node.scope else None
                if not node.id.startswith(prefix) or inner not in where or \
                        (node.scope is not memo.get(inner) and node.scope != self._scopes(inner)) or \
                        not node.meta.keys() <= _COPYABLE_META:
                    return None
                items.append((node.id[cut:], where[inner], node.op, node.params, [ref(r) for r in node.inputs],
                              node.loc, node.param_locs, node.meta))
                own[node.id] = len(own)
            # the containers' inputs and outputs, now that every node is known
            conts = [c + ([ref(r) for r in x.inputs], [ref(r) for r in x.outputs]) for c, x in
                     zip(conts, itertools.islice(g.containers.values(), marks[5], marks[5] + k))]
            out_spec = [(name, ref(r)) for name, r in outs.items()]
        except KeyError:
            return None
        dots = max([it[0].count(".") for it in items] + [c[0].count(".") for c in conts])
        return marks[11], items, out_spec, total, n, conts, frozenset(blocks), dots, node_id

    def _replay(self, rec, node_id: str, in_refs: list) -> dict | None:
        """The nodes (and inner block instances) of a recorded block instance, added again under ``node_id``; None
        (nothing added) where a limit, a name already taken or a block containing itself stops it: then the caller
        expands it layer by layer and reports that."""
        defaults, items, out_spec, total, n, conts, blocks, dots, first = rec
        g = self.graph
        k = len(conts)
        prefix = node_id + "."
        if defaults is not self.defaults[-1] or self.work[0] + INSTANCE_WORK * (n + k) > LIMITS.max_work or \
                len(g.nodes) + n > LIMITS.max_nodes or self.param_bytes + total > LIMITS.max_param_bytes or \
                (blocks and not blocks.isdisjoint(self.block_stack)) or \
                prefix.count(".") + dots > 4 * LIMITS.max_block_depth:
            return None
        ids = [prefix + it[0] for it in items]
        cids = [prefix + c[0] for c in conts]
        nodes, containers = g.nodes, g.containers
        for i in ids:
            if i in nodes or i in containers:
                return None
        for i in cids:
            if i in nodes or i in containers:
                return None

        def ref(r):
            if r is None:
                return None
            return (ids[r[1]], r[2]) if r[0] else in_refs[r[1]]
        scope_of = {None: self._scopes(node_id)}
        path_of = {None: node_id}
        memo = self.scope_memo
        for cid, (rel, parent, block, loc, args, arg_exprs, in_names, out_names, ins, outs) in zip(cids, conts):
            # (the arguments, names and expressions are the recorded instance's own objects: shared, never changed)
            containers[cid] = Container(cid, "block", block, loc, args, [ref(r) for r in ins], in_names,
                                        [ref(r) for r in outs], out_names, path_of[parent], arg_exprs)
            path_of[rel] = cid
            memo[cid] = scope_of[rel] = scope_of[parent] + (cid,)
        for nid, (_, inner, op, params, inputs, loc, param_locs, meta) in zip(ids, items):
            # a node's own meta dict, holding the recorded node's types, weights and expressions (shared, never
            # changed: Node)
            m = {"in": meta["in"], "out": meta["out"], "weights": meta["weights"], "macs": meta["macs"]}
            if "exprs" in meta:
                m["exprs"] = meta["exprs"]
            nodes[nid] = Node(nid, op, params, [None if r is None else (ids[r[1]], r[2]) if r[0] else in_refs[r[1]]
                                                for r in inputs], loc, scope_of[inner], param_locs, m)
        self.work[0] += INSTANCE_WORK * (n + k)
        self.param_bytes += total
        self.ctx.node = ids[-1]
        g.copies[node_id] = (first, items[0][0], n)
        return {name: ref(r) for name, r in out_spec}

    def _outputs(self, spec_out, scope: _Scope, last: Entry | None, src: Source, opath, into: dict, locs: dict, loc_default,
                 env=None, owner: str | None = None):
        if spec_out is None:
            if last is None or last.poisoned:
                if last is not None and last.poisoned:
                    raise _Poison()
                raise GraphError("there are no layers, so there is no output", loc_default)
            if not last.refs:
                raise GraphError("the last layer produces nothing (dropped by its 'if')", loc_default,
                                 "name the outputs explicitly with 'outputs:'")
            into["out"] = last.refs[0]
            locs["out"] = last.loc
            return
        items = ([(str(spec_out).split(".")[0], spec_out, opath)] if isinstance(spec_out, str) else
                 [(_output_name(r), r, opath + (j,)) for j, r in enumerate(spec_out)] if isinstance(spec_out, list) else
                 [(k, r, opath + (k,)) for k, r in spec_out.items()])
        if isinstance(spec_out, str):
            items = [("out", spec_out, opath)]
        if not items:
            raise GraphError("'outputs' is empty: the network would compute nothing", src.loc(opath),
                             "name at least one layer, e.g. outputs: [fc], or leave 'outputs' out to use the last layer")
        for oname, ref, p in items:
            loc = src.loc(p)
            stated = None
            if isinstance(ref, dict):            # {from: fc, shape: [N, 10]}
                stated, ref = ref.get("shape"), ref.get("from")
            if oname in into:
                raise GraphError(f"the output '{oname}' is listed twice (first at {locs[oname].line}:{locs[oname].col})", loc,
                                 "each output needs its own name; write outputs as a mapping, e.g. {a: fc, b: fc}")
            try:
                e = self._resolve(ref, scope, loc, oname, who=f"output '{oname}'")
            except _Poison:
                raise
            into[oname] = e.refs[0]
            locs[oname] = loc
            if stated is not None:
                what = f"output '{oname}' of block instance '{owner}'" if owner else f"output '{oname}'"
                self._assert_shape(stated, e.refs[0], what, src, p + ("shape",), "shape", env or {})

    def _warn_unused(self):
        used = set()
        for n in self.graph.nodes.values():
            for r in n.inputs:
                if r is not None:
                    used.add(r[0])
        for r in self.graph.outputs.values():
            used.add(r[0])
        for n in self.graph.nodes.values():
            if n.id not in used and not self.errors:
                what = "input" if n.op is InputOp else "layer"
                self.graph.warnings.append(Warning_(f"{what} '{n.id}' is not used by any output", n.loc,
                                                    "remove it, or use it in 'from' or 'outputs'"))


# ops whose output may be a view of their input (an in-place op on it writes into the input)
_VIEW_OPS = frozenset({"flatten", "reshape", "permute", "transpose", "squeeze", "unsqueeze", "select", "slice",
                       "split", "chunk", "identity"})


def _inplace_safety(g: Graph) -> None:
    """An op asked to work in place (``relu: {inplace: true}``) does so only where that cannot change a result: its
    input is read by nothing else, is not a network input or output, and its producer's backward does not need it.
    Elsewhere it runs out of place (state_dict and outputs are the same), with a warning naming the other reader."""
    owns: dict = {}             # op -> whether it has an 'inplace' parameter
    for n in g.nodes.values():
        has = owns.get(n.op)
        if has is None:
            has = owns[n.op] = "inplace" in n.op.Params.model_fields or hasattr(n.op.Params, "inplace")
        if has and getattr(n.params, "inplace", False):
            break
    else:
        return                  # nothing asks to work in place
    uses: dict = {}
    for n in g.nodes.values():
        for r in n.inputs:
            if r is not None:
                uses.setdefault(tuple(r), []).append(n.id)
    outs = {tuple(r) for r in g.outputs.values()}
    unsafe: dict = {}

    def why_not(r, reader: str):
        src = g.nodes[r[0]]
        others = [u for u in uses.get(r, []) if u != reader]
        if others:
            return f"its input '{r[0]}' is also read by '{others[0]}'"
        if src.op is InputOp:
            return "its input is a network input"
        if r in outs:
            return f"its input '{r[0]}' is a network output"
        if src.op.name in _VIEW_OPS and src.inputs and src.inputs[0] is not None:
            return why_not(tuple(src.inputs[0]), src.id)     # a view shares its input's memory
        if src.op.backward_needs_output:
            return f"the backward of '{r[0]}' ({src.op.name}) needs its output"
        return None
    for n in g.nodes.values():
        if not getattr(n.params, "inplace", False) or not n.inputs or n.inputs[0] is None:
            continue
        why = why_not(tuple(n.inputs[0]), n.id)
        if why:
            unsafe.setdefault(n.meta.get("shared_with") or n.id, (n, why))
    for n in g.nodes.values():
        key = n.meta.get("shared_with") or n.id
        if key in unsafe and getattr(n.params, "inplace", False):
            n.params = n.params.model_copy(update={"inplace": False})
    for key, (n, why) in unsafe.items():
        g.warnings.append(Warning_(f"'{n.id}' runs out of place: {why}", n.param_locs.get("inplace", n.loc),
                                   "in place would change a value something else reads; remove 'inplace: true'"))


@dataclass(frozen=True)
class _OpInfo:
    """What ``_op`` needs of an op's parameter model, worked out once per op instead of once per node."""

    fields: dict
    by_alias: dict
    skip: frozenset                 # layer keys that are not parameters of this op
    bool_as_number: frozenset       # fields pydantic would fill from a boolean (int or float, no bool)
    number_as_bool: frozenset       # fields that take only booleans


_OP_INFO: dict = {}


def _op_info(op) -> _OpInfo:
    info = _OP_INFO.get(op)
    if info is None:
        fields = op.Params.model_fields
        skip = frozenset(k for k in LAYER_KEYS if not (k == "index" and "index" in fields)
                         and not (k == "shape" and "shape" in fields))
        info = _OP_INFO[op] = _OpInfo(
            fields, {(f.alias or n): n for n, f in fields.items()}, skip,
            frozenset(n for n, f in fields.items() if _bool_as_number(f.annotation)),
            frozenset(n for n, f in fields.items() if _number_as_bool(f.annotation)))
    return info


def _op_entry(node_id: str, op, n_outs: int, loc: Loc) -> Entry:
    """The scope entry of a new op node: its outputs by name."""
    if n_outs == 1:
        return Entry([(node_id, 0)], [op.outputs[0]] if op.outputs else ["out"], loc, source=not op.inputs)
    return Entry([(node_id, k) for k in range(n_outs)], list(op.outputs)[:n_outs] or ["out"], loc,
                 source=not op.inputs)


def _values_key(op, values: dict):
    """A hashable key of an op's given parameter values, exact to the type (1, 1.0 and true differ, as do 0.0 and
    -0.0), or None when a value is not plain data (then the values are validated afresh)."""
    try:
        return (op,) + tuple((k, exact_value(v)) for k, v in values.items())
    except TypeError:
        return None


def raw_has(src: Source, path, key) -> bool:
    return src.has(tuple(path) + (key,))


def _param_decl(decl):
    """(type, default, required) from a param declaration in any of its forms."""
    TYPES = ("int", "float", "bool", "str", "list", "any", "int_or_list")
    if isinstance(decl, dict):
        t = decl.get("type", "any")
        req = decl.get("required", False) or "default" not in decl
        return t, decl.get("default"), bool(req)
    if isinstance(decl, str) and decl in TYPES:
        return decl, None, True
    if decl is None:
        return "any", None, False
    if isinstance(decl, bool):
        return "bool", decl, False
    if isinstance(decl, int):
        return "int", decl, False
    if isinstance(decl, float):
        return "float", decl, False
    if isinstance(decl, str):
        return "str", decl, False
    if isinstance(decl, list):
        return "list", decl, False
    return "any", decl, False


def _nested_refs(raw: dict) -> list[str]:
    """Names a 'seq' layer's inner layers refer to that are not defined inside it (they come from around it)."""
    if raw.get("op") != "seq" or not isinstance(raw.get("layers"), list):
        return []
    inner = {str(l.get("name", k)) for k, l in enumerate(raw["layers"]) if isinstance(l, dict)}
    out = []
    for l in raw["layers"]:
        if isinstance(l, dict):
            for r in _refs_of(l.get("from")) + _nested_refs(l) + sorted(_expr_names(l)):
                if r.split(".")[0] not in inner:
                    out.append(r)
    return out


def _refs_of(f) -> list[str]:
    if f is None:
        return []
    if isinstance(f, str):
        return [f]
    if isinstance(f, dict):
        return [v for v in f.values() if isinstance(v, str)]
    return [v for v in f if isinstance(v, str)]


_CHOICES: dict = {}        # id(annotation) -> (annotation, its string literals): the annotation kept, so the id stays


def _str_choices(annotation) -> list[str]:
    """The string literals a parameter type accepts ('zeros', 'reflect', ...)."""
    got = _CHOICES.get(id(annotation))
    if got is None or got[0] is not annotation:
        got = _CHOICES[id(annotation)] = (annotation, _find_str_choices(annotation))
    return got[1]


def _find_str_choices(annotation) -> list[str]:
    import typing
    out: list[str] = []
    stack = [annotation]
    while stack:
        t = stack.pop()
        if typing.get_origin(t) is typing.Literal:
            out += [a for a in typing.get_args(t) if isinstance(a, str)]
        else:
            stack += list(typing.get_args(t))
    return out


def _annotation_parts(annotation) -> set:
    """The annotation and the types inside it (through Optional/Union and the like), stopping at Literal and
    containers, which are kept whole."""
    import typing
    found: set = set()
    stack = [annotation]
    while stack:
        t = stack.pop()
        found.add(t)
        if typing.get_origin(t) not in (typing.Literal, list, tuple, dict):
            stack += list(typing.get_args(t))
    return found


def _bool_as_number(annotation) -> bool:
    """Whether pydantic would turn a boolean into a number for this parameter type (int or float, but no bool)."""
    found = _annotation_parts(annotation)
    return bool(found & {int, float}) and not found & {bool, Any}


def _number_as_bool(annotation) -> bool:
    """Whether a parameter takes only booleans (or None), so that a number or text must not pass as one."""
    import typing
    found = _annotation_parts(annotation)
    return bool in found and not found & {int, float, str, Any} and not any(
        typing.get_origin(t) in (typing.Literal, list, tuple, dict) for t in found)


def _expr_names(raw: dict) -> set:
    out = set()
    for k, v in raw.items():
        if type(v) is not str and type(v) is not list:
            continue                    # a number, a mapping, ...: no expression in it
        if k in ("op", "name", "from", "share", "doc", "layers", "out_shape") or (k == "index" and not op_owns_index(raw)):
            continue
        if k == "shape" and not owns_shape(raw):        # a shape assertion names symbols, not layers
            continue
        for s in (v if isinstance(v, list) else [v]):
            if isinstance(s, str):
                try:
                    out |= set(parse_expr(s).names)
                except ExprError:
                    pass
    return out


def _output_name(ref) -> str:
    """The output name a listed reference gives (outputs: [fc, body.0, block1-0] -> fc, body_0, block1_0): an
    identifier, as output names are variables in generated code; a name starting with a digit gets 'out_' first."""
    s = re.sub(r"[.-]", "_", str(ref))
    return "out_" + s if s[:1].isdigit() else s


def _tensor_use(raw: dict, name: str) -> tuple | None:
    """Where a layer's expressions pass ``name`` to a shape function (channels(x), dim(x, 1)): (key, text, function)."""
    import ast
    for k, v in raw.items():
        if k in ("op", "name", "from", "share", "doc", "layers", "out_shape") or (k == "index" and not op_owns_index(raw)):
            continue
        for text in (v if isinstance(v, list) else [v]):
            if not isinstance(text, str):
                continue
            try:
                tree = ast.parse(text.strip(), mode="eval")
            except (SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SHAPE_FUNCS \
                        and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == name:
                    return k, text, node.func.id
    return None


def _least_value(d, sym: SymCtx) -> int:
    """A symbolic size at the smallest values of its symbols (1, or their multiple_of); 0 if it cannot say."""
    try:
        v = d.evaluate({x: max(1, sym.multiple_of.get(x, 1)) for x in d.free_symbols()})
    except Exception:        # noqa: BLE001 - a size that is not whole at those values: no bound from here
        return 0
    return v if isinstance(v, int) else 0


def _big(v: int) -> str:
    """A size for a message, also one with more digits than Python will print (4,300)."""
    return f"{v:,}" if v.bit_length() <= 128 else f"about 2**{v.bit_length() - 1}"


def _cache_key(text: str, names, env):
    """A hashable key of an expression and the values of the names it reads, or None (then it is not cached)."""
    try:
        vals = []
        for n in sorted(names):
            v = env[n] if n in env else None
            vals.append((n, _frozen(v.t if isinstance(v, TensorVal) else v)))
        key = (text, tuple(vals))
        hash(key)
        return key
    except (KeyError, TypeError, _Poison):
        return None


def _frozen(v):
    if isinstance(v, list):
        return ("list",) + tuple(_frozen(x) for x in v)
    if isinstance(v, tuple):
        return ("tuple",) + tuple(_frozen(x) for x in v)
    if isinstance(v, dict):
        raise TypeError
    return (type(v).__name__, v)


def _clip(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def _param_hint(op, err) -> list[str]:
    hints = []
    if err["type"] == "extra_forbidden" and err["loc"]:
        dym = did_you_mean(str(err["loc"][0]), list(op.Params.model_fields))
        if dym:
            hints.append(dym)
    if err["type"] == "missing":
        hints.append(f"'{op.name}' needs: " + ", ".join(n for n, f in op.Params.model_fields.items() if f.is_required()))
    return hints


# -- public ------------------------------------------------------------------------------------------

def expand(spec: Spec, network: str | None = None, *, params: dict | None = None, bindings: dict | None = None,
           max_rounds: int = 1) -> Graph:
    """Expand one network of a spec into a Graph with shapes.

    Symbols found to need divisibility (U-Net's H, W) are assumed from then on and the expansion is re-run,
    so shapes print in their simplest form; the requirements are kept in ``graph.requirements``.
    """
    with paused():          # netspec.gcpause: a graph is many small objects and almost no cycles
        return _expand(spec, network, params, bindings)


def _expand(spec: Spec, network: str | None, params: dict | None, bindings: dict | None) -> Graph:
    if not spec.networks:
        raise SpecError("this file defines no network (only blocks)", Loc(spec.file, 1, 1),
                        "add 'inputs' and 'layers', or import this file from a spec that does")
    if network is None:
        network = next(iter(spec.networks))
    if network not in spec.networks:
        raise SpecError(f"no network named '{network}'", Loc(spec.file, 1, 1),
                        [h for h in [did_you_mean(network, list(spec.networks))] if h] +
                        [f"networks: {', '.join(spec.networks)}"])
    from ..pipeline import check_bindings, parse_bind
    bindings = parse_bind(bindings) or None
    check_bindings(spec, network, bindings)
    sym = SymCtx()
    sym.multiple_of.update(spec.symbols)
    for s, v in (bindings or {}).items():
        if v % spec.symbols.get(s, 1):
            m = spec.symbols[s]
            raise SpecError(f"{s} = {v} is not a multiple of {m}, as the file's 'symbols' declare",
                            spec.source.loc(("symbols", s)), f"bind {s} to a multiple of {m}, e.g. {s}={max(m, v // m * m)}")
    stated = _input_multiples(spec.networks[network], bindings or {})
    for s, (m, _) in stated.items():
        have = sym.multiple_of.get(s, 1)
        sym.multiple_of[s] = have * m // math.gcd(have, m)
    assumed = dict(sym.multiple_of)
    try:
        g = Expander(spec, spec.networks[network], params, bindings, sym).run()
    except RecursionError:      # groups nested deeper than Python's stack (a raised max_depth)
        raise LimitError(f"network '{network}' is nested too deeply to expand (max_depth is "
                         f"{LIMITS.max_depth:,}, more than Python's stack allows)", spec.networks[network].loc(),
                         "lower the limit, e.g. --limit max_depth=200, and use 'repeat' or blocks "
                         "instead of deep nesting") from None
    _settle(g, sym, {s: m for s, m in spec.symbols.items() if s not in stated},
            retype=_RETYPE_ALWAYS or sym.multiple_of != assumed)
    _check_assertions(g)
    from .lint import requirement_warnings
    g.warnings.extend(requirement_warnings(g))
    g.spec = spec
    return g


def _check_assertions(g: Graph) -> None:
    """Every stated shape equals the inferred one under the network's requirements (ErrorList otherwise); a
    'linear' applied to a rank-4+ input (a conv feature map) warns unless its shape is stated."""
    errors = []
    for a in g.assertions:
        err = assertions.check(a, g.type_of(a.ref), g.sym)
        if err is not None:
            errors.append(err)
    if errors:
        raise ErrorList(errors)
    stated = {a.ref[0] for a in g.assertions}
    for n in g.nodes.values():
        if n.op.name == "linear" and n.id not in stated and n.meta.get("in") and n.meta["in"][0] is not None \
                and n.meta["in"][0].rank >= 4:
            x, y = n.meta["in"][0], n.out[0]
            g.warnings.append(Warning_(
                f"'{n.id}' (linear) maps only the last dimension of its rank-{x.rank} input {x}, giving {y}", n.loc,
                ["to classify a feature map, flatten it first ({op: flatten}, after a global_avg_pool); "
                 f"if a per-position linear map is what you mean, state it: shape: {_shape_text(y)}"]))


def _shape_text(t: TensorType) -> str:
    return "[" + ", ".join(str(d) for d in t.shape) + "]"
def _input_multiples(net, bindings: dict) -> dict[str, tuple[int, Loc]]:
    """The divisibility an input declares (``multiple_of: {H: 32}``): {symbol: (multiple, where)}, for the symbols
    left free; a bound value that breaks it, or a symbol not in the input's shape, is a located error."""
    out: dict[str, tuple[int, Loc]] = {}
    for iname, decl in (net.raw.get("inputs") or {}).items():
        if not isinstance(decl, dict) or not decl.get("multiple_of"):
            continue
        shape = [str(d).strip() for d in decl.get("shape") or []]
        for s, m in decl["multiple_of"].items():
            loc = net.loc("inputs", iname, "multiple_of", s)
            if s not in shape:
                raise SpecError(f"input '{iname}': '{s}' is not a symbol of its shape [{', '.join(shape)}]",
                                net.src.loc(net.path + ("inputs", iname, "multiple_of", s), key=True),
                                [h for h in [did_you_mean(s, shape)] if h])
            if s in bindings:
                if bindings[s] % m:
                    raise SpecError(f"{s} = {bindings[s]} is not a multiple of {m}, as input '{iname}' requires", loc,
                                    f"bind {s} to a multiple of {m}, e.g. {s}={max(m, bindings[s] // m * m)}")
                continue
            have = out.get(s, (1, loc))[0]
            out[s] = (have * m // math.gcd(have, m), loc)
    return out


_RETYPE_ALWAYS = False      # tests: rewrite the shapes even when no divisibility was found on the way


def _settle(g: Graph, sym: SymCtx, declared: dict, retype: bool = True) -> None:
    """After the one expansion: every shape rewritten under the divisibility found along the way (so the U-Net's
    first layers read H/2, not ceil(H/2)), and the requirements reduced to what those assumptions leave open.
    ``retype`` False: nothing was found on the way (the assumptions only ever grow), so every shape was made under
    the final assumptions already and the rewrite would give it back unchanged."""
    memo: dict = {}         # a network repeats the same few types and sizes on every node: rewrite each once

    def re(d):
        r = memo.get(d)
        if r is None:
            r = memo[d] = resimplify(d, sym)
        return r

    types: dict = {}
    seen: dict = {}         # id -> (type, rewritten): expansion shares type objects between nodes; this keeps them

    def re_type(t):
        got = seen.get(id(t))
        if got is not None:
            return got[1]
        r = types.get(t)
        if r is None:
            r = types[t] = t if not any(is_sym(d) for d in t.shape) else t.with_shape([re(d) for d in t.shape])
        seen[id(t)] = (t, r)
        return r

    for n in g.nodes.values() if retype else ():
        for k in ("in", "out"):
            if n.meta.get(k):
                n.meta[k] = [t if t is None else re_type(t) for t in n.meta[k]]
        if is_sym(n.meta.get("macs")):
            n.meta["macs"] = re(n.meta["macs"])
    reqs = [Requirement(f"{s} % {m} == 0", s, m) for s, m in sym.multiple_of.items()
            if m > 1 and declared.get(s, 1) < m and s not in sym.data]     # an op sets a data size's step
    seen = set()
    for r in g.requirements:
        if not r.symbol and r.text not in seen and not _implied(r.text, sym):
            seen.add(r.text)
            reqs.append(r)
    g.requirements = reqs
    g.sym = sym


def _sufficient_multiple(text: str, sym: SymCtx) -> tuple | None:
    """For an equality of sizes in one symbol that floors make conditional (``H//8 == 2*(H//16)``, a U-Net skip),
    the smallest multiple of the symbol's current step under which it always holds: (symbol, multiple), or None.
    This is the divisibility a user states ('H must be a multiple of 16'); it is checked over a full period."""
    if "==" not in text or any(c in text for c in "<>!"):
        return None
    try:
        e = parse_expr(text)
    except ExprError:
        return None
    if len(e.names) != 1:
        return None
    (s,) = e.names
    step = sym.multiple(s)
    for k in (2 ** j for j in range(0, 11)):
        m = step * k
        try:
            if all(e.eval({s: m * j}) is True for j in range(1, 257)):
                return (s, m) if k > 1 else None
        except ExprError:
            return None
    return None


def _implied(text: str, sym: SymCtx) -> bool:
    """Whether a condition holds for every size the divisibility assumptions allow (checked over a full period of
    values of each symbol, which is where floor and ceil repeat; a condition with an order such as 'T >= 10' is
    never implied)."""
    try:
        e = parse_expr(text)
    except ExprError:
        return False
    names = sorted(e.names)
    if not names or len(names) > 2 or any(op in text for op in ("<", ">")):
        return False
    import itertools
    ranges = [range(sym.multiple(s), sym.multiple(s) * 64 + 1, sym.multiple(s)) for s in names]
    try:
        return all(e.eval(dict(zip(names, vals))) is True for vals in itertools.product(*ranges))
    except ExprError:
        return False


def expand_all(spec: Spec, **kw) -> dict[str, Graph]:
    return {n: expand(spec, n, **kw) for n in spec.networks}
