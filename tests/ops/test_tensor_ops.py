"""Tensor ops: gather/index_select, roll, comparisons, where, masked_fill, arange, full/zeros/ones, expand, einsum,
broadcasting concat, upsample to another tensor's size, channels-first layer norm, generated and non-persistent
buffers. Values against torch; errors located in the spec."""
from __future__ import annotations

import re

import pytest
import torch

import netspec
from conftest import run_op
from netspec.ops.base import OpError, lookup
from netspec.shapes import Dim, InferCtx, TensorType

N, T, E = (Dim.sym(s) for s in "NTE")


def _infer(name, params, ins):
    op = lookup(name)
    return op.infer(ins, op.Params.model_validate(params), InferCtx())


def _check(text: str):
    return netspec.check(netspec.load(text, name="t.yaml"))


def _error(text: str) -> str:
    res = _check(text)
    assert not res.ok
    return "\n".join(e.format() for e in res.errors)


# -- indexing --------------------------------------------------------------------------------------------------

def test_index_select_looks_rows_up_like_embedding():
    table = torch.randn(10, 4)
    idx = torch.randint(0, 10, (3, 5))
    _, mod, (y,) = run_op("index_select", {}, [(10, 4), (3, 5)], dtypes=["float32", "int64"], inputs=[table, idx])
    assert mod is None and torch.equal(y, torch.nn.functional.embedding(idx, table))


def test_index_select_along_a_later_dim():
    x = torch.randn(2, 7, 3)
    idx = torch.tensor([6, 0, 0, 2])
    _, _, (y,) = run_op("index_select", {"dim": 1}, [(2, 7, 3), (4,)], dtypes=["float32", "int64"], inputs=[x, idx])
    assert torch.equal(y, x[:, idx])


def test_index_select_needs_an_integer_index():
    with pytest.raises(OpError, match="int64"):
        _infer("index_select", {}, [TensorType((10, 4)), TensorType((N, T))])


def test_gather_matches_torch():
    x = torch.randn(3, 6)
    idx = torch.randint(0, 6, (3, 2))
    _, _, (y,) = run_op("gather", {"dim": 1}, [(3, 6), (3, 2)], dtypes=["float32", "int64"], inputs=[x, idx])
    assert torch.equal(y, torch.gather(x, 1, idx))


def test_gather_rank_and_size_errors():
    with pytest.raises(OpError, match="rank"):
        _infer("gather", {"dim": 1}, [TensorType((N, 6)), TensorType((N,), "int64")])
    with pytest.raises(OpError, match="larger than the input"):
        _infer("gather", {"dim": 1}, [TensorType((3, 6)), TensorType((4, 2), "int64")])


def test_roll_matches_torch():
    x = torch.randn(2, 5, 4)
    _, _, (y,) = run_op("roll", {"shifts": [2, -1], "dims": [1, 2]}, [(2, 5, 4)], inputs=[x])
    assert torch.equal(y, torch.roll(x, (2, -1), (1, 2)))
    _, _, (y,) = run_op("roll", {"shifts": 3}, [(2, 5, 4)], inputs=[x])
    assert torch.equal(y, torch.roll(x, 3))


def test_roll_params_are_checked():
    with pytest.raises(ValueError, match="one shift per dim"):
        lookup("roll").Params.model_validate({"shifts": [1, 2], "dims": 1})
    with pytest.raises(OpError, match="out of range"):
        _infer("roll", {"shifts": 1, "dims": 3}, [TensorType((N, T, E))])


# -- comparisons and selection -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, fn", [("eq", torch.eq), ("ne", torch.ne), ("lt", torch.lt), ("le", torch.le),
                                      ("gt", torch.gt), ("ge", torch.ge)])
def test_comparisons_broadcast_to_bool(name, fn):
    a = torch.randint(0, 3, (4, 1)).float()
    b = torch.randint(0, 3, (5,)).float()
    (t,), _, (y,) = run_op(name, {}, [(4, 1), (5,)], inputs=[a, b])
    assert t == TensorType((4, 5), "bool") and y.dtype == torch.bool and torch.equal(y, fn(a, b))
    _, _, (y,) = run_op(name, {"value": 1}, [(4, 1)], inputs=[a])
    assert torch.equal(y, fn(a, 1.0))


def test_comparison_needs_exactly_one_other_side():
    with pytest.raises(OpError, match="second input or a 'value'"):
        _infer("lt", {}, [TensorType((N, T))])
    with pytest.raises(OpError, match="not both"):
        _infer("lt", {"value": 0}, [TensorType((N, T)), TensorType((N, T))])


