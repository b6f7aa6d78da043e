"""Shape assertions (`shape:` on layers, block instances and outputs): proved by check, or located errors; and what
check proves holds when the network runs (the guarantee, at random sizes that meet the requirements)."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from netspec.errors import NetspecError
from netspec.shapes import is_sym

from guarantee import assert_runs_as_checked, bindings_for

ROOT = Path(__file__).resolve().parent.parent


def _check(text: str, name: str = "net.yaml", **kw):
    return netspec.check(netspec.load(text, name=name), **kw)


def _errors(text: str, **kw) -> list[str]:
    res = _check(text, **kw)
    return [e.format() for e in res.errors]


RESNETISH = """netspec: 1
symbols: {H: {multiple_of: 32}, W: {multiple_of: 32}}
params: {num_classes: 10}
inputs:
  x: [N, 3, H, W]
blocks:
  basic:
    params: {planes: int, stride: {type: int, default: 1}}
    layers:
      - {name: conv1, op: conv2d, out: planes, kernel: 3, stride: stride, padding: 1, bias: false}
      - {name: bn1, op: batchnorm2d}
      - {name: relu, op: relu}
      - {name: conv2, op: conv2d, out: planes, kernel: 3, padding: 1, bias: false}
      - {name: bn2, op: batchnorm2d}
      - {name: down, op: conv2d, out: planes, kernel: 1, stride: stride, bias: false, from: x,
         if: "stride != 1 or channels(x) != planes"}
      - {name: sum, op: add, from: [bn2, down]}
      - {op: relu}
layers:
  - {name: conv1, op: conv2d, out: 64, kernel: 7, stride: 2, padding: 3, bias: false, shape: [N, 64, H/2, W/2]}
  - {name: maxpool, op: max_pool2d, kernel: 3, stride: 2, padding: 1, shape: [N, 64, H/4, W/4]}
  - {name: layer1, op: basic, planes: 64, shape: [N, 64, H/4, W/4]}
  - {name: layer2, op: basic, planes: 128, stride: 2, shape: [N, 2*64, "H//8", ceil(W/8)]}
  - {op: global_avg_pool}
  - {op: flatten, shape: [N, 128]}
  - {name: fc, op: linear, out: num_classes, shape: [N, num_classes]}
outputs:
  logits: {from: fc, shape: [N, num_classes]}
"""


def test_true_assertions_check():
    res = _check(RESNETISH)
    assert res.ok, [e.format() for e in res.errors]
    g = res.graphs["net"]
    assert len(g.assertions) == 7
    assert not res.warnings
    # bound sizes and parameters: the assertions are evaluated with them
    assert _check(RESNETISH, bindings={"H": 64, "W": 96}, params={"num_classes": 3}).ok


def test_a_wrong_assertion_is_located_at_its_shape_key_with_both_shapes():
    text = RESNETISH.replace("shape: [N, 64, H/4, W/4]}\n  - {name: layer2", "shape: [N, 64, H/8, W/4]}\n  - {name: layer2")
    errs = _errors(text)
    assert len(errs) == 1
    line = text.splitlines().index(next(ln for ln in text.splitlines() if "name: layer1" in ln)) + 1
    col = text.splitlines()[line - 1].index("shape:") + 1
    assert errs[0].startswith(f"net.yaml:{line}:{col}: error: block instance 'layer1' (basic) has shape "
                              "[N, 64, H/4, W/4], but 'shape' asserts [N, 64, H/8, W/4] (dim 2: H/4, not H/8)")
    assert "hint:" in errs[0]


def test_a_wrong_assertion_in_a_nested_block_instance_is_located_at_the_blocks_line():
    text = """netspec: 1
inputs: {x: [N, 8, H, W]}
blocks:
  inner:
    params: {c: int}
    layers:
      - {name: conv, op: conv2d, out: c, kernel: 3, padding: 1, shape: [N, 16, H, W]}
  outer:
    params: {c: int}
    layers:
      - {name: one, op: inner, c: c}
      - {name: two, op: inner, c: 2*c}
