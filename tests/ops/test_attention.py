"""Attention family: multi-head, scaled dot-product, additive attention, Transformer encoder/decoder layers."""
from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from conftest import namespace, run_op, source, state_shapes
from netspec.ops.base import OpError, lookup
from netspec.shapes import Dim, InferCtx, TensorType

N, T, S, E = Dim.sym("N"), Dim.sym("T"), Dim.sym("S"), Dim.sym("E")


def tt(*shape, dtype="float32"):
    return TensorType(tuple(shape), dtype)


def infer(name, params, *types):
    op = lookup(name)
    p = op.Params.model_validate(params)
    ctx = InferCtx()
    types = list(types)
    return op.infer(types, p, ctx), op.weights(types, p), ctx


def mha_keys(e, kdim=None, vdim=None, bias=True):
    m = torch.nn.MultiheadAttention(e, 1, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def torch_keys(m):
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


# (op, params, input types (None: absent optional), expected output shapes, expected weights or None)
CASES = [
    ("multihead_attention", {"heads": 8}, [tt(N, T, 512)], [(N, T, 512)], mha_keys(512)),
    ("multihead_attention", {"heads": 8, "bias": False}, [tt(N, T, 512)], [(N, T, 512)], mha_keys(512, bias=False)),
    ("multihead_attention", {"heads": 4}, [tt(N, T, 64), tt(N, S, 64)], [(N, T, 64)], mha_keys(64)),
    ("multihead_attention", {"heads": 4}, [tt(N, T, 64), tt(N, S, 32), tt(N, S, 48)], [(N, T, 64)],
     mha_keys(64, 32, 48)),
    ("multihead_attention", {"heads": 4}, [tt(N, T, 64), tt(N, S, 32)], [(N, T, 64)], mha_keys(64, 32, 32)),
    ("multihead_attention", {"heads": 4}, [tt(N, T, 64), tt(N, S, 64), tt(N, S, 64), tt(T, S, dtype="bool"),
                                           tt(N, S, dtype="bool")], [(N, T, 64)], mha_keys(64)),
    ("multihead_attention", {"heads": 4}, [tt(N, T, 64), None, None, tt(N * 4, T, T)], [(N, T, 64)], mha_keys(64)),
    ("multihead_attention", {"heads": 4, "causal": True}, [tt(N, T, 64), None, None, None, tt(N, T, dtype="bool")],
     [(N, T, 64)], mha_keys(64)),
    ("scaled_dot_product_attention", {}, [tt(N, 8, T, 64), tt(N, 8, S, 64), tt(N, 8, S, 32)], [(N, 8, T, 32)], {}),
    ("scaled_dot_product_attention", {"causal": True}, [tt(N, T, E), tt(N, T, E), tt(N, T, E)], [(N, T, E)], {}),
    ("scaled_dot_product_attention", {}, [tt(T, E), tt(S, E), tt(S, 16)], [(T, 16)], {}),
    ("scaled_dot_product_attention", {}, [tt(N, 8, T, 64), tt(N, 8, S, 64), tt(N, 8, S, 64), tt(N, 1, 1, S,
                                                                                                  dtype="bool")],
     [(N, 8, T, 64)], {}),
    ("scaled_dot_product_attention", {}, [tt(N, 8, T, 64)] * 3 + [tt(T, T)], [(N, 8, T, 64)], {}),
    ("additive_attention", {"hidden": 32}, [tt(N, 16), tt(N, S, 24)], [(N, 24), (N, S)],
     {"W_q.weight": (32, 16), "W_k.weight": (32, 24), "W_k.bias": (32,), "v.weight": (1, 32)}),
    ("additive_attention", {"hidden": 32}, [tt(N, T, 16), tt(N, S, 24), tt(N, S, 40)], [(N, T, 40), (N, T, S)],
     {"W_q.weight": (32, 16), "W_k.weight": (32, 24), "W_k.bias": (32,), "v.weight": (1, 32)}),
    ("transformer_encoder_layer", {"heads": 8}, [tt(N, T, 512)], [(N, T, 512)],
     torch_keys(torch.nn.TransformerEncoderLayer(512, 8))),
    ("transformer_encoder_layer", {"heads": 2, "ffn": 32, "bias": False, "norm_first": True, "activation": "gelu"},
     [tt(N, T, 16), tt(T, T, dtype="bool"), tt(N, T, dtype="bool")], [(N, T, 16)],
     torch_keys(torch.nn.TransformerEncoderLayer(16, 2, 32, bias=False))),
    ("transformer_decoder_layer", {"heads": 8, "causal": True}, [tt(N, T, 512), tt(N, S, 512)], [(N, T, 512)],
     torch_keys(torch.nn.TransformerDecoderLayer(512, 8))),
    ("transformer_decoder_layer", {"heads": 2, "ffn": 32, "bias": False},
     [tt(N, T, 16), tt(N, S, 16), tt(T, T), tt(2 * N, T, S, dtype="bool"), tt(N, T, dtype="bool"),
      tt(N, S, dtype="bool")], [(N, T, 16)], torch_keys(torch.nn.TransformerDecoderLayer(16, 2, 32, bias=False))),
]


def _ins(types):
    while types and types[-1] is None:    # as the graph pass does: trailing absent optionals are dropped
        types = types[:-1]
    return types


@pytest.mark.parametrize("name,params,ins,want,weights", CASES)
def test_shapes(name, params, ins, want, weights):
    outs, w, ctx = infer(name, params, *_ins(ins))
    assert [o.shape for o in outs] == want
    assert {k: v[0] for k, v in w.items()} == weights
    assert list(w) == list(weights)          # torch's state_dict order
    assert ctx.requirements == []


def test_symbolic_lengths_record_a_requirement():
    outs, _, ctx = infer("multihead_attention", {"heads": 2}, tt(N, T, 8), tt(N, S, 8), tt(N, T, 8))
    assert outs[0].shape == (N, T, 8)
    assert [r.text for r in ctx.requirements] == ["S == T"]


def test_macs():
    op = lookup("multihead_attention")
    ins = [tt(2, 5, 8)]
    p = op.Params(heads=2)
    # q, k, v and output projections (4 * N*T*E*E) + scores and weighted sum (2 * N*T*T*E)
    assert op.macs(ins, op.infer(ins, p, InferCtx()), p) == 4 * 2 * 5 * 64 + 2 * 2 * 25 * 8
    enc = lookup("transformer_encoder_layer")
    p = enc.Params(heads=2, ffn=32)
    assert enc.macs(ins, ins, p) == 4 * 2 * 5 * 64 + 2 * 2 * 25 * 8 + 2 * 2 * 5 * 8 * 32
    sym = enc.macs([tt(N, T, 8)], [tt(N, T, 8)], p)
    assert sym.evaluate({"N": 2, "T": 5}) == enc.macs(ins, ins, p)


# (op, params, input types, substring of the message, substring of a hint or None)
FAILS = [
    ("multihead_attention", {"heads": 3}, [tt(N, T, 64)], "not divisible by heads (3)", "divides 64"),
    ("multihead_attention", {"heads": 4}, [tt(T, 64)], "rank-3", "(N, T, E)"),
    ("multihead_attention", {"heads": 4}, [tt(N, T, E)], "needs a fixed embedding dim", None),
    ("multihead_attention", {"heads": 4}, [tt(N, T, 64, dtype="int64")], "floating-point", "embedding"),
    ("multihead_attention", {"heads": 4}, [tt(N, T, 64), tt(N, 5, 64), tt(N, 6, 64)], "k and v differ in length",
     "same length"),
    ("multihead_attention", {"heads": 4}, [tt(2, T, 64), tt(3, S, 64)], "differ in batch size", None),
    ("multihead_attention", {"heads": 4}, [tt(N, T, 64), None, tt(N, T, 64)], "got v but no k", "give k"),
    ("multihead_attention", {"heads": 4}, [tt(N, 5, 64), None, None, tt(5, 6, dtype="bool")], "does not fit (5, 5)",
     None),
    ("multihead_attention", {"heads": 4}, [tt(N, 5, 64), None, None, tt(5, 5, dtype="int64")], "must be bool", None),
    ("multihead_attention", {"heads": 4}, [tt(N, 5, 64), None, None, tt(5, 5, 5, 5)], "must be (5, 5) or", None),
    ("multihead_attention", {"heads": 4}, [tt(N, 5, 64), None, None, None, tt(N, 5)], "key_padding_mask must be bool",
     "tokens == 0"),
    ("multihead_attention", {"heads": 4}, [tt(N, 5, 64), None, None, None, tt(N, 6, dtype="bool")],
     "does not match the source length 5", None),
    ("multihead_attention", {"heads": 4, "causal": True}, [tt(N, 5, 64), None, None, tt(5, 5)], "both causal",
     "one of them"),
    ("scaled_dot_product_attention", {}, [tt(N, T, 64), tt(N, T, 32), tt(N, T, 32)], "differ in their last dim",
     "same feature size"),
    ("scaled_dot_product_attention", {}, [tt(N, 8, T, 64), tt(N, T, 64), tt(N, T, 64)], "same rank", None),
    ("scaled_dot_product_attention", {}, [tt(N, 5, 8), tt(N, 6, 8), tt(N, 7, 8)], "k and v differ in length", None),
    ("scaled_dot_product_attention", {}, [tt(8), tt(8), tt(8)], "(..., T, E)", None),
    ("scaled_dot_product_attention", {}, [tt(N, 5, 8), tt(N, 6, 8), tt(N, 6, 8), tt(5, 5)], "does not broadcast",
     None),
    ("scaled_dot_product_attention", {"causal": True}, [tt(N, 5, 8), tt(N, 5, 8), tt(N, 5, 8), tt(5, 5)],
     "both causal", None),
    ("scaled_dot_product_attention", {}, [tt(N, 5, 8), tt(N, 5, 8), tt(N, 5, 8, dtype="float16")], "same dtype", None),
    ("additive_attention", {"hidden": 8}, [tt(N, 16), tt(N, 16)], "rank-3", None),
    ("additive_attention", {"hidden": 8}, [tt(N, 16), tt(N, 5, 16), tt(N, 6, 16)], "keys and values differ in length",
     None),
    ("additive_attention", {"hidden": 8}, [tt(N, E), tt(N, 5, 16)], "needs a fixed query size", None),
    ("transformer_encoder_layer", {"heads": 3}, [tt(N, T, 16)], "not divisible by heads", None),
    ("transformer_encoder_layer", {"heads": 2, "causal": True}, [tt(N, T, 16), tt(T, T)], "both causal", None),
    ("transformer_encoder_layer", {"heads": 2}, [tt(N, 5, 16), None, tt(N, 4, dtype="bool")], "source length 5", None),
    ("transformer_decoder_layer", {"heads": 2}, [tt(N, T, 16), tt(N, S, 32)], "differ in width", "d_model"),
    ("transformer_decoder_layer", {"heads": 2}, [tt(N, 5, 16), tt(N, 7, 16), None, tt(5, 5)],
     "memory_mask [5, 5] does not fit (5, 7)", None),
    ("transformer_decoder_layer", {"heads": 2, "causal": True}, [tt(N, 5, 16), tt(N, 7, 16), tt(5, 5)],
     "both causal", None),
]


@pytest.mark.parametrize("name,params,ins,msg,hint", FAILS)
def test_shape_errors(name, params, ins, msg, hint):
    with pytest.raises(OpError) as e:
        infer(name, params, *_ins(ins))
    assert msg in e.value.message
    if hint:
        assert any(hint in h for h in e.value.hints), e.value.hints


@pytest.mark.parametrize("name,params", [
    ("multihead_attention", {"heads": 0}),
    ("multihead_attention", {"heads": 2, "dropout": 1.0}),
    ("multihead_attention", {"heads": 2, "embed_dim": 8}),
    ("scaled_dot_product_attention", {"scale": 0}),
    ("additive_attention", {}),
    ("transformer_encoder_layer", {"heads": 2, "activation": "tanh"}),
    ("transformer_decoder_layer", {"heads": 2, "eps": 0}),
])
def test_bad_params(name, params):
    with pytest.raises(ValidationError):
        lookup(name).Params.model_validate(params)


def test_labels():
    mha = lookup("multihead_attention")
    assert mha.label(mha.Params(heads=8)) == "mha 8 heads"
    sdpa = lookup("scaled_dot_product_attention")
    assert sdpa.label(sdpa.Params()) == "sdpa"


def test_family_registered():
    for name in ("multihead_attention", "scaled_dot_product_attention", "additive_attention",
                 "transformer_encoder_layer", "transformer_decoder_layer"):
        op = lookup(name)
        assert op.family == "attention" and op.__doc__ and "\n" not in op.__doc__.strip()


# -- torch: module built from the generated source ---------------------------------------------------------

def build(name, params, types):
    """Module and call for the op at concrete input types (absent optionals: None)."""
    op = lookup(name)
    p = op.Params.model_validate(params)
    types = _ins(types)
    op.infer(types, p, InferCtx())
    args = [f"x{i}" if t is not None else "None" for i, t in enumerate(types)]
    src, expr = source(op, types, p, args)
    ns = namespace(op)
    mod = eval(src, ns) if src is not None else None

    def run(*tensors):
        with torch.no_grad():
            return eval(expr, {**ns, "mod": mod, **{f"x{i}": x for i, x in enumerate(tensors)}})
    return mod, run, op.weights(types, p)


def test_mha_self_attention_matches_torch():
    q = torch.randn(2, 5, 16)
    outs, mod, (y,) = run_op("multihead_attention", {"heads": 4}, [(2, 5, 16)], inputs=[q])
    assert outs[0].shape == tuple(y.shape)
    assert isinstance(mod, torch.nn.MultiheadAttention)
    op = lookup("multihead_attention")
    assert state_shapes(mod) == op.weights([tt(2, 5, 16)], op.Params(heads=4))
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    ref.load_state_dict(mod.state_dict(), strict=True)
    mod.eval()
    assert torch.allclose(mod(q), ref(q, q, q, need_weights=False)[0], atol=1e-6)


@pytest.mark.parametrize("kdim,vdim,bias", [(16, 16, True), (8, 12, True), (8, 12, False), (16, 16, False)])
def test_mha_cross_attention_matches_torch(kdim, vdim, bias):
    q, k, v = torch.randn(2, 5, 16), torch.randn(2, 7, kdim), torch.randn(2, 7, vdim)
    kpm = torch.zeros(2, 7, dtype=torch.bool)
    kpm[0, 5:] = True
    types = [tt(2, 5, 16), tt(2, 7, kdim), tt(2, 7, vdim), None, tt(2, 7, dtype="bool")]
    mod, run, w = build("multihead_attention", {"heads": 2, "bias": bias}, types)
    assert state_shapes(mod) == w
    y = run(q, k, v, None, kpm)
    ref = torch.nn.MultiheadAttention(16, 2, bias=bias, kdim=kdim, vdim=vdim, batch_first=True).eval()
    ref.load_state_dict(mod.state_dict(), strict=True)
    assert y.shape == (2, 5, 16)
    assert torch.allclose(y, ref(q, k, v, key_padding_mask=kpm, need_weights=False)[0], atol=1e-6)


def test_mha_causal_matches_explicit_mask():
    q = torch.randn(3, 6, 16)
    mod, run, _ = build("multihead_attention", {"heads": 4, "causal": True}, [tt(3, 6, 16)])
    mod.eval()
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    ref.load_state_dict(mod.state_dict())
    mask = torch.nn.Transformer.generate_square_subsequent_mask(6)
    want = ref(q, q, q, attn_mask=mask, need_weights=False)[0]
    assert torch.allclose(run(q), want, atol=1e-5)
    mod.train()                                   # the masked path used in training gives the same
    with torch.no_grad():
        assert torch.allclose(mod(q), want, atol=1e-5)
    # the output at step t depends only on steps <= t
    q2 = q.clone()
    q2[:, 4:] += 1
    assert torch.allclose(run(q2)[:, :4], run(q)[:, :4], atol=1e-6)


def test_mha_attn_mask_passed():
    q = torch.randn(2, 4, 8)
    mask = torch.randn(2 * 2, 4, 4)
    mod, run, _ = build("multihead_attention", {"heads": 2}, [tt(2, 4, 8), None, None, tt(4, 4, 4)])
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    ref.load_state_dict(mod.state_dict())
    mod.eval()
    assert torch.allclose(run(q, None, None, mask), ref(q, q, q, attn_mask=mask, need_weights=False)[0], atol=1e-6)


def _sdpa_ref(q, k, v, mask=None, causal=False, scale=None):
    s = q @ k.transpose(-2, -1) * (scale if scale is not None else 1 / math.sqrt(q.size(-1)))
    if causal:
        mask = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool).tril()
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask
    return torch.softmax(s, -1) @ v


