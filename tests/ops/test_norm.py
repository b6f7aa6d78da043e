"""Normalisation ops: shape rules, errors, state_dict shapes, and outputs against torch."""
from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from netspec.ops.base import OpError, all_ops, lookup
from netspec.shapes import Dim, InferCtx, TensorType

from conftest import run_op, source, state_shapes

N, T, D, H, W = (Dim.sym(s) for s in "NTDHW")
NORM_OPS = sorted(n for n, op in all_ops().items() if op.family == "norm")


def infer(name, params, shape, dtype="float32"):
    op = lookup(name)
    p = op.Params.model_validate(params)
    return op.infer([TensorType(tuple(shape), dtype)], p, InferCtx())


def weights(name, params, shape):
    op = lookup(name)
    return op.weights([TensorType(tuple(shape))], op.Params.model_validate(params))


BN = {"weight": ((64,), "param"), "bias": ((64,), "param"), "running_mean": ((64,), "buffer"),
      "running_var": ((64,), "buffer"), "num_batches_tracked": ((), "buffer")}

# op, params, input shape, expected weights (the output shape is always the input's)
SHAPES = [
    ("batchnorm1d", {}, (N, 64), BN),
    ("batchnorm1d", {}, (N, 64, T), BN),
    ("batchnorm2d", {}, (N, 64, H, W), BN),
    ("batchnorm", {"affine": False}, (N, 64, H, W), {k: v for k, v in BN.items() if v[1] == "buffer"}),
    ("batchnorm2d", {"track_running_stats": False}, (N, 64, H, W), {k: v for k, v in BN.items() if v[1] == "param"}),
    ("batchnorm3d", {"momentum": None}, (N, 64, D, H, W), BN),
    ("instancenorm1d", {}, (N, 64, T), {}),
    ("instancenorm2d", {"affine": True}, (N, 64, H, W), {k: v for k, v in BN.items() if v[1] == "param"}),
    ("instancenorm3d", {"affine": True, "track_running_stats": True}, (N, 64, D, H, W), BN),
    ("layernorm", {}, (N, T, 512), {"weight": ((512,), "param"), "bias": ((512,), "param")}),
    ("layernorm", {"shape": 3}, (N, 64, 7, 7), {"weight": ((64, 7, 7), "param"), "bias": ((64, 7, 7), "param")}),
    ("layernorm", {"shape": [7, 64]}, (N, 7, 64), {"weight": ((7, 64), "param"), "bias": ((7, 64), "param")}),
    ("layernorm", {"bias": False}, (N, T, 512), {"weight": ((512,), "param")}),
    ("layernorm", {"elementwise_affine": False}, (N, T, 512), {}),
    ("rmsnorm", {}, (N, T, 512), {"weight": ((512,), "param")}),
    ("rmsnorm", {"shape": 2, "elementwise_affine": False}, (N, 4, 8), {}),
    ("groupnorm", {"groups": 32}, (N, 64, H, W), {"weight": ((64,), "param"), "bias": ((64,), "param")}),
    ("groupnorm", {"groups": 1, "affine": False}, (N, 64, T), {}),
    ("local_response_norm", {"size": 5}, (N, 96, H, W), {}),
    ("lrn", {"size": 2}, (N, 16, T), {}),
]


@pytest.mark.parametrize("name, params, shape, want", SHAPES)
def test_shape_and_weights(name, params, shape, want):
    (out,) = infer(name, params, shape)
    assert out == TensorType(tuple(shape))
    assert weights(name, params, shape) == want
    op = lookup(name)
    assert op.macs([TensorType(shape)], [out], op.Params.model_validate(params)) == 0