layers:
  - {name: a, op: outer, c: 8}
"""
    errs = _errors(text)
    assert len(errs) == 1, errs
    # line 7 is the inner block's layer, col 65 its 'shape:' key; the instance is named in full
    assert errs[0].startswith("net.yaml:7:65: error: layer 'a.one.conv' (conv2d) has shape [N, 8, H, W], but 'shape' "
                              "asserts [N, 16, H, W] (dim 1: 8, not 16)"), errs[0]
    # a block instance's own assertion inside another block, wrong: located at that line
    text2 = text.replace("shape: [N, 16, H, W]}", "}").replace("{name: two, op: inner, c: 2*c}",
                                                                "{name: two, op: inner, c: 2*c, shape: [N, c, H, W]}")
    errs = _errors(text2)
    assert len(errs) == 1 and errs[0].startswith("net.yaml:12:40: error: block instance 'a.two' (inner) has shape "
                                                 "[N, 16, H, W], but 'shape' asserts [N, c, H, W] (here [N, 8, H, W])")


def test_divisibility_found_anywhere_in_the_network_proves_an_assertion():
    """H/2 after a stride-2 conv holds only for even H; a U-Net skip further down requires that, so it is proved."""
    base = """netspec: 1
inputs: {x: [N, 4, H, W]}
layers:
  - {name: down, op: conv2d, out: 4, kernel: 3, stride: 2, padding: 1, shape: [N, 4, H/2, W/2]}
  - {name: up, op: upsample, scale: 2}
%s"""
    skip = "  - {name: cat, op: concat, from: [up, x]}\n"
    assert _check(base % skip).ok
    errs = _errors(base % "")
    assert len(errs) == 1 and "ceil(H/2) equals H/2 only when H % 2 == 0" in errs[0]
    assert "declare it (symbols: {H: {multiple_of: 2}})" in errs[0]


def test_linear_on_a_feature_map_warns_unless_its_shape_is_stated(tmp_path):
    text = """netspec: 1
inputs: {x: [N, 3, 28, 28]}
layers:
  - {op: conv2d, out: 64, kernel: 3, stride: 4, padding: 1}
  - {name: fc, op: linear, out: 10}
"""
    res = _check(text)
    assert res.ok and len(res.warnings) == 1
    w = res.warnings[0].format()
    assert w.startswith("net.yaml:5:5: warning: 'fc' (linear) maps only the last dimension of its rank-4 input "
                        "[N, 64, 7, 7], giving [N, 64, 7, 10]")
    assert "shape: [N, 64, 7, 10]" in w
    stated = text.replace("out: 10}", "out: 10, shape: [N, 64, 7, 10]}")
    res = _check(stated)
    assert res.ok and not res.warnings
    # rank 3 (a sequence) is what linear is for: no warning
    assert not _check("netspec: 1\ninputs: {x: [N, T, 16]}\nlayers:\n  - {op: linear, out: 4}\n").warnings
    # the CLI: a located warning, exit 0
    f = tmp_path / "net.yaml"
    f.write_text(text, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "netspec", "check", str(f)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and f"{f}:5:5: warning: 'fc' (linear)" in r.stderr


def test_ops_with_a_shape_parameter_state_their_shape_as_out_shape():
    text = """netspec: 1
inputs: {x: [N, 8, 4, 4]}
layers:
  - {name: r, op: reshape, keep: 1, shape: [-1], out_shape: [N, 128]}
  - {name: ln, op: layernorm, shape: [128], out_shape: [N, 128]}
