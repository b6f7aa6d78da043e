"""The shortcuts that make big graphs fast give what the long way gives: copied block instances (expand), the
one-pass YAML reader (parse) and the name checks' fast path. Nothing here is timed (see tools/bench)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from netspec.errors import NetspecError
from netspec.graph import expand as E
from netspec.limits import LIMITS
from netspec.spec import names, parse
from netspec.spec.load import load

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
import specs as gen  # noqa: E402


def _snapshot(g) -> tuple:
    nodes = [(n.id, n.op.name, repr(n.params), n.inputs, str(n.loc), n.scope, sorted(map(str, n.param_locs.items())),
              [str(t) for t in n.meta["in"]], [str(t) for t in n.meta["out"]], repr(n.meta["weights"]),
              str(n.meta["macs"]), sorted(n.meta), repr(n.meta.get("exprs"))) for n in g.nodes.values()]
    conts = [(c.path, c.kind, c.block, str(c.loc), repr(c.args), c.inputs, c.outputs, c.input_names, c.output_names,
              c.parent, repr(c.arg_exprs), c.index, c.count, c.count_expr) for c in g.containers.values()]
    return nodes, conts, [str(w) for w in g.warnings], [r.text for r in g.requirements], g.outputs


def _expand(text: str, copies: bool):
    """(snapshot or error text, number of copied block instances)."""
    replayed = [0]
    real = E.Expander._replay

    def counting(self, *a):
        out = real(self, *a)
        replayed[0] += out is not None
        return out
    saved = E.Expander._simple_block, E.Expander._replay
    E.Expander._replay = counting
    if not copies:
        E.Expander._simple_block = lambda self, bref: False
    try:
        return _snapshot(E.expand(load(text))), replayed[0]
    except NetspecError as e:
        return str(e), replayed[0]
    finally:
        E.Expander._simple_block, E.Expander._replay = saved


HEAD = "netspec: 1\nname: t\ninputs:\n  x: [N, 8]\n"
EDGE_CASES = {
    "two inputs, named outputs, a literal string parameter": HEAD + """\
  y: [N, 8]
blocks:
  pair:
    inputs: [a, b]
    layers:
      - {name: fa, op: linear, out: 8, from: a}
      - {name: fb, op: linear, out: 8, bias: false, from: b}
      - {name: s, op: add, from: [fa, fb]}
      - {name: g, op: gelu, approximate: tanh}
    outputs: {out: g, side: fb}
layers:
  - {name: p0, op: pair, from: {a: x, b: y}}
  - {name: p1, op: pair, from: {a: p0.out, b: p0.side}}
  - {name: p2, op: pair, from: {a: p1.out, b: p1.side}}
  - {name: p3, op: pair, from: {a: p2.side, b: p2.out}}
""",
    "one block at two widths, used in turn": HEAD + """\
blocks:
  up:
    layers:
      - {name: fc, op: linear, out: 16}
      - {name: act, op: relu}
  down:
    layers:
      - {name: fc, op: linear, out: 8}
layers:
  - {name: a, op: up}
  - {name: b, op: down}
  - {name: c, op: up}
  - {name: d, op: down}
  - {name: e, op: up}
""",
    "a repeat whose copies differ only by the index they do not read": HEAD + """\
blocks:
  unit:
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: drop, op: dropout, p: 0.25}
layers:
  - {name: body, op: unit, repeat: 6}
  - {name: more, op: unit, repeat: 3, flat: copies}
""",
    "a block that reads an expression is never copied": HEAD + """\
blocks:
  unit:
    params: {w: 8}
    layers:
      - {name: fc, op: linear, out: w}
layers:
  - {name: body, op: unit, repeat: 5, w: 8}
""",
    "a copy over the node limit is refused as the long way refuses it": HEAD + """\
blocks:
  unit:
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: act, op: relu}
layers:
  - {name: a, op: unit}
  - {name: b, op: unit}
  - {name: c, op: unit}
  - {name: d, op: unit}
""",
    "blocks of blocks, two inputs and named outputs, copied whole": HEAD + """\
  y: [N, 8]
