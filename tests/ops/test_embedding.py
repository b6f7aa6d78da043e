"""Embedding family: token embedding, sinusoidal and learned positional encodings."""
from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from conftest import run_op, source, state_shapes
from netspec.ops.base import OpError, lookup
from netspec.shapes import Dim, InferCtx, TensorType

N, T, D = Dim.sym("N"), Dim.sym("T"), Dim.sym("D")


def infer(name, params, *types):
    op = lookup(name)
    p = op.Params.model_validate(params)
    ctx = InferCtx()
    return op.infer(list(types), p, ctx), op.weights(list(types), p), ctx


def tt(*shape, dtype="float32"):
    return TensorType(tuple(shape), dtype)


# (op, params, input types, expected output shapes, expected weights {key: shape})
CASES = [
    ("embedding", {"num": 10000, "out": 512}, [tt(N, T, dtype="int64")], [(N, T, 512)], {"weight": (10000, 512)}),
    ("embedding", {"num": 10, "out": 4}, [tt(N, dtype="int32")], [(N, 4)], {"weight": (10, 4)}),
    ("embedding", {"num": 10, "out": 4, "padding_idx": 0}, [tt(2, 3, 5, dtype="int64")], [(2, 3, 5, 4)],
     {"weight": (10, 4)}),
    ("embedding", {"num": 10, "out": 4}, [tt(dtype="int64")], [(4,)], {"weight": (10, 4)}),
    ("positional_encoding", {}, [tt(N, T, 512)], [(N, T, 512)], {}),
    ("positional_encoding", {"max_len": 100}, [tt(T, 64)], [(T, 64)], {}),
    ("positional_encoding", {"max_len": 100, "p": 0.1}, [tt(N, 100, 64)], [(N, 100, 64)], {}),
    ("learned_positional_encoding", {"max_len": 512}, [tt(N, T, 768)], [(N, T, 768)], {"pos": (1, 512, 768)}),
    ("learned_positional_encoding", {"max_len": 197}, [tt(N, 197, 768)], [(N, 197, 768)], {"pos": (1, 197, 768)}),
]


@pytest.mark.parametrize("name,params,ins,want,weights", CASES)
def test_shapes(name, params, ins, want, weights):
    outs, w, _ = infer(name, params, *ins)
    assert [o.shape for o in outs] == want
    assert {k: v[0] for k, v in w.items()} == weights
    assert all(kind == "param" for _, kind in w.values())
    if name == "embedding":
        assert outs[0].dtype == "float32"


# (op, params, input types, substring of the message, substring of a hint or None)
FAILS = [
    ("embedding", {"num": 10, "out": 4}, [tt(N, T)], "token ids must be int64", "dtype: int64"),
    ("embedding", {"num": 10, "out": 4}, [tt(N, T, dtype="bool")], "token ids must be int64", "dtype: int64"),
    ("embedding", {"num": 10, "out": 4}, [tt(N, T, dtype="uint8")], "torch cannot index", "dtype: int64"),
    ("positional_encoding", {}, [tt(N, 6000, 512)], "exceeds max_len (5000)", "at least 6000"),
    ("positional_encoding", {}, [tt(N, T, D)], "needs a fixed model dimension", None),
    ("positional_encoding", {}, [tt(N, T, dtype="int64")], "floating-point", "embedding"),
    ("positional_encoding", {}, [tt(N, 3, 32, 32)], "rank-2 or 3", "(N, T, D)"),
    ("learned_positional_encoding", {"max_len": 16}, [tt(N, 17, 8)], "exceeds max_len (16)", "at least 17"),
    ("learned_positional_encoding", {"max_len": 16}, [tt(8)], "rank-2 or 3", None),
]


@pytest.mark.parametrize("name,params,ins,msg,hint", FAILS)
def test_shape_errors(name, params, ins, msg, hint):
    with pytest.raises(OpError) as e:
        infer(name, params, *ins)
    assert msg in e.value.message
    if hint:
        assert any(hint in h for h in e.value.hints), e.value.hints


@pytest.mark.parametrize("name,params", [
    ("embedding", {"num": 10, "out": 4, "padding_idx": 10}),
    ("embedding", {"num": 0, "out": 4}),
    ("embedding", {"num": 10, "out": 4, "max_norm": 0}),
    ("embedding", {"num": 10, "out": 4, "in_features": 3}),
    ("positional_encoding", {"p": 1.0}),
    ("positional_encoding", {"max_len": 0}),
    ("learned_positional_encoding", {}),
])
def test_bad_params(name, params):
    with pytest.raises(ValidationError):
        lookup(name).Params.model_validate(params)


