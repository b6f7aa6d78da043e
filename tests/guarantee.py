"""The guarantee behind `check`: a spec it accepts compiles, builds, and runs forward and backward with every tensor
the shape it printed. Shared by the property tests (test_guarantee.py) and the zoo tests."""
from __future__ import annotations

import random

import torch

import netspec
from netspec.codegen import ir
from netspec.codegen.build import build, compile_source, exec_source, top_class_name
from netspec.errors import NetspecError
from netspec.shapes import is_sym


class Rejected(Exception):
    """`check` refused the spec (not a failure of the guarantee)."""


def bindings_for(spec, g, rng: random.Random, tries: int = 12) -> dict | None:
    """Random sizes for the graph's symbols that meet its printed requirements (checked by expanding with them)."""
    syms = sorted({s for t in g.input_types().values() for d in t.shape if is_sym(d) for s in d.free_symbols()})
    if not syms:
        return {}
    for _ in range(tries):
        b = {}
        for s in syms:
            m = g.sym.multiple(s) or 1
            lo = max(1, -(-4 // m))
            b[s] = m * rng.randint(lo, max(lo, 24 // m if m < 24 else lo + 1))
        if "N" in b:
            b["N"] = rng.randint(2, 3)          # batch norm in training needs two samples
        if not all(_holds(r.text, b) for r in g.requirements):
            continue
        try:
            netspec.expand(spec, g.name, bindings=b)
        except NetspecError:
            continue
        return b
    return None


def _holds(text: str, b: dict) -> bool:
    """A printed requirement ('H % 16 == 0', 'T >= 10', 'ceil(H/8) == ceil(H/16)') at these sizes."""
    from netspec.spec.expr import parse
    return bool(parse(text.replace("/", "/")).eval(b))


def _concrete(t, b):
    """The shape at sizes ``b``; a data-dependent size (a symbol an op introduced, a detector's K) stays None."""
    return tuple(int(d.evaluate(b)) if is_sym(d) and d.free_symbols() <= set(b) else None if is_sym(d) else int(d)
                 for d in t.shape)


def _fits(got: tuple, want: "_Typed", data: dict) -> bool:
    """A run-time shape against a type at the bound sizes: a data-dependent size is any number, the same one
    everywhere (``data`` remembers each by its symbol)."""
    return len(got) == len(want.values) and all(
        g == w if w is not None else data.setdefault(str(d), g) == g for g, w, d in zip(got, want.values, want.dims))


class _Typed:
    """A concrete shape that remembers its dims, so a data-dependent size can be told by its symbol."""

    def __init__(self, t, b):
        self.values, self.dims = _concrete(t, b), t.shape

    def __len__(self):
        return len(self.values)

    def __repr__(self):
        return repr(self.values)


def make_input(t, b, gen: torch.Generator):
    shape = tuple(int(d.evaluate(b)) if is_sym(d) else int(d) for d in t.shape)
    if t.is_float:     # not a leaf: an in-place first layer (relu(inplace=True)) is allowed on it
        return torch.randn(shape, generator=gen, dtype=getattr(torch, t.dtype)).requires_grad_(True).clone()
    if t.dtype == "bool":
        return torch.zeros(shape, dtype=torch.bool)
    return torch.zeros(shape, dtype=getattr(torch, t.dtype))      # index 0 is valid for any table


def assert_runs_as_checked(text_or_path, seed: int = 0, name: str = "spec.yaml") -> int:
    """Check; then compile, build and run every network at random valid sizes, comparing every module's output
    (and every input it receives) and every network output with the inferred shapes. Returns the networks run."""
    try:
        spec = netspec.load(text_or_path, name=name) if isinstance(text_or_path, str) and "\n" in text_or_path \
            else netspec.load(text_or_path)
    except NetspecError as e:
        raise Rejected(str(e)) from None
    res = netspec.check(spec)
    if not res.ok:
        raise Rejected("; ".join(e.message for e in res.errors))
    rng = random.Random(seed)
    ran = 0
    for net, g in res.graphs.items():
        # the standalone source imports and constructs (without netspec's help)
        src = compile_source(spec, net)
        compile(src, "model.py", "exec")
        ns = exec_source(src, f"check_{g.name}")
        standalone = ns[top_class_name(src)]()
        model = build(spec, net)
        assert list(standalone.state_dict()) == list(model.state_dict()), "compile and build disagree"
        b = bindings_for(spec, g, rng)
        if b is None:
            continue           # no small sizes meet the requirements (e.g. 'H % 1024 == 0' with a huge stride)
        gen = torch.Generator().manual_seed(seed)
        ins = {k: make_input(t, b, gen) for k, t in g.input_types().items()}
        seen: dict = {}
        hooks = []
        mods = dict(model.named_modules())
        for n in g.nodes.values():      # modules that are the whole node (not a pool whose result is flattened)
            k = len(n.inputs)
            plain = n.op.forward(list(n.meta.get("in", [])), n.params) == \
                ir.Call(ir.Module(), tuple(ir.Operand(j) for j in range(k)), ()) if n.op.inputs else False
            if n.id in mods and not n.meta.get("shared_with") and plain:
                def hook(m, args, out, n=n):
                    seen.setdefault(n.id, (args, out))
                hooks.append(mods[n.id].register_forward_hook(hook))
        model.train()
        out = model(**ins)
        for h in hooks:
            h.remove()
        outs = out if isinstance(out, dict) else dict(zip(g.outputs, out if isinstance(out, tuple) else (out,)))
        data: dict = {}       # the run-time value of each data-dependent size
        for k, t in g.output_types().items():
            assert _fits(tuple(outs[k].shape), _Typed(t, b), data), \
                f"output {k}: {tuple(outs[k].shape)} vs {t} at {b}"
        for nid, (args, o) in seen.items():
            n = g.nodes[nid]
            got = [o] if torch.is_tensor(o) else [x for x in _flat(o)]
            want = [_Typed(t, b) for t in n.out]
            assert len(got) >= len(want) and all(_fits(tuple(x.shape), w, data) for x, w in zip(got, want)), \
                f"{nid} ({n.op.name}) at {b}: {[tuple(x.shape) for x in got]} vs {want}"
            ins_want = [_Typed(t, b) for t in n.meta.get("in", []) if t is not None]
            ins_got = [tuple(a.shape) for a in args if torch.is_tensor(a)]
            assert len(ins_got) <= len(ins_want) and all(_fits(x, w, data) for x, w in zip(ins_got, ins_want)), \
                f"inputs of {nid} ({n.op.name}) at {b}"
        loss = sum(v.float().sum() for v in outs.values() if torch.is_tensor(v) and v.requires_grad)
        if torch.is_tensor(loss):
            loss.backward()
        ran += 1
    return ran


def _flat(o):
    if torch.is_tensor(o):
        yield o
    elif isinstance(o, (tuple, list)):
        for x in o:
            yield from _flat(x)