"""
    assert _check(text).ok
    errs = _errors(text.replace("out_shape: [N, 128]}\n  - {name: ln", "out_shape: [N, 64]}\n  - {name: ln"))
    assert len(errs) == 1 and "net.yaml:4:50: error: layer 'r' (reshape) has shape [N, 128], but 'out_shape' " \
                              "asserts [N, 64]" in errs[0]
    with pytest.raises(NetspecError, match="unknown field 'out_shape'"):
        netspec.load("netspec: 1\ninputs: {x: [N, 4]}\nlayers:\n  - {op: relu, out_shape: [N, 4]}\n", name="a.yaml")


@pytest.mark.parametrize("dims, message", [
    ('"[N, 4]"', "input should be a valid list"),
    ('[N, "__import__(\'os\')"]', "in the dimension '__import__('os')'"),
    ('[N, "x.shape"]', "in the dimension 'x.shape'"),
    ("[N, M]", "in the dimension 'M': unknown name 'M'"),
    ("[N, 0]", "not a positive size"),
    ("[N, H/0]", "division by zero"),
    ("[N, 3/2]", "is 3/2, not a whole number"),
    ("[N, true]", "must be a number, not True"),
    ("[N, H*H/N]", "can only be divided by a number"),
    ('[N, "max(H, 2)"]', "a dimension is a number, a symbol, a parameter"),
], ids=["text", "call", "attribute", "unknown", "zero", "div-zero", "fraction", "bool", "div-dim", "max"])
def test_bad_assertions_are_located_errors(dims, message):
    text = f"netspec: 1\ninputs: {{x: [N, H]}}\nlayers:\n  - {{op: relu, shape: {dims}}}\n"
    try:
        errs = _errors(text)
    except NetspecError as e:
        errs = [e.format()]
    assert errs and errs[0].startswith("net.yaml:4:"), errs
    assert message in errs[0], errs[0]


def test_schema_describes_assertions():
    from netspec.spec.models import json_schema
    schema = json.dumps(json_schema())
    assert "assert the layer's output shape" in schema and "OutputDecl" in schema


# -- the guarantee: what check proves holds at run time ------------------------------------------------------------

GUARANTEED = [
    RESNETISH,
    """netspec: 1
inputs: {x: [N, 4, H, W]}
layers:
  - {name: down, op: conv2d, out: 6, kernel: 3, stride: 2, padding: 1, shape: [N, 6, ceil(H/2), "(W+1)//2"]}
  - {name: pool, op: max_pool2d, kernel: 2, shape: [N, 6, "floor(ceil(H/2)/2)", "(W+1)//4"]}
  - {name: up, op: upsample, scale: 4}
  - {name: crop, op: adaptive_avg_pool2d, out: [5, 3], shape: [N, 6, 5, 3]}
  - {op: flatten, shape: [N, 90]}
outputs:
  y: {from: 4, shape: [N, 15*6]}
""".replace("from: 4,", "from: flat,").replace("{op: flatten,", "{name: flat, op: flatten,"),
    """netspec: 1
symbols: {T: {multiple_of: 4}}
params: {d: 16}
inputs: {tokens: [N, T, d]}
blocks:
  mix:
    params: {width: int, d: int}
    layers:
      - {name: fc, op: linear, out: width, shape: [N, T, width]}
      - {name: act, op: gelu}
      - {name: back, op: linear, out: d, shape: [N, T, d]}
    outputs: {out: {from: back, shape: [N, T, d]}}
layers:
  - {name: m, op: mix, width: 2*d, d: d, repeat: 2, shape: [N, T, d]}
  - {name: r, op: reshape, keep: 1, shape: [-1, 4, d], out_shape: [N, T/4, 4, d]}