def test_causal_mask_from_positions():
    """arange + unsqueeze + le gives the lower-triangular (allowed) mask."""
    res = _check("""
netspec: 1
inputs: {x: {shape: [N, T], dtype: int64}}
layers:
  - {name: pos, op: arange, dim: 1}
  - {name: row, op: unsqueeze, dim: 1}
  - {name: allowed, op: le, from: [pos, row]}
""")
    assert res.ok, [e.format() for e in res.errors]
    m = netspec.build(netspec.load("""
netspec: 1
inputs: {x: {shape: [N, T], dtype: int64}}
layers:
  - {name: pos, op: arange, dim: 1}
  - {name: row, op: unsqueeze, dim: 1}
  - {name: allowed, op: le, from: [pos, row]}
""", name="t.yaml"))
    y = m(torch.zeros(2, 6, dtype=torch.long))
    assert torch.equal(y, torch.ones(6, 6, dtype=torch.bool).tril())


def test_where_and_masked_fill_match_torch():
    c = torch.rand(3, 4) < 0.5
    a, b = torch.randn(3, 4), torch.randn(4)
    _, _, (y,) = run_op("where", {}, [(3, 4), (3, 4), (4,)], dtypes=["bool", "float32", "float32"], inputs=[c, a, b])
    assert torch.equal(y, torch.where(c, a, b))
    x = torch.randn(2, 3, 4, 4)
    m = torch.ones(4, 4, dtype=torch.bool).triu(1)
    _, _, (y,) = run_op("masked_fill", {"value": "-inf"}, [(2, 3, 4, 4), (4, 4)], dtypes=["float32", "bool"],
                        inputs=[x, m])
    assert torch.equal(y, x.masked_fill(m, float("-inf")))


def test_masked_fill_mask_must_be_bool_and_fit():
    with pytest.raises(OpError, match="bool"):
        _infer("masked_fill", {"value": 0}, [TensorType((N, T)), TensorType((N, T))])
    with pytest.raises(OpError, match="does not broadcast to the input"):
        _infer("masked_fill", {"value": 0}, [TensorType((N, 1)), TensorType((N, T), "bool")])


# -- made in forward -------------------------------------------------------------------------------------------

def test_arange_follows_the_input_size_and_device():
    x = torch.zeros(2, 7, dtype=torch.long)
    (t,), _, (y,) = run_op("arange", {"dim": 1, "start": 2}, [(2, 7)], dtypes=["int64"], inputs=[x])
    assert t == TensorType((5,), "int64") and torch.equal(y, torch.arange(2, 7))
    assert _infer("arange", {"dim": 1}, [TensorType((N, T))]) == [TensorType((T,), "int64")]


def test_arange_needs_dim_or_end():
    with pytest.raises(ValueError, match="either 'dim'"):
        lookup("arange").Params.model_validate({})


def test_full_zeros_ones_match_torch():
    x = torch.randn(2, 3)
    _, _, (y,) = run_op("full", {"value": 1.5}, [(2, 3)], inputs=[x])
    assert torch.equal(y, torch.full_like(x, 1.5))
    _, _, (y,) = run_op("zeros", {"shape": [4], "dtype": "int64"}, [(2, 3)], inputs=[x])
    assert torch.equal(y, torch.zeros(4, dtype=torch.long))
    _, _, (y,) = run_op("ones", {"dtype": "bool"}, [(2, 3)], inputs=[x])
    assert torch.equal(y, torch.ones(2, 3, dtype=torch.bool))


def test_expand_a_token_to_the_batch():
    tok = torch.randn(1, 1, 8)
    x = torch.randn(3, 5, 8)
    (t,), _, (y,) = run_op("expand", {"dims": [0]}, [(1, 1, 8), (3, 5, 8)], inputs=[tok, x])
    assert t == TensorType((3, 1, 8)) and torch.equal(y, tok.expand(3, 1, 8))
    assert _infer("expand", {"dims": [0]}, [TensorType((1, 1, E)), TensorType((N, T, E))]) == \
        [TensorType((N, 1, E))]
    _, _, (y,) = run_op("expand", {"sizes": [2, -1, 4]}, [(1, 3, 1)], inputs=[torch.randn(1, 3, 1)])
    assert tuple(y.shape) == (2, 3, 4)


def test_expand_errors():
    with pytest.raises(OpError, match="'like' input or 'sizes'"):
        _infer("expand", {}, [TensorType((1, E))])
    with pytest.raises(OpError, match="cannot become"):
        _infer("expand", {"sizes": [4, 3]}, [TensorType((2, 3))])
    with pytest.raises(OpError, match="not 1"):
        _infer("expand", {}, [TensorType((2, 3)), TensorType((4, 3))])


