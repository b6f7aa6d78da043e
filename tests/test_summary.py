"""Summaries: totals equal torchvision's published figures (parameters; MACs, which its "GFLOPS" column counts),
shared weights counted once and marked, rows indented by block depth, and every output format parses."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from netspec.errors import SpecError
from netspec.shapes import Dim
from netspec.summary import Summary, parse_bind, summaries, summary

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs").glob("*.json"))
IMAGENET = {"N": 1, "H": 224, "W": 224}

# torchvision's model table: parameters, and GFLOPS (multiply-adds) at 224x224 to the digits it publishes
PUBLISHED = {
    "resnet18": (11_689_512, 1.814, 3),
    "resnet50": (25_557_032, 4.09, 2),
    "vgg16": (138_357_544, 15.47, 2),
    "mobilenet_v2": (3_504_872, 0.30, 2),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_totals_equal_published_figures(name):
    path = ROOT / "specs" / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"specs/{name}.yaml is not written yet")
    params, gmacs, digits = PUBLISHED[name]
    s = summary(path, bind=IMAGENET)
    assert s.totals.params == params
    assert isinstance(s.totals.macs, int)
    assert round(s.totals.macs / 1e9, digits) == gmacs, s.totals.macs


def test_resnet18_rows():
    s = summary(ROOT / "specs" / "resnet18.yaml", bind="N=1,H=224,W=224")
    rows = {r.name: r for r in s.rows}
    assert rows["x"].kind == "input" and rows["x"].out == "[1, 3, 224, 224]"
    conv1 = rows["conv1"]
    assert (conv1.op, conv1.label, conv1.out, conv1.params, conv1.macs) == \
        ("conv2d", "conv 7x7, 64, /2", "[1, 64, 112, 112]", 9408, 118_013_952)
    assert conv1.loc.startswith(str(ROOT / "specs" / "resnet18.yaml") + ":31:")
    # blocks are rows too, with the subtotals of their layers, and their layers are indented under them
    assert rows["layer1"].kind == "repeat" and rows["layer1"].label == "x2" and rows["layer1"].depth == 0
    assert rows["layer2.0"].kind == "block" and rows["layer2.0"].op == "basic" and rows["layer2.0"].depth == 1
    assert rows["layer2.0.downsample"].kind == "seq" and rows["layer2.0.downsample.0"].depth == 3
    assert rows["layer2.0"].params == 230_144
    assert rows["layer2.0"].out == "[1, 128, 28, 28]"
    assert rows["fc"].params == 513_000 and rows["fc"].macs == 512_000
    assert s.totals.buffers == 9_620
    # the shared relu is marked and counted once
    assert rows["layer1.0.relu_out"].shared_with == "layer1.0.relu"
    assert s.totals.shared == 8


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec(path):
    spec = netspec.load(path)
    for s in summaries(spec):
        g = netspec.expand(spec, s.network)
        layers = [r for r in s.rows if r.kind == "layer"]
        assert [r.name for r in s.rows if r.kind in ("layer", "input")] == list(g.nodes)
        assert s.totals.layers == len(layers)
        for r in layers:
            n = g.nodes[r.name]
            assert r.depth == len(n.scope)
            assert r.out == ", ".join(str(t) for t in n.out)
        # totals are the sums of the layer rows; a block row is the sum of the layers inside it
        assert s.totals.params == sum(r.params for r in layers)
        for c in (r for r in s.rows if r.kind in ("block", "seq", "repeat")):
            inside = [r for r in layers if r.name.startswith(c.name + ".")]
            assert c.params == sum(r.params for r in inside), c.name
        # one row per container that holds layers, placed before its first layer
        names = [r.name for r in s.rows]
        for c in (r for r in s.rows if r.kind in ("block", "seq", "repeat")):
            first = next(i for i, r in enumerate(s.rows) if r.name.startswith(c.name + "."))
            assert names.index(c.name) < first


def test_shared_weights_counted_once_and_marked():
    src = """\
netspec: 1
inputs: {a: [N, 32], b: [N, 32]}
layers:
  - {name: enc, op: linear, out: 16, from: a}
  - {name: enc_b, op: linear, out: 16, from: b, share: enc}
  - {name: dist, op: subtract, from: [enc, enc_b]}
