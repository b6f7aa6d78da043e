"""Diagrams: every bundled spec drawn to SVG and read back as XML (clusters for blocks, shapes on edges, the right
nodes at each depth, tooltips with spec lines), PNG/PDF/DOT written, errors for bad outputs, and a .dot file plus an
install hint where Graphviz's `dot` is missing. How the pictures look is checked by eye (docs/*.png); how fast they
are drawn is measured by hand, never asserted here."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import netspec
from netspec.draw import DrawError, GraphvizMissing, draw, family_colour, shape_text, to_dot
from netspec.io import OutputError

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs").glob("*.json"))
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

pytestmark = pytest.mark.skipif(not __import__("shutil").which("dot"), reason="Graphviz's dot is not installed")


def graphs_of(path: Path) -> list:
    spec = netspec.load(path)
    return [netspec.expand(spec, name) for name in spec.networks]


def read_svg(path: Path) -> dict:
    """Nodes, clusters and edges of a Graphviz SVG: {title: element}; edges as (tail, head) -> label texts."""
    root = ET.parse(path).getroot()
    out: dict = {"node": {}, "cluster": {}, "edge": [], "root": root}
    for g in root.iter(f"{SVG}g"):
        cls = g.get("class")
        if cls not in ("node", "cluster", "edge"):
            continue
        title = g.find(f"{SVG}title").text
        if cls == "edge":
            tail, head = (end.rsplit(":", 1)[0] if end.endswith((":n", ":w", ":s", ":e")) else end
                          for end in title.split("->"))     # drop the compass port edges enter by
            texts = [(t.text or "").replace("\xa0", " ").strip() for t in g.iter(f"{SVG}text")]
            out["edge"].append((tail, head, texts))
        else:
            out[cls][title] = g
    return out


def tooltip(el) -> str:
    for a in el.iter(f"{SVG}a"):
        if a.get(f"{XLINK}title"):
            return a.get(f"{XLINK}title")
    return ""


def max_depth(g) -> int:
    return max((len(n.scope) for n in g.nodes.values()), default=0)


def expected(g, depth, prefix=""):
    """What a drawing at this depth must contain, worked out from the graph (independently of netspec.draw)."""
    def rep(nid):
        n = g.nodes[nid]
        return prefix + (n.scope[depth] if depth is not None and len(n.scope) > depth else nid)

    nodes = {rep(nid) for nid in g.nodes} | {f"{prefix}@out.{k}" for k in g.outputs}
    edges = set()
    for n in g.nodes.values():
        for ref in n.inputs:
            if ref is not None and rep(ref[0]) != rep(n.id):
                edges.add((rep(ref[0]), rep(n.id), tuple(ref)))
    for k, ref in g.outputs.items():
        edges.add((rep(ref[0]), f"{prefix}@out.{k}", tuple(ref)))
    blocks = {p for p, c in g.containers.items() if c.kind == "block"
              and (depth is None or _cdepth(g, p) <= depth) and any(p in n.scope for n in g.nodes.values())}
    return nodes, edges, blocks


def _cdepth(g, path) -> int:
    d = 0
    while path is not None:
        d, path = d + 1, g.containers[path].parent
    return d


CASES = [(p, d) for p in SPECS for d in (None, 0, 1, 2)]


@pytest.mark.parametrize("path,depth", CASES, ids=[f"{p.stem}-depth{d}" for p, d in CASES])
def test_svg_of_every_spec(tmp_path, path, depth):
    graphs = graphs_of(path)
    if depth is not None and depth > max(max_depth(g) for g in graphs):
        pytest.skip("no blocks that deep")
    out = tmp_path / f"{path.stem}.svg"
    d = draw(path, out, depth=depth)
    svg = read_svg(out)
    multi = len(graphs) > 1
    want_nodes, want_edges, want_blocks = set(), [], set()
    for g in graphs:
        prefix = f"{g.name}/" if multi else ""
        nodes, edges, blocks = expected(g, depth, prefix)
        want_nodes |= nodes
        want_blocks |= {prefix + b for b in blocks}
        for tail, head, ref in edges:
            node = g.nodes[ref[0]]
            want_edges.append((tail, head, shape_text(node.out[ref[1]])))

    # one drawn node per visible layer, per folded block and per graph output
    assert set(svg["node"]) == want_nodes
    assert d.nodes == len(want_nodes)

    # every block instance that is open at this depth is a cluster labelled with its name
    clusters = {t[len("cluster_"):] for t in svg["cluster"]}
    assert want_blocks <= clusters
    for b in want_blocks:
        texts = " ".join(t.text or "" for t in svg["cluster"]["cluster_" + b].iter(f"{SVG}text"))
        assert b.split("/", 1)[-1] in texts
    if depth == 0:
        assert clusters <= {f"{g.name}/" for g in graphs}      # only the per-network frames

    # every edge carries the shape of the value it moves
    got = sorted((t, h, texts[-1].split(": ")[-1]) for t, h, texts in svg["edge"])
    assert got == sorted(want_edges)
    for _, _, texts in svg["edge"]:
        assert texts and texts[-1]


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_svg_tooltips_name_spec_lines(tmp_path, path):
    graphs = graphs_of(path)
    out = tmp_path / "x.svg"
    draw(path, out)
    svg = read_svg(out)
    prefix_of = {g.name: (f"{g.name}/" if len(graphs) > 1 else "") for g in graphs}
    for g in graphs:
        for n in g.nodes.values():
            tip = tooltip(svg["node"][prefix_of[g.name] + n.id])
            assert str(n.loc) in tip, (n.id, tip)
            assert n.id in tip


def test_merges_look_different(tmp_path):
    out = tmp_path / "r18.svg"
    draw(ROOT / "specs" / "resnet18.yaml", out)
    svg = read_svg(out)
    add = svg["node"]["layer1.0.add"]
    conv = svg["node"]["layer1.0.conv1"]
    assert add.find(f".//{SVG}ellipse") is not None                     # round
    assert conv.find(f".//{SVG}ellipse") is None                        # a (rounded) box
    fills = lambda el: {e.get("fill") for e in el.iter() if e.get("fill") not in (None, "none")}
    assert family_colour("merge").lower() in {f.lower() for f in fills(add)}
    assert family_colour("conv").lower() in {f.lower() for f in fills(conv)}
    # the shared relu is marked
    assert "uses the weights of layer1.0.relu" in tooltip(svg["node"]["layer1.0.relu_out"])


def test_legend_lists_the_families_drawn(tmp_path):
    out = tmp_path / "r18.svg"
    draw(ROOT / "specs" / "resnet18.yaml", out)
    root = read_svg(out)["root"]
    graph = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "graph")
    texts = [t.text for t in graph.findall(f"{SVG}text")]       # the graph label: title + legend, outside clusters
    for fam in ("conv", "norm", "activation", "pool", "merge", "linear", "io"):
        assert fam in texts
    assert any("11,689,512 params" in t for t in texts)
    out2 = tmp_path / "bare.svg"
    draw(ROOT / "specs" / "resnet18.yaml", out2, legend=False)
    graph = next(g for g in read_svg(out2)["root"].iter(f"{SVG}g") if g.get("class") == "graph")
    assert "conv" not in [t.text for t in graph.findall(f"{SVG}text")]


def test_folded_blocks_show_shapes_and_parameters(tmp_path):
    out = tmp_path / "r18.svg"
    d = draw(ROOT / "specs" / "resnet18.yaml", out, depth=1)
    svg = read_svg(out)
    assert "layer2.0" in d.folded
    text = " ".join(t.text for t in svg["node"]["layer2.0"].iter(f"{SVG}text"))
    assert "basic(planes=128, stride=2)" in text
    assert "in: N×64×H/4×W/4" in text
    assert "out: N×128×H/8×W/8" in text
    assert "230.14k params" in text
    assert "cluster_layer2" in svg["cluster"]
    assert "cluster_layer2.0" not in svg["cluster"]


def test_symbolic_and_bound_edge_labels(tmp_path):
    src = "netspec: 1\ninputs: {x: [N, 3, H, W]}\nlayers:\n  - {op: conv2d, out: 64, kernel: 4, stride: 4}\n"
    out = tmp_path / "a.svg"
    draw(src, out)
    labels = {texts[-1] for _, _, texts in read_svg(out)["edge"]}
    assert labels == {"N×3×H×W", "N×64×H/4×W/4"} or labels == {"N×3×H×W", "N×64×H//4×W//4"}
    draw(src, out, bind={"N": 1, "H": 64, "W": 32})
    assert {texts[-1] for _, _, texts in read_svg(out)["edge"]} == {"1×3×64×32", "1×64×16×8"}


def test_rankdir_and_depth_options():
    g = graphs_of(ROOT / "specs" / "resnet18.yaml")[0]
    assert "rankdir=LR" in to_dot(g, rankdir="LR").source
    assert "rankdir=TB" in to_dot(g).source
    with pytest.raises(DrawError):
        to_dot(g, rankdir="sideways")
    with pytest.raises(DrawError):
        to_dot(g, depth=-1)


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF"), (".svg", b"<?xml"),
                                          (".dot", b"digraph")])
def test_formats_from_suffix(tmp_path, suffix, magic):
    out = tmp_path / f"unet{suffix}"
    draw(ROOT / "specs" / "unet.yaml", out)
    data = out.read_bytes()
    assert len(data) > 1000
    assert data.startswith(magic)
    assert not [p for p in tmp_path.iterdir() if p.name != out.name]     # no temporary files left behind


def test_bad_suffix_and_missing_folder(tmp_path):
    with pytest.raises(OutputError) as e:
        draw(ROOT / "specs" / "mlp.yaml", tmp_path / "mlp.jpg")
    assert ".svg, .png, .pdf or .dot" in e.value.format()
    with pytest.raises(OutputError) as e:
        draw(ROOT / "specs" / "mlp.yaml", tmp_path / "no" / "such" / "mlp.svg")
    assert "does not exist" in e.value.message
    assert not (tmp_path / "no").exists()


def test_dot_missing_writes_dot_and_keeps_old_file(tmp_path, monkeypatch):
    out = tmp_path / "mlp.png"
    out.write_bytes(b"old picture")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GraphvizMissing) as e:
        draw(ROOT / "specs" / "mlp.yaml", out)
    assert e.value.dot_path == tmp_path / "mlp.dot"
    assert (tmp_path / "mlp.dot").read_text().startswith("digraph")
    assert out.read_bytes() == b"old picture"
    assert len(e.value.hints) == 1 and "apt install graphviz" in e.value.hints[0]


def _cli(*args, env=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "netspec", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env or os.environ.copy(), stdin=subprocess.DEVNULL)


def test_cli_draw(tmp_path):
    r = _cli("draw", "specs/resnet18.yaml", "-o", tmp_path / "r18.svg")
    assert r.returncode == 0, r.stderr
    assert "71 nodes" in r.stdout
    r = _cli("draw", "specs/resnet18.yaml", "-o", tmp_path / "r18.png", "--depth", "1", "--rankdir", "LR")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r18.png").stat().st_size > 1000


def test_cli_draw_errors(tmp_path):
    r = _cli("draw", "specs/resnet18.yaml", "-o", tmp_path / "r18.gif")
    assert r.returncode == 1
    assert r.stderr.startswith("error: cannot draw to")
    r = _cli("draw", "specs/resnet18.yaml", "-o", tmp_path / "none" / "r18.svg")
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = _cli("draw", "specs/resnet18.yaml", "-o", tmp_path / "r18.svg", "--rankdir", "XY")
    assert r.returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("netspec: 1\ninputs: {x: [N, 3]}\nlayers:\n  - {op: conv2, out: 4}\n")
    r = _cli("draw", bad, "-o", tmp_path / "bad.svg")
    assert r.returncode == 1
    assert f"{bad}:4:" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad.svg").exists()


def test_cli_draw_without_graphviz(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    r = _cli("draw", ROOT / "specs" / "mlp.yaml", "-o", tmp_path / "mlp.svg", env=env)
    assert r.returncode == 1
    assert (tmp_path / "mlp.dot").read_text().startswith("digraph")
    assert not (tmp_path / "mlp.svg").exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and "wrote its source to" in lines[0] and "install Graphviz" in lines[1]


def test_several_networks_side_by_side(tmp_path):
    out = tmp_path / "dcgan.svg"
    draw(ROOT / "specs" / "dcgan.yaml", out)
    svg = read_svg(out)
    assert {"cluster_generator/", "cluster_discriminator/"} <= set(svg["cluster"])
    draw(ROOT / "specs" / "dcgan.yaml", out, network="discriminator")
    assert all(not t.startswith("generator/") for t in read_svg(out)["node"])


def test_draw_api_is_exported_without_graphviz_import():
    code = "import sys, netspec; assert callable(netspec.draw) and callable(netspec.summary); " \
           "assert 'graphviz' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_too_many_nodes_is_refused_not_hung():
    src = ("netspec: 1\ninputs: {x: [N, 8]}\nblocks:\n  b:\n    layers:\n      - {op: linear, out: 8}\n"
           "      - {op: relu}\nlayers:\n  - {name: body, op: b, repeat: 1100}\n")
    g = netspec.expand(netspec.load(src))
    with pytest.raises(netspec.LimitError) as e:
        to_dot(g)
    assert "--depth" in e.value.format()
    assert to_dot(g, depth=0).nodes == 3                 # x, the folded repeat, the output


# -- the folding depth draw chooses for big networks (max_drawn_nodes) -------------------------------------------

def _generated(kind: str, n: int) -> str:
    sys.path.insert(0, str(ROOT / "tools" / "bench"))
    import specs
    return specs.generate(kind, n)[0]


def test_draw_opens_every_block_where_the_picture_fits():
    from netspec.draw import auto_depth
    for name in ("resnet18", "resnet152", "densenet121", "inception_v3", "unet"):
        assert auto_depth(graphs_of(ROOT / "specs" / f"{name}.yaml")) is None, name


def test_draw_folds_a_big_network_to_the_deepest_level_that_fits(tmp_path, monkeypatch):
    from netspec.draw import auto_depth
    from netspec.limits import LIMITS
    (tmp_path / "big.yaml").write_text(_generated("nested", 4096))      # blocks nested 12 deep, 4,097 nodes
    g = graphs_of(tmp_path / "big.yaml")[0]
    depth = auto_depth(g)
    assert depth is not None
    d = draw(g, tmp_path / "big.svg")
    assert d.depth == depth and d.nodes <= LIMITS.max_drawn_nodes and d.folded
    with pytest.raises(netspec.LimitError):                   # one level deeper would be over the limit
        to_dot(g, depth=depth + 1)
    # every layer is in the picture: drawn itself, or inside a folded block
    shown = {f for f in d.folded}
    assert all(n.id in d.source or any(n.id.startswith(f + ".") for f in shown) for n in g.nodes.values())
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", 100)
    smaller = auto_depth(g)
    assert smaller is not None and smaller < depth
    assert draw(g, tmp_path / "small.svg").nodes <= 100
    assert draw(g, tmp_path / "all.dot").nodes > 4000        # DOT source needs no layout: every layer, open


def _draw_cli(tmp_path, name: str) -> subprocess.CompletedProcess:
    """`netspec draw NAME.yaml -o NAME.svg` in tmp_path, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "netspec", "--no-cache", "draw", f"{name}.yaml", "-o", f"{name}.svg"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_draw_command_says_which_depth_it_chose(tmp_path):
    (tmp_path / "big.yaml").write_text(_generated("repeat", 3000))
    r = _draw_cli(tmp_path, "big")
    assert r.returncode == 0, r.stderr
    assert "1499 folded blocks (depth 1 chosen to fit max_drawn_nodes=2,000; --depth K to choose)" in r.stdout


