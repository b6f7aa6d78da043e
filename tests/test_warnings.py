"""Suspicious specs check (exit 0) with located warnings: a requirement only tiny sizes meet, one that pins a
declared symbol to a number, a repeated merge fed by an implicit chain; a positional table's length limit is a
requirement that check prints; and build(check_inputs=True) names the spec's input that a call does not fit."""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest
import torch

import netspec
from netspec.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from guarantee import assert_runs_as_checked  # noqa: E402

FORGOT_FROM = """netspec: 1
inputs: {x: [N, 64, H, W]}
blocks:
  basic:
    params: {planes: int, stride: 1}
    layers:
      - {name: conv1, op: conv2d, out: planes, kernel: 3, stride: stride, padding: 1}
      - {name: conv2, op: conv2d, out: planes, kernel: 3, padding: 1}
      - {name: down, op: conv2d, out: planes, kernel: 1, stride: stride}
      - {name: add, op: add, from: [conv2, down]}
layers:
  - {name: stage, op: basic, planes: 128, stride: 2}
"""


def _warnings(text, name="w.yaml"):
    res = netspec.check(netspec.load(text, name=name))
    assert res.ok, "\n".join(e.format() for e in res.errors)
    return [w.format() for w in res.warnings]


def test_a_requirement_only_tiny_sizes_meet():
    ws = _warnings(FORGOT_FROM)
    (w,) = [w for w in ws if "ceil(H/2) == ceil(H/4)" in w]
    assert w.startswith("w.yaml:10:9: warning: requires ceil(H/2) == ceil(H/4) (at 'stage.add'): "
                        "it holds only for H <= 2")
    assert "forgot its 'from:'" in w
    fixed = FORGOT_FROM.replace("kernel: 1, stride: stride}", "kernel: 1, stride: stride, from: x}")
    assert not _warnings(fixed)


def test_warnings_exit_0_and_strict_makes_them_errors(tmp_path, capsys):
    f = tmp_path / "w.yaml"
    f.write_text(FORGOT_FROM)
    assert main(["check", str(f)]) == 0
    assert "warning: requires ceil(H/2) == ceil(H/4)" in capsys.readouterr().err
    assert main(["check", "--strict", str(f)]) == 1


def test_a_requirement_that_pins_a_symbol():
    text = """netspec: 1
inputs: {tokens: [N, 4, 8]}
layers:
  - {name: cls, op: param, shape: [1, 1, 8]}
  - {name: cat, op: concat, dim: 1, from: [cls, tokens]}
"""
    (w,) = _warnings(text)
    assert w.startswith("w.yaml:5:5: warning: requires 1 == N (at 'cat'): it pins N to 1")
    assert "write 1 in the input's shape" in w


def test_an_ordinary_requirement_is_no_warning():
    unet_like = """netspec: 1
inputs: {x: [N, 8, H, W]}
layers:
  - {name: down, op: maxpool2d, kernel: 2}
  - {name: up, op: upsample, scale: 2}
  - {name: cat, op: concat, from: [x, up]}
"""
    assert not _warnings(unet_like)          # requires H % 2 == 0: holds for every other size, not only tiny ones


def test_a_positional_table_states_its_length_limit(capsys, tmp_path):
    text = """netspec: 1
inputs: {x: [N, T, 16]}
layers:
  - {op: learned_positional_encoding, max_len: 128}
"""
    g = netspec.check(netspec.load(text)).graphs["net"]
    assert [r.text for r in g.requirements] == ["T <= 128"]
    f = tmp_path / "pe.yaml"
    f.write_text(text)
    assert main(["check", str(f)]) == 0
    assert "requires: T <= 128" in capsys.readouterr().out
    assert main(["check", str(f), "--bind", "T=129"]) == 1
    assert assert_runs_as_checked(text) >= 1     # bindings that meet the printed requirement run


def test_an_implicit_chain_into_a_merge():
    text = """netspec: 1
inputs: {x: [N, 8], bias: [N, 8]}
layers:
  - {name: acc, op: add, from: [x, bias], repeat: 3}
"""
    (w,) = _warnings(text)
    assert w.startswith("w.yaml:4:32: warning: 'acc' repeats a merge (add) 3 times: copies after the first take "
                        "the previous copy as their first input, implicitly, instead of 'x'")
    assert not _warnings(text.replace("repeat: 3", "repeat: 1"))


# -- build(check_inputs=True) --------------------------------------------------------------------------------

TWO = """netspec: 1
inputs:
  image: {shape: [N, 3, H, W], multiple_of: {H: 4, W: 4}}
  tokens: {shape: [N, T], dtype: int64}
layers:
  - {name: conv, op: conv2d, from: image, out: 8, kernel: 3, padding: 1}
  - {name: pool, op: global_avg_pool, flatten: true}
  - {name: emb, op: embedding, from: tokens, num: 10, out: 8}
  - {name: pos, op: learned_positional_encoding, max_len: 6}
  - {name: mean, op: mean, dim: 1}
  - {name: sum, op: add, from: [pool, mean]}
"""


@pytest.fixture(scope="module")
def checked():
    return netspec.build(netspec.load(TWO, name="two.yaml"), check_inputs=True)


def test_fitting_inputs_run(checked):
    out = checked(torch.randn(2, 3, 8, 12), torch.zeros(2, 5, dtype=torch.long))
    assert out.shape == (2, 8)
    assert checked(image=torch.randn(1, 3, 4, 4), tokens=torch.zeros(1, 6, dtype=torch.long)).shape == (1, 8)


@pytest.mark.parametrize("image, tokens, message", [
    ((2, 3, 8, 8), (3, 5), "input 'tokens' of network 'two' does not fit its declaration [N, T] int64 (two.yaml:4:3): "
                           "got shape (3, 5) int64: N is 3 here but 2 in input 'image'"),
    ((2, 1, 8, 8), (2, 5), "input 'image' of network 'two' does not fit its declaration [N, 3, H, W] float32 "
                           "(two.yaml:3:3): got shape (2, 1, 8, 8) float32: dim 1 is 1, not 3"),
    ((2, 3, 8), (2, 5), "3 dims, not 4"),
    ((2, 3, 8, 10), (2, 5), "W = 10 breaks the requirement W % 4 == 0"),
    ((2, 3, 8, 8), (2, 7), "input 'tokens' of network 'two' does not fit its declaration [N, T] int64 (two.yaml:4:3): "
                           "T = 7 breaks the requirement T <= 6"),
])
def test_misfits_name_the_input(checked, image, tokens, message):
    with pytest.raises(ValueError) as e:
        checked(torch.randn(*image), torch.zeros(*tokens, dtype=torch.long))
    assert message in str(e.value)


def test_wrong_dtype(checked):
    with pytest.raises(ValueError, match=r"input 'tokens' .* the dtype should be int64"):
        checked(torch.randn(2, 3, 8, 8), torch.zeros(2, 5))


def test_unchecked_by_default_and_picklable(checked):
    plain = netspec.build(netspec.load(TWO))
    assert not plain._forward_pre_hooks
    assert pickle.loads(pickle.dumps(checked))(torch.randn(1, 3, 4, 4), torch.zeros(1, 2, dtype=torch.long)).shape \
        == (1, 8)
