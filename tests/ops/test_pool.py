"""Pooling ops: shape rules (symbolic and concrete), errors, and the generated torch modules."""
from __future__ import annotations

import itertools

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from netspec.ops.base import OpError, all_ops, lookup
from netspec.shapes import Dim, InferCtx, TensorType

from conftest import run_op, source, state_shapes

N, C, T, L, D, H, W = (Dim.sym(s) for s in "NCTLDHW")
POOL_OPS = sorted(n for n, op in all_ops().items() if op.family == "pool")


def infer(name, params, shape, dtype="float32"):
    op = lookup(name)
    p = op.Params.model_validate(params)
    return op.infer([TensorType(tuple(shape), dtype)], p, InferCtx())


# op, params, input shape, output shape as printed
SHAPES = [
    ("maxpool2d", {"kernel": 3, "stride": 2, "padding": 1}, (N, 64, H, W), "[N, 64, ceil(H/2), ceil(W/2)]"),
    ("maxpool2d", {"kernel": 3, "stride": 2, "padding": 1}, (N, 64, 112, 112), "[N, 64, 56, 56]"),
    ("maxpool2d", {"kernel": 2}, (N, 64, H, W), "[N, 64, H//2, W//2]"),
    ("maxpool2d", {"kernel": 3, "stride": 2, "ceil_mode": True}, (N, 64, H, W), "[N, 64, H//2, W//2]"),
    ("maxpool2d", {"kernel": 3, "stride": 2, "ceil_mode": True}, (1, 96, 55, 55), "[1, 96, 27, 27]"),   # SqueezeNet
    ("maxpool2d", {"kernel": 3, "stride": 2, "ceil_mode": True}, (1, 96, 54, 54), "[1, 96, 27, 27]"),
    ("maxpool2d", {"kernel": 2, "ceil_mode": True}, (N, 64, H, W), "[N, 64, ceil(H/2), ceil(W/2)]"),
    ("maxpool2d", {"kernel": 3, "stride": 1, "padding": 1}, (N, 8, H, W), "[N, 8, H, W]"),
    ("maxpool2d", {"kernel": [2, 1], "stride": [2, 1]}, (N, 8, H, W), "[N, 8, H//2, W]"),
    ("maxpool2d", {"kernel": 3, "dilation": 2}, (N, 8, 20, 20), "[N, 8, 6, 6]"),
    ("maxpool1d", {"kernel": 2}, (N, 16, T), "[N, 16, T//2]"),
    ("maxpool3d", {"kernel": [1, 2, 2]}, (N, 16, D, H, W), "[N, 16, D, H//2, W//2]"),
    ("avgpool2d", {"kernel": 2}, (N, 64, H, W), "[N, 64, H//2, W//2]"),
    ("avgpool2d", {"kernel": 3, "stride": 1, "padding": 1, "count_include_pad": False}, (N, 64, H, W), "[N, 64, H, W]"),
    ("avgpool2d", {"kernel": 7}, (N, 2048, 7, 7), "[N, 2048, 1, 1]"),
    ("avgpool1d", {"kernel": 3, "stride": 2, "ceil_mode": True}, (N, 4, T), "[N, 4, T//2]"),
    ("avgpool3d", {"kernel": 2, "stride": 2}, (N, 4, D, H, W), "[N, 4, D//2, H//2, W//2]"),
    ("adaptive_avg_pool2d", {"out": 7}, (N, 512, H, W), "[N, 512, 7, 7]"),
    ("adaptive_avg_pool2d", {"out": [1, None]}, (N, 512, H, W), "[N, 512, 1, W]"),
    ("adaptive_avg_pool1d", {"out": 8}, (N, 512, T), "[N, 512, 8]"),
    ("adaptive_avg_pool3d", {"out": [None, 1, 1]}, (N, 512, D, H, W), "[N, 512, D, 1, 1]"),
    ("adaptive_max_pool1d", {"out": 1}, (N, 32, T), "[N, 32, 1]"),
    ("adaptive_max_pool2d", {"out": [6, 6]}, (N, 256, 13, 13), "[N, 256, 6, 6]"),
    ("adaptive_max_pool3d", {"out": 2}, (N, 4, D, H, W), "[N, 4, 2, 2, 2]"),
    ("global_avg_pool", {}, (N, 2048, H, W), "[N, 2048, 1, 1]"),
    ("global_avg_pool", {"flatten": True}, (N, 2048, H, W), "[N, 2048]"),
    ("global_avg_pool", {}, (N, 64, T), "[N, 64, 1]"),
    ("global_avg_pool", {"flatten": True}, (N, 64, D, H, W), "[N, 64]"),
    ("global_max_pool", {}, (N, C, H, W), "[N, C, 1, 1]"),
    ("global_max_pool", {"flatten": True}, (N, 64, T), "[N, 64]"),
]