def _fan(n: int) -> str:
    """n parallel linears from x joined by a concat: no chain to shorten, no block to fold."""
    body = "".join(f"  - {{name: b{j}, op: linear, out: 8, from: x}}\n" for j in range(n))
    return ("netspec: 1\ninputs: {x: [N, 8]}\nlayers:\n" + body +
            "  - {name: cat, op: concat, from: [" + ", ".join(f"b{j}" for j in range(n)) + "]}\n")


def test_a_wide_fan_over_the_limit_is_drawn_shortened(tmp_path, monkeypatch):
    """300 parallel linears joined by a concat: no block to fold, no chain, no unit; the middle branches are one
    box, their 294 values into the concat one edge."""
    from netspec.draw import RUN_KEEP
    from netspec.limits import LIMITS
    (tmp_path / "fan.yaml").write_text(_fan(300))
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", 200)
    d = draw(tmp_path / "fan.yaml", tmp_path / "fan.svg")
    read_svg(tmp_path / "fan.svg")
    assert d.depth is None and len(d.fans) == 1 and not d.runs and not d.units
    shown = _drawn_ids(d)
    kept = [f"b{j}" for j in range(300) if f"b{j}" in shown]
    assert kept == [f"b{j}" for j in range(RUN_KEEP)] + [f"b{j}" for j in range(300 - RUN_KEEP, 300)]
    assert {"x", "cat"} <= shown
    assert "⋯ 294 parallel branches" in d.source and "294 values of N×8" in d.source
    assert "shortened fan" in d.source
    assert d.nodes == 1 + 2 * RUN_KEEP + 1 + 1 + 1          # x, the kept branches, the fan, cat, the output
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", 400)
    d = draw(tmp_path / "fan.yaml", tmp_path / "fan.svg")
    assert d.depth is None and not d.fans and not d.runs