# op, params, input shape, dtype, substrings of message + hints, param at fault
ERRORS = [
    ("batchnorm2d", {}, (N, 64, T), "float32", ["rank-4", "(N, C, H, W)"], None),
    ("batchnorm1d", {}, (N, 64, H, W), "float32", ["rank-2 or 3", "(N, C) or (N, C, L)"], None),
    ("batchnorm3d", {}, (N, 64, H, W), "float32", ["rank-5", "(N, C, D, H, W)"], None),
    ("batchnorm2d", {}, (N, 64, H, W), "int64", ["floating-point", "int64"], None),
    ("batchnorm2d", {}, (N, Dim.sym("C"), H, W), "float32", ["fixed number of channels (dim 1)", "C"], None),
    ("instancenorm1d", {}, (N, 64), "float32", ["rank-3", "(N, C, L)"], None),
    ("instancenorm2d", {}, (N, 64, 1, 1), "float32", ["one value per channel", "[N, 64, 1, 1]"], None),
    ("layernorm", {}, (N, T, Dim.sym("E")), "float32", ["fixed size of dim 2", "E"], "shape"),
    ("layernorm", {"shape": 2}, (N, T, 512), "float32", ["fixed size of dim 1", "T"], "shape"),
    ("layernorm", {"shape": 4}, (N, 4, 512), "float32", ["last 4 dims of a rank-3 input"], "shape"),
    ("layernorm", {"shape": [256]}, (N, T, 512), "float32", ["shape [256] does not match", "[N, T, 512]",
                                                              "use shape: [512]"], "shape"),
    ("layernorm", {"shape": [1, 2, 3, 4]}, (N, 512), "float32", ["more dims than the input"], "shape"),
    ("layernorm", {}, (N, T), "int64", ["floating-point", "embedding"], None),
    ("rmsnorm", {"shape": [8, 512]}, (N, T, 512), "float32", ["fixed size of dim 1"], "shape"),
    ("groupnorm", {"groups": 32}, (N, 48, H, W), "float32", ["channels (48)", "not divisible by groups (32)",
                                                             "use groups: 24"], "groups"),
    ("groupnorm", {"groups": 2}, (N,), "float32", ["rank >= 2"], None),
    ("local_response_norm", {"size": 5}, (N, 96), "float32", ["rank >= 3", "[N, 96]"], None),
]


@pytest.mark.parametrize("name, params, shape, dtype, msgs, param", ERRORS)
def test_shape_errors(name, params, shape, dtype, msgs, param):
    with pytest.raises(OpError) as e:
        infer(name, params, shape, dtype)
    text = " ".join([e.value.message] + e.value.hints)
    for m in msgs:
        assert m in text
    assert e.value.param == param


@pytest.mark.parametrize("name, params, msg", [
    ("batchnorm2d", {"eps": 0}, "greater than 0"),
    ("batchnorm2d", {"momentum": 1.5}, "less than or equal to 1"),
    ("batchnorm2d", {"num_features": 64}, "num_features"),        # inferred, never written
    ("layernorm", {"shape": 0}, "shape must be a positive"),
    ("layernorm", {"shape": []}, "shape must be a positive"),
    ("layernorm", {"normalized_shape": [512]}, "normalized_shape"),
    ("rmsnorm", {"eps": -1.0}, "greater than 0"),
    ("groupnorm", {}, "groups"),
    ("groupnorm", {"groups": 0}, "greater than 0"),
    ("local_response_norm", {}, "size"),
])
def test_param_errors(name, params, msg):
    with pytest.raises(ValidationError, match=msg):
        lookup(name).Params.model_validate(params)


# -- against torch -------------------------------------------------------------------------------------------

# op, params, concrete input shape, the same layer built with torch's own API
TORCH = [
    ("batchnorm1d", {}, (4, 6), lambda: nn.BatchNorm1d(6)),
    ("batchnorm1d", {"eps": 1e-3, "momentum": 0.01}, (4, 6, 5), lambda: nn.BatchNorm1d(6, eps=1e-3, momentum=0.01)),
    ("batchnorm2d", {}, (4, 6, 5, 3), lambda: nn.BatchNorm2d(6)),
    ("batchnorm2d", {"affine": False, "momentum": None}, (4, 6, 5, 3),
     lambda: nn.BatchNorm2d(6, affine=False, momentum=None)),
    ("batchnorm2d", {"track_running_stats": False}, (4, 6, 5, 3), lambda: nn.BatchNorm2d(6, track_running_stats=False)),
    ("batchnorm3d", {}, (2, 6, 3, 4, 5), lambda: nn.BatchNorm3d(6)),
    ("instancenorm1d", {}, (2, 6, 7), lambda: nn.InstanceNorm1d(6)),
    ("instancenorm2d", {"affine": True}, (2, 6, 4, 5), lambda: nn.InstanceNorm2d(6, affine=True)),
    ("instancenorm3d", {"affine": True, "track_running_stats": True}, (2, 6, 3, 4, 5),
     lambda: nn.InstanceNorm3d(6, affine=True, track_running_stats=True)),
    ("layernorm", {}, (2, 7, 16), lambda: nn.LayerNorm(16)),
    ("layernorm", {"shape": [4, 5], "eps": 1e-6, "bias": False}, (2, 3, 4, 5),
     lambda: nn.LayerNorm((4, 5), eps=1e-6, bias=False)),
    ("layernorm", {"shape": 2, "elementwise_affine": False}, (2, 3, 4, 5),
     lambda: nn.LayerNorm((4, 5), elementwise_affine=False)),
    ("groupnorm", {"groups": 4}, (2, 8, 5, 5), lambda: nn.GroupNorm(4, 8)),
    ("groupnorm", {"groups": 2, "eps": 1e-6, "affine": False}, (2, 8, 9), lambda: nn.GroupNorm(2, 8, 1e-6, False)),
    ("local_response_norm", {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}, (2, 8, 6, 6),
     lambda: nn.LocalResponseNorm(5, k=2.0)),
    ("rmsnorm", {}, (2, 7, 16), lambda: nn.RMSNorm(16)),
    ("rmsnorm", {"shape": [4, 5], "eps": 1e-6}, (2, 3, 4, 5), lambda: nn.RMSNorm((4, 5), eps=1e-6)),
    ("frozen_batchnorm2d", {}, (2, 8, 5, 5), lambda: __import__("torchvision").ops.FrozenBatchNorm2d(8)),
    ("frozen_batchnorm2d", {"eps": 1e-3}, (2, 4, 3, 3),
     lambda: __import__("torchvision").ops.FrozenBatchNorm2d(4, eps=1e-3)),
]


