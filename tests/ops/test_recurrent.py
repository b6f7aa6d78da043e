"""Recurrent family: rnn, lstm, gru."""
from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from conftest import run_op, source, state_shapes
from netspec.ops.base import OpError, lookup
from netspec.shapes import Dim, InferCtx, TensorType

N, T, F = Dim.sym("N"), Dim.sym("T"), Dim.sym("F")


def tt(*shape, dtype="float32"):
    return TensorType(tuple(shape), dtype)


def infer(name, params, *types):
    op = lookup(name)
    p = op.Params.model_validate(params)
    ctx = InferCtx()
    return op.infer(list(types), p, ctx), ctx


def torch_module(name, fin, params):
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[name]
    kw = dict(num_layers=params.get("layers", 1), bias=params.get("bias", True),
              batch_first=params.get("batch_first", True), dropout=params.get("dropout", 0.0),
              bidirectional=params.get("bidirectional", False))
    if name == "lstm":
        kw["proj_size"] = params.get("proj", 0)
    if name == "rnn":
        kw["nonlinearity"] = params.get("nonlinearity", "tanh")
    return cls(fin, params["hidden"], **kw)


# (op, params, input types, expected output shapes)
CASES = [
    ("lstm", {"hidden": 256}, [tt(N, T, 128)], [(N, T, 256), (1, N, 256), (1, N, 256)]),
    ("lstm", {"hidden": 256, "batch_first": False}, [tt(T, N, 128)], [(T, N, 256), (1, N, 256), (1, N, 256)]),
    ("lstm", {"hidden": 64, "layers": 2, "bidirectional": True}, [tt(N, T, 32)],
     [(N, T, 128), (4, N, 64), (4, N, 64)]),
    ("lstm", {"hidden": 64, "layers": 3, "proj": 16, "dropout": 0.2}, [tt(N, T, 32)],
     [(N, T, 16), (3, N, 16), (3, N, 64)]),
    ("lstm", {"hidden": 64, "bidirectional": True, "proj": 16}, [tt(T, 32)], [(T, 32), (2, 16), (2, 64)]),
    ("lstm", {"hidden": 8}, [tt(N, T, 4), tt(1, N, 8), tt(1, N, 8)], [(N, T, 8), (1, N, 8), (1, N, 8)]),
    ("gru", {"hidden": 128, "layers": 2, "bidirectional": True}, [tt(N, T, 64)], [(N, T, 256), (4, N, 128)]),
    ("gru", {"hidden": 16}, [tt(T, 8)], [(T, 16), (1, 16)]),
    ("gru", {"hidden": 16, "layers": 2}, [tt(N, T, 8), tt(2, N, 16)], [(N, T, 16), (2, N, 16)]),
    ("rnn", {"hidden": 32, "nonlinearity": "relu"}, [tt(4, 10, 8)], [(4, 10, 32), (1, 4, 32)]),
    ("rnn", {"hidden": 32, "batch_first": False}, [tt(10, 4, 8)], [(10, 4, 32), (1, 4, 32)]),
]


@pytest.mark.parametrize("name,params,ins,want", CASES)
def test_shapes(name, params, ins, want):
    outs, ctx = infer(name, params, *ins)
    assert [o.shape for o in outs] == want
    assert ctx.requirements == []


@pytest.mark.parametrize("name,params,ins,want", CASES)
def test_weights_match_torch(name, params, ins, want):
    op = lookup(name)
    p = op.Params.model_validate(params)
    fin = ins[0].shape[-1]
    ref = torch_module(name, fin, params)
    w = op.weights(ins, p)
    assert list(w) == list(ref.state_dict())          # same keys, same order
    assert w == {k: (tuple(v.shape), "param") for k, v in ref.state_dict().items()}


def test_symbolic_state_records_requirement():
    outs, ctx = infer("gru", {"hidden": 8}, tt(N, T, 4), tt(1, Dim.sym("B"), 8))
    assert outs[1].shape == (1, N, 8)
    assert [r.text for r in ctx.requirements] == ["B == N"]


def test_macs():
    op = lookup("lstm")
    p = op.Params(hidden=16)
    ins = [tt(2, 5, 8)]
    assert op.macs(ins, op.infer(ins, p, InferCtx()), p) == 2 * 5 * 4 * 16 * (8 + 16)
    p = op.Params(hidden=16, layers=2, bidirectional=True, proj=4)
    per_step = 2 * (4 * 16 * (8 + 4) + 4 * 16) + 2 * (4 * 16 * (8 + 4) + 4 * 16)
    assert op.macs(ins, None, p) == 10 * per_step
    gru = lookup("gru")
    m = gru.macs([tt(N, T, 8)], None, gru.Params(hidden=16))
    assert m.evaluate({"N": 2, "T": 5}) == 10 * 3 * 16 * (8 + 16)


