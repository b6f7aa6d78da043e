"""Code generation reuses the draft of an identical earlier block instance (``Writer.draft_instance``): the source
is the same, byte for byte, as when every instance is drafted (``REUSE_DRAFTS = False``)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import netspec.codegen.source as S
from netspec.codegen.build import compile_source
from netspec.errors import NetspecError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
import specs as gen  # noqa: E402

# nested blocks whose parameters change sizes, repeats, optional layers ('if'), shared modules, a two-input block
# called with the same value twice and with an input passed through, the same block wired differently
MIX = """
netspec: 1
name: reuse_mix
params: {width: 8}
inputs: {x: [N, 3, H, W]}
blocks:
  unit:
    params: {planes: int, stride: 1}
    layers:
      - {name: conv, op: conv2d, out: planes, kernel: 3, stride: stride, padding: 1, bias: false}
      - {name: act, op: relu}
      - {name: conv2, op: conv2d, out: planes, kernel: 3, padding: 1, bias: false}
      - {name: act2, op: relu, share: act}
  tied:
    layers:
      - {name: c1, op: conv2d, out: 8, kernel: 3, padding: 1}
      - {name: c2, op: conv2d, out: 8, kernel: 3, padding: 1, share: c1}
  opt:
    params: {planes: int}
    layers:
      - {name: a, op: conv2d, out: planes, kernel: 1}
      - {name: p, op: conv2d, from: x, out: planes, kernel: 1, if: "channels(x) != planes"}
      - {name: s, op: add, from: [a, p]}
  stage:
    params: {planes: int, n: 2}
    layers:
      - {name: first, op: unit, planes: planes, stride: 2}
      - {name: rest, op: unit, planes: planes, repeat: n}
      - {name: tail, op: opt, planes: planes}
  pair:
    inputs: [a, b]
    layers:
      - {name: c, op: conv2d, from: a, out: 8, kernel: 1}
      - {name: r, op: relu}
    outputs: {y: r, same: b}
layers:
  - {name: stem, op: conv2d, out: width, kernel: 3, padding: 1}
  - {name: s1, op: stage, planes: width}
  - {name: s2, op: stage, planes: "width * 2", n: 3}
  - {name: s3, op: stage, planes: "width * 2"}
  - {name: t1, op: opt, planes: 16}
  - {name: u1, op: unit, planes: 8}
  - {name: u2, op: unit, planes: 8}
  - {name: u3, op: unit, planes: 8, from: u1}
  - {name: k1, op: tied}
  - {name: k2, op: tied}
  - {name: p1, op: pair, from: [u3, u3]}
  - {name: p2, op: pair, from: [p1.y, u2]}
  - {name: p3, op: pair, from: [p2.y, u2]}
  - {name: sum, op: add, from: [p1.y, p2.y, p3.same, k2]}
  - {name: pool, op: global_avg_pool, flatten: true}
  - {name: fc, op: linear, out: 10}
"""

# blocks whose instances differ only in what draft() reads around them: an input read again after the block (no
# 'a += ...'), an output that is a network output, an output read by several layers
AROUND = """
netspec: 1
name: around
inputs: {x: [N, 8]}
blocks:
  res:
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: act, op: relu}
      - {name: add, op: add, from: [act, x]}
  chain:
    layers:
      - {op: linear, out: 8}
      - {op: relu}
  acc:
    inputs: [a, b]
    layers:
      - {name: fc, op: linear, from: b, out: 8}
      - {name: add, op: add, from: [a, fc]}
layers:
  - {name: a, op: res}
  - {name: b, op: res}
  - {name: c, op: res, from: a}
  - {name: d, op: chain}
  - {name: e, op: chain}
  - {name: f, op: chain, from: b}
  - {name: g, op: add, from: [c, f, e]}
  - {name: h, op: chain}
  - {name: p, op: linear, out: 8}
  - {name: q, op: linear, out: 8}
  - {name: a1, op: acc, from: [p, q]}
  - {name: t, op: linear, out: 8}
  - {name: a2, op: acc, from: [t, q]}
  - {name: a3, op: acc, from: [a2, p]}
  - {name: a4, op: acc, from: [a1, a3]}
  - {name: a5, op: acc, from: [t, a4]}