@pytest.mark.parametrize("name, params, shape, want", SHAPES)
def test_shape(name, params, shape, want):
    (out,) = infer(name, params, shape)
    assert str(out) == want


# op, params, input shape, dtype, message substrings, param at fault
ERRORS = [
    ("maxpool2d", {"kernel": 3}, (N, 64, H), "float32", ["rank-4", "(N, C, H, W)"], None),
    ("maxpool2d", {"kernel": 2}, (N, 64, H, W), "int64", ["floating-point", "int64"], None),
    ("maxpool2d", {"kernel": 3, "padding": 2}, (N, 64, H, W), "float32", ["padding 2x2", "half the kernel 3x3"], "padding"),
    ("avgpool2d", {"kernel": 2, "padding": 2}, (N, 64, H, W), "float32", ["more than half"], "padding"),
    ("maxpool2d", {"kernel": 9}, (N, 64, 8, 8), "float32", ["kernel (9)", "padded input (8 + 2*0)", "[N, 64, 8, 8]"],
     "kernel"),
    ("maxpool2d", {"kernel": 3, "dilation": 4}, (N, 64, 8, 8), "float32", ["kernel (9 with dilation)"], "kernel"),
    ("avgpool1d", {"kernel": 5, "padding": 1}, (N, 4, 2), "float32", ["kernel (5)", "(2 + 2*1)"], "kernel"),
    ("maxpool2d", {"kernel": [2, 2, 2]}, (N, 64, H, W), "float32", ["kernel needs 2 values, got 3"], "kernel"),
    ("maxpool2d", {"kernel": 2, "stride": [1, 1, 1]}, (N, 64, H, W), "float32", ["stride needs 2 values"], "stride"),
    ("adaptive_avg_pool2d", {"out": [7, 7, 7]}, (N, 64, H, W), "float32", ["out needs 2 values", "got 3"], "out"),
    ("adaptive_max_pool1d", {"out": 4}, (N, 64), "float32", ["rank-3", "(N, C, L)"], None),
    ("adaptive_avg_pool1d", {"out": [None]}, (N, 64, T), "float32", ["needs an output length", "give out a number"],
     "out"),
    ("global_avg_pool", {}, (N, 64), "float32", ["rank-3 or 4 or 5", "[N, 64]"], None),
    ("global_max_pool", {}, (N, 64, H, W), "int64", ["floating-point"], None),
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
    ("maxpool2d", {}, "kernel"),
    ("maxpool2d", {"kernel": 0}, "kernel must be positive"),
    ("maxpool2d", {"kernel": 2, "stride": [2, 0]}, "stride must be positive"),
    ("maxpool2d", {"kernel": 2, "dilation": 0}, "dilation must be positive"),
    ("avgpool2d", {"kernel": 2, "padding": -1}, "padding must be >= 0"),
    ("avgpool2d", {"kernel": 2, "dilation": 2}, "dilation"),            # avg pooling has no dilation
    ("maxpool2d", {"kernel": 2, "count_include_pad": False}, "count_include_pad"),
    ("adaptive_avg_pool2d", {"out": 0}, "output sizes must be positive"),
    ("adaptive_avg_pool2d", {"out": [7, -1]}, "output sizes must be positive"),
    ("global_avg_pool", {"keepdim": True}, "keepdim"),
])
def test_param_errors(name, params, msg):
    with pytest.raises(ValidationError, match=msg):
        lookup(name).Params.model_validate(params)