blocks:
  leaf:
    inputs: [a, b]
    layers:
      - {name: fa, op: linear, out: 8, from: a}
      - {name: s, op: add, from: [fa, b]}
    outputs: {out: s, side: fa}
  mid:
    inputs: [p, q]
    layers:
      - {name: l1, op: leaf, from: {a: p, b: q}}
      - {name: l2, op: leaf, from: {a: l1.side, b: l1.out}}
      - {name: act, op: relu, from: l2.out}
    outputs: {out: act, side: l1.side}
  top:
    inputs: [u, v]
    layers:
      - {name: m1, op: mid, from: {p: u, q: v}}
      - {name: m2, op: mid, from: {p: m1.out, q: m1.side}}
    outputs: {out: m2.out, side: m2.side}
layers:
  - {name: t0, op: top, from: {u: x, v: y}}
  - {name: t1, op: top, from: {u: t0.out, v: t0.side}}
  - {name: t2, op: top, from: {u: t1.side, v: t1.out}}
  - {name: t3, op: mid, from: {p: t2.out, q: t2.side}}
""",
    "inner blocks with constant let, defaults and parameters": HEAD + """\
blocks:
  inner:
    params: {w: 8}
    let: {k: 3}
    defaults: {dropout: {p: 0.5}}
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: drop, op: dropout}
  outer:
    layers:
      - {name: a, op: inner}
      - {name: b, op: inner, w: 8}
layers:
  - {name: o1, op: outer}
  - {name: o2, op: outer}
  - {name: o3, op: outer}
""",
    "inner blocks with a dropped layer, a shared module, a repeat and a seq are never copied whole": HEAD + """\
blocks:
  gated:
    params: {on: false}
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: extra, op: relu, if: on}
  tied:
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: fc2, op: linear, out: 8, share: fc}
  rep:
    layers:
      - {name: r, op: linear, out: 8, repeat: 2}
  grp:
    layers:
      - {name: g, op: seq, layers: [{op: linear, out: 8}, {op: relu}]}
  outer:
    layers:
      - {name: a, op: gated}
      - {name: b, op: tied}
      - {name: c, op: rep}
      - {name: d, op: grp}
layers:
  - {name: o1, op: outer}
  - {name: o2, op: outer}
""",
    "a block that contains itself only where a condition holds": HEAD + """\
blocks:
  z:
    params: {deep: false}
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: inner, op: x, if: deep}
  x:
    layers:
      - {name: zz, op: z}
  w:
    layers:
      - {name: xx, op: x}
layers:
  - {name: a, op: w}
  - {name: c, op: z, deep: true}
""",
    "a deep nesting over the block depth limit": HEAD + """\
blocks:
  l0:
    layers:
      - {name: fc, op: linear, out: 8}
  l1:
    layers:
      - {name: a, op: l0}
      - {name: b, op: l0}
  l2:
    layers:
      - {name: a, op: l1}
      - {name: b, op: l1}
  l3:
    layers:
      - {name: a, op: l2}
      - {name: b, op: l2}
layers:
  - {name: p, op: l2}
  - {name: q, op: l3}
""",
    "a whole copy over the weight limit is refused as the long way refuses it": HEAD + """\
blocks:
  l0:
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: act, op: relu}
  l1:
    layers:
      - {name: a, op: l0}
      - {name: b, op: l0}
layers:
  - {name: p, op: l1}
  - {name: q, op: l1}
  - {name: r, op: l1}
""",
    "a whole copy over the work limit is refused as the long way refuses it": HEAD + """\
blocks:
  l0:
    layers:
      - {name: fc, op: linear, out: 8}
      - {name: act, op: relu}
  l1:
    layers:
      - {name: a, op: l0}
      - {name: b, op: l0}
  l2:
    layers:
      - {name: a, op: l1}
      - {name: b, op: l1}
layers:
  - {name: p, op: l2}
  - {name: q, op: l2}
  - {name: r, op: l2}
