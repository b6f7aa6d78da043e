"""Shared helper for op tests: build an op's torch module from its code IR, printed as Python, and run it."""
from __future__ import annotations

import torch

from netspec.ops.base import lookup
from netspec.shapes import InferCtx, TensorType
from netspec.testing import namespace, source  # noqa: F401  (the registry checks' own; tests import them from here)


def run_op(name, params: dict, in_shapes: list[tuple], dtypes=None, inputs=None):
    """Infer, build and run op ``name`` on concrete inputs (random, or ``inputs`` when given).

    Returns (output TensorTypes, the torch module or None, the outputs as a tuple of tensors).
    """
    op = lookup(name)
    assert op is not None, name
    p = op.Params.model_validate(params)
    dtypes = dtypes or ["float32"] * len(in_shapes)
    ins = [TensorType(tuple(s), d) for s, d in zip(in_shapes, dtypes)]
    outs = op.infer(ins, p, InferCtx())
    ns = namespace(op)
    src, expr = source(op, ins, p, [f"x{i}" for i in range(len(ins))])
    mod = eval(src, ns) if src is not None else None
    if inputs is None:
        inputs = [torch.randn(s) if d.startswith(("float", "bfloat")) else torch.randint(0, 4, s).to(getattr(torch, d))
                  for s, d in zip(in_shapes, dtypes)]
    env = {**ns, "mod": mod, **{f"x{i}": t for i, t in enumerate(inputs)}}
    with torch.no_grad():
        y = eval(expr, env)
    return outs, mod, tuple(y) if isinstance(y, (tuple, list)) else (y,)


def state_shapes(mod) -> dict:
    """{key: (shape, 'param'|'buffer')} of a module, in the form Op.weights returns."""
    if mod is None:
        return {}
    params = {k: (tuple(v.shape), "param") for k, v in mod.named_parameters()}
    bufs = {k: (tuple(v.shape), "buffer") for k, v in mod.named_buffers()}
    assert set(mod.state_dict()) == set(params) | set(bufs)
    return {**params, **bufs}
