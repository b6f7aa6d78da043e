"""`check` OK means it runs: property tests over generated specs.

Two generators, both through `guarantee.assert_runs_as_checked` (compile imports, build constructs, forward and
backward run at random sizes that meet the printed requirements, every module's input and output and every network
output has the inferred shape):

* every registered op and each of its shape cases, wrapped in a block that is used twice with different parameter
  values (so one generated class must hold each instance's values), under a layer name taken from the names that
  Python containers use for their methods (``append``, ``keys``, ...);
* random networks (hypothesis) of blocks with typed parameters, conditional layers, repeats with the loop index,
  forward-only values (reshape sizes, scale factors, paddings) from block parameters, merges, multi-output ops,
  learned tensors and buffers.
"""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import netspec
from netspec.ops.base import all_ops
from netspec.shapes import is_sym

from guarantee import Rejected, assert_runs_as_checked

# names that methods of nn.Sequential / nn.ModuleList / dict take: each must still name a layer
CONTAINER_NAMES = ["append", "extend", "insert", "pop", "keys", "items", "values", "update", "clear", "index",
                   "count", "forward_", "y", "out", "self_", "F", "torch", "nn", "math", "layer", "sum", "input",
                   "block1-0", "2", "1x1", "conv-a"]   # names only a module attribute can have (getattr)


def _dim(d):
    if not is_sym(d):
        return int(d)
    s = str(d)
    return s if s.isidentifier() else int(d.evaluate({x: 4 for x in d.free_symbols()}))


def _perturb(v):
    """Other values for one parameter, in the order tried."""
    if isinstance(v, bool) or v is None:
        return []
    if isinstance(v, int):
        return [v * 2, v + 1] if v > 0 else ([v - 1] if v < 0 else [1])
    if isinstance(v, float):
        return [v / 2 if v else 0.5]
    if isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return [[x * 2 if x > 0 else x for x in v], [x + 1 if x > 0 else x for x in v]]
    return []


def _type(v) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list"}.get(type(v), "any")


def op_cases():
    out = []
    for name, op in sorted(all_ops().items()):
        for k, case in enumerate(op.cases):
            out.append(pytest.param(name, k, id=f"{name}-{k}"))
    return out


def wrapped_spec(opname: str, k: int, alt: dict | None) -> str:
    """The op's k-th case as a block with the case's parameters, used twice (the second time with ``alt``)."""
    op = all_ops()[opname]
    params, inputs, _ = op.cases[k]
    ins = {}
    names = []
    for j, e in enumerate(inputs):
        if e is None:
            continue
        shape, dtype = (e[0], e[1]) if len(e) == 2 and isinstance(e[0], (tuple, list)) else (e, "float32")
        nm = f"in{j}"
        ins[nm] = {"shape": [_dim(d) for d in shape], "dtype": dtype}
        names.append((j, nm))
    slot = [s.name for s in op.inputs]
    bparams = {p: {"type": _type(v), "default": v} for p, v in params.items()}
    layer = {"name": CONTAINER_NAMES[k % len(CONTAINER_NAMES)], "op": opname}
    for p in params:
        layer[p] = p if p not in ("name", "op", "from") else params[p]
    bins = [f"a{j}" for j, _ in names]
    if names:
        if op.inputs and op.inputs[0].variadic:
            layer["from"] = bins
        else:
            layer["from"] = {slot[j]: f"a{j}" for j, _ in names}
    block = {"params": bparams, "inputs": bins, "layers": [layer]} if bins else {"params": bparams, "layers": [layer]}
    frm = [nm for _, nm in names]
    first = {"name": "first", "op": "wrap", **({"from": frm} if frm else {})}
    second = {"name": "second", "op": "wrap", **({"from": frm} if frm else {}), **(alt or {})}
    doc = {"netspec": 1, "name": "wrapped", "inputs": ins, "blocks": {"wrap": block},
           "layers": [first, second], "outputs": {"a": "first", "b": "second"}}
    if not ins:          # an op without inputs (a learned tensor) in a network that has one
        doc["inputs"] = {"z": ["N", 1]}
        doc["outputs"]["z"] = "z"
    return json.dumps(doc, indent=1)