def _drawn_ids(d) -> set:
    """The names of the boxes of a drawing (node statements of its DOT source)."""
    import re
    out = set()
    for line in d.source.splitlines():
        m = re.match(r'\s+("([^"]+)"|([^\s"\[]+)) \[', line)
        if m and "->" not in line and not line.strip().startswith(("graph", "node", "edge")):
            out.add(m.group(2) or m.group(3))
    return out


def test_a_long_chain_written_out_is_drawn_shortened_not_refused(tmp_path, monkeypatch):
    from netspec.draw import RUN_KEEP
    from netspec.limits import LIMITS
    (tmp_path / "flat.yaml").write_text(_generated("literal", 300))
    g = graphs_of(tmp_path / "flat.yaml")[0]
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", 200)
    d = draw(g, tmp_path / "flat.svg")
    # x, the first RUN_KEEP layers, the run, the last RUN_KEEP of the chain, the layer that is the output, the output
    assert d.depth is None and len(d.runs) == 1 and d.nodes == 2 * RUN_KEEP + 1 + 3
    layers = [n.id for n in g.nodes.values() if n.op.name != "input"]
    shown = _drawn_ids(d)
    kept = [nid for nid in layers if nid in shown]
    assert kept == layers[:RUN_KEEP] + layers[-RUN_KEEP - 1:]
    assert f"⋮ {len(layers) - 2 * RUN_KEEP - 1:,} layers" in d.source          # the box counts what it stands for
    assert "shortened chain" in d.source                                       # and the legend says so
    read_svg(tmp_path / "flat.svg")                                            # Graphviz laid it out
    # where it fits, nothing is shortened; asked for, it is
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", 400)
    assert not draw(g).runs and to_dot(g, runs=True).runs