def test_every_norm_op_is_run_against_torch():
    assert {lookup(case[0]).name for case in TORCH} == set(NORM_OPS)


def _randomise(mod):
    """Random weights and running statistics, so that copying them is tested."""
    with torch.no_grad():
        for k, v in mod.state_dict().items():
            if v.is_floating_point():
                v.copy_(torch.rand_like(v) + 0.5 if "var" in k else torch.randn_like(v))
            else:
                v.fill_(3)


@pytest.mark.parametrize("name, params, shape, ref", TORCH)
def test_against_torch(name, params, shape, ref):
    torch.manual_seed(0)
    x = torch.randn(shape)
    outs, mod, (y,) = run_op(name, params, [shape], inputs=[x])   # in training mode
    assert tuple(y.shape) == outs[0].shape
    op = lookup(name)
    assert state_shapes(mod) == op.weights([TensorType(shape)], op.Params.model_validate(params))

    r = ref()
    _randomise(mod)
    r.load_state_dict(mod.state_dict(), strict=True)
    for train in (True, False):
        mod.train(train)
        r.train(train)
        with torch.no_grad():
            torch.testing.assert_close(mod(x), r(x), rtol=0, atol=1e-6)
        for k, v in r.state_dict().items():       # the running statistics moved the same way
            assert torch.equal(mod.state_dict()[k], v), k


@pytest.mark.parametrize("name, params, shape, src", [
    ("batchnorm2d", {}, (N, 64, H, W), "nn.BatchNorm2d(64)"),
    ("batchnorm1d", {"eps": 1e-3, "momentum": None, "affine": False}, (N, 64),
     "nn.BatchNorm1d(64, eps=0.001, momentum=None, affine=False)"),
    ("instancenorm2d", {"affine": True}, (N, 64, H, W), "nn.InstanceNorm2d(64, affine=True)"),
    ("layernorm", {}, (N, T, 512), "nn.LayerNorm(512)"),
    ("layernorm", {"shape": 2, "eps": 1e-6}, (N, 7, 512), "nn.LayerNorm((7, 512), eps=1e-06)"),
    ("rmsnorm", {}, (N, T, 512), "nn.RMSNorm(512)"),
    ("groupnorm", {"groups": 32}, (N, 64, H, W), "nn.GroupNorm(32, 64)"),
    ("local_response_norm", {"size": 5, "k": 2.0}, (N, 96, H, W), "nn.LocalResponseNorm(5, k=2.0)"),
])
def test_module_source(name, params, shape, src):
    op = lookup(name)
    assert source(op, [TensorType(shape)], op.Params.model_validate(params), ["x"])[0] == src


@pytest.mark.parametrize("name, params, label", [
    ("batchnorm2d", {}, "bn"), ("batchnorm1d", {}, "bn"), ("layernorm", {}, "ln"), ("groupnorm", {"groups": 32}, "gn 32"),
    ("rmsnorm", {}, "rmsnorm"), ("local_response_norm", {"size": 5}, "lrn 5"), ("instancenorm2d", {}, "instnorm"),
])
def test_label(name, params, label):
    op = lookup(name)
    assert op.label(op.Params.model_validate(params)) == label


@pytest.mark.parametrize("name", NORM_OPS)
def test_doc_and_schema(name):
    op = lookup(name)
    assert op.doc and "\n" not in op.doc and op.torch_ref.startswith(("torch.nn.", "torchvision.ops."))
    for fname, f in op.Params.model_fields.items():
        assert f.description, (name, fname)
