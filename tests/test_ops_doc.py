"""The op reference: docs/ops.md is what the registry generates, every op states its shape rule in words, every
example line in it checks to the shapes it prints, and `netspec ops NAME` shows one op or guesses a misspelt one."""
from __future__ import annotations

from pathlib import Path

import pytest

import netspec
from netspec.cli import main
from netspec.ops.base import all_ops
from netspec.ops import reference

ROOT = Path(__file__).resolve().parents[1]
OPS = sorted(all_ops())


def test_committed_reference_is_up_to_date():
    committed = (ROOT / "docs" / "ops.md").read_text(encoding="utf-8")
    assert committed == reference.markdown(), \
        "docs/ops.md is out of date: run `python -m netspec ops --format markdown > docs/ops.md`"


@pytest.mark.parametrize("name", OPS)
def test_every_op_is_documented(name):
    op = all_ops()[name]
    doc = reference.markdown()
    assert f"\n### {name}\n" in doc
    assert op.shape_rule, f"op {name!r} states no shape_rule (its shape rule in words, for docs/ops.md)"
    assert op.torch_ref, f"op {name!r} states no torch_ref"
    section = doc.split(f"\n### {name}\n", 1)[1].split("\n### ", 1)[0]
    for p in reference.params_of(op):
        assert f"| `{p.name}` |" in section


@pytest.mark.parametrize("name", [n for n in OPS if all_ops()[n].inputs])
def test_example_line_checks_to_the_printed_shapes(name):
    """The example the reference prints is a layer that checks, with the outputs it says."""
    op = all_ops()[name]
    ex = reference.example(op)
    assert ex is not None, f"op {name!r} has no shape case with plain input dims to show as an example"
    line, ins, outs = ex
    decl = {f"in{k}": t for k, t in enumerate(ins) if t is not None}
    inputs = "\n".join(f"  {n}: {{shape: {list(map(str, t.shape))}, dtype: {t.dtype}}}".replace("'", "")
                       for n, t in decl.items())
    names = list(decl)
    if any(i.variadic for i in op.inputs):
        frm = "[" + ", ".join(names) + "]"
    else:
        frm = "{" + ", ".join(f"{slot.name}: in{k}" for k, slot in enumerate(op.inputs)
                              if k < len(ins) and ins[k] is not None) + "}"
    outputs = "{" + ", ".join(f"o{j}: layer.{o}" if len(outs) > 1 else f"o{j}: layer"
                              for j, o in enumerate(op.outputs[:len(outs)])) + "}"
    text = (f"netspec: 1\ninputs:\n{inputs}\nlayers:\n  - {line[:-1]}, name: layer, from: {frm}}}\n"
            f"outputs: {outputs}\n")
    res = netspec.check(netspec.load(text, name=f"example-{name}.yaml"))
    assert res.ok, text + "\n".join(e.format() for e in res.errors)
    (g,) = res.graphs.values()
    got = [str(t) for t in g.output_types().values()]
    want = [str(t) for t in outs]
    assert got == want


def test_one_op(capsys):
    assert main(["ops", "conv2d"]) == 0
    out = capsys.readouterr().out
    assert "torch.nn.Conv2d" in out
    assert "kernel" in out and "(required)" in out
    assert "stride" in out and "= 1" in out
    assert "shape rule:" in out and "floor(" in out
    assert "- {op: conv2d, out: 64, kernel: 3, padding: 1}" in out
    assert "aliases:    conv" in out


def test_one_op_by_alias(capsys):
    assert main(["ops", "conv"]) == 0
    assert capsys.readouterr().out.startswith("conv2d:")


def test_unknown_op_guesses(capsys):
    assert main(["ops", "conv2"]) == 1
    err = capsys.readouterr().err
    assert "unknown op 'conv2'" in err and "did you mean 'conv2d'" in err
    assert main(["ops", "batchnrom2d"]) == 1
    assert "did you mean 'batchnorm2d'" in capsys.readouterr().err


def test_markdown_format(capsys):
    assert main(["ops", "--format", "markdown"]) == 0
    assert capsys.readouterr().out == reference.markdown()
    assert main(["ops", "--format", "html"]) == 2
