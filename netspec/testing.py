"""Checks for op authors: ``check_op(OpClass)`` runs on one op the registry checks every built-in op passes.

The built-ins' registry test (tests/ops/test_registry.py) calls these same functions for every registered op, so a
plugin's op is held to exactly the built-ins' bar::

    from netspec.testing import check_op
    from my_plugin import BlurPool2d

    def test_blur_pool2d():
        check_op(BlurPool2d)

For each of the op's shape cases (``Op.cases``):

1. the shape rule gives the case's (symbolic) output types, and bound to numbers it agrees with itself;
2. the constructor and forward code IR, printed as Python, build a module that runs on random tensors, with outputs
   of the inferred shapes and dtypes; ``weights()`` equals that module's state_dict (keys, shapes, param/buffer);
   ``macs()`` is a non-negative int that agrees with the symbolic count; ``label()`` is text;
3. a one-layer spec using the op checks, compiles (``compile_source``: the standalone source imports and constructs)
   and builds (``netspec.build``), and the built network runs at the bound sizes with outputs of the shapes ``check``
   inferred and a state_dict that ``weights()`` describes.

Failures raise ``AssertionError`` with a message naming the op, the case and what differed. Imports torch.
"""
from __future__ import annotations

import importlib
import json
import math

import torch

from .errors import NetspecError
from .ops.base import Op, case_types, lookup, op_problems
from .shapes import InferCtx, TensorType, is_sym

__all__ = ["ENV", "check_op", "check_definition", "check_case", "check_case_in_spec", "spec_writable", "namespace",
           "source"]

# the value each symbol of a case is bound to when the case runs in torch
ENV = {"N": 2, "T": 5, "S": 3, "E": 16, "C": 4, "H": 8, "W": 6, "D": 4, "L": 12}


def check_op(op: type[Op], *, env: dict | None = None, spec: bool = True) -> None:
    """Run every registry check on ``op``: its definition, then each shape case directly and (``spec``) as a spec.

    Args:
        op: an ``Op`` subclass (registered or not: a plugin's class can be checked before it is installed).
        env: sizes for the cases' symbols (default ``ENV``: N=2, T=5, H=8, W=6, ...).
        spec: also check, compile and build a one-layer spec per case (needs the op to be registered under its
            name, i.e. built in or installed).
    Raises:
        AssertionError naming the op, the case and what differed.
    """
    check_definition(op)
    for i in range(len(op.cases)):
        check_case(op, i, env=env)
        if spec:
            check_case_in_spec(op, i, env=env, compile_source=(i == 0))


def check_definition(op: type[Op]) -> None:
    """The class is a valid op (name, Params, inputs, weights and macs defined) with a table of shape cases, one of
    them with symbolic dims when the op has inputs."""
    problems = op_problems(op)
    assert not problems, f"{getattr(op, '__name__', op)!r} is not a valid op: " + "; ".join(problems)
    assert op.cases, f"op {op.name!r} has no shape cases: add a 'cases' table to its class"
    if op.inputs:
        assert any(is_sym(d) for _, ins, _ in op.cases for t in case_types(ins) if t is not None
                   for d in t.shape), f"op {op.name!r} has no case with symbolic dims (N, H, W, T, ...)"


def namespace(op: type[Op]) -> dict:
    """Names generated source may use for ``op``: nn, torch, F, math, torchvision, its helper classes and the modules
    it lists in ``Op.imports``."""
    import torchvision
    ns = {"nn": torch.nn, "torch": torch, "F": torch.nn.functional, "math": math, "torchvision": torchvision}
    for m in op.imports:
        importlib.import_module(m)
        top = m.split(".")[0]
        ns[top] = importlib.import_module(top)
    for src in op.helpers().values():
        exec(src, ns)
    return ns