@pytest.mark.parametrize("params", [{}, {"causal": True}, {"scale": 0.5}, {"dropout": 0.2, "causal": True}])
def test_sdpa_matches_reference(params):
    shapes = [(2, 3, 5, 8), (2, 3, 5, 8), (2, 3, 5, 4)]
    q, k, v = (torch.randn(s) for s in shapes)
    mod, run, w = build("scaled_dot_product_attention", params, [tt(*s) for s in shapes])
    assert w == {} and (mod is None) == (not params.get("dropout"))
    if mod is not None:
        assert state_shapes(mod) == {}
        mod.eval()
    y = run(q, k, v)
    assert y.shape == (2, 3, 5, 4)
    assert torch.allclose(y, _sdpa_ref(q, k, v, causal=params.get("causal", False), scale=params.get("scale")),
                          atol=1e-5)
    if mod is not None:                          # dropout acts while training only
        mod.train()
        assert not torch.allclose(mod(q, k, v), y)


def test_sdpa_mask():
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    mask = torch.rand(5, 6) > 0.3
    mask[:, 0] = True
    outs, mod, (y,) = run_op("scaled_dot_product_attention", {}, [(2, 5, 8), (2, 6, 8), (2, 6, 8), (5, 6)],
                             ["float32", "float32", "float32", "bool"], inputs=[q, k, v, mask])
    assert mod is None and outs[0].shape == tuple(y.shape)
    assert torch.allclose(y, _sdpa_ref(q, k, v, mask), atol=1e-5)