""",
]


@pytest.mark.parametrize("k", range(len(GUARANTEED)))
def test_proved_assertions_hold_at_run_time(k):
    text = GUARANTEED[k]
    spec = netspec.load(text, name=f"g{k}.yaml")
    res = netspec.check(spec)
    assert res.ok, [e.format() for e in res.errors]
    # compile, build, run at random sizes meeting the requirements: every tensor has the inferred shape
    assert assert_runs_as_checked(text, seed=k, name=f"g{k}.yaml") == 1
    # and every asserted shape equals the inferred one there (so the run had it too)
    for g in res.graphs.values():
        rng = random.Random(k)
        for _ in range(5):
            b = bindings_for(spec, g, rng)
            assert b is not None
            for a in g.assertions:
                t = g.type_of(a.ref)
                want = [int(d.evaluate(b)) if is_sym(d) else int(d) for d in a.dims]
                got = [int(d.evaluate(b)) if is_sym(d) else int(d) for d in t.shape]
                assert want == got, f"{a.what} at {b}: asserted {want}, inferred {got}"


def test_every_printed_shape_reads_back_as_a_true_assertion():
    """For every op's every shape case, the shape check prints for the layer, written back as its 'shape:' (or
    'out_shape:'), checks: the printed form of any dimension (ceil(H/2), floor((H - 1)/2) + 1, 8*T, ...) is something a
    statement can say."""
    from netspec.ops import all_ops
    from netspec.pipeline import graph
    from netspec.spec.models import owns_shape
    from netspec.testing import one_layer_spec, spec_writable
    ran = 0
    for name, op in sorted(all_ops().items()):
        for i in range(len(op.cases)):
            if not spec_writable(op, i):
                continue
            doc = json.loads(one_layer_spec(op, i))
            g = graph(netspec.load(json.dumps(doc), name=f"{name}.json"))
            t = g.type_of(g.outputs["y0"])
            layer = doc["layers"][0]
            layer["out_shape" if owns_shape(layer) else "shape"] = [d if isinstance(d, int) else str(d)
                                                                     for d in t.shape]
            res = netspec.check(netspec.load(json.dumps(doc), name=f"{name}.json"))
            assert res.ok, f"{name} case {i}: " + "\n".join(e.format() for e in res.errors)
            assert len(res.graphs["one_op"].assertions) == 1
            ran += 1
    assert ran > 300


def test_a_block_states_its_shape_relative_to_its_input():
    """dim(x, axis), channels(x) and features(x) measure a tensor in scope (a block's input, an earlier layer), so one
    statement in a block holds at every depth it is used; a wrong one is located in the block, naming the instance."""
    text = """netspec: 1
inputs: {x: [N, 3, H, W]}
blocks:
  down:
    params: {c: int}
    layers:
      - {name: conv, op: conv2d, out: c, kernel: 3, stride: 2, padding: 1, shape: [N, c, "ceil(dim(x, 2)/2)", W2]}
      - {name: act, op: relu}
    outputs: {out: {from: act, shape: [N, c, "ceil(dim(x, 2)/2)", "ceil(dim(x, -1)/2)"]}}
layers:
  - {name: a, op: down, c: 8}
  - {name: b, op: down, c: 16, shape: [N, "2*channels(a)", "ceil(dim(a, 2)/2)", "ceil(dim(x, 3)/4)"]}
  - {name: t, op: flatten, start: 2, shape: [N, 16, "features(t0)"]}
"""
    good = text.replace('W2]', '"ceil(dim(x, 3)/2)"]').replace('"features(t0)"', '"dim(b, 2)*dim(b, 3)"')
    res = _check(good)
    assert res.ok, [e.format() for e in res.errors]
    assert len(res.graphs["net"].assertions) == 6
    assert assert_runs_as_checked(good, seed=3) == 1
    errs = _errors(text.replace('W2]', '"dim(x, 3)/2"]').replace('"features(t0)"', '"dim(b, 2)*dim(b, 3)"'))
    assert len(errs) == 2 and all(e.startswith("net.yaml:7:") for e in errs), errs
    assert "layer 'a.conv' (conv2d) has shape [N, 8, ceil(H/2), ceil(W/2)]" in errs[0]
    assert "layer 'b.conv' (conv2d) has shape [N, 16, ceil(H/4), ceil(W/4)]" in errs[1]
    errs = _errors(text.replace('W2]', '"ceil(dim(x, 3)/2)"]'))
    assert len(errs) == 1 and "features() takes a tensor in scope" in errs[0]
    errs = _errors(text.replace('W2]', '"dim(x, 7)"]'))
    assert len(errs) == 1 and "dim(): index 7 out of range for a rank-4 tensor" in errs[0]