outputs: {y: a5, mid: d}
"""


def _both(text: str, monkeypatch) -> tuple[str, str, int, int]:
    """(source with reuse, source drafting every instance, drafts made, drafts reused: moved to the instance, or
    the instance taken as a copy of the earlier one). The counts are of drafting every instance that expansion
    copied too (``SKIP_COPIES`` off); the source with those copies taken whole is checked to be the same."""
    monkeypatch.setattr(S, "SKIP_COPIES", True)
    whole = compile_source(text)
    monkeypatch.setattr(S, "SKIP_COPIES", False)
    counts = {"draft": 0, "moved": 0}
    draft, instance = S.Writer.draft, S.Writer.draft_instance

    def counting_draft(self, scope):
        counts["draft"] += 1
        return draft(self, scope)

    def counting_instance(self, path):
        before = counts["draft"]
        got = instance(self, path)
        counts["moved"] += counts["draft"] == before
        return got
    monkeypatch.setattr(S.Writer, "draft", counting_draft)
    monkeypatch.setattr(S.Writer, "draft_instance", counting_instance)
    monkeypatch.setattr(S, "REUSE_DRAFTS", True)
    reused = compile_source(text)
    made, moved_n = counts["draft"], counts["moved"]
    monkeypatch.setattr(S, "REUSE_DRAFTS", False)
    every = compile_source(text)
    assert whole == every, "expansion's copies taken whole give another source"
    return reused, every, made, moved_n


@pytest.mark.parametrize("text", [MIX, AROUND], ids=["mix", "around"])
def test_reuse_gives_the_same_source(text, monkeypatch):
    reused, every, _, moved = _both(text, monkeypatch)
    assert reused == every
    assert moved > 0


@pytest.mark.parametrize("kind", gen.KINDS)
def test_reuse_on_generated_specs(kind, monkeypatch):
    reused, every, made, moved = _both(gen.generate(kind, 1000)[0], monkeypatch)
    assert reused == every
    if kind not in ("literal", "flat"):          # no blocks there: nothing to reuse
        assert moved > 5 * made     # an identical instance is not drafted again


BUNDLED = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_reuse_on_bundled_specs(path, monkeypatch):
    try:
        reused, every, _, _ = _both(str(path), monkeypatch)
    except NetspecError:
        pytest.skip("not compiled as it is")
    assert reused == every


def test_instances_that_differ_are_drafted(monkeypatch):
    """Instances of one block with other sizes, other wiring or optional layers are not reused from each other."""
    reused, every, made, moved = _both(AROUND, monkeypatch)
    assert reused == every
    # 'acc' accumulates into its input ('a += b') only where nothing else reads that input: two classes
    assert "class Acc2(" in every and "a += b" in every and "a = a + b" in every
    assert made >= 3 and moved > 0


# instances whose drafts read the same but whose classes resolve them differently: a block argument that no layer
# reads (other values around the slots), two blocks with one body written with other expressions, instances fed
# other sizes through an input that no layer reads, and a repeat whose count is an expression
COPIES = """
netspec: 1
name: copies
params: {w: 8}
inputs: {x: [N, 8], z: [N, 4]}
blocks:
  u:
    params: {k: 1}
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: act, op: relu}
  v:
    params: {w: 8}
    layers:
      - {name: fc, op: linear, out: w}
      - {name: act, op: relu}
  two:
    inputs: [a, b]
    layers:
      - {name: fc, op: linear, from: a, out: 8}
  rep:
    params: {n: 2}
    layers:
      - {name: l, op: linear, out: 8, repeat: "n * 1"}
layers:
  - {name: a, op: u}
  - {name: b, op: u, k: 2}
  - {name: c, op: u, k: 2}
  - {name: d, op: v}
  - {name: e, op: v}
  - {name: f, op: two, from: [e, x]}
  - {name: g, op: two, from: [f, z]}
  - {name: h, op: two, from: [g, z]}
  - {name: r1, op: rep}
  - {name: r2, op: rep, n: 2}
  - {name: r3, op: rep, n: "w - 6"}
"""


def test_copies_are_taken_only_where_resolution_reads_the_same(monkeypatch):
    """An instance is taken as a copy of an earlier one (no draft of its own) only where everything its class's
    resolution reads is the same; the source is the one every instance drafted gives."""
    reused, every, made, moved = _both(COPIES, monkeypatch)
    assert reused == every
    assert moved > 0
    assert "It is used 3 times." in every        # the copies count as uses of their class


# instances that expansion copies (same block, arguments and input types) in graphs around them that differ: an
# input read again elsewhere (an 'add' may not accumulate into it), an in-place activation that the graph turns off in
# one instance only, an output that nothing reads, an output of the network; and copies that are the same throughout
CONTEXT = """
netspec: 1
name: copies_context
inputs: {x: [N, 8]}
blocks:
  acc:
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: add, op: add, from: [x, fc]}
  pre:
    layers:
      - {name: act, op: relu, inplace: true}
      - {name: fc, op: linear, out: 8}
  two:
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: act, op: relu}
      - {name: fc2, op: linear, out: 8}
    outputs: {y: fc2, mid: act}
  leaf:
    layers:
      - {name: fc, op: linear, out: 8}
  nest:
    layers:
      - {name: a, op: leaf}
      - {name: b, op: leaf}