@pytest.mark.parametrize("qshape", [(3, 10), (3, 4, 10)])
@pytest.mark.parametrize("with_values", [False, True])
def test_additive_attention_reference(qshape, with_values):
    keys = torch.randn(3, 7, 6)
    values = torch.randn(3, 7, 5) if with_values else None
    types = [tt(*qshape), tt(3, 7, 6)] + ([tt(3, 7, 5)] if with_values else [])
    mod, run, w = build("additive_attention", {"hidden": 9}, types)
    assert state_shapes(mod) == w
    outs = lookup("additive_attention").infer(types, lookup("additive_attention").Params(hidden=9), InferCtx())
    q = torch.randn(qshape)
    ctx_vec, weights = run(q, keys, *([values] if with_values else []))
    assert [tuple(ctx_vec.shape), tuple(weights.shape)] == [o.shape for o in outs]
    vals = keys if values is None else values
    q3 = q if q.dim() == 3 else q.unsqueeze(1)
    with torch.no_grad():
        wq = q3 @ mod.W_q.weight.T                                  # (N, T, hidden)
        wk = keys @ mod.W_k.weight.T + mod.W_k.bias                 # (N, S, hidden)
        e = torch.einsum("h,ntsh->nts", mod.v.weight[0], torch.tanh(wq[:, :, None] + wk[:, None]))
    a = torch.softmax(e, -1)
    c = a @ vals
    if q.dim() == 2:
        a, c = a[:, 0], c[:, 0]
    assert torch.allclose(weights, a, atol=1e-6) and torch.allclose(ctx_vec, c, atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]))