def source(op: type[Op], ins: list, p, args: list[str], mod: str = "mod") -> tuple[str | None, str]:
    """(constructor source or None, forward source) of an op, printed from its code IR.

    ``args`` names the inputs (one per entry of ``ins``); ``mod`` names the module (used when there is one).
    """
    from .codegen.printer import render_op
    c = op.constructor(ins, p)
    init = None if c is None else render_op(c, [])
    return init, render_op(op.forward(ins, p), args, mod if c is not None else None)


def _bind(t: TensorType | None, env: dict) -> TensorType | None:
    """Bind the symbols of ``env``; a data-dependent size (an op's own symbol, a detector's K) stays a symbol."""
    if t is None:
        return None
    return TensorType(tuple(d.evaluate(env) if is_sym(d) and d.free_symbols() <= set(env) else d for d in t.shape),
                      t.dtype)


def _fits(got: tuple, want: tuple, seen: dict) -> bool:
    """A run-time shape against a bound one: a data-dependent size (still a symbol) takes any value, the same one
    wherever it appears (``seen`` remembers each)."""
    return len(got) == len(want) and all(
        seen.setdefault(str(w), g) == g if is_sym(w) else g == w for g, w in zip(got, want))


def _same(got: TensorType, want: TensorType) -> bool:
    """Equal dtype and dims; an expected dim may be written as its printed form ("ceil(H/2)")."""
    return (got.dtype == want.dtype and len(got.shape) == len(want.shape)
            and all(a == b or str(a) == str(b) for a, b in zip(got.shape, want.shape)))


def _random(t: TensorType) -> torch.Tensor:
    if t.dtype == "bool":
        return torch.rand(t.shape) < 0.2
    if t.is_float:
        return torch.randn(t.shape).to(getattr(torch, t.dtype))
    return torch.randint(0, 4, t.shape).to(getattr(torch, t.dtype))


def _state(obj, transient: bool = False) -> dict:
    """{key: (shape, 'param'|'buffer')} of what the constructor built, in the form ``Op.weights`` returns."""
    if obj is None or transient:                # a non-persistent buffer is not in the state_dict
        return {}
    if isinstance(obj, torch.Tensor):           # param / buffer ops build the tensor itself
        return {"": (tuple(obj.shape), "param" if isinstance(obj, torch.nn.Parameter) else "buffer")}
    params = {k for k, _ in obj.named_parameters()}
    return {k: (tuple(v.shape), "param" if k in params else "buffer") for k, v in obj.state_dict().items()}


def _norm_weights(w: dict) -> dict:
    return {k: (tuple(s), kind) for k, (s, kind) in w.items()}


