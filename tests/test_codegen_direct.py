"""The network's own class writes a literal that no expression writes and no trace can find as its value at once,
without a slot (``Writer._plain_lit``, ``DIRECT_TOP_LITERALS``): the source is the same, byte for byte, as when
every literal has a slot that ``_resolve_top`` writes."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import netspec.codegen.source as S
from netspec.codegen.build import compile_source
from netspec.errors import NetspecError
from netspec.pipeline import graph

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
import specs as gen  # noqa: E402

BUNDLED = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "examples").glob("**/*.yaml"))


def _both(text_or_path) -> tuple:
    """(readable source, source to run) with every literal slotted, then written directly."""
    out = []
    for direct in (False, True):
        S.DIRECT_TOP_LITERALS = direct
        try:
            g = graph(text_or_path)
            out.append((compile_source(g), S.generate(g, readable=False)))
        finally:
            S.DIRECT_TOP_LITERALS = True
    return out[0], out[1]


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_specs_same_source(path):
    try:
        slotted, direct = _both(str(path))
    except NetspecError:
        pytest.skip("a spec that needs bindings or fails on purpose")
    assert direct == slotted


@pytest.mark.parametrize("kind", gen.KINDS)
def test_generated_specs_same_source(kind):
    slotted, direct = _both(gen.generate(kind, 300)[0])
    assert direct == slotted


def test_the_literal_chain_takes_no_slots():
    """A chain written out with numbers: the network's class has no slot at all (nothing for _resolve_top)."""
    g = graph(gen.generate("literal", 300)[0])
    w = S.Writer(g, None, set(), {})
    top = w.write()
    assert top.slots == [] and not w._top_traceable
    assert "nn.Linear(8, 8)" in compile_source(g)


# -- random flat networks: parameters, expressions, numbers, lists, references, a block or not ----------------------

_LAYERS = st.sampled_from([
    {"op": "linear", "out": 8}, {"op": "linear", "out": "w"}, {"op": "linear", "out": "w * 2", "bias": False},
    {"op": "linear", "out": "features(x)"}, {"op": "linear", "out": "features(PREV) // 2 * 2"},
    {"op": "relu"}, {"op": "layernorm"}, {"op": "layernorm", "eps": 0.001}, {"op": "dropout", "p": "p"},
    {"op": "dropout", "p": 0.25}, {"op": "leaky_relu", "negative_slope": "p / 10"},
    {"op": "add", "from": ["PREV", "x"]}, {"op": "linear", "out": 8, "from": "x"},
    {"op": "softmax", "dim": -1}, {"op": "softmax", "dim": "1 - 2"},
    {"op": "reshape", "shape": [2, 4]}, {"op": "reshape", "shape": [2, "w // 2"]}, {"op": "reshape", "shape": [-1, 2]},
])


@st.composite
def _flat_specs(draw):
    layers = []
    width = 8                   # x is (N, 8); every layer's output is (N, 8) but the reshape, flattened back
    for k in range(draw(st.integers(1, 8))):
        layer = dict(draw(_LAYERS))
        if layer["op"] == "reshape":
            layers.append({"name": f"l{k}", **layer})
            layers.append({"name": f"l{k}f", "op": "flatten"})
            continue
        if layer.get("out") in ("w * 2",):
            layers.append({"name": f"l{k}", **layer})
            layers.append({"name": f"l{k}b", "op": "linear", "out": width})
            continue
        if "from" in layer:
            f = layer["from"]
            layer["from"] = [f"l{k - 1}" if r == "PREV" and k else "x" for r in f] if isinstance(f, list) else f
        if isinstance(layer.get("out"), str):
            layer["out"] = layer["out"].replace("PREV", f"l{k - 1}" if k and layers else "x")
        layers.append({"name": f"l{k}", **layer})
    spec = {"netspec": 1, "name": "rnd", "params": {"w": 8, "p": 0.5}, "inputs": {"x": ["N", 8]}, "layers": layers}
    if draw(st.booleans()):      # a block somewhere: sizes may be traced through it
        spec["blocks"] = {"b": {"layers": [{"name": "f", "op": "linear", "out": 8}, {"name": "r", "op": "relu"}]}}
        at = draw(st.integers(0, len(layers)))
        layers.insert(at, {"name": "blk", "op": "b"})
    if draw(st.booleans()):
        spec["outputs"] = {"y": layers[-1]["name"], "z": layers[draw(st.integers(0, len(layers) - 1))]["name"]}
    return json.dumps(spec)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_flat_specs())
def test_random_networks_same_source(text):
    try:
        graph(text)
    except NetspecError:
        return                  # sizes that do not meet: nothing to compare
    slotted, direct = _both(text)
    assert direct == slotted