@pytest.mark.parametrize("seed", range(6))
def test_shortening_keeps_every_branch_merge_input_output_and_block(seed, monkeypatch):
    """Random long chains with skips between random layers, some inside blocks: whatever is shortened, every layer
    that has two inputs or two consumers, every input and output, and every block boundary stays drawn, and each
    layer is either drawn or counted by exactly one run box."""
    import random
    from netspec.limits import LIMITS
    rnd = random.Random(seed)
    n = rnd.randint(60, 160)
    lines = ["netspec: 1", "inputs: {x: [N, 8]}", "blocks:", "  unit:", "    layers:",
             "      - {op: linear, out: 8}", "      - {op: relu}", "layers:"]
    skips = {rnd.randrange(5, n): rnd.randrange(1, 4) for _ in range(rnd.randint(0, 4))}
    for i in range(n):
        frm = f", from: [l{i - 1}, l{i - 1 - skips[i]}]" if i in skips and i - 1 - skips[i] >= 0 else ""
        if frm:
            lines.append(f"  - {{name: l{i}, op: add{frm}}}")
        elif rnd.random() < 0.1:
            lines.append(f"  - {{name: l{i}, op: unit}}")
        else:
            lines.append(f"  - {{name: l{i}, op: {'linear, out: 8' if i % 2 else 'relu'}}}")
    g = netspec.expand(netspec.load("\n".join(lines) + "\n"))
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", 40)
    for depth in (None, 0):
        d = to_dot(g, depth=depth, runs=True, layout=False)
        shown = _drawn_ids(d)
        for nid, node in g.nodes.items():
            consumers = {s for s in g.g.successors(nid)}
            top = node.scope[0] if node.scope else nid
            visible = nid in shown or (depth == 0 and top in shown)
            if len(consumers) > 1 or len([r for r in node.inputs if r is not None]) > 1 or node.op.name == "input" \
                    or any(r[0] == nid for r in g.outputs.values()):
                assert visible, (seed, depth, nid)
        counted = 0
        import re
        for m in re.finditer(r"⋮ ([\d,]+) (layers|blocks)", d.source):
            counted += int(m.group(1).replace(",", ""))
        drawn_boxes = {nid if depth is None or not g.nodes[nid].scope else g.nodes[nid].scope[0]
                       for nid in g.nodes}
        assert counted + len(drawn_boxes & shown) == len(drawn_boxes), (seed, depth)
        assert d.runs, (seed, depth)          # the generator's chains are long enough: the test shortens something