ENC_VARIANTS = [
    {"heads": 2, "ffn": 32},
    {"heads": 4, "ffn": 24, "activation": "gelu", "norm_first": True, "eps": 1e-6},
    {"heads": 2, "ffn": 32, "bias": False},
]


def _torch_layer_kwargs(params):
    return dict(dim_feedforward=params.get("ffn", 2048), dropout=params.get("dropout", 0.1),
                activation=params.get("activation", "relu"), layer_norm_eps=params.get("eps", 1e-5),
                batch_first=True, norm_first=params.get("norm_first", False), bias=params.get("bias", True))


@pytest.mark.parametrize("params", ENC_VARIANTS)
def test_encoder_layer_matches_torch(params):
    x = torch.randn(3, 6, 16)
    kpm = torch.zeros(3, 6, dtype=torch.bool)
    kpm[1, 4:] = True
    mod, run, w = build("transformer_encoder_layer", params, [tt(3, 6, 16), None, tt(3, 6, dtype="bool")])
    assert state_shapes(mod) == w
    ref = torch.nn.TransformerEncoderLayer(16, params["heads"], **_torch_layer_kwargs(params)).eval()
    ref.load_state_dict(mod.state_dict(), strict=True)
    mod.eval()
    y = run(x, None, kpm)
    assert y.shape == (3, 6, 16)
    assert torch.allclose(y, ref(x, src_key_padding_mask=kpm), atol=1e-5)