def check_case(op: type[Op], i: int, *, env: dict | None = None) -> None:
    """Shape case ``i`` of ``op``: the shape rule, then the module printed from the code IR run in torch."""
    env = ENV if env is None else env
    params, ins, outs = op.cases[i]
    what = f"op {op.name!r} case {i} {params}"
    p = op.Params.model_validate(params)

    # the shape rule, symbolic
    types = case_types(ins)
    got = op.infer(types, p, InferCtx())
    want = case_types(outs)
    assert len(got) == len(want), f"{what}: the shape rule gives {len(got)} outputs, the case lists {len(want)}"
    assert len(got) <= len(op.outputs), f"{what}: {len(got)} outputs but the op declares {len(op.outputs)}"
    for g, w in zip(got, want):
        assert _same(g, w), f"{what}: inferred {g}, expected {w}"

    # bound to numbers: the concrete rule agrees with the symbolic one
    bound = [_bind(t, env) for t in types]
    outs_bound = [_bind(t, env) for t in got]
    concrete = op.infer(bound, p, InferCtx())
    seen: dict = {}     # a data-dependent size the symbolic rule leaves free may be known at concrete sizes (the
    #                     detector transform's batch size), the same value wherever it appears
    assert len(concrete) == len(outs_bound) and all(
        c.dtype == o.dtype and _fits(tuple(c.shape), tuple(o.shape), seen) for c, o in zip(concrete, outs_bound)), \
        f"{what}: at {env} the shape rule gives {concrete}, the symbolic one {outs_bound}"

    # build and run the code printed from the IR
    ns = namespace(op)
    args = ["None" if t is None else f"x{k}" for k, t in enumerate(bound)]
    init, fwd = source(op, bound, p, args)
    torch.manual_seed(0)
    if init is not None:
        exec(f"mod = {init}", ns)
    xs = {f"x{k}": _random(t) for k, t in enumerate(bound) if t is not None}
    with torch.no_grad():
        y = eval(fwd, {**ns, **xs})
    ys = tuple(y) if isinstance(y, (tuple, list)) else (y,)
    ran = [(tuple(t.shape), str(t.dtype)) for t in ys]
    inferred = [(o.shape, str(getattr(torch, o.dtype))) for o in outs_bound]
    seen: dict = {}
    assert len(ran) == len(inferred) and all(rd == idt and _fits(rs, ish, seen)
                                             for (rs, rd), (ish, idt) in zip(ran, inferred)), \
        f"{what}: torch ran {fwd} to {ran}, the shape rule says {inferred}"

    # weights, MACs and label
    if op.transient(p):
        assert isinstance(ns.get("mod"), torch.Tensor), f"{what}: a transient (non-persistent) buffer builds a tensor"
    state = _state(ns.get("mod"), op.transient(p))
    weights = _norm_weights(op.weights(bound, p))
    assert state == weights, f"{what}: weights() is {weights}, but the module's state_dict is {state}"
    macs = op.macs(bound, outs_bound, p)
    assert isinstance(macs, int) and not isinstance(macs, bool) and macs >= 0, \
        f"{what}: macs() must be a non-negative int at concrete sizes, got {macs!r}"
    sym_macs = op.macs(types, got, p)
    sym_value = sym_macs.evaluate(env) if is_sym(sym_macs) else sym_macs
    assert sym_value == macs, f"{what}: symbolic macs() {sym_macs} is {sym_value} at {env}, concrete {macs}"
    label = op.label(p)
    assert isinstance(label, str) and label.strip(), f"{what}: label() must be non-empty text, got {label!r}"


def _dim(d, env: dict):
    """A dim as written in an input declaration: an int, a symbol, or (an expression of symbols) its bound value."""
    if not is_sym(d):
        return int(d)
    s = str(d)
    return s if s.isidentifier() else int(d.evaluate(env))


def one_layer_spec(op: type[Op], i: int, env: dict | None = None) -> str:
    """Case ``i`` of ``op`` as a spec (JSON text): its inputs declared with the case's dims, one layer named
    ``layer`` with the case's parameters, and the case's outputs as the network's."""
    env = ENV if env is None else env
    params, inputs, outs = op.cases[i]
    decl, slots = {}, []
    for j, e in enumerate(inputs):
        if e is None:
            continue
        shape, dtype = (e[0], e[1]) if len(e) == 2 and isinstance(e[0], (tuple, list)) else (e, "float32")
        decl[f"x{j}"] = {"shape": [_dim(d, env) for d in shape], "dtype": dtype}
        slots.append(j)
    layer: dict = {"name": "layer", "op": op.name, **params}
    if slots:
        if op.inputs and op.inputs[0].variadic:
            layer["from"] = [f"x{j}" for j in slots]
        else:
            layer["from"] = {op.inputs[j].name: f"x{j}" for j in slots}
    outputs = {f"y{k}": "layer" if k == 0 else f"layer.{op.outputs[k]}" for k in range(len(outs))}
    if not decl:          # an op without inputs (a learned tensor) in a network that has one
        decl["z"] = {"shape": ["N", 1]}
        outputs["z"] = "z"
    doc = {"netspec": 1, "name": "one_op", "inputs": decl, "layers": [layer], "outputs": outputs}
    return json.dumps(doc, indent=1)