# -- a flat network (no block to fold, no long chain): its units drawn as one box each ---------------------------

def _unit_boxes(d) -> dict:
    """unit id -> its label's 'first ... last' (the unit boxes of a drawing)."""
    import re
    return {m.group(1): (m.group(2), m.group(3)) for m in
            re.finditer(r'"([^"]+~unit)" \[[^\]]*?<B>([^<]+?) \.\.\. ([^<]+?)</B>', d.source)}


def _assert_accounted(g, d) -> None:
    """Every layer of ``g`` is a box of the drawing ``d`` or in exactly one box that stands for several (a
    shortened chain or fan, a unit), that box is drawn, and every input and failed layer is drawn as itself."""
    shown = _drawn_ids(d)
    where: dict = {}
    for box, ids in d.boxes.items():
        assert box in shown
        for nid in ids:
            assert nid not in where, (nid, box, where.get(nid))
            where[nid] = box
    for nid, n in g.nodes.items():
        assert (nid in shown) + (nid in where) == 1, nid
        if n.op.name == "input" or n.meta.get("error"):
            assert nid in shown, nid
    assert set(d.boxes) == set(d.runs) | set(d.fans) | set(d.units)


def test_a_flat_residual_network_over_the_limit_is_drawn_by_its_units(tmp_path, monkeypatch):
    from netspec.draw import RUN_KEEP
    from netspec.limits import LIMITS
    (tmp_path / "flat.yaml").write_text(_generated("flat", 802))       # 200 units of 4 layers, no block
    g = graphs_of(tmp_path / "flat.yaml")[0]
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", 100)
    with pytest.raises(netspec.LimitError):
        to_dot(g, runs=True)                  # shortening alone cannot: every add breaks the chain
    d = draw(g, tmp_path / "flat.svg")
    read_svg(tmp_path / "flat.svg")           # Graphviz laid it out
    assert d.depth is None and d.nodes <= 100
    units = _unit_boxes(d)
    assert len(units) == len(d.units) and d.units
    for first, last in units.values():        # each box one residual unit: a{i} ... s{i}
        assert first[0] == "a" and last == "s" + first[1:], (first, last)
    assert len(d.runs) == 1 and "⋮ " in d.source and " units</B>" in d.source    # the chain of units, shortened
    assert "a unit drawn as one" in d.source                                       # and the legend says so
    assert 2 * RUN_KEEP - 1 <= len(units) <= 2 * RUN_KEEP
    # where it fits, nothing is drawn as units
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", 1000)
    assert not draw(g).units


def _residual(p: str, prev: str, indent: str = "  ") -> tuple[list, list]:
    """(lines, names) of a residual unit written out: {p}a linear, {p}r relu, {p}s the add of {p}r and prev."""
    return ([f"{indent}- {{name: {p}a, op: linear, out: 8, from: {prev}}}", f"{indent}- {{name: {p}r, op: relu}}",
             f"{indent}- {{name: {p}s, op: add, from: [{p}r, {prev}]}}"], [f"{p}a", f"{p}r", f"{p}s"])


