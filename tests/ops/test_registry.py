"""Every registered op against its own table of shape cases (``Op.cases``).

For each case: the shape rule gives the expected (symbolic) shapes; then, with the symbols bound to small numbers,
the module built from the printed code IR runs on random tensors and agrees with the shape rule, ``weights()``
matches its state_dict, ``macs()`` is a count, and the op has a label.
"""
from __future__ import annotations

import pytest
import torch

from conftest import namespace, source
from netspec.ops.base import all_ops, case_types
from netspec.shapes import InferCtx, TensorType, is_sym

# the value each symbol is bound to when the case is run in torch
ENV = {"N": 2, "T": 5, "S": 3, "E": 16, "C": 4, "H": 8, "W": 6, "D": 4, "L": 12}
OPS = all_ops()


def _params():
    for name, op in sorted(OPS.items()):
        if not op.cases:
            yield pytest.param(name, None, id=f"{name}-no-cases")
        for i in range(len(op.cases)):
            yield pytest.param(name, i, id=f"{name}-{i}")


def _bind(t: TensorType | None) -> TensorType | None:
    """Bind the symbols of ENV; a data-dependent size (an op's own symbol, such as a detector's K) stays."""
    if t is None:
        return None
    return TensorType(tuple(d.evaluate(ENV) if is_sym(d) and d.free_symbols() <= set(ENV) else d
                            for d in t.shape), t.dtype)


def _matches(got: list, want: list) -> bool:
    """Run-time shapes against bound types: a data-dependent size takes any value, the same one wherever it is."""
    seen: dict = {}
    if len(got) != len(want):
        return False
    for (shape, dtype), o in zip(got, want):
        if dtype != str(getattr(torch, o.dtype)) or len(shape) != len(o.shape):
            return False
        for v, d in zip(shape, o.shape):
            if is_sym(d):
                if seen.setdefault(str(d), v) != v:
                    return False
            elif v != d:
                return False
    return True


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


def _state(obj) -> dict:
    """{key: (shape, 'param'|'buffer')} of what the constructor built, in the form ``Op.weights`` returns."""
    if obj is None:
        return {}
    if isinstance(obj, torch.Tensor):           # param / buffer ops build the tensor itself
        return {"": (tuple(obj.shape), "param" if isinstance(obj, torch.nn.Parameter) else "buffer")}
    params = {k for k, _ in obj.named_parameters()}
    return {k: (tuple(v.shape), "param" if k in params else "buffer") for k, v in obj.state_dict().items()}


def test_every_op_has_a_symbolic_case():
    for name, op in OPS.items():
        assert op.cases, f"op {name!r} has no shape cases"
        if op.inputs:
            assert any(is_sym(d) for _, ins, _ in op.cases for t in case_types(ins) if t is not None
                       for d in t.shape), f"op {name!r} has no case with symbolic dims"


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("name, i", list(_params()))
def test_case(name, i):
    op = OPS[name]
    assert i is not None, f"op {name!r} has no shape cases: add a 'cases' table to its class"
    params, ins, outs = op.cases[i]
    p = op.Params.model_validate(params)

    # the shape rule, symbolic
    types = case_types(ins)
    got = op.infer(types, p, InferCtx())
    want = case_types(outs)
    assert len(got) == len(want) <= len(op.outputs)
    for g, w in zip(got, want):
        assert _same(g, w), f"{name} {params}: inferred {g}, expected {w}"

    # bound to numbers: the concrete rule agrees with the symbolic one
    bound = [_bind(t) for t in types]
    outs_bound = [_bind(t) for t in got]
    assert op.infer(bound, p, InferCtx()) == outs_bound

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
    got_shapes = [(tuple(t.shape), str(t.dtype)) for t in ys]
    assert _matches(got_shapes, outs_bound), f"{got_shapes} vs {outs_bound}"

    # weights, MACs and label
    assert _state(ns.get("mod")) == op.weights(bound, p)
    macs = op.macs(bound, outs_bound, p)
    assert isinstance(macs, int) and not isinstance(macs, bool) and macs >= 0
    sym_macs = op.macs(types, got, p)
    assert (sym_macs.evaluate(ENV) if is_sym(sym_macs) else sym_macs) == macs
    label = op.label(p)
    assert isinstance(label, str) and label.strip()