def test_concat_broadcasts_only_when_asked():
    tok, x = torch.randn(1, 1, 8), torch.randn(3, 5, 8)
    (t,), _, (y,) = run_op("concat", {"dim": 1, "broadcast": True}, [(1, 1, 8), (3, 5, 8)], inputs=[tok, x])
    assert t == TensorType((3, 6, 8)) and torch.equal(y, torch.cat([tok.expand(3, -1, -1), x], 1))
    with pytest.raises(OpError) as e:
        _infer("concat", {"dim": 1}, [TensorType((1, 1, 8)), TensorType((3, 5, 8))])
    assert "broadcast: true" in " ".join(e.value.hints)


def test_upsample_to_the_size_of_another_tensor():
    x, skip = torch.randn(2, 4, 5, 5), torch.randn(2, 3, 11, 9)
    (t,), mod, (y,) = run_op("upsample", {"mode": "bilinear"}, [(2, 4, 5, 5), (2, 3, 11, 9)], inputs=[x, skip])
    assert mod is None and t == TensorType((2, 4, 11, 9))
    assert torch.equal(y, torch.nn.functional.interpolate(x, size=(11, 9), mode="bilinear"))
    with pytest.raises(OpError, match="'scale', 'size' or a 'like'"):
        _infer("upsample", {}, [TensorType((N, 4, 5, 5))])
    with pytest.raises(OpError, match="left out"):
        _infer("upsample", {"scale": 2}, [TensorType((N, 4, 5, 5)), TensorType((N, 4, 9, 9))])


def test_unet_skip_of_odd_size_checks():
    res = _check("""
netspec: 1
inputs: {x: [N, 8, H, W]}
layers:
  - {name: down, op: maxpool2d, kernel: 2}
  - {name: up, op: upsample, from: {x: down, like: x}}
  - {name: skip, op: concat, from: [x, up]}
""")
    assert res.ok, [e.format() for e in res.errors]
    m = netspec.build(netspec.load("""
netspec: 1
inputs: {x: [N, 8, H, W]}
layers:
  - {name: down, op: maxpool2d, kernel: 2}
  - {name: up, op: upsample, from: {x: down, like: x}}
  - {name: skip, op: concat, from: [x, up]}
""", name="t.yaml"))
    assert m(torch.randn(1, 8, 13, 7)).shape == (1, 16, 13, 7)


def test_channels_first_layernorm_is_convnext_layernorm2d():
    x = torch.randn(2, 6, 5, 4)
    _, mod, (y,) = run_op("layernorm", {"dim": 1, "eps": 1e-6}, [(2, 6, 5, 4)], inputs=[x])
    assert set(mod.state_dict()) == {"weight", "bias"}
    with torch.no_grad():
        mod.weight.normal_()
        mod.bias.normal_()
        ref = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,), mod.weight, mod.bias, 1e-6)
        ref = ref.permute(0, 3, 1, 2)
        assert (mod(x) - ref).abs().max() <= 1e-6
    with pytest.raises(OpError, match="one dim"):
        _infer("layernorm", {"dim": 1, "shape": 2}, [TensorType((N, 6, 5, 4))])


# -- einsum ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("eq, shapes", [("nhtd,nhsd->nhts", [(2, 3, 4, 5), (2, 3, 6, 5)]),
                                        ("ij,jk", [(3, 4), (4, 2)]),
                                        ("...ij->...ji", [(2, 3, 4)]),
                                        ("ii->i", [(3, 3)]),
                                        ("bi,bj->bij", [(2, 3), (2, 4)]),
                                        ("...d,...d->...", [(2, 5, 3), (5, 3)])])
def test_einsum_matches_torch(eq, shapes):
    xs = [torch.randn(s) for s in shapes]
    (t,), _, (y,) = run_op("einsum", {"equation": eq}, shapes, inputs=xs)
    want = torch.einsum(eq, *xs)
    assert tuple(t.shape) == tuple(want.shape) and torch.allclose(y, want)


@pytest.mark.parametrize("eq, shapes, msg", [
    ("ij,jk->ik", [(3, 4)], "2 input term"),
    ("ijk,jk->ik", [(3, 4), (4, 2)], "names 3 dims"),
    ("ij,jk->iz", [(3, 4), (4, 2)], "'z' is in no input"),
    ("ij,jk->ii", [(3, 4), (4, 2)], "twice"),
    ("ij,jk->ik", [(3, 4), (5, 2)], "dim 'j' is 4"),
    ("i.j->ij", [(3, 4)], "not part of '...'"),
    ("ij->i->j", [(3, 4)], "at most one '->'"),
])
def test_einsum_errors(eq, shapes, msg):
    with pytest.raises(OpError, match=msg):
        _infer("einsum", {"equation": eq}, [TensorType(s) for s in shapes])