def _dense(p: str, prev: str, layers: int, indent: str = "  ") -> tuple[list, list]:
    """(lines, names) of a dense stage written out: each layer concatenates the stage so far, then {p}t."""
    lines, names, feats = [], [], [prev]
    for j in range(layers):
        lines += [f"{indent}- {{name: {p}c{j}, op: linear, out: 4, from: {feats[-1]}}}",
                  f"{indent}- {{name: {p}k{j}, op: concat, from: [{', '.join(feats)}, {p}c{j}]}}"]
        names += [f"{p}c{j}", f"{p}k{j}"]
        feats.append(f"{p}k{j}")
    return lines + [f"{indent}- {{name: {p}t, op: linear, out: 8}}"], names + [f"{p}t"]


@pytest.mark.parametrize("seed", range(8))
def test_units_account_for_every_layer_and_carry_few_values(seed, monkeypatch):
    """Random flat networks (residual units, dense stages that concatenate what came before, skips of random
    length, sometimes a second input or output) under a small limit: whatever draw does, it draws or refuses with
    a hint, never half; drawn, every layer is a box, in exactly one unit or in one run box, every input and output
    is drawn, no unit spans two containers, and no unit takes or gives more values than UNIT_MAX_LIVE."""
    import random
    from netspec.draw import UNIT_MAX_LIVE, _Plans, auto_depth
    from netspec.graph.structure import boundary
    from netspec.limits import LIMITS
    rnd = random.Random(seed)
    two_in = rnd.random() < 0.3
    lines = ["netspec: 1", "inputs: {x: [N, 8]" + (", y: [N, 8]}" if two_in else "}"), "layers:",
             "  - {name: stem, op: linear, out: 8}"]
    names = ["stem"]
    prev = "stem"
    for u in range(rnd.randint(40, 120)):
        kind = rnd.random()
        if kind < 0.5:                      # a residual unit
            got = _residual(f"u{u}", prev)
            lines += got[0]
            names += got[1]
        elif kind < 0.75:                   # a dense stage: each layer concatenates the stage so far
            got = _dense(f"d{u}", prev, rnd.randint(2, 4))
            lines += got[0]
            names += got[1]
        else:                               # a skip from a random earlier layer (or the second input)
            src = rnd.choice(names[-30:] + (["y"] if two_in else []))
            lines += [f"  - {{name: p{u}, op: linear, out: 8, from: {src}}}",
                      f"  - {{name: s{u}, op: add, from: [{prev}, p{u}]}}"]
            names += [f"p{u}", f"s{u}"]
        prev = names[-1]
    if rnd.random() < 0.3:
        lines.append(f"outputs: {{main: {prev}, side: {rnd.choice(names[-40:-5])}}}")
    g = netspec.expand(netspec.load("\n".join(lines) + "\n"))
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", rnd.choice([30, 60, 120]))
    plans = _Plans()
    depth = auto_depth(g, plans)
    try:
        d = to_dot(g, depth=depth, plans=plans)
    except netspec.LimitError as e:
        assert e.hints and "summary" in e.hints[0] and "--depth" not in e.hints[0]     # no block to fold
        assert plans.units(g, None) is None
        return
    _assert_accounted(g, d)
    got = plans.units(g, None)
    units = got[3] if got is not None and d.units else {}
    for uid, ms in units.items():
        ins, outs = boundary(g, ms)
        assert len(ins) <= UNIT_MAX_LIVE and len(outs) <= UNIT_MAX_LIVE, (seed, uid, ins, outs)
        assert len({g.nodes[m].scope for m in ms}) == 1
        assert len(ms) >= 2
    if units:
        # the seams, worked out here the slow way: the values made at or before each position and read after it
        order = list(g.nodes)
        at = {nid: i for i, nid in enumerate(order)}
        read_last: dict = {}
        for n in g.nodes.values():
            for r in n.inputs:
                read_last[tuple(r)] = max(read_last.get(tuple(r), -1), at[n.id])
        for r in g.outputs.values():
            read_last[tuple(r)] = len(order)
        live = [sum(1 for r, b in read_last.items() if at[r[0]] <= i < b) for i in range(len(order))]
        spans = [(at[ms[0]], at[ms[-1]]) for ms in units.values()]
        # one bound for all: each unit's seams carry at most that many values, every cut inside it more
        bound = max(max(live[a - 1], live[b]) for a, b in spans)
        assert bound <= UNIT_MAX_LIVE, seed
        assert all(min(live[a:b]) > bound for a, b in spans if b > a), seed
        assert all(list(units[u]) == order[at[units[u][0]]:at[units[u][-1]] + 1] for u in units)   # consecutive