def test_encoder_layer_causal():
    x = torch.randn(2, 5, 16)
    mod, run, w = build("transformer_encoder_layer", {"heads": 2, "ffn": 32, "causal": True}, [tt(2, 5, 16)])
    assert type(mod).__name__ == "CausalTransformerEncoderLayer" and state_shapes(mod) == w
    ref = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True).eval()
    ref.load_state_dict(mod.state_dict(), strict=True)
    mod.eval()
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5)
    assert torch.allclose(run(x), ref(x, src_mask=mask), atol=1e-5)


@pytest.mark.parametrize("params", ENC_VARIANTS + [{"heads": 2, "ffn": 32, "causal": True}])
def test_decoder_layer_matches_torch(params):
    x, mem = torch.randn(3, 6, 16), torch.randn(3, 4, 16)
    mkpm = torch.zeros(3, 4, dtype=torch.bool)
    mkpm[2, 3:] = True
    types = [tt(3, 6, 16), tt(3, 4, 16), None, None, None, tt(3, 4, dtype="bool")]
    mod, run, w = build("transformer_decoder_layer", params, types)
    assert state_shapes(mod) == w
    ref = torch.nn.TransformerDecoderLayer(16, params["heads"], **_torch_layer_kwargs(params)).eval()
    ref.load_state_dict(mod.state_dict(), strict=True)
    mod.eval()
    mask = torch.nn.Transformer.generate_square_subsequent_mask(6) if params.get("causal") else None
    y = run(x, mem, None, None, None, mkpm)
    assert y.shape == (3, 6, 16)
    assert torch.allclose(y, ref(x, mem, tgt_mask=mask, memory_key_padding_mask=mkpm), atol=1e-5)