""",
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_copied_block_instances_equal_the_long_way(name, monkeypatch):
    if "node limit" in name:
        monkeypatch.setattr(LIMITS, "max_nodes", 6)
    if "depth limit" in name:
        monkeypatch.setattr(LIMITS, "max_block_depth", 3)
    if "work limit" in name:
        monkeypatch.setattr(LIMITS, "max_work", 25 * 40)
    if "weight limit" in name:
        monkeypatch.setattr(LIMITS, "max_param_bytes", 1500)
    fast, copied = _expand(EDGE_CASES[name], True)
    slow, none = _expand(EDGE_CASES[name], False)
    assert fast == slow
    assert none == 0
    if "never copied" in name:
        assert copied == 0
    elif "node limit" in name:
        assert isinstance(fast, str) and "more than 6 nodes" in fast, fast
    elif "depth limit" in name:
        assert isinstance(fast, str) and "nested more than 3 deep" in fast, fast
    elif "work limit" in name:
        assert isinstance(fast, str) and "steps" in fast, fast
    elif "weight limit" in name:
        assert isinstance(fast, str) and "GiB" in fast and "'r.b.fc'" in fast, fast
    elif "contains itself" in name:
        assert isinstance(fast, str) and "contains itself" in fast, fast
    else:
        assert copied > 0


@pytest.mark.parametrize("kind", gen.KINDS)
def test_generated_specs_expand_the_same_with_copies(kind):
    text, nodes = gen.generate(kind, 400)
    fast, copied = _expand(text, True)
    slow, _ = _expand(text, False)
    assert fast == slow
    assert len(fast[0]) == nodes
    if kind in ("repeat", "wide", "blocks"):
        assert copied > 0


YAML_TEXTS = [
    "a: 1\nb: [1, 2.5, -3, 0x10, true, null, ~, yes, 'q', \"d\"]\nc: {x: 1, 'y': 2}\n",
    "1: one\ntrue: t\nnull: n\n1.5: f\n0x10: h\n",
    "k: !!str 12\nm: !!int '7'\nn: !!float 1\n",
    "a: &A {x: 1}\nb: *A\n",
    "a: 1\na: 2\n",
    "a: 1:30\n",
    "a: 012\n",
    "a: 123456789012345678901234567890\n",
    "a: .nan\n",
    "a: !foo 1\n",
    "? [1, 2]\n: x\n",
    "<<: {a: 1}\n",
    "- a\n- b\n",
    "just text\n",
    "a: [\n",
    "---\na: 1\n---\nb: 2\n",
    "a: é\nkëy: ünïcode\n",
    "a:\n  - {name: fc, op: linear, out: 8}\n  - name: act\n    op: relu\n",
    "a: " + "[" * 150 + "]" * 150 + "\n",
    "a: " + "x" * 5000 + "\n",
]


def _read(text: str, fast: bool, json_mode: bool = False):
    saved = parse._read_fast
    if not fast:
        parse._read_fast = lambda *a: False
    try:
        s = parse.parse_text(text, "f.yaml", json_mode=json_mode)
        # (the one-pass reader keeps a location packed in an int until it is asked for: compare what loc() gives)
        return repr(s.data), {p: s.loc(p) for p in s.paths()}, {p: s.loc(p, key=True) for p in s.paths(key=True)}
    except NetspecError as e:
        return type(e).__name__, str(e)
    finally:
        parse._read_fast = saved


@pytest.mark.parametrize("text", YAML_TEXTS)
def test_one_pass_reader_equals_the_composing_reader(text, monkeypatch):
    monkeypatch.setattr(LIMITS, "max_string_chars", 4000)
    assert _read(text, True) == _read(text, False)


_SCALAR_CHARS = "aAfFnNoOtTyYzZ019+-._~<=!&*%@`'\" :#,[]{}|>?\u00e9\u3000\u4e2d\U0001F600"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=_SCALAR_CHARS, min_size=0, max_size=8), min_size=1, max_size=6))
def test_one_pass_reader_types_plain_scalars_as_the_resolver_does(words):
    """Plain scalars whose first character no implicit type claims are strings without asking the resolver; every
    other one is resolved as before (true, 0x1f, .5, ~, yes, on ...): the same data and locations as the composing
    reader, or the same error."""
    text = "".join(f"k{i}: {w}\n" for i, w in enumerate(words)) + "l: [" + ", ".join(words) + "]\n"
    assert _read(text, True) == _read(text, False)


def test_one_pass_reader_reads_the_usual_file_itself():
    text = gen.generate("literal", 50)[0]
    src = parse.Source("f.yaml", None, None)
    assert parse._read_fast(text, "f.yaml", src)
    assert _read(text, True) == _read(text, False)
    assert not parse._read_fast("a: &A 1\nb: *A\n", "f.yaml", parse.Source("f.yaml", None, None))


# Words and pieces of a layer written on one line as a flow mapping: what the line reader takes itself (plain words
# of every type YAML 1.1 gives them) and what it must leave to libyaml or to the composing reader (quotes, spaces,
# colons, nesting, comments without a space, tabs, octal and base-60 numbers, words that are too long ...)
_FLOW_WORDS = ["fc1", "relu", "linear", "8", "0", "-1", "+1", "-0", "1_000", "0x1F", "0o7", "0b11", "1e3", "1.5e3",
               "1.5", ".5", "-.5", "true", "True", "no", "Off", "yes", "y", "n", "on", "null", "Null", "~", "a-b", "-a",
               "a.b", "_", "t", "f", "x" * 24, "é"]
_FLOW_HOSTILE = ["010", "1:30", ".inf", "-.Inf", ".nan", "x" * 30, "9" * 25, "<<", "=", "a:b", "'q'", '"d"',
                 "two words", "#x", "a#b", "&A", "*A", "!!str", "!x", "@", "`", "|", ">", "%", "?", "?x", "-", "ﬁ", "",
                 "[a]", "{a: b}"]
_FLOW_KEYS = ["name", "op", "out", "from", "bias", "1", "0x10", "true", "null", "~", "yes", "1.5", "a-b", "-k", "y"]
_FLOW_HOSTILE_KEYS = ["name", "k" * 300, "<<", "'q'", "a b", "010", "[k]"]


@st.composite
def _flow_line(draw, clean: bool, indent: str):
    """One line of a spec: mostly a flow item '- {key: word, key: [words]}' in one of its spellings; when not clean,
    with words, spellings and keys that must go to libyaml or be refused."""
    def pick(safe, hostile):
        return draw(st.sampled_from(safe if clean or draw(st.integers(0, 3)) else hostile))
    indent = indent if clean else " " * draw(st.sampled_from([0, 2, 6]))
    kind = draw(st.sampled_from(["item"] * 10 + ["multi"] * 6 + ["block", "zero", "comment", "blank"] +
                                ([] if clean else ["nested"])))
    if kind == "multi":
        return _block_item(draw, pick, clean, indent)
    if kind == "blank":
        return ""
    if kind == "comment":
        return indent + "# - {name: fc, op: relu}"
    if kind == "zero":
        return indent + "- 0"
    if kind == "block":
        return f"{indent}- name: {draw(st.sampled_from(_FLOW_WORDS))}"
    pairs = []
    keys = draw(st.lists(st.sampled_from(_FLOW_KEYS), min_size=0 if not clean else 1, max_size=4, unique=clean))
    for key in keys:
        key = key if clean or draw(st.integers(0, 3)) else draw(st.sampled_from(_FLOW_HOSTILE_KEYS))
        if draw(st.integers(0, 3)) == 0:
            words = [pick(_FLOW_WORDS, _FLOW_HOSTILE) for _ in range(draw(st.integers(0, 3)))]
            value = "[" + pick([", ", ",", " , "], [",,", ", ,"]).join(words) + pick(["]"], [",]", " ,]"])
            value = pick(["[", "[ "], ["[[", "{"]) + value[1:] if words else value
        else:
            value = pick(_FLOW_WORDS, _FLOW_HOSTILE)
        pairs.append(key + pick([": ", ":  ", " : "], [":", ":\t"]) + value)
    inner = pick([", ", ",", " ,  "], [",,", ", ,"]).join(pairs)
    pad = pick(["", "", " "], ["\t"])
    dash = pick(["- ", "- ", "-  "], ["- - ", "-\t", "-"])
    tail = pick(["", "", "  # a comment", " #", "  ", "  # out: 8, {a: b}, [c]"], ["#x", ",", " }", "\t"])
    return f"{indent}{dash}{{{pad}{inner}{pad}}}{tail}" if kind == "item" else f"{indent}- [{inner}]"


def _block_item(draw, pick, clean: bool, indent: str) -> str:
    """A layer in block style, as yaml.dump writes it ('- key: word', then 'key: word', 'key: [words]' or 'key:' and
    its words a line each, at the first key's column); when not clean, with a line at another column, a blank line
    or a comment inside, a key with nothing under it, list entries at two columns, or a tab."""
    keys = draw(st.lists(st.sampled_from(_FLOW_KEYS), min_size=1, max_size=4, unique=clean))
    at = indent + "  "
    lines = []
    for j, key in enumerate(keys):
        key = key if clean or draw(st.integers(0, 3)) else draw(st.sampled_from(_FLOW_HOSTILE_KEYS))
        head = (indent + "- ") if j == 0 else pick([at], [at + " ", at[:-1], at + "\t", at + "  "])
        form = draw(st.sampled_from(["word", "word", "flow", "block"] if j else ["word", "word", "flow"]))
        if form == "word":
            sep = pick([": ", ":  "], [":", ": \t"])
            lines.append(f"{head}{key}{sep}{pick(_FLOW_WORDS, _FLOW_HOSTILE)}")
        elif form == "flow":
            words = [pick(_FLOW_WORDS, _FLOW_HOSTILE) for _ in range(draw(st.integers(0, 3)))]
            lines.append(f"{head}{key}: [" + pick([", ", ","], [",,"]).join(words) + "]")
        else:
            lines.append(f"{head}{key}:")
            dash = pick([at, at + "  "], [at + " ", indent])
            for _ in range(draw(st.integers(1 if clean else 0, 3))):
                lines.append(pick([dash], [at, at + "  ", at + " "]) + "- " + pick(_FLOW_WORDS, _FLOW_HOSTILE))
        if not clean and draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(["", at + "# a comment", indent + "# a comment", at + "  more"])))
    return "\n".join(lines)


@st.composite
def _flow_document(draw):
    clean = draw(st.integers(0, 4)) > 1
    lines = draw(st.lists(_flow_line(clean, draw(st.sampled_from(["", "  ", "    "]))), min_size=1, max_size=10))
    heads = ["layers:", "layers: # the layers", "doc: a\nlayers:"]
    ends = ["", "\nz: 1"]
    if not clean:
        heads += ["doc: |\n  - {a: b}\nlayers:", 'doc: "x\n  - {a: b}"\nlayers:', "a: [\n  - {b: c}\n  ]\nlayers:",
                  "- {a: b}", "doc: \u2028x\nlayers:", "doc: \x85x\nlayers:", "layers:\n  -\n", "k: &A x\nlayers:"]
        ends += ["\n  - {a: b}  ", "\n---\nb: 1", "\ndoc: |\n  - {a: b}\n", "\nz: *A"]
    return "netspec: 1\n" + draw(st.sampled_from(heads)) + "\n" + "\n".join(lines) + draw(st.sampled_from(ends)) + "\n"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_flow_document())
def test_layers_on_one_line_read_as_libyaml_reads_them(text):
    """A layer written on a line of its own as a flow mapping of plain words is read from the line, without libyaml's
    events (the word 0 stands in for it). Whatever the words (numbers, booleans, nulls, octal and base-60 numbers,
    words that are too long), the spacing, the comments and the lines around (a block scalar or a string that holds
    such a line, a flow list that spans lines, other breaks): the same data and locations as the composing reader,
    or the same error."""
    saved = LIMITS.max_string_chars
    LIMITS.max_string_chars = 28
    try:
        assert _read(text, True) == _read(text, False)
    finally:
        LIMITS.max_string_chars = saved


def test_layers_on_one_line_are_read_from_the_line():
    """The line readers do the work on the usual files (so the test above compares something): layers on one line,
    and layers in block style as yaml.dump writes them; and they leave the lines they must not read to libyaml:
    their stand-ins come back only where a list item stood."""
    text = gen.generate("flat", 60)[0]
    src = parse.Source("f.yaml", None, None)
    flows: dict = {}
    given = parse._flow_items(text, parse._Words("f.yaml", src), flows)
    # the layers on consecutive lines are one run: one stand-in, and the lines of the others left empty
    assert sum(len(run) for run in flows.values()) == text.count("- {") and given.count("- 0") == len(flows) == 1
    assert given.count("\n") == text.count("\n")
    assert _read(text, True) == _read(text, False)
    block = yaml.safe_dump(yaml.safe_load(text), sort_keys=False)          # 'from:' and its words a line each
    assert "- name: s0\n  op: add\n  from:\n  - b0\n  - stem\n" in block
    flows = {}
    given = parse._block_items(block, parse._Words("f.yaml", src), flows)
    assert sum(len(run) for run in flows.values()) == block.count("- name:") and len(flows) == 1
    assert given.count("\n") == block.count("\n") and given.count("- 0") == 1
    assert _read(block, True) == _read(block, False)
    inside = "netspec: 1\ndoc: |\n  - {name: a, op: relu}\nlayers:\n  - {name: b, op: relu}\n"
    src = parse.Source("f.yaml", None, None)
    flows = {}
    parse._flow_items(inside, parse._Words("f.yaml", src), flows)
    assert len(flows) == 2
    assert not parse._read_fast(inside, "f.yaml", src)          # the stand-in in the block scalar never came back
    assert _read(inside, True) == _read(inside, False)
    assert parse.parse_text(inside, "f.yaml").data["doc"] == "- {name: a, op: relu}\n"


@pytest.mark.parametrize("text", [
    "layers:\n  - {name: a, op: relu, name: b}\n",                       # a duplicate key: the composing reader's error
    "layers:\n  - {name: a, 1: x, 1.0: y}\n",
    "layers:\n  - {name: a, from: [x, y]}\n  - {name: b, op: add, from: [a, x, y]}\n",
    "m:\n  n:\n    - {name: a, from: [x, y]}\n",
    "outer:\n  - inner:\n      - {x: 1}\n  - {y: 2}\n  - {z: [3]}\n",      # consecutive items of two lists
    "a:\n  - {x: 1}\n  # between\n  - {y: 2}\n\n  - {z: 3}\nb: [1]\n",
    "layers:\n- name: a\n  from:\n  - x\n  - y\n- name: b\n  out: [1, 2]\n  from:\n    - a\nz: 1\n",   # block style
    "outer:\n- inner:\n  - name: a\n    op: relu\n- name: b\n",
    "layers:\n- name: a\n  from:\n  - x\n    - y\n- name: b\n",              # list entries at two columns
    "layers:\n- name: a\n  from:\n    - x\n  - y\n- name: b\n",
    "layers:\n- name: a\n  bias:\n- name: b\n  from:\n",                  # a key with nothing under it: null
    "layers:\n- name: a\n  op: relu\n   out: 8\n- name: b\n  # c\n  op: x\n- name: c\n\n  op: y\n",
])
def test_layers_on_one_line_keep_the_limits(text):
    """The line reader counts a line's values and levels as libyaml's events would: at every limit around the file's
    own count and depth, the same data or the same error as the composing reader."""
    saved = LIMITS.max_yaml_nodes, LIMITS.max_depth
    try:
        for nodes in range(1, 30):
            for depth in range(1, 8):
                LIMITS.max_yaml_nodes, LIMITS.max_depth = nodes, depth
                assert _read(text, True) == _read(text, False), (nodes, depth)
    finally:
        LIMITS.max_yaml_nodes, LIMITS.max_depth = saved


def test_json_reads_the_same():
    text = '{"netspec": 1, "inputs": {"x": ["N", 8]}, "layers": [{"op": "linear", "out": 8}, {"op": "relu"}]}'
    assert _read(text, True, json_mode=True) == _read(text, False, json_mode=True)


@pytest.mark.parametrize("name", ["fc0", "act_1", "torch", "nn", "F", "math", "self", "None", "true", "match", "type",
                                  "_x", "x_", "state_dict", "train", "a-b", "1a", "Ünï", "x" * 200, "sum", "input",
                                  "def", "lambda", "forward", "cuda", "layer1", "True", "null", "case"])
def test_name_problem_fast_path_keeps_the_rules(name):
    assert names.name_problem(name) == names._name_problem(name)


@pytest.mark.parametrize("source", sorted(str(p) for p in (ROOT / "specs").glob("*.yaml")) +
                         [gen.generate(k, 300)[0] for k in gen.KINDS] + [EDGE_CASES[k] for k in list(EDGE_CASES)[:3]],
                         ids=lambda s: Path(s).stem if "\n" not in s else s[27:45])
def test_shapes_are_rewritten_only_when_divisibility_was_found(source, monkeypatch):
    """Expansion rewrites every shape at the end only when it learned a divisibility on the way (the U-Net): when it
    learned none, the shapes were made under the final assumptions already, and the rewrite gives them back."""
    def run(always: bool):
        monkeypatch.setattr(E, "_RETYPE_ALWAYS", always)
        spec = load(source)
        out = []
        for name in spec.networks:
            g = E.expand(spec, name)
            out.append((_snapshot(g), [str(r) for r in g.requirements]))
        return out
    assert run(False) == run(True)


def _loaded(text: str, memo: bool) -> str:
    """'ok', or the errors of loading ``text``, with the validation memo (spec.load._passing_key) or without."""
    from netspec.spec import load as L
    saved = L._passing_key
    if not memo:
        L._passing_key = lambda layer: None
    try:
        load(text)
        return "ok"
    except NetspecError as e:
        return str(e)
    finally:
        L._passing_key = saved


_NAMES = ["fc", "fc2", "a-b", "9x", "bad name", "_x", "x{i}", "0", "'7'", "é", "null"]
_OUTS = ["8", "8.0", "true", "'8'", "-1", "[8]", "2**3", "w", "{a: 1}", "null"]
# 'from' values: plain references and lists of them (left out of the memo's key, as plain names are), and ones
# validation refuses or reads otherwise
_FROMS = [None, "x", "fc0", "a-b1.out", "[x, fc0]", "[x]", "[]", "'bad name'", "'a..b'", "7", "[x, 7]", "{a: x}",
          "'" + "a" * 1200 + "'", "[x, '" + "a" * 1200 + "']", "'x '", "null", "[x, null]", "true"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_OUTS), st.sampled_from(["linear", "relu", "add"]),
                          st.sampled_from(_FROMS)),
                min_size=1, max_size=8))
def test_validating_a_layer_once_per_content_reports_every_error(layers):
    """A layer that validated is not validated again for the next one that differs only by a plain name or plain
    references in 'from'; every error of every layer is still reported, at its place, as when each layer is
    validated."""
    text = HEAD + "params: {w: 8}\nlayers:\n" + "".join(
        ("  - {" + (f"name: {n}{k}" if n not in ("null", "'7'") else f"name: {n}") + f", op: {op}, out: {o}" +
         (f", from: {f}" if f is not None else "") + "}\n") for k, (n, o, op, f) in enumerate(layers))

    assert _loaded(text, memo=True) == _loaded(text, memo=False)


@pytest.mark.parametrize("frm", [f for f in _FROMS if f is not None])
@pytest.mark.parametrize("before", ["x", "[x, fc0]"])
def test_a_layer_after_a_passing_one_is_validated_unless_its_from_is_plain(frm, before):
    """Each 'from' after a layer that passed with the same op and parameters and a plain 'from': memoized where the
    new one is certainly valid, validated (and its error reported) otherwise: the same result either way."""
    text = HEAD + "layers:\n  - {name: fc0, op: linear, out: 8}\n" + \
        f"  - {{name: fc1, op: add, from: {before}}}\n  - {{name: fc2, op: add, from: {frm}}}\n"

    assert _loaded(text, memo=True) == _loaded(text, memo=False)


_PLAIN = ["{op: linear, out: 8}", "{op: linear, out: 8, bias: false}", "{op: linear, out: 8, bias: 0}",
          "{op: linear, out: 8.0}", "{op: linear, out: true}", "{op: relu}", "{op: dropout, p: 0.5}",
          "{op: dropout, p: 1}", "{op: relu, from: x}", "{op: relu, from: l0}", "{op: relu, from: nope}",
          "{op: add, from: l1}", "{op: linear, out: 8, if: false}", "{op: linear, out: 8, shape: [N, 8]}",
          "{op: linear, out: 8, from: l0.out}", "{op: param, shape: [8]}", "{op: linear, out: 4}",
          # lists in 'from': the inputs of an add or concat (variadic), or of a one-input op
          "{op: add, from: [l0, x]}", "{op: add, from: [x, x]}", "{op: add, from: [l0]}", "{op: add, from: []}",
          "{op: concat, from: [x, l1]}", "{op: add, from: [l0, nope]}", "{op: relu, from: [x]}",
          "{op: relu, from: [x, l0]}", "{op: add, from: [l1, l0.out]}", "{op: add, from: [l2, l1, l0]}",
          "{op: multiply, from: [l0, l1]}"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PLAIN), min_size=1, max_size=12), st.sampled_from([None, 3, 6]),
       st.sampled_from([None, 150]))
def test_plain_layers_in_one_step_equal_the_long_way(layers, max_nodes, max_work):
    """A layer added in one step (its op's parameters and inference known from an earlier layer) is the node the
    long way adds; every error and limit is reported as the long way reports it."""
    text = HEAD + "layers:\n" + "".join(f"  - {{name: l{k}, " + l[1:] + "\n" for k, l in enumerate(layers))
    saved = (LIMITS.max_nodes, LIMITS.max_work)

    def run(fast: bool):
        real = E.Expander._plain_layer
        if not fast:
            E.Expander._plain_layer = lambda self, *a: None
        LIMITS.max_nodes = max_nodes or saved[0]
        LIMITS.max_work = max_work or saved[1]
        try:
            return _snapshot(E.expand(load(text)))
        except NetspecError as e:
            return str(e)
        finally:
            E.Expander._plain_layer = real
            LIMITS.max_nodes, LIMITS.max_work = saved
    assert run(True) == run(False)


# -- copies share their first instance's immutable parts: no stage changes them --------------------------------------

_SHARING = HEAD + """blocks:
  unit:
    layers:
      - {name: fc, op: linear, out: 16}
      - {name: act, op: relu, inplace: true}
      - {name: fc2, op: linear, out: 8, bias: false}
      - {name: norm, op: layernorm}
      - {name: add, op: add, from: [norm, x]}
  pair:
    layers:
      - {name: a, op: unit}
      - {name: b, op: unit}
      - {name: c, op: unit}
layers:
  - {name: p, op: pair}
  - {name: q, op: pair}
  - {name: r, op: pair}
"""


def _frozen(g) -> list:
    """A deep copy of everything copies may share: each node's param_locs and meta values, each container's args,
    names and expressions."""
    import copy
    return copy.deepcopy([(n.id, n.param_locs, {k: v for k, v in n.meta.items() if k in ("in", "out", "weights",
                                                                                           "macs", "exprs")})
                          for n in g.nodes.values()] +
                         [(c.path, c.args, c.input_names, c.output_names, c.arg_exprs) for c in g.containers.values()])


@pytest.mark.parametrize("text", [_SHARING, gen.generate("nested", 300)[0], gen.generate("blocks", 300)[0]],
                         ids=["sharing", "nested", "blocks"])
def test_no_stage_changes_what_copies_share(text, tmp_path):
    import torch

    from netspec.summary import summarize
    from netspec.codegen.build import build
    from netspec.codegen.source import generate
    from netspec.draw import to_dot
    from netspec.graph.lint import requirement_warnings
    from netspec.graph.verify import verify
    g = E.expand(load(text), "t" if text is _SHARING else None)
    assert g.copies, "nothing was copied: the test would prove nothing"
    shared = [(nid, first) for nid, (first, _, _) in g.copies.items()]
    copy_id, first_id = shared[0]
    copy_nodes = [n for n in g.nodes.values() if n.id.startswith(copy_id + ".")]
    first_nodes = [n for n in g.nodes.values() if n.id.startswith(first_id + ".")]
    assert copy_nodes[0].meta["out"] is first_nodes[0].meta["out"]          # shared, not copied
    before = _frozen(g)
    verify(g)
    requirement_warnings(g)
    summarize(g)
    to_dot(g)
    generate(g)
    generate(g, readable=False)
    build(g, device="meta")
    m = build(g)
    m(torch.randn(2, 8)).sum().backward()
    assert _frozen(g) == before