def test_a_flat_network_refused_gets_a_hint_it_can_use(tmp_path):
    """A random DAG of long skips: no block, no chain, no unit; the refusal does not suggest folding blocks."""
    import random
    rnd = random.Random(1)
    lines = ["netspec: 1", "inputs: {x: [N, 8]}", "layers:", "  - {name: l0, op: linear, out: 8}"]
    for i in range(1, 1500):
        lines.append(f"  - {{name: l{i}, op: add, from: [l{i - 1}, l{rnd.randrange(0, i)}]}}")
    (tmp_path / "skips.yaml").write_text("\n".join(lines) + "\n")
    r = _draw_cli(tmp_path, "skips")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "skips.yaml:" in r.stderr and "max_layout_cost" in r.stderr
    assert "'netspec summary' lists every layer" in r.stderr and "--depth" not in r.stderr
    assert not (tmp_path / "skips.svg").exists()
    with pytest.raises(netspec.LimitError) as e:          # and from the library, located in the file
        draw(tmp_path / "skips.yaml", tmp_path / "skips.svg")
    assert str(e.value.loc).startswith(str(tmp_path / "skips.yaml"))
    assert any("--limit max_layout_cost=" in h for h in e.value.hints)
    assert not (tmp_path / "skips.svg").exists()


@pytest.mark.parametrize("seed", range(8))
def test_fans_hold_whole_parallel_branches(seed, monkeypatch):
    """Random networks with wide fans (branches of one to three layers, some fans inside a block, some branches
    also read elsewhere or an output) under a small limit: drawn, every layer is accounted for once, and each fan
    box holds whole branches that all take the same inputs and feed the same layers, as many as its label says."""
    import random
    import re
    from netspec.limits import LIMITS
    rnd = random.Random(seed)
    lines = ["netspec: 1", "inputs: {x: [N, 8]}", "blocks:", "  fan:", "    layers:"]
    body = [f"      - {{name: p{j}, op: linear, out: 4, from: x}}" for j in range(rnd.randint(9, 30))]
    lines += body + ["      - {name: cat, op: concat, from: [" +
                     ", ".join(f"p{j}" for j in range(len(body))) + "]}", "layers:", "  - {name: stem, op: linear, out: 8}"]
    prev, outs = "stem", []
    for f in range(rnd.randint(2, 5)):
        if rnd.random() < 0.3:
            lines.append(f"  - {{name: blk{f}, op: fan, from: {prev}}}")
            lines.append(f"  - {{name: q{f}, op: linear, out: 8}}")
            prev = f"q{f}"
            continue
        width = rnd.randint(8, 80)
        ends = []
        for j in range(width):
            a = f"f{f}_{j}"
            lines.append(f"  - {{name: {a}, op: linear, out: 4, from: {prev}}}")
            for k in range(rnd.randint(0, 2)):
                lines.append(f"  - {{name: {a}_{k}, op: {rnd.choice(['relu', 'tanh', 'sigmoid'])}}}")
                a = f"{a}_{k}"
            ends.append(a)
        if rnd.random() < 0.3:
            outs.append(rnd.choice(ends))
        lines.append(f"  - {{name: m{f}, op: concat, from: [{', '.join(ends)}]}}")
        lines.append(f"  - {{name: q{f}, op: linear, out: 8}}")
        if rnd.random() < 0.3:
            lines.append(f"  - {{name: side{f}, op: linear, out: 8, from: {rnd.choice(ends)}}}")
            lines.append(f"  - {{name: j{f}, op: add, from: [q{f}, side{f}]}}")
            prev = f"j{f}"
        else:
            prev = f"q{f}"
    if outs:
        lines.append("outputs: {main: " + prev + ", " + ", ".join(f"o{k}: {o}" for k, o in enumerate(outs)) + "}")
    g = netspec.expand(netspec.load("\n".join(lines) + "\n"))
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", rnd.choice([40, 80]))
    d = draw(g)
    _assert_accounted(g, d)
    assert d.fans, seed                   # the generator's fans are wide: the test shortens one
    users = g.users()
    for fid in d.fans:
        ids = set(d.boxes[fid])
        comps: list = []                  # the branches: connected pieces of the box
        seen: set = set()
        for nid in d.boxes[fid]:
            if nid in seen:
                continue
            comp, todo = set(), [nid]
            while todo:
                u = todo.pop()
                if u in comp:
                    continue
                comp.add(u)
                todo += [r[0] for r in g.nodes[u].inputs if r is not None and r[0] in ids]
                todo += [v for v in users.get(u, ()) if v in ids]
            seen |= comp
            comps.append(comp)
        sig = set()
        for comp in comps:
            ins = frozenset(r[0] for u in comp for r in g.nodes[u].inputs if r is not None and r[0] not in comp)
            outs_ = frozenset(v for u in comp for v in users.get(u, ()) if v not in comp)
            sig.add((ins, outs_))
        assert len(sig) == 1, (seed, fid, sig)
        label = re.search(r'"' + re.escape(fid) + r'" \[[^\]]*?⋯ ([\d,]+) parallel branches', d.source)
        assert label and int(label.group(1).replace(",", "")) == len(comps), (seed, fid)


def test_draw_command_says_it_drew_units(tmp_path):
    (tmp_path / "flat.yaml").write_text(_generated("flat", 12002))
    r = _draw_cli(tmp_path, "flat")
    assert r.returncode == 0, r.stderr
    assert "units of the network drawn as one box each" in r.stdout and "1 long chain" in r.stdout


