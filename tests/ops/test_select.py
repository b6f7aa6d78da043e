"""select: one index along a dim (the last step of an RNN's output)."""
from __future__ import annotations

import pytest
import torch

from conftest import run_op
from netspec.ops.base import OpError, lookup
from netspec.shapes import Dim, InferCtx, TensorType

N, T = Dim.sym("N"), Dim.sym("T")


@pytest.mark.parametrize("shape,dim,index,want", [
    ((2, 5, 3), 1, -1, (2, 3)),
    ((2, 5, 3), 1, 0, (2, 3)),
    ((2, 5, 3), -1, 2, (2, 5)),
    ((4,), 0, 3, ()),
])
def test_select_concrete_matches_torch(shape, dim, index, want):
    outs, _, (y,) = run_op("select", {"dim": dim, "index": index}, [shape])
    assert outs[0].shape == want == tuple(y.shape)
    x = torch.arange(int(torch.tensor(shape).prod())).reshape(shape).float()
    _, _, (y,) = run_op("select", {"dim": dim, "index": index}, [shape], inputs=[x])
    assert torch.equal(y, x.select(dim, index))


def test_select_symbolic():
    op = lookup("select")
    ctx = InferCtx()
    out = op.infer([TensorType((N, T, 64))], op.Params(dim=1, index=-1), ctx)[0]
    assert out.shape == (N, 64) and not ctx.requirements
    op.infer([TensorType((N, T, 64))], op.Params(dim=1, index=3), ctx)
    assert ctx.requirements and ctx.requirements[0].text == "T > 3"


@pytest.mark.parametrize("params,msg", [({"dim": 1, "index": 5}, "index 5 is out of range"),
                                        ({"dim": 3, "index": 0}, "dim 3 is out of range")])
def test_select_errors(params, msg):
    op = lookup("select")
    with pytest.raises(OpError, match=msg):
        op.infer([TensorType((2, 5, 3))], op.Params(**params), InferCtx())