def test_einsum_bad_equation_is_located():
    out = _error("""
netspec: 1
inputs: {a: [N, 4, 8], b: [N, 5, 8]}
layers:
  - {name: s, op: einsum, from: [a, b], equation: "ntd->nt"}
""")
    assert "t.yaml:5:" in out and "1 input term(s), but the layer has 2" in out
    out = _error("""
netspec: 1
inputs: {a: [N, 4, 8], b: [N, 5, 9]}
layers:
  - {name: s, op: einsum, from: [a, b], equation: "ntd,nsd->nts"}
""")
    assert "t.yaml:5:" in out and "dim 'd' is 8" in out
    out = _error("""
netspec: 1
inputs: {a: [N, 4, 8]}
layers:
  - {name: s, op: einsum, equation: "nt$->n"}
""")
    assert "t.yaml:5:" in out and "'$'" in out


# -- buffers ---------------------------------------------------------------------------------------------------

BUFFERS = """
netspec: 1
inputs: {x: [N, 4]}
layers:
  - {name: mask, op: buffer, generator: causal_mask, shape: [1, 1, 4, 4], dtype: bool, persistent: false}
  - {name: additive, op: buffer, generator: causal_mask, shape: [3, 3]}
  - {name: index, op: buffer, generator: relative_position_index, window: [2, 3], dtype: int64, persistent: false}
  - {name: kernel, op: buffer, values: [[1, 2, 1], [2, 4, 2]]}
  - {name: y, op: linear, out: 4, from: x}
outputs: [y, mask, additive, index, kernel]
"""


def test_generated_buffers_and_persistence():
    res = _check(BUFFERS)
    assert res.ok, [e.format() for e in res.errors]
    m = netspec.build(netspec.load(BUFFERS, name="t.yaml"))
    assert set(m.state_dict()) == {"additive", "kernel", "y.weight", "y.bias"}      # not mask, not index
    assert {k for k, _ in m.named_buffers()} == {"mask", "additive", "index", "kernel"}
    out = m(torch.randn(2, 4))
    assert torch.equal(out["mask"], torch.ones(1, 1, 4, 4, dtype=torch.bool).tril())
    assert torch.equal(out["additive"], torch.nn.Transformer.generate_square_subsequent_mask(3))
    assert torch.equal(out["kernel"], torch.tensor([[1.0, 2, 1], [2, 4, 2]]))
    # Swin's relative position index (as in torchvision's swin_transformer._get_relative_position_index)
    wh, ww = 2, 3
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += wh - 1
    rel[:, :, 1] += ww - 1
    rel[:, :, 0] *= 2 * ww - 1
    assert torch.equal(out["index"], rel.sum(-1))


def test_summary_and_weights_agree_on_non_persistent_buffers():
    from netspec.summary import summarize
    g = next(iter(_check(BUFFERS).graphs.values()))
    state = {n.id for n in g.nodes.values() if n.meta.get("weights")}
    assert state == {"additive", "kernel", "y"}
    m = netspec.build(netspec.load(BUFFERS, name="t.yaml"))
    buffers_in_state = sum(v.numel() for k, v in m.state_dict().items() if k in ("additive", "kernel"))
    assert summarize(g).totals.buffers == buffers_in_state == 15
    assert summarize(g).totals.params == sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("layer, msg", [
    ("{name: b, op: buffer, generator: causal_mask, shape: [3, 4]}", "last two sizes must be equal"),
    ("{name: b, op: buffer, generator: relative_position_index, dtype: int64}", "window"),
    ("{name: b, op: buffer, generator: sinusoid, shape: [3]}", "choose one of: causal_mask"),
    ("{name: b, op: buffer, values: [[1, 2], [3]]}", "ragged"),
    ("{name: b, op: buffer, values: [1, 2, 3], shape: [2, 2]}", "holds 4"),
    ("{name: b, op: buffer, generator: causal_mask, init: ones, shape: [2, 2]}", "not init and generator"
     "|one of init, generator and values"),
])
def test_buffer_errors_are_located(layer, msg):
    out = _error(f"""
netspec: 1
inputs: {{x: [N, 4]}}
layers:
  - {layer}
  - {{name: y, op: linear, out: 4, from: x}}
""")
    assert "t.yaml:5:" in out
    assert re.search(msg, out), out
