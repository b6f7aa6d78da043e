"""Budgets of work: one expansion budget every instance, expression and repeat copy spends from; expressions with
the same inputs evaluated once; imports read once per file; draw refuses a layout Graphviz would take long over,
before it starts. The committed cases (work_*) run in test_hostile.py; these are the properties behind them."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

import netspec
from netspec.errors import ErrorList, LimitError
from netspec.limits import LIMITS

HEAD = "netspec: 1\ninputs: {x: [N, 8]}\n"


def _cpu(fn):
    t0 = time.process_time()
    try:
        return fn(), time.process_time() - t0
    except ErrorList as e:
        return e.errors[0], time.process_time() - t0
    except LimitError as e:
        return e, time.process_time() - t0


def test_dropped_blocks_spend_the_budget():
    """10^3 x 10^3 block instances whose only layer 'if' drops: a located LimitError within a couple of seconds."""
    text = (HEAD + "blocks:\n  leaf: {layers: [{op: linear, out: 8, if: false}]}\n"
            "  mid: {layers: [{op: leaf, repeat: 1000}]}\nlayers:\n  - {op: mid, repeat: 1000}\n")
    err, cpu = _cpu(lambda: netspec.expand(netspec.load(text)))
    assert isinstance(err, LimitError) and str(err.loc) == "<text>:7:23", err
    assert "expansion steps, over the limit of 2,000,000" in err.message and cpu < 2.0, cpu


def test_expressions_with_the_same_inputs_are_evaluated_once(monkeypatch):
    from netspec.spec import expr
    calls = []
    real = expr.Expr.eval
    monkeypatch.setattr(expr.Expr, "eval", lambda self, *a, **k: calls.append(self.text) or real(self, *a, **k))
    text = HEAD + "params: {w: 8}\nlayers:\n  - {op: linear, out: 'w * 2 - 8', repeat: 500}\n"
    g = netspec.expand(netspec.load(text))
    assert len(g.nodes) == 501
    assert calls.count("w * 2 - 8") == 1
    # an expression that reads the loop index is evaluated per copy, and spends per copy
    calls.clear()
    g = netspec.expand(netspec.load(HEAD + "layers:\n  - {op: linear, out: 'i * 0 + 8', repeat: 50}\n"))
    assert calls.count("i * 0 + 8") == 50


def test_costly_expressions_per_copy_are_refused_early():
    text = HEAD + ("layers:\n  - {op: linear, out: 'sum([i] * 999) * 0 + sum([i] * 998) * 0 + sum([i] * 997) * 0 + "
                   "sum([i] * 996) * 0 + 8', repeat: 10000}\n")
    err, cpu = _cpu(lambda: netspec.expand(netspec.load(text)))
    assert isinstance(err, LimitError) and "repeating '#0' 10,000 times" in err.message, err
    assert cpu < 1.0


def test_large_legitimate_networks_fit_the_budget():
    """A 25,000-block network of 50,000 nodes (the max_nodes scale) is within the default budget."""
    text = (HEAD + "blocks:\n  unit:\n    params: {w: 8}\n    layers:\n      - {op: linear, out: 'w * 1'}\n"
            "      - {op: relu}\n  five: {layers: [{op: unit, repeat: 4990}]}\nlayers:\n  - {op: five, repeat: 5}\n")
    g = netspec.expand(netspec.load(text))
    assert len(g.nodes) == 49_901


def test_import_lattice_reads_each_file_once(tmp_path, monkeypatch):
    """14 files, each level importing both files of the next: 2^7 paths, 14 reads, not refused by max_imports."""
    levels = 7
    for k in range(levels):
        for j in "ab":
            imps = f"imports: [l{k + 1}a.yaml, l{k + 1}b.yaml]\n" if k < levels - 1 else ""
            (tmp_path / f"l{k}{j}.yaml").write_text(f"netspec: 1\n{imps}blocks:\n  b{k}{j}: {{layers: [{{op: relu}}]}}\n")
    (tmp_path / "main.yaml").write_text(HEAD + "imports: [l0a.yaml, l0b.yaml]\nlayers:\n  - {op: b6a}\n  - {op: b0b}\n")
    from netspec.spec import load as load_mod
    reads = []
    real = load_mod.load_file
    monkeypatch.setattr(load_mod, "load_file", lambda p, *a: reads.append(Path(p).name) or real(p, *a))
    old = LIMITS.max_imports
    try:
        LIMITS.max_imports = 14
        res, cpu = _cpu(lambda: netspec.check(tmp_path / "main.yaml"))
    finally:
        LIMITS.max_imports = old
    assert res.ok, [e.format() for e in res.errors]
    assert sorted(reads) == sorted(["main.yaml"] + [f"l{k}{j}.yaml" for k in range(levels) for j in "ab"])
    assert cpu < 1.0


def test_draw_refuses_a_costly_layout_before_graphviz(tmp_path, monkeypatch):
    """A DenseNet-like chain of concats (each layer takes every earlier one) under the node and edge caps: dot would
    take tens of seconds; draw refuses at once, located, with a hint it can use (no block to fold: the summary),
    and never starts dot."""
    import importlib
    draw_mod = importlib.import_module("netspec.draw")
    lines = [HEAD.rstrip("\n"), "layers:", "  - {op: linear, out: 4, name: l0}"]
    for k in range(1, 25):
        lines.append(f"  - {{op: concat, dim: 1, from: [{', '.join(['x'] + [f'l{j}' for j in range(k)])}], name: c{k}}}")
        lines.append(f"  - {{op: linear, out: 4, name: l{k}}}")
    (tmp_path / "dense.yaml").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(draw_mod, "render", lambda *a, **k: pytest.fail("Graphviz was started"))
    err, cpu = _cpu(lambda: netspec.draw(tmp_path / "dense.yaml", tmp_path / "dense.svg"))
    assert isinstance(err, LimitError), err
    assert "units of layout work" in err.message and "(max_layout_cost)" in err.message
    assert err.loc is not None and any("netspec summary" in h for h in err.hints)
    assert not any("--depth" in h for h in err.hints)         # the network has no block to fold
    assert cpu < 2.0 and not (tmp_path / "dense.svg").exists()


def test_zoo_layouts_are_far_below_the_limit():
    """Every bundled network draws with every block open by default (auto_depth keeps it open), at most half the
    layout limit: the limits refuse pathological files, never the zoo. (The widest are the detectors, NASNet-A and
    GPT: long edges of image sizes, cell inputs and the causal mask cross many ranks.)"""
    from netspec.draw import auto_depth, layout_cost, _fold
    root = Path(__file__).resolve().parent.parent.parent / "specs"
    for p in sorted(root.glob("*.yaml")):
        spec = netspec.load(p)
        for name in spec.networks:
            g = netspec.expand(spec, name)
            assert auto_depth([g]) is None, p.stem
            rep, edges = _fold(g, None)
            cost = layout_cost(g, rep, edges)
            assert cost * 2 < LIMITS.max_layout_cost, (p.stem, cost)
