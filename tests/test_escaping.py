"""Every value that comes from a file is escaped where it is shown: terminal messages (control characters and ESC
made visible), DOT (quoted IDs and labels), SVG (XML-escaped tooltips). And the one name rule holds for every kind
of name, with booleans, numbers and text kept apart."""
from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import netspec
from netspec.cli import main
from netspec.errors import visible
from netspec.spec.names import identifier_problem, layer_name_problem, name_problem, syntax_problem

RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")   # a newline separates lines
HEAD = "netspec: 1\ninputs: {x: [N, 8]}\n"


def _quote(s: str) -> str:
    """A YAML double-quoted scalar holding s exactly."""
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in s) + '"'


# -- terminal ---------------------------------------------------------------------------------------------------

ESC_TEXT = "\x1b]0;pwned\x07\x1b[2J\x1b[1;1H"


@pytest.mark.parametrize("where", ["op", "name", "from", "expr", "import", "block_param", "symbol", "output",
                                   "top_name", "doc_key"])
def test_escape_sequences_are_made_visible(where, tmp_path, capsys):
    q = _quote(ESC_TEXT + "x")
    body = {
        "op": f"layers:\n  - {{op: {q}}}\n",
        "name": f"layers:\n  - {{op: relu, name: {q}}}\n",
        "from": f"layers:\n  - {{op: relu, from: {q}}}\n",
        "expr": f"layers:\n  - {{op: linear, out: {_quote('1 + ' + ESC_TEXT)}}}\n",
        "import": f"imports: [{q}]\nlayers:\n  - {{op: relu}}\n",
        "block_param": f"blocks:\n  b: {{params: {{{q}: 1}}, layers: [{{op: relu}}]}}\nlayers:\n  - {{op: b}}\n",
        "symbol": f"symbols: {{{q}: {{multiple_of: 2}}}}\nlayers:\n  - {{op: relu}}\n",
        "output": f"layers:\n  - {{op: relu}}\noutputs: {q}\n",
        "top_name": f"name: {q}\nlayers:\n  - {{op: relu}}\n",
        "doc_key": f"layers:\n  - {{op: relu, {q}: 1}}\n",
    }[where]
    (tmp_path / "net.yaml").write_text(HEAD + body)
    for cmd in (["check"], ["summary"], ["compile", "-o", str(tmp_path / "m.py")]):
        assert main([cmd[0], str(tmp_path / "net.yaml"), *cmd[1:]]) == 1
        out = capsys.readouterr()
        assert "\x1b" not in out.err + out.out and "\x07" not in out.err + out.out, repr(out.err)
        assert "\\x1b" in out.err or "U+001B" in out.err, out.err


texts = st.text(alphabet=st.sampled_from(list("ab_1 .-\"'\\{}[]:#") + [chr(c) for c in range(0, 32)] +
                                         ["\x7f", "\x85", "\x9b", "\u202e", "\u2028", "\u200b", "\ufeff"]),
                min_size=1, max_size=12)
slots = st.sampled_from(["op", "name", "from", "out", "if", "repeat", "share", "index", "key", "input", "block"])


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(slot=slots, text=texts)
def test_fuzz_no_control_character_reaches_a_message(slot, text):
    """Any text in any slot: the messages carry no raw control character (each is shown as \\xNN or \\uNNNN)."""
    q = _quote(text)
    layer = {"op": f"{{op: {q}}}", "name": f"{{op: relu, name: {q}}}", "from": f"{{op: relu, from: {q}}}",
             "out": f"{{op: linear, out: {q}}}", "if": f"{{op: relu, if: {q}}}", "repeat": f"{{op: relu, repeat: {q}}}",
             "share": f"{{op: linear, out: 8, share: {q}}}", "index": f"{{op: relu, repeat: 2, index: {q}}}",
             "key": f"{{op: relu, {q}: 1}}", "input": "{op: relu}", "block": f"{{op: b, {q}: 2}}"}[slot]
    inputs = f"inputs: {{{q}: [N, 8]}}\n" if slot == "input" else "inputs: {x: [N, 8]}\n"
    spec = (f"netspec: 1\n{inputs}blocks:\n  b: {{params: {{w: 1}}, layers: [{{op: relu}}]}}\n"
            f"layers:\n  - {{op: relu}}\n  - {layer}\n")
    res = netspec.check(spec)
    for e in res.errors + res.warnings:
        text_out = e.format()
        assert not RAW_CONTROL.search(text_out), repr(text_out)
        assert all(line.startswith(("<text>", "  hint:", "error:")) or ": error:" in line or ": warning:" in line
                   for line in text_out.split("\n")), repr(text_out)


def test_visible():
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("ok\u202eevil") == "ok\\u202eevil"
    assert visible("line\nfake: error: x") == "line\\nfake: error: x"
    assert visible("plain text, ünïcödé") == "plain text, ünïcödé"


# -- DOT and SVG ------------------------------------------------------------------------------------------------

