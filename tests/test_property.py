"""Property tests: random well-formed chains of ops either check, or fail with located errors; never anything else."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

import netspec
from netspec.errors import NetspecError

SMALL = st.integers(min_value=1, max_value=9)

LAYERS = st.one_of(
    st.builds(lambda o, k, s, p: {"op": "conv2d", "out": o, "kernel": k, "stride": s, "padding": p},
              SMALL, st.integers(1, 7), st.integers(1, 3), st.integers(0, 3)),
    st.builds(lambda k, s: {"op": "maxpool2d", "kernel": k, "stride": s}, st.integers(1, 4), st.integers(1, 3)),
    st.builds(lambda o: {"op": "linear", "out": o}, SMALL),
    st.sampled_from([{"op": "relu"}, {"op": "batchnorm2d"}, {"op": "flatten"}, {"op": "sigmoid"},
                     {"op": "dropout", "p": 0.5}, {"op": "gelu"}, {"op": "layernorm"},
                     {"op": "adaptive_avg_pool2d", "out": 1}, {"op": "softmax", "dim": 1}]),
    st.builds(lambda o, k: {"op": "conv_transpose2d", "out": o, "kernel": k, "stride": 2}, SMALL, st.integers(1, 4)),
    st.builds(lambda d: {"op": "concat", "from": ["x", "PREV"], "dim": d}, st.integers(-3, 3)),
    st.builds(lambda: {"op": "add", "from": ["x", "PREV"]}),
)

DIMS = st.one_of(st.integers(1, 40), st.sampled_from(["N", "H", "W", "T"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(DIMS, min_size=1, max_size=5), layers=st.lists(LAYERS, min_size=1, max_size=8))
def test_random_chains_check_or_fail_located(shape, layers):
    named = []
    for k, layer in enumerate(layers):
        layer = dict(layer, name=f"l{k}")
        if "from" in layer:
            layer["from"] = [("x" if r == "x" else (f"l{k - 1}" if k else "x")) for r in layer["from"]]
        named.append(layer)
    text = json.dumps({"netspec": 1, "inputs": {"x": shape}, "layers": named})
    res = netspec.check(netspec.load(text, name="random.json"))
    if res.ok:
        g = next(iter(res.graphs.values()))
        assert len(g.nodes) == len(layers) + 1
        return
    for e in res.errors:
        assert isinstance(e, NetspecError)
        assert e.loc is not None and e.loc.file == "random.json" and e.loc.line >= 1
        assert e.message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_text_never_crashes(text):
    try:
        netspec.check(netspec.load("netspec: 1\n" + text, name="fuzz.yaml"))
    except NetspecError as e:
        assert e.loc is not None


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8)),
                    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=6), c, max_size=4)),
                    max_leaves=20))
def test_random_structures_never_crash(data):
    doc = {"netspec": 1, "inputs": {"x": ["N", 4]}, "layers": [data] if not isinstance(data, list) else data}
    try:
        res = netspec.check(netspec.load(json.dumps(doc), name="s.json"))
    except NetspecError as e:
        assert e.loc is not None and e.loc.line >= 1
        return
    for e in res.errors:
        assert e.loc is not None