def test_labels():
    assert lookup("embedding").label(lookup("embedding").Params(num=10000, out=512)) == "embedding 10000x512"
    assert lookup("positional_encoding").label(lookup("positional_encoding").Params()) == "pos enc"


def test_family_registered():
    for name in ("embedding", "positional_encoding", "learned_positional_encoding"):
        op = lookup(name)
        assert op.family == "embedding" and op.__doc__ and "\n" not in op.__doc__.strip()


# -- torch: module built from the generated source ---------------------------------------------------------

@pytest.mark.parametrize("params", [{"num": 20, "out": 6}, {"num": 20, "out": 6, "padding_idx": 1, "max_norm": 1.0,
                                                                "scale_grad_by_freq": True}])
@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_embedding_torch(params, dtype):
    ids = torch.randint(0, 20, (3, 7), dtype=getattr(torch, dtype))
    outs, mod, (y,) = run_op("embedding", params, [(3, 7)], [dtype], inputs=[ids])
    assert outs[0].shape == tuple(y.shape) and y.dtype == torch.float32
    op = lookup("embedding")
    assert state_shapes(mod) == op.weights([TensorType((3, 7), dtype)], op.Params(**params))
    ref = torch.nn.Embedding(20, 6, **{k: v for k, v in params.items() if k not in ("num", "out")})
    ref.load_state_dict(mod.state_dict(), strict=True)
    assert torch.equal(ref(ids), y)


class TutorialPositionalEncoding(torch.nn.Module):
    """The PyTorch tutorial's PositionalEncoding (sequence first), as the reference."""

    def __init__(self, d_model, max_len=5000):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):  # (T, N, D)
        return x + self.pe[: x.size(0)]


def test_positional_encoding_torch():
    outs, mod, (y,) = run_op("positional_encoding", {"max_len": 64}, [(2, 10, 16)])
    assert outs[0].shape == tuple(y.shape)
    assert mod.state_dict() == {} and [k for k, _ in mod.named_buffers()] == ["pe"]
    x = torch.randn(2, 10, 16)
    ref = TutorialPositionalEncoding(16, 64)
    assert torch.allclose(mod(x), ref(x.transpose(0, 1)).transpose(0, 1), atol=1e-6)
    # unbatched (T, D), odd D: sin on even columns, cos on odd ones
    pe_op = lookup("positional_encoding")
    mod7 = eval(source(pe_op, [tt(5, 7)], pe_op.Params(max_len=8), ["x"])[0],
                {"nn": torch.nn, "torch": torch, "math": math, "PositionalEncoding": type(mod)})
    pe = mod7(torch.zeros(5, 7))
    pos, i = 3, 2
    assert pe.shape == (5, 7)
    assert math.isclose(pe[pos, 2 * i].item(), math.sin(pos / 10000 ** (2 * i / 7)), abs_tol=1e-6)
    assert math.isclose(pe[pos, 2 * i + 1].item(), math.cos(pos / 10000 ** (2 * i / 7)), abs_tol=1e-6)


def test_positional_encoding_dropout():
    _, mod, _ = run_op("positional_encoding", {"max_len": 64, "p": 0.5}, [(2, 10, 16)])
    assert isinstance(mod.dropout, torch.nn.Dropout) and mod.dropout.p == 0.5
    _, mod, _ = run_op("positional_encoding", {"max_len": 64}, [(2, 10, 16)])
    assert not any(isinstance(m, torch.nn.Dropout) for m in mod.modules())


@pytest.mark.parametrize("shape", [(2, 10, 16), (10, 16)])
def test_learned_positional_encoding_torch(shape):
    x = torch.randn(shape)
    outs, mod, (y,) = run_op("learned_positional_encoding", {"max_len": 32}, [shape], inputs=[x])
    assert outs[0].shape == tuple(y.shape)
    op = lookup("learned_positional_encoding")
    assert state_shapes(mod) == op.weights([tt(*shape)], op.Params(max_len=32))
    assert torch.equal(y, x + mod.pos[:, :10].reshape((1,) * (len(shape) - 2) + (10, 16)))