# -- against torch -------------------------------------------------------------------------------------------

# op, params, concrete input shape, the same layer built with torch's own API
TORCH = [
    ("maxpool1d", {"kernel": 3, "stride": 2, "padding": 1}, (2, 3, 11), lambda: nn.MaxPool1d(3, 2, 1)),
    ("maxpool2d", {"kernel": 3, "stride": 2, "padding": 1}, (2, 3, 15, 16), lambda: nn.MaxPool2d(3, 2, 1)),
    ("maxpool2d", {"kernel": [3, 2], "dilation": [1, 2], "ceil_mode": True}, (2, 3, 10, 9),
     lambda: nn.MaxPool2d((3, 2), dilation=(1, 2), ceil_mode=True)),
    ("maxpool3d", {"kernel": 2, "stride": 1}, (1, 2, 5, 6, 7), lambda: nn.MaxPool3d(2, 1)),
    ("avgpool1d", {"kernel": 4, "padding": 2, "count_include_pad": False}, (2, 3, 9),
     lambda: nn.AvgPool1d(4, padding=2, count_include_pad=False)),
    ("avgpool2d", {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (2, 3, 10, 11),
     lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True)),
    ("avgpool3d", {"kernel": [1, 2, 2]}, (1, 2, 3, 6, 7), lambda: nn.AvgPool3d((1, 2, 2))),
    ("adaptive_avg_pool1d", {"out": 5}, (2, 3, 17), lambda: nn.AdaptiveAvgPool1d(5)),
    ("adaptive_avg_pool2d", {"out": [7, None]}, (2, 3, 10, 9), lambda: nn.AdaptiveAvgPool2d((7, None))),
    ("adaptive_avg_pool3d", {"out": 2}, (1, 2, 5, 6, 7), lambda: nn.AdaptiveAvgPool3d(2)),
    ("adaptive_max_pool1d", {"out": [3]}, (2, 3, 10), lambda: nn.AdaptiveMaxPool1d(3)),
    ("adaptive_max_pool2d", {"out": 6}, (2, 3, 13, 13), lambda: nn.AdaptiveMaxPool2d(6)),
    ("adaptive_max_pool3d", {"out": [None, 2, 1]}, (1, 2, 3, 6, 7), lambda: nn.AdaptiveMaxPool3d((None, 2, 1))),
    ("global_avg_pool", {}, (2, 8, 7, 5), lambda: nn.AdaptiveAvgPool2d(1)),
    ("global_avg_pool", {"flatten": True}, (2, 8, 7), lambda: nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten())),
    ("global_max_pool", {}, (2, 8, 3, 4, 5), lambda: nn.AdaptiveMaxPool3d(1)),
    ("global_max_pool", {"flatten": True}, (2, 8, 7, 5), lambda: nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())),
]


def test_every_pool_op_is_run_against_torch():
    assert set(POOL_OPS) == {case[0] for case in TORCH}


@pytest.mark.parametrize("name, params, shape, ref", TORCH)
def test_against_torch(name, params, shape, ref):
    x = torch.randn(shape)
    outs, mod, ys = run_op(name, params, [shape], inputs=[x])
    assert [tuple(y.shape) for y in ys] == [o.shape for o in outs]
    op = lookup(name)
    p = op.Params.model_validate(params)
    assert state_shapes(mod) == op.weights([TensorType(shape)], p) == {}
    assert op.macs([TensorType(shape)], outs, p) == 0
    assert torch.equal(ys[0], ref()(x))