def test_stacked_layers_match_nn_transformer_keys():
    """encoder.layers.{i} / decoder.layers.{i} nodes give nn.Transformer's state_dict keys (all but the norms)."""
    d, heads, ffn = 16, 2, 32
    enc, dec = lookup("transformer_encoder_layer"), lookup("transformer_decoder_layer")
    p = enc.Params(heads=heads, ffn=ffn)
    ours = {}
    for i in range(2):
        ours.update({f"encoder.layers.{i}.{k}": s for k, (s, _) in enc.weights([tt(4, 5, d)], p).items()})
    for i in range(3):
        ours.update({f"decoder.layers.{i}.{k}": s for k, (s, _) in
                     dec.weights([tt(4, 5, d), tt(4, 7, d)], dec.Params(heads=heads, ffn=ffn)).items()})
    ref = torch.nn.Transformer(d, heads, num_encoder_layers=2, num_decoder_layers=3, dim_feedforward=ffn,
                               batch_first=True)
    ref_keys = {k: tuple(v.shape) for k, v in ref.state_dict().items() if ".layers." in k}
    assert ours == ref_keys
    assert set(ref.state_dict()) - set(ours) == {"encoder.norm.weight", "encoder.norm.bias",
                                                 "decoder.norm.weight", "decoder.norm.bias"}
    # nn.TransformerEncoder without a final norm: exactly the two layers
    stack = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(d, heads, ffn, batch_first=True), 2,
                                        enable_nested_tensor=False)
    assert {f"encoder.{k}": tuple(v.shape) for k, v in stack.state_dict().items()} == \
        {k: v for k, v in ours.items() if k.startswith("encoder.")}