# (op, params, input types, substring of the message, substring of a hint or None)
FAILS = [
    ("lstm", {"hidden": 8}, [tt(N, T, F)], "needs a fixed number of input features", None),
    ("lstm", {"hidden": 8}, [tt(N, T, 4, dtype="int64")], "floating-point", "embedding"),
    ("lstm", {"hidden": 8}, [tt(N, 3, 4, 4)], "rank-2 or 3", "(N, T, F)"),
    ("lstm", {"hidden": 8, "batch_first": False}, [tt(4)], "rank-2 or 3", "(T, N, F)"),
    ("lstm", {"hidden": 8}, [tt(N, T, 4), tt(1, N, 8)], "got h0 without c0", "both"),
    ("lstm", {"hidden": 8}, [tt(N, T, 4), None, tt(1, N, 8)], "got c0 without h0", "both"),
    ("lstm", {"hidden": 8, "proj": 2}, [tt(N, T, 4), tt(1, N, 8), tt(1, N, 8)], "h0 [1, N, 8] does not fit (1, N, 2)",
     None),
    ("lstm", {"hidden": 8}, [tt(N, T, 4), tt(1, N, 8), tt(2, N, 8)], "c0 [2, N, 8] does not fit (1, N, 8)", None),
    ("gru", {"hidden": 8, "layers": 2}, [tt(N, T, 4), tt(1, N, 8)], "h0 [1, N, 8] does not fit (2, N, 8)",
     "layers * directions"),
    ("gru", {"hidden": 8}, [tt(3, T, 4), tt(1, 2, 8)], "does not fit (1, 3, 8)", None),
    ("gru", {"hidden": 8}, [tt(N, T, 4), tt(N, 8)], "does not fit (1, N, 8)", None),
    ("rnn", {"hidden": 8}, [tt(N, T, 4), tt(1, N, 8, dtype="float16")], "does not fit", None),
]


@pytest.mark.parametrize("name,params,ins,msg,hint", FAILS)
def test_shape_errors(name, params, ins, msg, hint):
    with pytest.raises(OpError) as e:
        infer(name, params, *ins)
    assert msg in e.value.message
    if hint:
        assert any(hint in h for h in e.value.hints), e.value.hints


@pytest.mark.parametrize("name,params,msg", [
    ("lstm", {"hidden": 8, "dropout": 0.1}, "layers: 1"),
    ("lstm", {"hidden": 8, "proj": 8}, "smaller than hidden"),
    ("lstm", {"hidden": 0}, ""),
    ("gru", {"hidden": 8, "proj": 4}, ""),
    ("gru", {"hidden": 8, "hidden_size": 4}, ""),
    ("rnn", {"hidden": 8, "nonlinearity": "sigmoid"}, ""),
    ("rnn", {"hidden": 8, "layers": 0}, ""),
])
def test_bad_params(name, params, msg):
    with pytest.raises(ValidationError) as e:
        lookup(name).Params.model_validate(params)
    assert msg in str(e.value)


def test_labels():
    lstm, gru = lookup("lstm"), lookup("gru")
    assert lstm.label(lstm.Params(hidden=256)) == "lstm 256"
    assert gru.label(gru.Params(hidden=128, layers=2, bidirectional=True)) == "gru 128 x2 bi"


def test_family_registered():
    for name in ("rnn", "lstm", "gru"):
        op = lookup(name)
        assert op.family == "recurrent" and op.__doc__ and "\n" not in op.__doc__.strip()
        assert op.outputs == (("out", "h", "c") if name == "lstm" else ("out", "h"))


# -- torch: module built from the generated source ---------------------------------------------------------

RUNS = [
    ("lstm", {"hidden": 12}, (3, 7, 5)),
    ("lstm", {"hidden": 12, "layers": 2, "bidirectional": True, "proj": 4, "dropout": 0.3}, (3, 7, 5)),
    ("lstm", {"hidden": 12, "batch_first": False, "bias": False}, (7, 3, 5)),
    ("lstm", {"hidden": 12, "bidirectional": True}, (7, 5)),
    ("gru", {"hidden": 12, "layers": 2, "bidirectional": True}, (3, 7, 5)),
    ("gru", {"hidden": 12, "batch_first": False}, (7, 3, 5)),
    ("rnn", {"hidden": 12, "nonlinearity": "relu", "layers": 2}, (3, 7, 5)),
    ("rnn", {"hidden": 12}, (7, 5)),
]


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("name,params,xshape", RUNS)
def test_matches_torch(name, params, xshape, with_state):
    op = lookup(name)
    p = op.Params.model_validate(params)
    x = torch.randn(xshape)
    outs0 = op.infer([tt(*xshape)], p, InferCtx())
    shapes, inputs = [xshape], [x]
    if with_state:
        states = [torch.randn(o.shape) for o in outs0[1:]]
        shapes += [o.shape for o in outs0[1:]]
        inputs += states
    outs, mod, ys = run_op(name, params, shapes, inputs=inputs)
    assert len(ys) == len(op.outputs) == len(outs)
    assert [o.shape for o in outs] == [tuple(y.shape) for y in ys]
    assert state_shapes(mod) == op.weights([tt(*s) for s in shapes], p)
    ref = torch_module(name, xshape[-1], params)
    ref.load_state_dict(mod.state_dict(), strict=True)
    ref.eval()
    mod.eval()
    with torch.no_grad():
        if name == "lstm":
            out, (h, c) = ref(x, tuple(inputs[1:]) if with_state else None)
            want = (out, h, c)
        else:
            want = ref(x, inputs[1] if with_state else None)
        args = ["x", *(["h0", "c0"][: len(inputs) - 1])]
        got = eval(source(op, [tt(*s) for s in shapes], p, args)[1],
                   {"mod": mod, "x": x, "h0": inputs[1] if with_state else None,
                    "c0": inputs[2] if with_state and name == "lstm" else None})
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert torch.allclose(g, w, atol=1e-6)