@pytest.mark.parametrize("opname,k", op_cases())
def test_every_op_runs_as_checked_in_a_shared_class(opname, k):
    op = all_ops()[opname]
    params = op.cases[k][0]
    # the second instance differs in one parameter where a different value still checks
    tried = []
    for p, v in params.items():
        for alt in _perturb(v):
            tried.append({p: alt})
    if any(isinstance(v, float) and not math.isfinite(v) for v in params.values()):
        pytest.skip("JSON has no infinity")
    for alt in tried + [None]:
        text = wrapped_spec(opname, k, alt)
        try:
            assert assert_runs_as_checked(text, seed=k, name=f"{opname}.json") >= 0
        except Rejected:
            if alt is None:
                raise AssertionError(f"the case itself does not check:\n{text}")
            continue
        break


def test_the_block_parameter_used_only_in_forward():
    """The issue's minimal case: a reshape size from a block parameter, two instances, two values."""
    text = """
netspec: 1
name: heads
inputs: {x: [N, 12, 8]}
blocks:
  heads_split:
    params: {heads: int}
    layers:
      - {op: reshape, keep: 2, shape: [heads, -1]}
      - {op: flatten, start: 2}
layers:
  - {name: a, op: heads_split, heads: 2, from: x}
  - {name: b, op: heads_split, heads: 4, from: x}
outputs: [a, b]
"""
    assert assert_runs_as_checked(text) == 1
    src = netspec.compile_source(text)
    assert src.count("class HeadsSplit(") == 1 and "self.heads" in src


@pytest.mark.parametrize("name", CONTAINER_NAMES)
def test_container_method_names_are_layer_names(name):
    text = f"""
netspec: 1
name: names
inputs: {{x: [N, 3, H, W]}}
blocks:
  b:
    layers:
      - {{name: {name}, op: conv2d, out: 4, kernel: 3, padding: 1}}
      - {{op: relu}}
layers:
  - {{name: {name}, op: conv2d, out: 4, kernel: 1}}
  - {{name: seq, op: seq, layers: [{{op: relu}}, {{name: {name}, op: conv2d, out: 4, kernel: 1}}]}}
  - {{name: rep, op: b, repeat: 2}}
  - {{name: rep2, op: conv2d, out: 4, kernel: 1, repeat: 2}}
"""
    assert assert_runs_as_checked(text) == 1


# -- random networks -------------------------------------------------------------------------------------------

@st.composite
def block_layer(draw, k: int):
    """One layer of a block body over an (N, C, H, W) input; expressions over the block's parameters a, b, on."""
    kind = draw(st.sampled_from(["conv", "bn", "act", "opt_conv", "scale", "pad_crop", "res", "chunk", "seq",
                                 "shape_trip", "param"]))
    name = draw(st.sampled_from(CONTAINER_NAMES + [f"l{k}"]))
    if kind == "conv":
        return [{"name": name, "op": "conv2d", "out": draw(st.sampled_from(["a", "a * 2", "b", "channels(x)"])),
                 "kernel": draw(st.sampled_from([1, 3, "1 + 2 * (b % 2)"])), "padding": "kernel_pad",
                 "stride": draw(st.sampled_from([1, 1, "s"]))}]
    if kind == "bn":
        return [{"name": name, "op": "batchnorm2d"}]
    if kind == "act":
        return [{"name": name, "op": draw(st.sampled_from(["relu", "gelu", "sigmoid", "hardswish", "silu"]))}]
    if kind == "opt_conv":
        return [{"name": name, "op": "conv2d", "out": "a", "kernel": 1, "if": draw(st.sampled_from(
            ["on", "not on", "a > 3", "channels(x) != a"]))}]
    if kind == "scale":
        return [{"name": name, "op": "scale", "factor": draw(st.sampled_from(["a / 2", "sqrt(b)", "0.5 * a"]))}]
    if kind == "pad_crop":
        return [{"name": name, "op": "pad", "padding": ["b", "b", 0, 0]},
                {"op": "pad", "padding": ["-b", "-b", 0, 0]}]
    if kind == "res":
        return [{"name": f"{name}_c", "op": "conv2d", "out": "channels(x)", "kernel": 3, "padding": 1},
                {"name": f"{name}_add", "op": "add", "from": [f"{name}_c", "x"]}]
    if kind == "chunk":
        return [{"name": f"{name}_sp", "op": "chunk", "chunks": 2, "dim": 1},
                {"name": f"{name}_cat", "op": "concat", "from": [f"{name}_sp.out1", f"{name}_sp.out0"], "dim": 1}]
    if kind == "seq":
        return [{"name": f"{name}_q", "op": "seq", "layers": [{"op": "conv2d", "out": "a", "kernel": 1},
                                                               {"op": "relu", "if": "on"},
                                                               {"op": "conv2d", "out": "b", "kernel": 1}]}]
    if kind == "shape_trip":     # the minimal case of the issue, made round: (N, C, H, W) -> heads -> back
        return [{"name": f"{name}_r", "op": "reshape", "keep": 2, "shape": ["b", -1]},
                {"name": f"{name}_f", "op": "flatten", "start": 2},
                {"name": f"{name}_back", "op": "reshape", "keep": 2, "shape": ["dim(x, 2)", "dim(x, 3)"]}]
    return [{"name": f"{name}_p", "op": "param", "shape": [1, 1, 1, 1], "init": "ones"},
            {"name": f"{name}_m", "op": "multiply", "from": [f"{name}_prev", f"{name}_p"]}]