def test_hostile_graph_name_stays_one_quoted_id():
    """Even a name that escaped the checks (set through the API) cannot end the digraph or become HTML."""
    from netspec.draw import to_dot
    g = netspec.expand(netspec.load(HEAD + "layers:\n  - {op: relu}\n"))
    for name in ['x" { a -> b } digraph "y', "<<B>html</B>>", "x\\", 'a\\"b']:
        g.name = name
        src = to_dot(g).source
        first = src.splitlines()[0]
        assert first.startswith('digraph "') and first.endswith("{"), first
        if shutil.which("dot"):
            r = subprocess.run(["dot", "-Tcanon"], input=src.encode(), capture_output=True, timeout=30)
            assert r.returncode == 0 and b"\ta -> b" not in r.stdout and b"\t0\t" in r.stdout, r.stdout


@pytest.mark.skipif(not shutil.which("dot"), reason="Graphviz is not installed")
def test_svg_tooltips_are_xml_escaped(tmp_path):
    """A spec file name full of markup: it reaches the SVG only inside escaped attributes."""
    name = 'a"<script>alert(1)<&amp;\\x.yaml'
    (tmp_path / name).write_text(HEAD + "layers:\n  - {op: linear, out: 4}\n")
    out = tmp_path / "net.svg"
    netspec.draw(tmp_path / name, out)
    svg = out.read_text()
    root = ET.fromstring(svg)                   # well-formed XML
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    tips = [e.get("{http://www.w3.org/1999/xlink}title") or "" for e in root.iter()]
    assert any('<script>alert(1)<&amp;' in t for t in tips), tips


def test_generated_source_keeps_its_injection_test():
    assert (Path(__file__).parent / "test_codegen_injection.py").exists()


# -- one name rule ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,error", [
    ("netspec: true\n", "unsupported format version True"),
    ("netspec: 1.0\n", "unsupported format version 1.0"),
    ("netspec: '1'\n", "unsupported format version '1'"),
])
def test_format_version_is_the_number_1(text, error):
    res = netspec.check(text + "inputs: {x: [N, 8]}\nlayers:\n  - {op: relu}\n")
    assert [e.message for e in res.errors] == [error]


@pytest.mark.parametrize("layer,error", [
    ("{op: linear, out: 4, bias: 0.0}", "'bias' of layer '0' (linear): input should be a valid boolean, got 0.0"),
    ("{op: linear, out: 4, bias: 1}", "'bias' of layer '0' (linear): input should be a valid boolean, got 1"),
    ("{op: linear, out: 4, bias: 'off'}", "'bias' of layer '0' (linear) must be true or false, not 'off'"),
    ("{op: linear, out: 4, bias: '1 - 1'}", "'bias' of layer '0' (linear) must be true or false, not 0"),
    ("{op: linear, out: true}", "'out' of layer '0' (linear) must be a number, not True"),
    ("{op: relu, repeat: true}", "'repeat' of layer '0' (relu) must be a number, not True"),
    ("{op: relu, name: -1}", "'name' of layer '-1' (relu): -1 is negative"),
    ("{op: relu, name: true}", "'name' of layer 'True' (relu): a layer's name must be a name or a number of 0 or "
                               "more, not true/false True"),
    ("{op: relu, name: 1.5}", "'name' of layer '1.5' (relu): a layer's name must be a name or a number of 0 or "
                              "more, not a number 1.5"),
    ("{op: relu, name: '-1'}", "'name' of layer '-1' (relu): invalid name '-1': a name cannot start with '-'"),
    ("{op: relu, name: ''}", "'name' of layer '' (relu): invalid name '': a name cannot be empty"),
])
def test_types_are_not_confused(layer, error):
    res = netspec.check(HEAD + f"layers:\n  - {layer}\n")
    assert res.errors and res.errors[0].message.startswith(error), [e.message for e in res.errors]


def test_layer_numbers_are_the_position_style_names():
    res = netspec.check(HEAD + "layers:\n  - {op: relu, name: 3}\n")
    assert res.ok and list(res.graphs["net"].nodes) == ["x", "3"]


@pytest.mark.parametrize("name,error", [
    ("class", "'class' is a Python keyword: it cannot name a network"),
    ("'a b'", "invalid name 'a b': a space is not allowed in a name"),
    ("_x", "'_x' starts with '_' (reserved for internals): it cannot name a network"),
    ("torch", "'torch' is reserved in generated code: it cannot name a network"),
    ("1net", "invalid name '1net': a name cannot start with a digit"),
    ("3", "input should be a valid string, got 3"),
])
def test_the_network_name_is_checked(name, error):
    res = netspec.check(f"netspec: 1\nname: {name}\ninputs: {{x: [N, 8]}}\nlayers:\n  - {{op: relu}}\n")
    assert res.errors and error in res.errors[0].message, [e.format() for e in res.errors]


def test_one_rule_for_every_kind_of_name():
    for bad in ["", "-1", "a.b", "a b", "\x1b", "с", "_a", "_a-b", "a:b", "class", "self", "true", "x" * 129]:
        assert identifier_problem(bad) and name_problem(bad) and layer_name_problem(bad), bad
    for layer_only in ["1a", "2", "a-b", "block1-0", "1x1", "a-"]:     # a layer's name, never a variable's
        assert identifier_problem(layer_only) and name_problem(layer_only) is None, layer_only
        assert layer_name_problem(layer_only) is None, layer_only
    assert syntax_problem("a" * 128) is None and name_problem("forward") and identifier_problem("forward") is None
    assert layer_name_problem(0) is None and layer_name_problem(-1) and layer_name_problem(True)
