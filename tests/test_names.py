"""Names (issue #10, item 3): any module name PyTorch takes that a reference can read, references to digit names and
to a group's members, and one rule for a name that is both a parameter and a layer.

The rules are in netspec/spec/names.py and docs/spec-language.md ("Flat and digit names").
"""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import netspec
from netspec.codegen.build import compile_source, exec_source, top_class_name

from guarantee import assert_runs_as_checked

NAMED = """
netspec: 1
name: named
inputs: {x: [N, 3, H, W]}
layers:
  - {op: conv2d, name: block1-0, out: 8, kernel: 3, padding: 1}
  - {op: relu, name: "2"}
  - op: seq
    name: body
    layers:
      - {op: conv2d, out: 8, kernel: 1}
      - {op: batchnorm2d}
      - {op: conv2d, name: conv-b, out: 8, kernel: 1}
  - {op: conv2d, name: rep, out: 8, kernel: 1, repeat: 3}
  - {op: conv2d, name: c-1, out: 8, kernel: 1, from: block1-0}
  - {op: conv2d, name: 1x1, out: 8, kernel: 1, share: c-1, from: "2"}
  - {op: add, from: [body.0, body.1, body.conv-b, rep.0, rep.2, "2", block1-0, c-1, 1x1]}
"""


def _check(text):
    res = netspec.check(text)
    return res, [e.format() for e in res.errors]