"""
    s = summary(src, bind={"N": 2})
    rows = {r.name: r for r in s.rows}
    assert rows["enc"].params == 32 * 16 + 16
    assert rows["enc_b"].params == 0 and rows["enc_b"].shared_with == "enc"
    assert rows["enc_b"].macs == 2 * 32 * 16          # the shared layer still computes
    assert s.totals.params == 32 * 16 + 16
    assert "(shared: enc)" in s.to_text()


def test_symbolic_macs_without_bindings():
    s = summary(ROOT / "specs" / "unet.yaml")
    assert isinstance(s.totals.macs, Dim) and s.symbolic
    assert s.totals.macs.free_symbols() == {"N", "H", "W"}
    assert s.totals.params == 31_030_658
    assert s.to_dict()["totals"]["macs"] == str(s.totals.macs)
    bound = summary(ROOT / "specs" / "unet.yaml", bind={"N": 1, "H": 256, "W": 256})
    assert bound.totals.macs == s.totals.macs.evaluate({"N": 1, "H": 256, "W": 256})
    assert not bound.symbolic


def test_formats_parse():
    s = summary(ROOT / "specs" / "resnet18.yaml", bind=IMAGENET)
    data = json.loads(s.render("json"))
    assert data["totals"] == {"params": 11_689_512, "buffers": 9_620, "macs": 1_814_073_344, "layers": 69,
                              "shared": 8}
    assert len(data["rows"]) == len(s.rows) and data["rows"][1]["name"] == "conv1"
    table = list(csv.DictReader(io.StringIO(s.render("csv"))))
    assert len(table) == len(s.rows) + 1
    assert table[1]["name"] == "conv1" and int(table[1]["params"]) == 9408
    assert table[-1]["kind"] == "total" and int(table[-1]["params"]) == 11_689_512
    md = s.render("markdown").splitlines()
    body = [line for line in md if line.startswith("|")]
    assert body[0] == "| layer | op | output | params | MACs |"
    assert set(body[1]) <= set("|-: ")
    assert len(body) == 2 + len(s.rows) + 1
    assert all(line.count("|") - line.count("\\|") == 6 for line in body)
    assert "**11,689,512**" in body[-1]
    text = s.render("table")
    assert "parameters: 11,689,512" in text and "1,814,073,344" in text
    assert "\n    layer1.0.conv1 " in text                 # indented by block depth
    with pytest.raises(SpecError):
        s.render("xml")


def test_bindings_are_checked():
    assert parse_bind("N=1, H=224") == {"N": 1, "H": 224}
    assert parse_bind({"H": "32"}) == {"H": 32}
    for bad in ("H", "H=x", "H=0", {"H": True}, {"H": -3}, {"H": 2.5}):
        with pytest.raises(SpecError):
            parse_bind(bad)
    with pytest.raises(SpecError) as e:
        summary(ROOT / "specs" / "resnet18.yaml", bind={"h": 224})
    assert "did you mean 'H'?" in e.value.format()


def test_graph_and_spec_inputs():
    spec = netspec.load(ROOT / "specs" / "mlp.yaml")
    g = netspec.expand(spec)
    assert isinstance(summary(g), Summary) and summary(g).totals.params == summary(spec).totals.params
    gan = summaries(ROOT / "specs" / "dcgan.yaml")
    assert [s.network for s in gan] == ["generator", "discriminator"]
    assert summary(ROOT / "specs" / "dcgan.yaml", network="discriminator").network == "discriminator"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "netspec", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=os.environ.copy(), stdin=subprocess.DEVNULL)


def test_cli_summary():
    r = _cli("summary", "specs/resnet18.yaml", "--bind", "N=1,H=224,W=224")
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout                       # plain text through a pipe
    assert "parameters: 11,689,512" in r.stdout and "MACs:       1,814,073,344" in r.stdout
    r = _cli("summary", "specs/resnet18.yaml", "--format", "json", "--bind", "N=1", "--bind", "H=224,W=224")
    assert r.returncode == 0 and json.loads(r.stdout)["totals"]["params"] == 11_689_512
    r = _cli("summary", "specs/unet.yaml")
    assert r.returncode == 0 and "733888*N*H*W" in r.stdout and "--bind N=1,H=224,W=224" in r.stderr
    r = _cli("summary", "specs/dcgan.yaml", "-f", "json")
    assert [d["network"] for d in json.loads(r.stdout)] == ["generator", "discriminator"]
    r = _cli("summary", "specs/dcgan.yaml", "-f", "csv")
    assert r.returncode == 1 and "--network" in r.stderr
    r = _cli("summary", "specs/resnet18.yaml", "--bind", "h=224")
    assert r.returncode == 1 and "did you mean 'H'?" in r.stderr and "Traceback" not in r.stderr
    r = _cli("summary", "specs/resnet18.yaml", "--format", "xml")
    assert r.returncode == 2


def _rows_the_long_way(g) -> dict:
    """Each container's row from its members, the way the diagram folds a block (graph.structure)."""
    from netspec.graph.structure import boundary, copies, members, positions
    from netspec.summary import types_text
    inside, pos, out = members(g), positions(g), {}
    for path, ids in inside.items():
        p = b = m = 0
        for nid in ids:
            np_, nb = g.nodes[nid].counts()
            p, b, m = p + np_, b + nb, m + g.nodes[nid].meta.get("macs", 0)
        c = g.containers.get(path)
        label = (c.block or "block") if c is not None and c.kind == "block" else \
            f"x{copies(path, ids)}" if c is not None and c.kind == "repeat" else "seq"
        out[path] = (str(p), str(b), str(m), types_text(g, boundary(g, ids, pos)[1]), label)
    return out


def _generated():
    sys.path.insert(0, str(ROOT / "tools" / "bench"))
    import specs as gen
    return [gen.generate(k, 300)[0] for k in gen.KINDS]


@pytest.mark.parametrize("source", SPECS + _generated(), ids=lambda s: s.stem if isinstance(s, Path) else s[27:45])
def test_block_rows_are_what_the_diagram_folds(source):
    """A block's row (one pass over the edges, totals added up from the inner blocks) says what its members say:
    the same parameters, buffers and MACs, the same values leaving it, the same number of copies."""
    from netspec.pipeline import graphs
    from netspec.summary import summarize
    for g in graphs(str(source) if isinstance(source, Path) else source):
        want = _rows_the_long_way(g)
        got = {r.name: (str(r.params), str(r.buffers), str(r.macs), r.out, r.label)
               for r in summarize(g).rows if r.kind in ("block", "seq", "repeat")}
        assert got == want