@st.composite
def random_network(draw):
    nblocks = draw(st.integers(1, 2))
    blocks = {}
    for bi in range(nblocks):
        body = []
        for k in range(draw(st.integers(1, 4))):
            layers = draw(block_layer(k))
            if layers[-1]["op"] == "multiply":        # multiply the previous value by a learned scale
                prev = body[-1]["name"] if body and "name" in body[-1] else None
                if prev is None:
                    body.append({"name": f"pre{k}", "op": "relu"})
                    prev = f"pre{k}"
                layers[-1]["from"] = [prev, layers[0]["name"]]
            body += layers
        # unique names within the body
        seen = set()
        for j, layer in enumerate(body):
            if "name" in layer:
                if layer["name"] in seen:
                    layer["name"] = f"{layer['name']}_{j}"
                seen.add(layer["name"])
        blocks[f"blk{bi}"] = {"params": {"a": "int", "b": {"type": "int", "default": 2}, "on": {"type": "bool",
                                                                                             "default": False},
                                         "s": {"type": "int", "default": 1}},
                              "let": None, "layers": body}
        blocks[f"blk{bi}"].pop("let")
    # kernel_pad: a derived number each conv reads
    for b in blocks.values():
        for layer in b["layers"]:
            if layer.get("padding") == "kernel_pad":
                layer["padding"] = f"({layer['kernel']}) // 2" if isinstance(layer["kernel"], str) else \
                    layer["kernel"] // 2
    layers = [{"name": "stem", "op": "conv2d", "out": draw(st.integers(2, 6)), "kernel": 3, "padding": 1}]
    for k in range(draw(st.integers(2, 5))):
        b = draw(st.sampled_from(sorted(blocks)))
        args = {"a": draw(st.integers(2, 6)), "b": draw(st.sampled_from([1, 2, 4])), "on": draw(st.booleans()),
                "s": draw(st.sampled_from([1, 1, 2]))}
        layer = {"name": f"u{k}", "op": b, **args}
        if draw(st.booleans()):
            layer["repeat"] = draw(st.integers(1, 3))
            layer["a"] = draw(st.sampled_from(["a_net + i", "a_net", 3]))
            layer["s"] = draw(st.sampled_from(["2 if i == 0 else 1", 1]))
        layers.append(layer)
    if draw(st.booleans()):
        layers.append({"name": "merge", "op": "concat", "from": ["stem", layers[-1]["name"]], "dim": 1,
                       "if": "true"})
    layers.append({"name": "pool", "op": "global_avg_pool", "flatten": True})
    layers.append({"name": "head", "op": "linear", "out": "classes"})
    spatial = draw(st.sampled_from([["H", "W"], [8, 8], [12, "W"]]))
    return {"netspec": 1, "name": "random", "params": {"a_net": 3, "classes": 5},
            "inputs": {"x": ["N", 3] + spatial}, "blocks": blocks, "layers": layers}


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_network())
def test_random_networks_run_as_checked(doc):
    text = json.dumps(doc, indent=1)
    try:
        assert_runs_as_checked(text, name="random.json")
    except Rejected:
        assume(False)        # hypothesis fails the test if most generated networks do not even check


@pytest.mark.parametrize("depth", [1, 2, 3, 8])
def test_nested_unnamed_groups(depth):
    """Groups of layers inside groups, all unnamed (each called '0'), some repeated: one class per level."""
    inner = "{op: conv2d, out: 4, kernel: 1}"
    for k in range(depth):
        inner = "{op: seq, layers: [" + inner + ", {op: relu}]" + (", repeat: 2" if k % 2 else "") + "}"
    text = "netspec: 1\nname: nest\ninputs: {x: [N, 4, H, W]}\nlayers:\n  - " + inner + "\n"
    assert assert_runs_as_checked(text) == 1
