"""exp and randn_like: elementwise e**x, and standard normal noise shaped like the input (a VAE's sampling)."""
from __future__ import annotations

import pytest
import torch

from conftest import run_op
from netspec.ops.base import OpError, lookup
from netspec.shapes import Dim, InferCtx, TensorType

N, H, W = (Dim.sym(s) for s in "NHW")


@pytest.mark.parametrize("name", ["exp", "randn_like"])
@pytest.mark.parametrize("shape", [(N, 20), (N, 3, H, W)])
def test_same_shape_no_weights(name, shape):
    op = lookup(name)
    p = op.Params()
    (out,) = op.infer([TensorType(shape)], p, InferCtx())
    assert out == TensorType(shape)
    assert op.weights([out], p) == {} and op.constructor([out], p) is None
    assert op.macs([out], [out], p) == 0


@pytest.mark.parametrize("name", ["exp", "randn_like"])
def test_needs_a_float_input(name):
    with pytest.raises(OpError, match="floating-point"):
        lookup(name).infer([TensorType((N, 5), "int64")], lookup(name).Params(), InferCtx())


def test_exp_matches_torch():
    x = torch.randn(4, 7)
    _, mod, (y,) = run_op("exp", {}, [(4, 7)], inputs=[x])
    assert mod is None and torch.equal(y, torch.exp(x))


def test_randn_like_draws_what_torch_draws():
    x = torch.randn(3, 5, dtype=torch.float64)
    torch.manual_seed(3)
    _, _, (y,) = run_op("randn_like", {}, [(3, 5)], dtypes=["float64"], inputs=[x])
    torch.manual_seed(3)
    assert y.dtype == torch.float64 and torch.equal(y, torch.randn_like(x))
    assert not torch.equal(y, run_op("randn_like", {}, [(3, 5)], dtypes=["float64"], inputs=[x])[2][0])


def test_docs():
    for name in ("exp", "randn_like"):
        op = lookup(name)
        assert op.doc and "\n" not in op.doc and op.torch_ref.startswith("torch.")
    assert lookup("normal_like") is lookup("randn_like")