@pytest.mark.parametrize("seed", range(12))
def test_any_mix_is_drawn_whole_or_refused(seed, monkeypatch):
    """Random networks mixing blocks (some repeated, some with a fan or a residual inside), residual units, dense
    stages, fans and skips, a second network in the file now and then, under random small limits: draw either
    refuses with a located LimitError, or every layer is accounted for once, every edge joins two drawn boxes, and
    no box is drawn twice."""
    import random
    import re
    from netspec.draw import _Plans, auto_depth
    from netspec.limits import LIMITS
    rnd = random.Random(1000 + seed)

    def body(prefix: str, n: int, names: list, indent: str) -> list:
        out = []
        prev = names[-1]
        for u in range(n):
            kind = rnd.random()
            p = f"{prefix}{u}"
            if kind < 0.3:
                got = _residual(p, prev, indent)
                out += got[0]
                names += got[1]
            elif kind < 0.45:
                got = _dense(p, prev, rnd.randint(2, 3), indent)
                out += got[0]
                names += got[1]
            elif kind < 0.6:
                w = rnd.randint(3, 40)
                out += [f"{indent}- {{name: {p}f{j}, op: linear, out: 2, from: {prev}}}" for j in range(w)]
                out.append(f"{indent}- {{name: {p}m, op: concat, from: [{', '.join(f'{p}f{j}' for j in range(w))}]}}")
                out.append(f"{indent}- {{name: {p}q, op: linear, out: 8}}")
                names += [f"{p}f{j}" for j in range(w)] + [f"{p}m", f"{p}q"]
            elif kind < 0.8 and indent == "  ":
                rep = f", repeat: {rnd.randint(2, 6)}" if rnd.random() < 0.4 else ""
                out.append(f"{indent}- {{name: {p}b, op: {rnd.choice(['blk', 'fanblk'])}, from: {prev}{rep}}}")
                names.append(f"{p}b")
            else:
                src = rnd.choice(names[-25:])
                out += [f"{indent}- {{name: {p}p, op: linear, out: 8, from: {src}}}",
                        f"{indent}- {{name: {p}s, op: add, from: [{prev}, {p}p]}}"]
                names += [f"{p}p", f"{p}s"]
            prev = names[-1]
        return out

    blocks = ["blocks:", "  blk:", "    layers:", "      - {name: a, op: linear, out: 8}", "      - {name: r, op: relu}",
              "      - {name: s, op: add, from: [r, x]}",
              "  fanblk:", "    layers:"] + [f"      - {{name: f{j}, op: linear, out: 2, from: x}}" for j in range(12)] + \
        ["      - {name: m, op: concat, from: [" + ", ".join(f"f{j}" for j in range(12)) + "]}",
         "      - {name: q, op: linear, out: 8}"]
    nets = 2 if rnd.random() < 0.25 else 1
    lines = ["netspec: 1"] + blocks
    if nets == 1:
        lines += ["inputs: {x: [N, 8]}", "layers:", "  - {name: stem, op: linear, out: 8}"]
        lines += body("u", rnd.randint(20, 70), ["stem"], "  ")
    else:
        lines.append("networks:")
        for k in range(nets):
            lines += [f"  n{k}:", "    inputs: {x: [N, 8]}", "    layers:", "      - {name: stem, op: linear, out: 8}"]
            lines += body("u", rnd.randint(15, 40), ["stem"], "      ")
    spec = netspec.load("\n".join(lines) + "\n")
    graphs = [netspec.expand(spec, n) for n in spec.networks]
    monkeypatch.setattr(LIMITS, "max_drawn_nodes", rnd.choice([25, 50, 100, 200]))
    plans = _Plans()
    depth = auto_depth(graphs, plans)
    try:
        d = to_dot(graphs, depth=depth, plans=plans)
    except netspec.LimitError as e:
        assert e.loc is not None and e.hints
        return
    node_lines = [m.group(1) for m in re.finditer(r'^\s+"?([^"\s\[]+)"? \[', d.source, re.M)
                  if not m.group(1).startswith(("graph", "node", "edge"))]
    assert len(node_lines) == len(set(node_lines)), seed          # no box drawn twice
    shown = set(node_lines)
    for m in re.finditer(r'^\s+"?([^"\s]+)"? -> "?([^"\s\[]+)"?', d.source, re.M):
        assert m.group(1) in shown and m.group(2) in shown, (seed, m.group(0))
    for g in graphs:
        prefix = f"{g.name}/" if len(graphs) > 1 else ""
        boxes = {b: [prefix + i for i in ids] if prefix else ids for b, ids in d.boxes.items() if b.startswith(prefix)}
        where: dict = {}
        for b, ids in boxes.items():
            for nid in ids:
                assert nid not in where, (seed, nid)
                where[nid] = b
        for nid, n in g.nodes.items():
            full = prefix + nid
            top = prefix + n.scope[depth] if depth is not None and len(n.scope) > depth else None
            assert (full in shown) + (full in where) + (top is not None and top in shown and full not in where) == 1, \
                (seed, full)