def spec_writable(op: type[Op], i: int) -> bool:
    """Whether case ``i``'s parameters can be written in a spec (a spec has no infinite or NaN numbers)."""
    def finite(v):
        if isinstance(v, float):
            return math.isfinite(v)
        if isinstance(v, (list, tuple)):
            return all(finite(x) for x in v)
        if isinstance(v, dict):
            return all(finite(x) for x in v.values())
        return True
    return finite(op.cases[i][0])


def check_case_in_spec(op: type[Op], i: int, *, env: dict | None = None, compile_source: bool = True) -> bool:
    """Shape case ``i`` of ``op`` through the whole pipeline: a one-layer spec checks, compiles (when
    ``compile_source``), builds and runs with the shapes ``check`` inferred.

    Returns False, checking nothing, for a case whose parameters no spec can write (``spec_writable``: an infinite
    fill value); True when it ran."""
    if not spec_writable(op, i):
        return False
    from .codegen.build import build, compile_source as compile_spec, exec_source, top_class_name
    from .pipeline import graph
    from .spec.load import load
    env = ENV if env is None else env
    what = f"op {op.name!r} case {i} {op.cases[i][0]} as a spec"
    assert lookup(op.name) is op, \
        f"{what}: the registry's op {op.name!r} is {lookup(op.name)!r}, not {op!r} (install the plugin package)"
    text = one_layer_spec(op, i, env)
    try:
        spec = load(text, name=f"{op.name}.json")
        g = graph(spec)
    except NetspecError as e:
        raise AssertionError(f"{what}: check fails:\n{e}\nspec:\n{text}") from None
    syms = sorted({s for t in g.input_types().values() for d in t.shape if is_sym(d) for s in d.free_symbols()})
    missing = [s for s in syms if s not in env]
    assert not missing, f"{what}: no size for {missing} in env"
    b = {s: env[s] for s in syms}
    try:
        bound = graph(spec, bind=b)
    except NetspecError as e:
        raise AssertionError(f"{what}: does not check at {b}:\n{e}") from None
    if compile_source:
        src = compile_spec(spec)
        compile(src, "model.py", "exec")
        ns = exec_source(src, f"check_op_{op.name}")
        standalone = ns[top_class_name(src)]()
    torch.manual_seed(0)
    model = build(spec, bindings=b)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if compile_source:
        assert list(standalone.state_dict()) == list(state), \
            f"{what}: compile gives state_dict keys {list(standalone.state_dict())}, build {list(state)}"
    node = bound.nodes["layer"]
    want_w = {("layer." + k if k else "layer"): tuple(s)
              for k, (s, _) in node.op.weights(list(node.meta["in"]), node.params).items()}
    assert state == want_w, f"{what}: the built network's state_dict is {state}, weights() says {want_w}"
    gen = torch.Generator().manual_seed(0)
    xs = {}
    for k, t in bound.input_types().items():
        shape = tuple(int(d) for d in t.shape)
        if t.is_float:
            xs[k] = torch.randn(shape, generator=gen, dtype=getattr(torch, t.dtype))
        else:
            xs[k] = torch.zeros(shape, dtype=getattr(torch, t.dtype))      # index 0 is valid for any table
    model.eval()
    with torch.no_grad():
        out = model(**xs)
    outs = out if isinstance(out, dict) else dict(zip(bound.outputs, out if isinstance(out, tuple) else (out,)))
    seen: dict = {}
    for k, t in bound.output_types().items():
        want = tuple(d if is_sym(d) else int(d) for d in t.shape)       # a symbol left: a data-dependent size
        got = tuple(outs[k].shape)
        assert _fits(got, want, seen), f"{what}: output {k} of the built network is {got} at {b}, check inferred {want}"
        assert str(outs[k].dtype) == str(getattr(torch, t.dtype)), \
            f"{what}: output {k} is {outs[k].dtype}, check inferred {t.dtype}"
    return True