layers:
  - {name: p, op: linear, out: 8}
  - {name: a1, op: acc, from: p}
  - {name: a2, op: acc, from: p}
  - {name: q, op: linear, out: 8, from: a2}
  - {name: a3, op: acc, from: q}
  - {name: e1, op: pre, from: q}
  - {name: u, op: linear, out: 8, from: a3}
  - {name: e2, op: pre, from: u}
  - {name: t1, op: two, from: e2}
  - {name: t2, op: two, from: t1.y}
  - {name: t3, op: two, from: t2.y}
  - {name: m, op: add, from: [t3.mid, t1.mid]}
  - {name: n1, op: nest, from: m}
  - {name: n2, op: nest, from: n1}
  - {name: r, op: relu, from: n2}
  - {name: n3, op: nest, from: n1}
  - {name: n4, op: nest, from: n3}
outputs: {y: r, z: n4, w: t2.y, v: e1}
"""


def test_expansion_copies_are_taken_whole_only_where_the_graph_around_reads_the_same(monkeypatch):
    """Expansion copies every later instance here; code generation takes a copy whole (nothing inside it looked at
    again) only where the graph around it reads the same, and the source is the one every instance drafted gives."""
    from netspec.pipeline import graph
    g = graph(CONTEXT)
    assert {x: y for x, (y, _, _) in g.copies.items()} == {
        "a2": "a1", "a3": "a1", "e2": "e1", "t2": "t1", "t3": "t1", "n1.b": "n1.a", "n2": "n1", "n3": "n1", "n4": "n1"}
    ix = S.Index(g)
    # a1's output is read by nothing, a3's input by e1 as well; e1's relu works out of place (q is read again), e2's
    # in place; t2's 'mid' is read by nothing, t3's 'y' by nothing
    assert ix.copy_of == {"n1.b": "n1.a", "n2": "n1", "n3": "n1", "n4": "n1"}
    assert set(ix.hidden) == {"n2.a", "n2.b", "n3.a", "n3.b", "n4.a", "n4.b"}
    reused, every, _, _ = _both(CONTEXT, monkeypatch)     # (_both compares the source with the copies taken whole)
    assert reused == every
    assert "It is used 8 times." in every       # leaf: in n1..n4, the copies' insides counted


# optional layers ('if') in the network and in a block, beside copies that expansion made
OPTIONAL = """
netspec: 1
name: copies_optional
params: {use: true}
inputs: {x: [N, 8]}
blocks:
  leaf:
    layers:
      - {name: fc, op: linear, out: 8}
  two:
    layers:
      - {name: a, op: leaf}
      - {name: b, op: leaf}
  gated:
    params: {keep: true}
    layers:
      - {name: a, op: two}
      - {name: d, op: dropout, p: 0.1, if: keep}
layers:
  - {name: n1, op: two}
  - {name: n2, op: two}
  - {name: d, op: dropout, p: 0.1, if: "not use"}
  - {name: n3, op: two}
  - {name: g1, op: gated}
  - {name: g2, op: gated, keep: false}
