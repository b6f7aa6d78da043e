"""Shape ops: shape rules (symbolic and concrete), errors, requirements, and the generated torch code."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from netspec.ops.base import OpError, all_ops, lookup
from netspec.shapes import Dim, InferCtx, SymCtx, TensorType

from conftest import namespace, run_op, source, state_shapes

N, C, T, D, H, W = (Dim.sym(s) for s in "NCTDHW")
SHAPE_OPS = sorted(n for n, op in all_ops().items() if op.family == "shape")


def infer(name, params, shapes, dtype="float32", ctx=None):
    op = lookup(name)
    p = op.Params.model_validate(params)
    if not isinstance(shapes, list):
        shapes = [shapes]
    return op.infer([TensorType(tuple(s), dtype) for s in shapes], p, ctx or InferCtx())


# op, params, input shape, output shape(s) as printed (a list for multi-output ops)
SHAPES = [
    ("flatten", {}, (N, 64, H, W), "[N, 64*H*W]"),
    ("flatten", {}, (N, 512, 7, 7), "[N, 25088]"),
    ("flatten", {"start": 2}, (N, 64, H, W), "[N, 64, H*W]"),
    ("flatten", {"start": 0, "end": 1}, (N, 8, T), "[8*N, T]"),
    ("flatten", {"start": -2, "end": -2}, (N, 8, T), "[N, 8, T]"),
    ("reshape", {"shape": [8, 64]}, (N, 512), "[N, 8, 64]"),
    ("reshape", {"shape": [8, -1]}, (N, 64, H, W), "[N, 8, 8*H*W]"),
    ("reshape", {"shape": [-1, 64]}, (N, 64, H, W), "[N, H*W, 64]"),
    ("reshape", {"shape": [4, 16, -1], "keep": 2}, (N, T, 512), "[N, T, 4, 16, 8]"),
    ("reshape", {"shape": [-1], "keep": 0}, (N, T, 8), "[8*N*T]"),
    ("reshape", {"shape": [2, 3], "keep": 3}, (N, T, 8, 6), "[N, T, 8, 2, 3]"),
    ("permute", {"dims": [0, 2, 1]}, (N, 64, T), "[N, T, 64]"),
    ("permute", {"dims": [0, 2, 3, 1]}, (N, C, H, W), "[N, H, W, C]"),
    ("permute", {"dims": [0, -1, 1]}, (N, 64, T), "[N, T, 64]"),
    ("transpose", {"dim0": 1, "dim1": 2}, (N, 64, T), "[N, T, 64]"),
    ("transpose", {"dim0": -1, "dim1": -2}, (N, 4, T, 16), "[N, 4, 16, T]"),
    ("squeeze", {"dim": -1}, (N, 64, 1), "[N, 64]"),
    ("squeeze", {"dim": 1}, (N, 1, T), "[N, T]"),
    ("unsqueeze", {"dim": 1}, (N, T), "[N, 1, T]"),
    ("unsqueeze", {"dim": -1}, (N, T), "[N, T, 1]"),
    ("unsqueeze", {"dim": 0}, (T,), "[1, T]"),
    ("slice", {"end": -1}, (N, T), "[N, T-1]"),
    ("slice", {"start": 1}, (N, T, 64), "[N, T-1, 64]"),
    ("slice", {"start": 0, "end": 1}, (N, T, 64), "[N, 1, 64]"),
    ("slice", {"dim": -1, "start": 2, "end": 10, "step": 2}, (N, 64), "[N, 4]"),
    ("slice", {"dim": -1, "start": 1, "step": 2}, (N, C, H, W), "[N, C, H, W//2]"),
    ("slice", {"dim": 2, "step": 2}, (N, C, H, W), "[N, C, ceil(H/2), W]"),
    ("slice", {"start": -3}, (N, T), "[N, 3]"),
    ("slice", {"start": -3, "end": -1}, (N, T), "[N, 2]"),
    ("slice", {"start": -3, "end": 100}, (N, 10), "[N, 3]"),          # Python clamps end
    ("slice", {"start": 1, "end": -1, "step": 3}, (N, 10), "[N, 3]"),
    ("split", {"sizes": [1, -1]}, (N, T, 64), ["[N, 1, 64]", "[N, T-1, 64]"]),
    ("split", {"sizes": [16, 16, 32]}, (N, 64, H, W), ["[N, 16, H, W]", "[N, 16, H, W]", "[N, 32, H, W]"]),
    ("split", {"sizes": [64, 64, 64], "dim": -1}, (N, T, 192), ["[N, T, 64]"] * 3),
    ("split", {"chunks": 2}, (N, 64, H, W), ["[N, 32, H, W]"] * 2),
    ("split", {"chunks": 2, "dim": 2}, (N, 64, 2 * H, W), ["[N, 64, H, W]"] * 2),
    ("chunk", {"chunks": 3, "dim": -1}, (N, T, 768), ["[N, T, 256]"] * 3),
    ("chunk", {"chunks": 2}, (N, 2 * C, H, W), ["[N, C, H, W]"] * 2),
    ("pad", {"padding": [1, 1, 2, 2]}, (N, 3, H, W), "[N, 3, H+4, W+2]"),
    ("pad", {"padding": [1, 2]}, (N, 3, 32), "[N, 3, 35]"),
    ("pad", {"padding": [0, 0, 0, 0, 1, 1]}, (N, 3, H, W), "[N, 5, H, W]"),
    ("pad", {"padding": [-1, -1]}, (N, 3, T), "[N, 3, T-2]"),
    ("pad", {"padding": [3, 3, 3, 3], "mode": "reflect"}, (N, 3, 224, 224), "[N, 3, 230, 230]"),
    ("pad", {"padding": [1, 1], "mode": "replicate"}, (N, T), "[N, T+2]"),
    ("pad", {"padding": [1, 1, 1, 1, 1, 1], "mode": "circular"}, (N, 2, D, H, W), "[N, 2, D+2, H+2, W+2]"),
    ("upsample", {"scale": 2}, (N, 64, H, W), "[N, 64, 2*H, 2*W]"),
    ("upsample", {"scale": 2, "mode": "bilinear", "align_corners": False}, (N, 64, H, W), "[N, 64, 2*H, 2*W]"),
    ("upsample", {"scale": [1, 2]}, (N, 64, H, W), "[N, 64, H, 2*W]"),
    ("upsample", {"scale": 0.5}, (N, 64, H, W), "[N, 64, H//2, W//2]"),
    ("upsample", {"scale": 1.5}, (N, 64, H, W), "[N, 64, 3*H//2, 3*W//2]"),
    ("upsample", {"scale": 1.5}, (N, 64, 7, 9), "[N, 64, 10, 13]"),
    ("upsample", {"scale": 0.3}, (N, 64, 7, 9), "[N, 64, 2, 2]"),
    ("upsample", {"size": 32}, (N, 64, H, W), "[N, 64, 32, 32]"),
    ("upsample", {"size": [7, 9], "mode": "area"}, (N, 64, H, W), "[N, 64, 7, 9]"),
    ("upsample", {"scale": 4, "mode": "linear"}, (N, 64, T), "[N, 64, 4*T]"),
    ("upsample", {"scale": 2, "mode": "trilinear"}, (N, 8, D, H, W), "[N, 8, 2*D, 2*H, 2*W]"),
    ("interpolate", {"scale": 2, "mode": "nearest-exact"}, (N, 8, H, W), "[N, 8, 2*H, 2*W]"),
    ("pixel_shuffle", {"factor": 2}, (N, 64, H, W), "[N, 16, 2*H, 2*W]"),
    ("pixel_shuffle", {"factor": 3}, (N, 9 * C, H, W), "[N, C, 3*H, 3*W]"),
    ("pixel_shuffle", {"factor": 2}, (4, H, W), "[1, 2*H, 2*W]"),
    ("pixel_unshuffle", {"factor": 2}, (N, 3, 2 * H, 4 * W), "[N, 12, H, 2*W]"),
    ("pixel_unshuffle", {"factor": 2}, (N, 3, 8, 6), "[N, 12, 4, 3]"),
    ("channel_shuffle", {"groups": 3}, (N, 240, H, W), "[N, 240, H, W]"),
    ("channel_shuffle", {"groups": 2}, (N, 2 * C, T), "[N, 2*C, T]"),
    ("identity", {}, (N, 64, H, W), "[N, 64, H, W]"),
    ("identity", {}, (), "[]"),
    ("to_dtype", {"dtype": "float16"}, (N, 3, H, W), "[N, 3, H, W] float16"),
    ("cast", {"dtype": "float32"}, (N, T), "[N, T]"),
    ("mean", {"dim": 1}, (N, T, 512), "[N, 512]"),
    ("mean", {"dim": [2, 3]}, (N, 512, H, W), "[N, 512]"),
    ("mean", {"dim": [-1, -2], "keepdim": True}, (N, 512, H, W), "[N, 512, 1, 1]"),
    ("sum", {"dim": 0}, (N, T), "[T]"),
    ("sum", {"dim": -1, "keepdim": True}, (N, T, 64), "[N, T, 1]"),
    ("scale", {"factor": 0.125}, (N, 8, T, T), "[N, 8, T, T]"),
]


@pytest.mark.parametrize("name, params, shape, want", SHAPES)
def test_shape(name, params, shape, want):
    outs = infer(name, params, shape)
    got = [str(o) for o in outs]
    assert got == (want if isinstance(want, list) else [want])


def test_dtypes():
    ids = (N, T)
    assert infer("to_dtype", {"dtype": "int64"}, ids)[0].dtype == "int64"
    assert infer("sum", {"dim": 1}, ids, "int32")[0].dtype == "int64"       # torch promotes integer sums
    assert infer("sum", {"dim": 1}, ids, "bool")[0].dtype == "int64"
    assert infer("sum", {"dim": 1}, ids, "float16")[0].dtype == "float16"
    for name, params in [("flatten", {}), ("permute", {"dims": [1, 0]}), ("slice", {"end": 4}),
                         ("split", {"chunks": 2, "dim": 0}), ("reshape", {"shape": [-1], "keep": 0}),
                         ("unsqueeze", {"dim": 0}), ("identity", {}), ("pad", {"padding": [1, 1]})]:
        assert all(o.dtype == "int64" for o in infer(name, params, (4, 8), "int64")), name


# op, params, input shape, dtype, message substrings, param at fault
ERRORS = [
    ("flatten", {"start": 2}, (N, 64), "float32", ["start 2 is out of range", "[N, 64]"], "start"),
    ("flatten", {"start": 2, "end": 1}, (N, 8, H, W), "float32", ["start (2) comes after end (1)"], "start"),
    ("reshape", {"shape": [8, 64]}, (N, 500), "float32",
     ["does not fit", "[N, 500]", "[N, 8, 64]", "500 vs 512"], None),
    ("reshape", {"shape": [7, -1]}, (N, 64, 4, 4), "float32",
     ["cannot infer -1", "[N, 7, -1]", "[N, 64, 4, 4]", "1024 elements", "not divisible by 7"], "shape"),
    ("reshape", {"shape": [4], "keep": 3}, (N, 8), "float32", ["first 3 dims", "has only 2"], "keep"),
    ("permute", {"dims": [0, 1]}, (N, 64, T), "float32", ["has 2 entries", "has 3 dims"], "dims"),
    ("permute", {"dims": [0, 1, 1]}, (N, 64, T), "float32", ["not a permutation of 0..2"], "dims"),
    ("permute", {"dims": [0, 1, 3]}, (N, 64, T), "float32", ["dims 3 is out of range", "rank-3"], "dims"),
    ("transpose", {"dim0": 1, "dim1": 3}, (N, 64, T), "float32", ["dim1 3 is out of range"], "dim1"),
    ("squeeze", {"dim": 1}, (N, 64, T), "float32", ["dim 1 of [N, 64, T] has size 64, not 1"], "dim"),
    ("squeeze", {"dim": 2}, (N, 64, T), "float32", ["is T", "depends on the input size"], "dim"),
    ("unsqueeze", {"dim": 3}, (N, T), "float32", ["dim 3 is out of range", "-3..2"], "dim"),
    ("slice", {"start": 5, "end": 5}, (N, T), "float32", ["slice 5:5", "is empty"], "end"),
    ("slice", {"start": 12}, (N, 10), "float32", ["slice 12:", "[N, 10]", "is empty"], "end"),
    ("slice", {"start": -3, "end": 2}, (N, T), "float32", ["negative start", "depends on"], "start"),
    ("slice", {"dim": 4}, (N, T), "float32", ["dim 4 is out of range"], "dim"),
    ("split", {"sizes": [16, 16]}, (N, 64, H, W), "float32", ["sizes [16, 16]", "dim 1 of [N, 64, H, W]", "64 vs 32"],
     None),
    ("split", {"sizes": [64, -1]}, (N, 64, H, W), "float32", ["leave nothing for -1"], "sizes"),
    ("split", {"chunks": 3}, (N, 64, H, W), "float32", ["(64) is not divisible by chunks (3)", "63 or 66"], "chunks"),
    ("chunk", {"chunks": 3}, (N, 64, H, W), "float32", ["not divisible by chunks (3)", "unequal size"], "chunks"),
    ("chunk", {"chunks": 2, "dim": 2}, (N, 64, 2 * H + 1, W), "float32", ["not divisible by chunks (2)"], None),
    ("pad", {"padding": [1, 1, 1, 1, 1, 1]}, (N, 8), "float32", ["pad 3 dims", "has only 2"], "padding"),
    ("pad", {"padding": [1, 1], "mode": "reflect"}, (N, 3, H, W), "float32",
     ["mode 'reflect'", "rank-4", "not supported"], "padding"),
    ("pad", {"padding": [1, 1], "mode": "reflect"}, (T,), "float32", ["not supported"], "padding"),
    ("pad", {"padding": [3, 3], "mode": "reflect"}, (N, 3, 3), "float32", ["needs padding < the size", "is 3"],
     "padding"),
    ("pad", {"padding": [4, 0], "mode": "circular"}, (N, 3, 3), "float32", ["padding <= the size"], "padding"),
    ("pad", {"padding": [-2, -1]}, (N, 3, 3), "float32", ["leaves nothing of dim 2"], "padding"),
    ("upsample", {"scale": 2}, (N, 64, H, W), "int64", ["floating-point"], None),
    ("upsample", {"scale": 2, "mode": "bilinear"}, (N, 64, T), "float32", ["'bilinear' needs a rank-4"], "mode"),
    ("upsample", {"scale": 2, "mode": "linear"}, (N, 64, H, W), "float32", ["'linear' needs a rank-3"], "mode"),
    ("upsample", {"scale": 2}, (N, 64), "float32", ["(N, C, H, W)"], None),
    ("upsample", {"scale": [2, 2, 2]}, (N, 64, H, W), "float32", ["3 values for 2 spatial dims"], "scale"),
    ("upsample", {"size": [2, 2, 2]}, (N, 64, H, W), "float32", ["3 values for 2 spatial dims"], "size"),
    ("upsample", {"scale": 0.3}, (N, 64, H, W), "float32", ["floor(H*0.3)", "cannot follow"], "scale"),
    ("upsample", {"scale": 0.1}, (N, 64, 3, 3), "float32", ["shrinks the size 3", "to 0"], "scale"),
    ("pixel_shuffle", {"factor": 2}, (N, 6, H, W), "float32", ["the 6 channels", "factor**2 (4)"], "factor"),
    ("pixel_shuffle", {"factor": 2}, (N, W), "float32", ["(C, H, W)"], None),
    ("pixel_unshuffle", {"factor": 2}, (N, 3, 7, 8), "float32", ["dim 2 of [N, 3, 7, 8] (7) is not divisible"],
     "factor"),
    ("channel_shuffle", {"groups": 4}, (N, 6, H, W), "float32", ["(6) is not divisible by groups (4)"], "groups"),
    ("channel_shuffle", {"groups": 2}, (N, 6), "float32", ["at least 3 dims"], None),
    ("mean", {"dim": 1}, (N, T), "int64", ["floating-point"], None),
    ("mean", {"dim": [1, -1]}, (N, T), "float32", ["twice"], "dim"),
    ("sum", {"dim": 2}, (N, T), "float32", ["dim 2 is out of range"], "dim"),
    ("scale", {"factor": 2.0}, (N, T), "int64", ["floating-point"], None),
]


@pytest.mark.parametrize("name, params, shape, dtype, parts, param", ERRORS)
def test_error(name, params, shape, dtype, parts, param):
    with pytest.raises(OpError) as e:
        infer(name, params, shape, dtype)
    text = " | ".join([e.value.message] + e.value.hints)
    for s in parts:
        assert s in text, (s, text)
    assert e.value.param == param
    assert e.value.hints or param is None, "an error with a param should say how to fix it"


# bad parameter values: rejected by Params validation with these substrings
PARAM_ERRORS = [
    ("reshape", {"shape": [8, 0]}, ["0 is not allowed", "keep"]),
    ("reshape", {"shape": [-1, -1]}, ["only one entry"]),
    ("reshape", {"shape": [8, -2]}, ["positive"]),
    ("reshape", {"shape": []}, ["at least one"]),
    ("reshape", {"shape": [8], "keep": -1}, ["greater than or equal to 0"]),
    ("permute", {"dims": []}, ["at least 1"]),
    ("slice", {"step": 0}, ["greater than or equal to 1"]),
    ("slice", {"step": -1}, ["greater than or equal to 1"]),
    ("split", {}, ["either 'sizes'"]),
    ("split", {"sizes": [1, 2], "chunks": 2}, ["either 'sizes'"]),
    ("split", {"sizes": [1, 0]}, ["positive"]),
    ("split", {"sizes": [-1, -1]}, ["only one"]),
    ("split", {"sizes": [1] * 17}, ["1 to 16 entries"]),
    ("split", {"chunks": 17}, ["less than or equal to 16"]),
    ("chunk", {"chunks": 0}, ["greater than or equal to 1"]),
    ("pad", {"padding": [1, 1, 1]}, ["pairs"]),
    ("pad", {"padding": []}, ["pairs"]),
    ("pad", {"padding": [1, 1], "mode": "reflect", "value": 1.0}, ["only used by mode 'constant'"]),
    ("pad", {"padding": [1, 1], "mode": "edge"}, ["constant"]),
    ("upsample", {"scale": 2, "size": 4}, ["either 'scale' or 'size'"]),
    ("upsample", {"scale": 0}, ["must be positive"]),
    ("upsample", {"scale": float("inf")}, ["must be positive"]),
    ("upsample", {"scale": [2, float("nan")]}, ["must be positive"]),
    ("scale", {"factor": float("nan")}, ["finite"]),
    ("upsample", {"size": [4, -1]}, ["must be positive"]),
    ("upsample", {"scale": 2, "align_corners": True}, ["align_corners only applies", "'nearest'"]),
    ("upsample", {"scale": 2, "mode": "cubic"}, ["bilinear"]),
    ("pixel_shuffle", {"factor": 0}, ["greater than or equal to 1"]),
    ("channel_shuffle", {}, ["groups"]),
    ("to_dtype", {"dtype": "float8"}, ["float16"]),
    ("mean", {"dim": []}, ["at least one entry"]),
    ("flatten", {"start_dim": 1}, ["start_dim"]),
]


@pytest.mark.parametrize("name, params, parts", PARAM_ERRORS)
def test_param_error(name, params, parts):
    with pytest.raises(ValidationError) as e:
        lookup(name).Params.model_validate(params)
    for s in parts:
        assert s in str(e.value), (s, str(e.value))


# symbolic sizes that fit only for some values: op, params, input shape, requirement texts
REQUIREMENTS = [
    ("pixel_unshuffle", {"factor": 2}, (N, 3, H, W), ["H % 2 == 0", "W % 2 == 0"]),
    ("chunk", {"chunks": 4, "dim": 2}, (N, 8, T), ["T % 4 == 0"]),
    ("split", {"chunks": 2, "dim": 2}, (N, 8, H, W), ["H % 2 == 0"]),
    ("channel_shuffle", {"groups": 3}, (N, C, T), ["C % 3 == 0"]),
    ("pixel_shuffle", {"factor": 2}, (N, C, H, W), ["C % 4 == 0"]),
    ("reshape", {"shape": [-1, 4]}, (N, 3, T), ["T % 4 == 0"]),
    ("reshape", {"shape": [8, 64]}, (N, T, 64), ["64*T == 512"]),
    ("split", {"sizes": [4, 4]}, (N, T), ["T == 8"]),
    ("slice", {"start": 2, "end": 10}, (N, T), ["T >= 10"]),
    ("slice", {"start": -4}, (N, T), ["T >= 4"]),
    ("pad", {"padding": [2, 3], "mode": "reflect"}, (N, 3, T), ["T >= 4"]),
    ("pad", {"padding": [2, 3], "mode": "circular"}, (N, 3, T), ["T >= 3"]),
]


@pytest.mark.parametrize("name, params, shape, want", REQUIREMENTS)
def test_requirement(name, params, shape, want):
    ctx = InferCtx(node="layer")
    infer(name, params, shape, ctx=ctx)
    assert [r.text for r in ctx.requirements] == want
    assert all(r.where == "layer" for r in ctx.requirements)


def test_requirement_assumed():
    """Once the expansion assumes a requirement (H % 2 == 0), the rule gives exact sizes and asks nothing more."""
    ctx = InferCtx(sym=SymCtx({"H": 2, "W": 2}))
    (out,) = infer("pixel_unshuffle", {"factor": 2}, (N, 3, H, W), ctx=ctx)
    assert str(out) == "[N, 12, H/2, W/2]" and not ctx.requirements
    ctx = InferCtx(sym=SymCtx({"T": 4}))
    (out,) = infer("reshape", {"shape": [-1, 4]}, (N, 3, T), ctx=ctx)
    assert str(out) == "[N, 3*T/4, 4]" and not ctx.requirements


# -- the generated torch code ---------------------------------------------------------------------------------------

def _rand(shape):
    torch.manual_seed(0)
    return torch.randn(shape)


# op, params, concrete input shape, reference: fn(x) -> output(s) built with torch's own API (None: same as infer only)
RUN = [
    ("roll", {"shifts": [1, -2], "dims": [1, 2]}, (2, 4, 3), lambda x: torch.roll(x, (1, -2), (1, 2))),
    ("expand", {"sizes": [3, -1, -1]}, (1, 4, 5), lambda x: x.expand(3, -1, -1)),
    ("flatten", {}, (2, 4, 3, 5), lambda x: nn.Flatten()(x)),
    ("flatten", {"start": 0, "end": 1}, (2, 4, 3), lambda x: torch.flatten(x, 0, 1)),
    ("reshape", {"shape": [8, -1]}, (2, 16, 3, 3), lambda x: x.reshape(2, 8, -1)),
    ("reshape", {"shape": [-1], "keep": 0}, (2, 3, 4), lambda x: x.reshape(-1)),
    ("reshape", {"shape": [3, 4], "keep": 2}, (2, 5, 12), lambda x: x.reshape(2, 5, 3, 4)),
    ("permute", {"dims": [0, 2, 1]}, (2, 4, 3), lambda x: x.permute(0, 2, 1)),
    ("transpose", {"dim0": -1, "dim1": 1}, (2, 4, 3, 5), lambda x: x.transpose(-1, 1)),
    ("squeeze", {"dim": 2}, (2, 4, 1), lambda x: x.squeeze(2)),
    ("select", {"dim": 1, "index": -1}, (2, 5, 3), lambda x: x.select(1, -1)),
    ("unsqueeze", {"dim": -1}, (2, 4), lambda x: x.unsqueeze(-1)),
    ("slice", {"end": -1}, (2, 7, 3), lambda x: x[:, :-1]),
    ("slice", {"dim": -1, "start": 1, "end": 9, "step": 3}, (2, 3, 10), lambda x: x[..., 1:9:3]),
    ("slice", {"dim": -2, "start": -3}, (2, 6, 4), lambda x: x[:, -3:, :]),
    ("slice", {"dim": 0, "start": 1}, (3, 4), lambda x: x[1:]),
    ("split", {"sizes": [1, -1]}, (2, 5, 3), lambda x: torch.split(x, [1, 4], dim=1)),
    ("split", {"sizes": [2, 3], "dim": -1}, (2, 4, 5), lambda x: torch.split(x, [2, 3], dim=-1)),
    ("split", {"chunks": 3, "dim": 2}, (2, 4, 6), lambda x: torch.split(x, 2, dim=2)),
    ("chunk", {"chunks": 2}, (2, 6, 3, 3), lambda x: torch.chunk(x, 2, dim=1)),
    ("pad", {"padding": [1, 2, 0, 3]}, (2, 3, 4, 5), lambda x: nn.ZeroPad2d((1, 2, 0, 3))(x)),
    ("pad", {"padding": [1, 1], "value": 2.5}, (2, 3, 4), lambda x: nn.ConstantPad1d(1, 2.5)(x)),
    ("pad", {"padding": [2, 2, 2, 2], "mode": "reflect"}, (2, 3, 5, 5), lambda x: nn.ReflectionPad2d(2)(x)),
    ("pad", {"padding": [1, 0, 1, 0], "mode": "replicate"}, (2, 3, 4, 4),
     lambda x: nn.ReplicationPad2d((1, 0, 1, 0))(x)),
    ("pad", {"padding": [3, 3], "mode": "circular"}, (2, 3, 3), lambda x: nn.CircularPad1d(3)(x)),
    ("pad", {"padding": [-1, 1]}, (2, 3, 4), lambda x: F.pad(x, (-1, 1))),
    ("pad", {"padding": [1, 1], "value": float("-inf")}, (2, 3, 4), lambda x: F.pad(x, (1, 1), value=float("-inf"))),
    ("upsample", {"scale": 2}, (2, 3, 4, 5), lambda x: nn.Upsample(scale_factor=2)(x)),
    ("upsample", {"scale": 2, "mode": "bilinear", "align_corners": True}, (2, 3, 4, 5),
     lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)),
    ("upsample", {"scale": 1.5, "mode": "bicubic"}, (2, 3, 7, 9),
     lambda x: F.interpolate(x, scale_factor=1.5, mode="bicubic")),
    ("upsample", {"scale": [0.5, 3]}, (2, 3, 7, 9), lambda x: F.interpolate(x, scale_factor=(0.5, 3.0))),
    ("upsample", {"scale": 0.3, "mode": "area"}, (2, 3, 7, 9),
     lambda x: F.interpolate(x, scale_factor=0.3, mode="area")),
    ("upsample", {"size": [6, 4], "mode": "nearest-exact"}, (2, 3, 7, 9),
     lambda x: F.interpolate(x, size=(6, 4), mode="nearest-exact")),
    ("upsample", {"size": 11, "mode": "linear"}, (2, 3, 7), lambda x: F.interpolate(x, size=11, mode="linear")),
    ("interpolate", {"scale": 2, "mode": "trilinear"}, (1, 2, 3, 4, 5),
     lambda x: F.interpolate(x, scale_factor=2, mode="trilinear")),
    ("pixel_shuffle", {"factor": 2}, (2, 8, 3, 4), lambda x: nn.PixelShuffle(2)(x)),
    ("pixel_unshuffle", {"factor": 3}, (2, 2, 6, 9), lambda x: nn.PixelUnshuffle(3)(x)),
    ("channel_shuffle", {"groups": 3}, (2, 6, 4, 4),   # ShuffleNet's reference formulation
     lambda x: x.view(2, 3, 2, 4, 4).transpose(1, 2).contiguous().view(2, 6, 4, 4)),
    ("identity", {}, (2, 3), lambda x: x),
    ("to_dtype", {"dtype": "bfloat16"}, (2, 3), lambda x: x.to(torch.bfloat16)),
    ("mean", {"dim": [2, 3]}, (2, 4, 3, 5), lambda x: x.mean((2, 3))),
    ("mean", {"dim": 1, "keepdim": True}, (2, 4, 3), lambda x: x.mean(1, keepdim=True)),
    ("sum", {"dim": -1}, (2, 4, 3), lambda x: x.sum(-1)),
    ("scale", {"factor": 0.125}, (2, 4), lambda x: x * 0.125),
]


@pytest.mark.parametrize("name, params, shape, ref", RUN)
def test_torch(name, params, shape, ref):
    x = _rand(shape)
    outs, mod, ys = run_op(name, params, [shape], inputs=[x])
    op = lookup(name)
    types = [TensorType(tuple(shape))]
    # (a) the shape rule agrees with torch
    assert [tuple(y.shape) for y in ys] == [o.shape for o in outs]
    assert [str(y.dtype).removeprefix("torch.") for y in ys] == [o.dtype for o in outs]
    # (b) no parameters or buffers, as weights() says
    assert state_shapes(mod) == op.weights(types, op.Params.model_validate(params)) == {}
    # (c) the same values as torch's own API
    want = ref(x)
    want = tuple(want) if isinstance(want, (tuple, list)) else (want,)
    assert len(ys) == len(want)
    for y, w in zip(ys, want):
        assert torch.equal(y, w)


def test_run_covers_every_op():
    assert sorted({lookup(name).name for name, *_ in RUN}) == SHAPE_OPS


def test_integer_inputs_run():
    for name, params in [("sum", {"dim": 1}), ("reshape", {"shape": [-1]}), ("to_dtype", {"dtype": "float32"})]:
        outs, _, ys = run_op(name, params, [(2, 6)], dtypes=["int64"])
        assert [str(y.dtype).removeprefix("torch.") for y in ys] == [o.dtype for o in outs]


def test_symbolic_sizes_run():
    """Code for a symbolic input (split with -1, reshape keeping the batch) runs at several concrete sizes."""
    for t in (3, 5, 8):
        _, _, ys = run_op("split", {"sizes": [1, -1]}, [(2, t, 4)])
        assert [tuple(y.shape) for y in ys] == [(2, 1, 4), (2, t - 1, 4)]
    for n in (1, 3):
        _, _, (y,) = run_op("reshape", {"shape": [4, -1]}, [(n, 8, 2)])
        assert tuple(y.shape) == (n, 4, 4)


def test_generated_source():
    def src(name, params, shape=(N, 8, H, W)):
        op = lookup(name)
        p = op.Params.model_validate(params)
        ins = [TensorType(shape)]
        return source(op, ins, p, ["x"], "self.m")

    assert src("flatten", {}) == ("nn.Flatten()", "self.m(x)")
    assert src("flatten", {"start": 2}) == ("nn.Flatten(2, -1)", "self.m(x)")
    assert src("reshape", {"shape": [8, 64]}, (N, 512)) == (None, "x.reshape(x.shape[0], 8, 64)")
    assert src("reshape", {"shape": [-1], "keep": 0}) == (None, "x.reshape(-1)")
    assert src("reshape", {"shape": [2, -1], "keep": 2}) == (None, "x.reshape(x.shape[:2] + (2, -1))")
    assert src("permute", {"dims": [0, 2, 3, 1]}) == (None, "x.permute(0, 2, 3, 1)")
    assert src("slice", {"end": -1}) == (None, "x[:, :-1]")
    assert src("slice", {"dim": -1, "start": 1, "step": 2}) == (None, "x[..., 1::2]")
    assert src("split", {"sizes": [1, -1]}) == (None, "torch.split(x, [1, x.shape[1] - 1], dim=1)")
    assert src("chunk", {"chunks": 2}) == (None, "torch.chunk(x, 2, dim=1)")
    assert src("pad", {"padding": [1, 1], "mode": "reflect"}) == (None, 'F.pad(x, (1, 1), mode="reflect")')
    assert src("upsample", {"scale": 2, "mode": "bilinear", "align_corners": False}) == (
        'nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False)', "self.m(x)")
    assert src("upsample", {"size": [4, 6]})[0] == 'nn.Upsample(size=(4, 6), mode="nearest")'
    assert src("channel_shuffle", {"groups": 2})[0] == "nn.ChannelShuffle(2)"
    assert src("mean", {"dim": [2, 3]}) == (None, "torch.mean(x, dim=(2, 3))")
    assert src("sum", {"dim": 1, "keepdim": True}) == (None, "torch.sum(x, dim=1, keepdim=True)")
    assert src("to_dtype", {"dtype": "float16"}) == (None, "x.to(torch.float16)")
    assert src("scale", {"factor": 0.125}) == (None, "x * 0.125")


LABELS = [
    ("flatten", {}, "flatten"),
    ("reshape", {"shape": [8, 64]}, "reshape 8x64"),
    ("permute", {"dims": [0, 2, 1]}, "permute 0,2,1"),
    ("transpose", {"dim0": 1, "dim1": 2}, "transpose 1,2"),
    ("upsample", {"scale": 2, "mode": "bilinear"}, "upsample x2 bilinear"),
    ("upsample", {"scale": 2}, "upsample x2"),
    ("upsample", {"scale": [1, 2]}, "upsample x1,2"),
    ("upsample", {"size": [7, 7]}, "upsample to 7x7"),
    ("pad", {"padding": [1, 1]}, "pad"),
    ("pad", {"padding": [1, 1], "mode": "reflect"}, "pad reflect"),
    ("channel_shuffle", {"groups": 3}, "shuffle g3"),
    ("slice", {"end": -1}, "slice [:, :-1]"),
    ("split", {"sizes": [1, -1]}, "split 1,-1"),
    ("split", {"chunks": 3}, "split /3"),
    ("chunk", {"chunks": 3}, "chunk 3"),
    ("pixel_shuffle", {"factor": 2}, "pixel shuffle x2"),
    ("mean", {"dim": [2, 3]}, "mean dim 2,3"),
    ("scale", {"factor": 0.125}, "scale 0.125"),
    ("to_dtype", {"dtype": "float16"}, "to float16"),
]


@pytest.mark.parametrize("name, params, want", LABELS)
def test_label(name, params, want):
    op = lookup(name)
    assert op.label(op.Params.model_validate(params)) == want


@pytest.mark.parametrize("name", SHAPE_OPS)
def test_op_metadata(name):
    op = lookup(name)
    assert op.family == "shape" and op.doc and "\n" not in op.doc and op.torch_ref
    for fname, f in op.Params.model_fields.items():
        assert f.description, f"{name}.{fname} has no description"
    assert op.helpers() == {}


def test_multi_output_names():
    assert lookup("split").outputs[:3] == ("out0", "out1", "out2")
    assert len(lookup("chunk").outputs) == 16 and all(o.isidentifier() for o in lookup("chunk").outputs)


@pytest.mark.parametrize("name, params, shape, ref", [r for r in RUN if r[0] != "to_dtype"])
def test_backward(name, params, shape, ref):
    """Every op trains: gradients reach the input through the generated code."""
    x = _rand(shape).requires_grad_()
    op = lookup(name)
    p = op.Params.model_validate(params)
    ins = [TensorType(tuple(shape))]
    ns = namespace(op)
    src, expr = source(op, ins, p, ["x"])
    env = {**ns, "mod": eval(src, ns) if src else None, "x": x}
    y = eval(expr, env)
    ys = y if isinstance(y, (tuple, list)) else (y,)
    sum(t.float().sum() for t in ys).backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_channel_shuffle_has_a_cuda_kernel():
    # nn.ChannelShuffle had no CUDA kernel in older torch (pytorch#65325, #121208); netspec relies on it.
    has = getattr(torch._C, "_dispatch_has_kernel_for_dispatch_key", None)
    if has is None:
        pytest.skip("this torch cannot be asked")
    assert has("aten::channel_shuffle", "CUDA")
