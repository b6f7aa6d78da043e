"""Notebooks: Drawing and Summary render inline (_repr_svg_, _repr_html_); their plain repr is one line."""
from __future__ import annotations

import html
import shutil
from pathlib import Path

import pytest

import netspec

ROOT = Path(__file__).parent.parent
R18 = str(ROOT / "specs" / "resnet18.yaml")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_drawing_renders_as_svg_and_reprs_in_one_line():
    d = netspec.draw(R18, depth=1)                 # no path: nothing written, the drawing shows itself
    svg = d._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "N×64×H/4×W/4" in svg
    assert 'id="layer1.0"' in svg                 # folded at depth 1
    assert repr(d) == "<Drawing resnet18: 17 nodes, 4 clusters, 16 edges, 8 folded blocks>"
    gan = netspec.draw(str(ROOT / "specs" / "dcgan.yaml"))
    assert repr(gan).startswith("<Drawing generator, discriminator: ") and "\n" not in repr(gan)
    assert len(repr(gan)) < 120


def test_drawing_without_graphviz_falls_back_to_the_repr(monkeypatch):
    from netspec.draw import to_dot
    from netspec.pipeline import graph
    d = to_dot(graph(R18))
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert d._repr_svg_() is None                 # Jupyter then shows repr(d)
    with pytest.raises(netspec.NetspecError, match="Graphviz"):
        d.svg()


def test_summary_renders_as_an_escaped_html_table_and_reprs_in_one_line():
    s = netspec.summary(R18, bind="N=1,H=224,W=224")
    page = s._repr_html_()
    assert page.startswith('<table class="netspec-summary">') and page.count("<tr") == len(s.rows) + 1
    assert "<td" in page and "11,689,512" in page and "[1, 64, 56, 56]" in page
    assert repr(s) == "<Summary resnet18: 69 layers, 11,689,512 parameters, 1.81 GMACs>"
    sym = netspec.summary(R18)
    assert repr(sym) == "<Summary resnet18: 69 layers, 11,689,512 parameters, MACs depend on H, N, W>"
    assert str(s) == s.to_text() and "\n" in str(s)   # print() still gives the table


def test_html_escapes_what_comes_from_the_file(tmp_path):
    p = tmp_path / "a<b>&.yaml"
    p.write_text("netspec: 1\nname: net\ninputs:\n  x: [N, 4]\nlayers:\n  - {op: linear, out: 2}\n")
    page = netspec.summary(str(p))._repr_html_()
    assert "a<b>&" not in page and html.escape(str(p)) in page