"""


def test_copies_beside_optional_layers(monkeypatch):
    """Copies are taken whole beside optional layers of the network; an instance with optional layers is not one."""
    from netspec.pipeline import graph
    ix = S.Index(graph(OPTIONAL))
    assert {"n2": "n1", "n3": "n1"}.items() <= ix.copy_of.items()
    assert not {"g1", "g2"} & set(ix.copy_of)
    reused, every, _, _ = _both(OPTIONAL, monkeypatch)
    assert reused == every


@pytest.mark.parametrize("text", [MIX, AROUND, COPIES] + [gen.generate(k, 1000)[0] for k in gen.KINDS],
                         ids=["mix", "around", "copies"] + list(gen.KINDS))
def test_spans_and_node_sets_give_the_same_source(text, monkeypatch):
    """Where containers are runs of the graph order the index works on spans and builds interfaces innermost first;
    the source is the one the per-container node sets give."""
    monkeypatch.setattr(S, "FORCE_NODE_SETS", False)
    spans = compile_source(text)
    monkeypatch.setattr(S, "FORCE_NODE_SETS", True)
    assert compile_source(text) == spans


def test_index_spans_agree_with_node_sets():
    """On every bundled spec: the nodes, span, interface and first node of every container, both ways."""
    from netspec.pipeline import graph
    for path in BUNDLED:
        try:
            g = graph(str(path))
        except NetspecError:
            continue
        fast = S.Index(g)
        if not fast.runs:
            continue
        old = S.FORCE_NODE_SETS
        S.FORCE_NODE_SETS = True
        try:
            sets = S.Index(g)
        finally:
            S.FORCE_NODE_SETS = old
        assert not sets.runs
        for p in g.containers:
            assert fast.nodes(p) == sets.nodes(p), (path, p)
            assert set(fast.span(p)) == set(sets.span(p)), (path, p)
            assert fast.iface(p) == sets.iface(p), (path, p)
            assert fast.first[p] == sets.first[p], (path, p)


# -- random networks of nested blocks: every way of writing gives the same source ----------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_INNER = st.sampled_from([
    {"op": "linear", "out": 8}, {"op": "linear", "out": "w"}, {"op": "linear", "out": "w * k"},
    {"op": "relu"}, {"op": "layernorm"}, {"op": "dropout", "p": 0.1},
    {"op": "add", "from": ["PREV", "IN"]}, {"op": "linear", "out": 8, "from": "IN"},
    {"op": "add", "from": ["IN", "PREV"]}, {"op": "relu", "inplace": True},
])


@st.composite
def _nested_specs(draw):
    blocks = {}
    for b in range(draw(st.integers(1, 3))):
        layers = []
        for k in range(draw(st.integers(1, 4))):
            if b and draw(st.booleans()):
                layer = {"op": f"b{draw(st.integers(0, b - 1))}"}
                if draw(st.booleans()):
                    layer["k"] = draw(st.integers(1, 2))
            else:
                layer = dict(draw(_INNER))
            if "from" in layer:
                f = layer["from"]
                fix = (lambda r: "x" if r == "IN" else (f"l{k - 1}" if k else "x"))
                layer["from"] = [fix(r) for r in f] if isinstance(f, list) else fix(f)
            layer["name"] = f"l{k}"
            if draw(st.integers(0, 5)) == 0:
                layer["repeat"] = 2
            layers.append(layer)
        blocks[f"b{b}"] = {"params": {"k": 1, "w": 8}, "inputs": ["x"], "layers": layers}
    # the last block (no other block uses it) may have a second output, read or not by the layers after it
    last = f"b{len(blocks) - 1}"
    multi = len(blocks[last]["layers"]) > 1 and draw(st.booleans())
    if multi:
        blocks[last]["outputs"] = {"out": blocks[last]["layers"][-1]["name"], "mid": "l0"}

    def value(t):               # what names a top layer's value
        return t["name"] + ".out" if t["op"] == last and multi else t["name"]
    top = []
    for i in range(draw(st.integers(2, 7))):
        layer = {"name": f"t{i}", "op": f"b{draw(st.integers(0, len(blocks) - 1))}"}
        if draw(st.booleans()):
            layer["k"] = draw(st.integers(1, 2))
        if draw(st.integers(0, 3)) == 0:
            layer["w"] = 16
        if i and draw(st.integers(0, 2)) == 0:
            layer["from"] = draw(st.sampled_from(["x"] + [value(t) for t in top] +
                                                 [t["name"] + ".mid" for t in top if t["op"] == last and multi]))
        elif i and value(top[-1]) != top[-1]["name"]:
            layer["from"] = value(top[-1])
        top.append(layer)
    outputs = {"y": value(top[-1])}
    if draw(st.booleans()):
        outputs["z"] = draw(st.sampled_from([value(t) for t in top]))
    import json
    return json.dumps({"netspec": 1, "name": "rnd", "inputs": {"x": ["N", 8]}, "blocks": blocks, "layers": top,
                       "outputs": outputs})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_nested_specs())
def test_random_nested_blocks_same_source_every_way(text):
    """Reused drafts, copies, expansion's copies taken whole and spans against drafting every instance over
    per-container node sets."""
    try:
        S.REUSE_DRAFTS, S.FORCE_NODE_SETS, S.SKIP_COPIES = False, True, False
        try:
            every = compile_source(text)
        except NetspecError:
            return                      # a spec that does not check (sizes that do not meet): nothing to compare
        for reuse, sets, skip in ((True, False, True), (True, True, True), (False, False, False),
                                  (True, False, False), (False, True, True)):
            S.REUSE_DRAFTS, S.FORCE_NODE_SETS, S.SKIP_COPIES = reuse, sets, skip
            assert compile_source(text) == every, (reuse, sets, skip)
    finally:
        S.REUSE_DRAFTS, S.FORCE_NODE_SETS, S.SKIP_COPIES = True, False, True
