"""Dropout ops: identity shapes, rank checks, no weights, and the same masks as torch."""
from __future__ import annotations

import warnings

import pytest
import torch
import torchvision.ops
from pydantic import ValidationError
from torch import nn

from netspec.ops.base import OpError, all_ops, lookup
from netspec.shapes import Dim, InferCtx, TensorType

from conftest import run_op, source, state_shapes

N, T, D, H, W = (Dim.sym(s) for s in "NTDHW")
DROPOUT_OPS = sorted(n for n, op in all_ops().items() if op.family == "dropout")


def infer(name, params, shape, dtype="float32"):
    op = lookup(name)
    p = op.Params.model_validate(params)
    return op.infer([TensorType(tuple(shape), dtype)], p, InferCtx())


SHAPES = [
    ("dropout", {}, (N, 4096)),
    ("dropout", {"p": 0.1}, (N, T, 512)),
    ("dropout", {"p": 0.0}, (N, 64, H, W)),
    ("dropout1d", {"p": 0.2}, (N, 64, T)),
    ("dropout2d", {"p": 0.2}, (N, 64, H, W)),
    ("dropout3d", {"p": 0.2}, (N, 64, D, H, W)),
    ("alpha_dropout", {"p": 0.1}, (N, 256)),
    ("alpha_dropout", {}, (N, T, 3, 5)),
    ("stochastic_depth", {"p": 0.1}, (N, 64, H, W)),
    ("stochastic_depth", {"p": 0.2, "mode": "batch"}, (N, T, D)),
]


@pytest.mark.parametrize("name, params, shape", SHAPES)
def test_identity_shape_no_weights(name, params, shape):
    (out,) = infer(name, params, shape)
    assert out == TensorType(tuple(shape))
    op = lookup(name)
    p = op.Params.model_validate(params)
    assert op.weights([out], p) == {}
    assert op.macs([out], [out], p) == 0


ERRORS = [
    ("dropout1d", {}, (N, 64), ["rank-3 input", "[N, 64]", "(N, C, L)"]),
    ("dropout1d", {}, (N, 64, H, W), ["rank-3 input", "got 4 dims"]),
    ("dropout2d", {}, (N, 64, T), ["rank-4 input", "got 3 dims", "use 'dropout1d' for (N, C, L)"]),
    ("dropout2d", {}, (N, 64, D, H, W), ["rank-4 input", "got 5 dims"]),
    ("dropout3d", {}, (N, 64, H, W), ["rank-5 input", "use 'dropout2d'"]),
    ("dropout", {}, (N, T), ["floating-point", "int64"]),
]


@pytest.mark.parametrize("name, params, shape, msgs", ERRORS)
def test_shape_errors(name, params, shape, msgs):
    dtype = "int64" if "floating-point" in msgs else "float32"
    with pytest.raises(OpError) as e:
        infer(name, params, shape, dtype)
    text = " ".join([e.value.message] + e.value.hints)
    for m in msgs:
        assert m in text


@pytest.mark.parametrize("name, params, msg", [
    ("dropout", {"p": 1.0}, "less than 1"),
    ("dropout", {"p": -0.1}, "greater than or equal to 0"),
    ("dropout2d", {"rate": 0.5}, "rate"),
    ("alpha_dropout", {"p": "half"}, "p"),
    ("stochastic_depth", {}, "p"),
    ("stochastic_depth", {"p": 0.1, "mode": "col"}, "'row' or 'batch'"),
])
def test_param_errors(name, params, msg):
    with pytest.raises(ValidationError, match=msg):
        lookup(name).Params.model_validate(params)


TORCH = [
    ("dropout", {}, (4, 32), lambda: nn.Dropout()),
    ("dropout", {"p": 0.3, "inplace": True}, (4, 8, 5), lambda: nn.Dropout(0.3, inplace=True)),
    ("dropout1d", {"p": 0.4}, (4, 8, 5), lambda: nn.Dropout1d(0.4)),
    ("dropout2d", {"p": 0.4}, (4, 8, 5, 3), lambda: nn.Dropout2d(0.4)),
    ("dropout3d", {"p": 0.4}, (4, 8, 2, 5, 3), lambda: nn.Dropout3d(0.4)),
    ("alpha_dropout", {"p": 0.2}, (4, 32), lambda: nn.AlphaDropout(0.2)),
    ("stochastic_depth", {"p": 0.5}, (8, 4, 3, 3), lambda: torchvision.ops.StochasticDepth(0.5, "row")),
    ("stochastic_depth", {"p": 0.5, "mode": "batch"}, (4, 32), lambda: torchvision.ops.StochasticDepth(0.5, "batch")),
]


def test_every_dropout_op_is_run_against_torch():
    assert {case[0] for case in TORCH} == set(DROPOUT_OPS)


@pytest.mark.parametrize("name, params, shape, ref", TORCH)
def test_against_torch(name, params, shape, ref):
    x = torch.randn(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the accepted ranks never make torch warn
        torch.manual_seed(1)
        outs, mod, (y,) = run_op(name, params, [shape], inputs=[x.clone()])    # training mode: random masks
        torch.manual_seed(1)
        want = ref()(x.clone())
    assert tuple(y.shape) == outs[0].shape
    assert state_shapes(mod) == {}
    assert torch.equal(y, want)
    assert not torch.equal(y, x)
    mod.eval()
    assert torch.equal(mod(x), x)                # identity at evaluation


@pytest.mark.parametrize("name, params, src, label", [
    ("dropout", {"p": 0.5}, "nn.Dropout(p=0.5)", "dropout 0.5"),
    ("dropout", {"p": 0.1, "inplace": True}, "nn.Dropout(p=0.1, inplace=True)", "dropout 0.1"),
    ("dropout2d", {"p": 0.2}, "nn.Dropout2d(p=0.2)", "dropout2d 0.2"),
    ("alpha_dropout", {"p": 0.05}, "nn.AlphaDropout(p=0.05)", "alpha dropout 0.05"),
    ("stochastic_depth", {"p": 0.0125}, 'torchvision.ops.StochasticDepth(p=0.0125, mode="row")',
     "stochastic depth 0.0125"),
])
def test_module_source_and_label(name, params, src, label):
    op = lookup(name)
    p = op.Params.model_validate(params)
    assert source(op, [TensorType((N, 64, H, W))], p, ["x"])[0] == src
    assert op.label(p) == label


@pytest.mark.parametrize("name", DROPOUT_OPS)
def test_doc_and_schema(name):
    op = lookup(name)
    assert op.doc and "\n" not in op.doc and op.torch_ref.startswith(("torch.nn.", "torchvision.ops."))
    for fname, f in op.Params.model_fields.items():
        assert f.description, (name, fname)