def test_global_avg_pool_is_torchvision_resnet_head():
    """flatten: true gives what torchvision's ResNet does after its last stage."""
    x = torch.randn(2, 16, 7, 7)
    _, mod, (y,) = run_op("global_avg_pool", {"flatten": True}, [x.shape], inputs=[x])
    assert isinstance(mod, nn.AdaptiveAvgPool2d) and mod.output_size == 1
    assert torch.equal(y, torch.flatten(nn.AdaptiveAvgPool2d((1, 1))(x), 1))


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_symbolic_sizes_match_torch(kind):
    """The symbolic rule, evaluated at every length 1..24, equals torch's output length (incl. ceil_mode)."""
    name = f"{kind}pool1d"
    for k, s, pad, dil, ceil in itertools.product((1, 2, 3, 4), (1, 2, 3), (0, 1, 2), (1, 2), (False, True)):
        if pad > k // 2 or (kind == "avg" and dil != 1):
            continue
        params = {"kernel": k, "stride": s, "padding": pad, "ceil_mode": ceil}
        if kind == "max":
            params["dilation"] = dil
        (out,) = infer(name, params, (1, 1, L))
        for n in range(1, 25):
            ref = (nn.MaxPool1d(k, s, pad, dil, ceil_mode=ceil) if kind == "max"
                   else nn.AvgPool1d(k, s, pad, ceil_mode=ceil))
            try:
                want = ref(torch.zeros(1, 1, n)).shape[-1]
            except RuntimeError:
                want = None
            got = out.shape[-1].evaluate({"L": n}) if isinstance(out.shape[-1], Dim) else out.shape[-1]
            if want is None:
                assert got < 1, (params, n)
            else:
                assert got == want, (params, n)


@pytest.mark.parametrize("name, params, label", [
    ("maxpool2d", {"kernel": 3, "stride": 2, "padding": 1}, "maxpool 3x3 /2"),
    ("maxpool2d", {"kernel": 2}, "maxpool 2x2"),
    ("maxpool2d", {"kernel": 2, "stride": [2, 1]}, "maxpool 2x2 /2x1"),
    ("maxpool1d", {"kernel": 3, "stride": 1}, "maxpool 3 /1"),
    ("avgpool2d", {"kernel": 2}, "avgpool 2x2"),
    ("avgpool3d", {"kernel": [1, 2, 2]}, "avgpool 1x2x2"),
    ("adaptive_avg_pool2d", {"out": 7}, "adaptive avgpool 7x7"),
    ("adaptive_avg_pool2d", {"out": [1, None]}, "adaptive avgpool 1x*"),
    ("adaptive_max_pool1d", {"out": 4}, "adaptive maxpool 4"),
    ("global_avg_pool", {}, "global avgpool"),
    ("global_max_pool", {"flatten": True}, "global maxpool"),
])
def test_label(name, params, label):
    op = lookup(name)
    assert op.label(op.Params.model_validate(params)) == label


def test_module_source_is_compact():
    op = lookup("maxpool")
    x = [TensorType((N, 64, H, W))]
    assert source(op, x, op.Params.model_validate({"kernel": 3, "stride": 2, "padding": 1}), ["x"])[0] == \
        "nn.MaxPool2d(kernel_size=3, stride=2, padding=1)"
    assert source(op, x, op.Params.model_validate({"kernel": [3, 1], "padding": [1, 0]}), ["x"])[0] == \
        "nn.MaxPool2d(kernel_size=(3, 1), padding=(1, 0))"
    op = lookup("global_avg_pool")
    p = op.Params.model_validate({"flatten": True})
    assert source(op, x, p, ["x"], "self.pool")[1] == "torch.flatten(self.pool(x), 1)"


@pytest.mark.parametrize("name", POOL_OPS)
def test_doc_and_schema(name):
    op = lookup(name)
    assert op.doc and "\n" not in op.doc and op.torch_ref.startswith("torch.nn.")
    for fname, f in op.Params.model_fields.items():
        assert f.description, (name, fname)