def test_dash_digit_and_member_names_check_build_compile_and_agree():
    res, errs = _check(NAMED)
    assert res.ok, errs
    m = netspec.build(NAMED).eval()
    keys = set(m.state_dict())
    # the state_dict keys are the names as written; a repeat's copies and a seq's members by position
    for k in ["block1-0.weight", "body.0.weight", "body.1.running_mean", "body.conv-b.weight", "rep.0.weight",
              "rep.2.weight"]:
        assert k in keys, sorted(keys)
    assert not any(k.startswith("1x1.") for k in keys), "a shared layer owns no weights of its own"
    assert "c-1.weight" in keys
    src = compile_source(netspec.load(NAMED), "named")
    assert 'getattr(self, "block1-0")' in src and 'self.add_module("block1-0"' in src
    ns = exec_source(src, "names_model")
    standalone = ns[top_class_name(src)]().eval()
    standalone.load_state_dict(m.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert (standalone(x) - m(x)).abs().max().item() <= 1e-5
    assert assert_runs_as_checked(NAMED) == 1


def test_generated_source_with_such_names_is_ruff_clean(tmp_path):
    from ruff.__main__ import find_ruff_bin
    f = tmp_path / "model.py"
    f.write_text(compile_source(netspec.load(NAMED), "named"))
    r = subprocess.run([find_ruff_bin(), "check", "--isolated", "--line-length", "100", str(f)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_compile_cli_writes_an_importable_model(tmp_path):
    spec = tmp_path / "named.yaml"
    spec.write_text(NAMED)
    r = subprocess.run([sys.executable, "-m", "netspec", "compile", str(spec), "-o", str(tmp_path / "model.py")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import model, torch; "
            "m = model.Named(); print(sorted(k for k in m.state_dict() if k.endswith('weight'))[0])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "block1-0.weight", r


HEAD = "netspec: 1\ninputs: {x: [N, 8]}\nlayers:\n"


@pytest.mark.parametrize("name,error", [
    ("a.b", "invalid name 'a.b': '.' is not allowed in a name"),
    ("'a b'", "invalid name 'a b': a space is not allowed in a name"),
    ("'-1'", "invalid name '-1': a name cannot start with '-'"),
    ("'a:b'", "invalid name 'a:b': ':' is not allowed in a name"),
    ('"a\\tb"', "the control character \\t is not allowed in a name"),
    ('"\\u0441"', "is U+0441 CYRILLIC SMALL LETTER ES, not an ASCII letter or digit"),
    ("forward", "'forward' is an attribute of torch.nn.Module"),
    ("state_dict", "'state_dict' is an attribute of torch.nn.Module"),
    ("training", "'training' is an attribute of torch.nn.Module"),
    ("_x-1", "'_x-1' starts with '_' (reserved for internals)"),
    ("class", "'class' is a Python keyword"),
    ("''", "a name cannot be empty"),
])
def test_dangerous_or_ambiguous_layer_names_are_refused_with_a_location(name, error):
    text = HEAD + f"  - {{op: relu, name: {name}}}\n"
    res, errs = _check(text)
    assert not res.ok and error in res.errors[0].message, errs
    assert res.errors[0].loc.line == 4, errs


def test_inputs_stay_identifiers():
    res, errs = _check("netspec: 1\ninputs: {block-1: [N, 8]}\nlayers:\n  - {op: relu}\n")
    assert not res.ok and "'-' is not allowed in a name" in errs[0], errs
    res, errs = _check("netspec: 1\ninputs: {torch: [N, 8]}\nlayers:\n  - {op: relu}\n")
    assert not res.ok and "'torch' is reserved in generated code" in errs[0], errs


def test_a_digit_name_clashing_with_a_position_is_refused():
    res, errs = _check(HEAD + "  - {op: relu}\n  - {op: relu, name: '0'}\n")
    assert not res.ok and "would both be named '0'" in errs[0] and ":5:" in errs[0], errs


@pytest.mark.parametrize("ref,error,hint", [
    ("body.2", "'body' has no output or member '2'", "its members: 0, 1"),
    ("block1_0", "refers to 'block1_0', which is not defined here", "did you mean 'block1-0'"),
    ("body.0.out1", "'body.0' has no output 'out1'", "its outputs: out"),
    ("block1-0.0.x", "'block1-0' has no member '0'", "is not a group"),
])
def test_bad_references_are_located_with_hints(ref, error, hint):
    text = HEAD + ("  - {op: linear, name: block1-0, out: 8}\n"
                   "  - {op: seq, name: body, layers: [{op: relu}, {op: linear, out: 8}]}\n"
                   f"  - {{op: add, from: [x, {ref}]}}\n")
    res, errs = _check(text)
    assert not res.ok and error in res.errors[0].message and hint in errs[0], errs
    assert res.errors[0].loc.line == 6, errs


def test_a_member_that_is_also_an_output_of_the_last_layer_is_ambiguous():
    text = HEAD + ("  - {op: seq, name: s, layers: [{op: linear, name: out1, out: 8}, {op: chunk, chunks: 2, dim: 1}]}\n"
                   "  - {op: add, from: [s.out0, s.out1]}\n")
    res, errs = _check(text)
    assert not res.ok and "'s.out1' is ambiguous" in errs[0] and ":5:" in errs[0], errs
    ok = text.replace("name: out1", "name: first")       # without the clash, s.out1 is the chunk's output
    res, errs = _check(ok)
    assert res.ok, errs


BLOCK = """
netspec: 1
blocks:
  unit:
    params: {dropout: 0.1}
    layers:
      - {op: linear, name: fc, out: 8}
      - {op: dropout, name: drop2, p: dropout}
      - {op: dropout, name: dropout, p: 0.2}
inputs: {x: [N, 8]}
layers:
  - {op: unit, name: u}
"""


def test_in_an_expression_a_name_is_the_parameter_not_the_layer():
    res, errs = _check(BLOCK)
    assert res.ok, errs            # before: 'the layers form a cycle: drop2 -> dropout -> drop2'
    m = netspec.build(BLOCK)
    assert m.u.drop2.p == 0.1 and m.u.dropout.p == 0.2


def test_a_shape_function_of_a_name_that_is_parameter_and_layer_is_an_error():
    text = BLOCK.replace("p: dropout}", "p: dropout}\n      - {op: linear, name: g, out: 'features(dropout)'}")
    res, errs = _check(text)
    assert not res.ok, errs
    assert "'dropout' in 'features(dropout)' is ambiguous" in errs[0] and ":9:" in errs[0], errs
    assert "rename the layer 'dropout' or the parameter" in errs[0], errs


def test_a_member_named_like_the_groups_only_output_is_ambiguous_unless_it_is_that_output():
    text = HEAD + ("  - {op: seq, name: s, layers: [{op: linear, name: out, out: 8}, {op: relu}]}\n"
                   "  - {op: seq, name: t, layers: [{op: linear, out: 8}, {op: relu, name: out}]}\n"
                   "  - {op: add, from: [REF, x]}\n")
    res, errs = _check(text.replace("REF", "s.out"))
    assert not res.ok and "'s.out' is ambiguous" in errs[0] and ":6:" in errs[0], errs
    res, errs = _check(text.replace("REF", "t.out"))     # the member 'out' is the last layer: one tensor
    assert res.ok, errs


def test_listed_outputs_of_dash_digit_and_member_names_are_identifiers():
    text = HEAD + ("  - {op: linear, name: block1-0, out: 4}\n"
                   "  - {op: seq, name: body, layers: [{op: relu}, {op: linear, out: 8}]}\n"
                   "  - {op: relu, name: '9'}\n"
                   "outputs: [block1-0, body.0, '9']\n")
    res, errs = _check(text)
    assert res.ok, errs
    m = netspec.build(text)
    y = m(torch.randn(2, 8))
    assert set(y) == {"block1_0", "body_0", "out_9"} and tuple(y["block1_0"].shape) == (2, 4)
    assert assert_runs_as_checked(text) == 1


FPN_LIKE = """
netspec: 1
inputs: {c2: [N, 4, 16, 16], c3: [N, 8, 8, 8]}
layers:
  - name: inner_blocks         # torchvision FPN: inner_blocks.0.0.weight (a ModuleList of Conv2dNormActivation)
    op: seq
    layers:
      - {name: 0, op: seq, from: c2, layers: [{op: conv2d, out: 6, kernel: 1}]}
      - {name: 1, op: seq, from: c3, layers: [{op: conv2d, out: 6, kernel: 1}]}
  - {name: up, op: interpolate, size: [16, 16], mode: nearest, from: inner_blocks.1}
  - {name: merged, op: add, from: [inner_blocks.0, up]}
  - {name: layer_blocks, op: seq, layers: [{name: 0, op: seq, layers: [{op: conv2d, out: 6, kernel: 3, padding: 1}]}]}
outputs: {p2: layer_blocks, p3: inner_blocks.1.0}
"""


def test_members_of_members_reach_a_pyramid_written_out_of_groups():
    """The key layout of torchvision's FPN (fpn.inner_blocks.0.0), each inner block applied to its own level and
    reached from outside the group by its number."""
    res, errs = _check(FPN_LIKE)
    assert res.ok, errs
    m = netspec.build(FPN_LIKE).eval()
    assert sorted(k for k in m.state_dict() if k.endswith("weight")) == [
        "inner_blocks.0.0.weight", "inner_blocks.1.0.weight", "layer_blocks.0.0.weight"]
    c2, c3 = torch.randn(1, 4, 16, 16), torch.randn(1, 8, 8, 8)
    y = m(c2=c2, c3=c3)
    ib = m.inner_blocks
    with torch.no_grad():
        lat = getattr(ib, "0")(c2) + torch.nn.functional.interpolate(getattr(ib, "1")(c3), size=(16, 16))
        assert (y["p2"] - getattr(m.layer_blocks, "0")(lat)).abs().max().item() <= 1e-5
        assert (y["p3"] - getattr(ib, "1")(c3)).abs().max().item() <= 1e-5
    assert assert_runs_as_checked(FPN_LIKE) == 1


def test_share_on_a_group_is_an_error_not_ignored():
    text = HEAD + ("  - {op: seq, name: head, layers: [{op: linear, out: 8}]}\n"
                   "  - {op: seq, name: head2, from: x, share: head, layers: [{op: linear, out: 8}]}\n")
    res, errs = _check(text)   # before: accepted, and head2 got weights of its own
    assert not res.ok and "'share: head' on a seq" in errs[0] and ":5:" in errs[0], errs
