"""The graph as data: `netspec export --format json`, its JSON Schema, and reading it back."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from netspec.pipeline import graph, graphs
from netspec.graph.data import GraphDataError, graph_from_json, graph_schema, to_data, to_json

jsonschema = pytest.importorskip("jsonschema")
ROOT = Path(__file__).parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def _run(*argv, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "netspec", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def validator():
    schema = graph_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    return jsonschema.Draft202012Validator(schema)


def _graphs(path):
    return graphs(str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_bundled_spec_exports_valid_and_round_trips(path, validator, monkeypatch):
    monkeypatch.chdir(ROOT)
    for g in _graphs(path):
        text = to_json(g)
        data = json.loads(text)
        errors = list(validator.iter_errors(data))
        assert not errors, errors[0].message
        back = graph_from_json(text)
        # the loaded graph is the expanded one: same nodes in the same order, ops, shapes, counts, edges, locations
        assert list(back.nodes) == list(g.nodes)
        for nid, n in g.nodes.items():
            b = back.nodes[nid]
            assert b.op == n.op.name
            assert [str(t) for t in b.outputs] == [str(t) for t in n.out]
            assert [str(t) for t in b.inputs] == [str(t) for t in n.meta["in"]]
            assert str(b.parameters) == str(n.counts()[0]) and str(b.macs) == str(n.meta.get("macs", 0))
            assert b.loc == n.loc
        # every input slot's value (not networkx's edges: a DiGraph keeps one edge per pair of nodes, and an LSTM's
        # h and c, or an FPN's levels, reach one consumer through several slots)
        assert sorted(back.edges) == sorted(((ref[0], ref[1]), (n.id, slot)) for n in g.nodes.values()
                                            for slot, ref in enumerate(n.inputs) if ref is not None)
        assert {k: str(t) for k, t in back.outputs.items()} == {k: str(t) for k, t in g.output_types().items()}
        assert {k: str(t) for k, t in back.inputs.items()} == {k: str(t) for k, t in g.input_types().items()}
        assert back.requirements == [r.text for r in g.requirements]
        assert data["totals"]["parameters"] == g.num_params()
        assert back.to_json() == text                     # re-export is byte-identical


def test_the_loader_is_public_api():
    import netspec
    assert netspec.graph_from_json is graph_from_json and netspec.graph_to_json is to_json


def test_shapes_stay_symbolic_or_bind_to_numbers(monkeypatch):
    monkeypatch.chdir(ROOT)
    data = to_data(graph("specs/resnet18.yaml"))
    first = data["nodes"][0]
    assert first["name"] == "x" and first["outputs"] == [{"shape": ["N", 3, "H", "W"], "dtype": "float32"}]
    conv1 = next(n for n in data["nodes"] if n["name"] == "conv1")
    assert conv1["op"] == "conv2d" and conv1["params"]["out"] == 64 and conv1["params"]["kernel"] == 7
    assert conv1["parameters"] == 64 * 3 * 7 * 7 and conv1["weights"] == {"weight": {"shape": [64, 3, 7, 7],
                                                                                      "kind": "param"}}
    assert conv1["loc"]["file"] == "specs/resnet18.yaml" and conv1["loc"]["line"] > 1
    assert isinstance(conv1["macs"], str) and "H" in conv1["macs"]
    inner = next(n for n in data["nodes"] if n["name"] == "layer1.0.conv1")
    assert inner["exprs"] == {"out": "planes", "stride": "stride"} and inner["scope"] == ["layer1", "layer1.0"]
    assert {"from": {"node": "conv1", "output": 0}, "to": {"node": "bn1", "input": 0}} in data["edges"]
    bound = to_data(graph("specs/resnet18.yaml", bind={"N": 1, "H": 224, "W": 224}))
    assert [o["shape"] for o in bound["outputs"].values()] == [[1, 1000]]
    assert all(isinstance(n["macs"], int) for n in bound["nodes"])
    assert sum(n["macs"] for n in bound["nodes"]) == 1_814_073_344      # torchvision's 1.81 GFLOPS


def test_cli_writes_the_document_and_the_schema(tmp_path):
    r = _run("export", "specs/mlp.yaml", "-o", str(tmp_path / "g.json"))       # format from the suffix
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.json").read_text() == _graph_rel("specs/mlp.yaml")
    r = _run("export", "specs/mlp.yaml", "--format", "json", "-o", "-")
    assert r.returncode == 0 and r.stdout == (tmp_path / "g.json").read_text()
    r = _run("schema", "--graph")
    assert r.returncode == 0 and json.loads(r.stdout) == graph_schema()


def _graph_rel(p):
    import os
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        return to_json(graph(p))
    finally:
        os.chdir(old)


def test_cli_needs_a_network_for_a_file_with_several(tmp_path):
    r = _run("export", "specs/dcgan.yaml", "-o", str(tmp_path / "g.json"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("specs/dcgan.yaml:1:1: error: specs/dcgan.yaml has 2 networks")
    assert "--network" in r.stderr
    assert not (tmp_path / "g.json").exists()
    r = _run("export", "specs/dcgan.yaml", "--network", "discriminator", "-o", str(tmp_path / "g.json"))
    assert r.returncode == 0 and json.loads((tmp_path / "g.json").read_text())["network"] == "discriminator"


@pytest.mark.parametrize("argv,needle", [
    (["--format", "xml"], "unknown format 'xml'"),
    (["--format", "json", "--opset", "17"], "holds no weights or opset"),
])
def test_cli_usage_errors(argv, needle, tmp_path):
    r = _run("export", "specs/mlp.yaml", "-o", str(tmp_path / "g.json"), *argv)
    assert r.returncode == 2 and needle in r.stderr and not (tmp_path / "g.json").exists()


def test_a_spec_error_is_located_and_nothing_written(tmp_path):
    (tmp_path / "bad.yaml").write_text("netspec: 1\nname: bad\ninputs: {x: [N, 4]}\nlayers:\n  - {op: linear, out: 3}\n"
                                       "  - {op: conv2d, out: 4, kernel: 3}\n")
    r = _run("export", "bad.yaml", "-o", "g.json", cwd=tmp_path)
    assert r.returncode == 1 and re.match(r"bad\.yaml:6:\d+: error: ", r.stderr), r.stderr
    assert not (tmp_path / "g.json").exists()


def test_docs_publish_the_schema_and_a_true_example(tmp_path, monkeypatch):
    doc = (ROOT / "docs" / "graph-json.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", doc, re.S)
    assert any(json.loads(b) == graph_schema() for b in blocks), "docs/graph-json.md must hold the schema as it is"
    example = next(b for b in blocks if '"netspec-graph"' in b and '"$schema"' not in b)
    jsonschema.Draft202012Validator(graph_schema()).validate(json.loads(example))
    (tmp_path / "tiny.yaml").write_text(re.findall(r"```yaml\n(.*?)```", doc, re.S)[0])
    monkeypatch.chdir(tmp_path)
    assert to_json(graph("tiny.yaml")) == example           # what the doc shows is what export writes


# -- reading hostile documents: a located GraphDataError, never a traceback --------------------------------------

def _doc():
    return json.loads(_graph_rel("specs/mlp.yaml"))


def _mutate(f):
    d = _doc()
    f(d)
    return d


@pytest.mark.parametrize("bad,needle", [
    ("not json {", "not JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("[1, 2]", "not a netspec graph document"),
    ('{"format": "netspec-graph", "version": 99}', "version 99"),
    (_mutate(lambda d: d["nodes"][1].pop("op")), "does not fit its schema at .nodes[1]"),
    (_mutate(lambda d: d["nodes"][1].update(outputs=[{"shape": [-1], "dtype": "float32"}])), "does not fit"),
    (_mutate(lambda d: d["nodes"][1]["outputs"][0].update(dtype="complex")), "does not fit"),
    (_mutate(lambda d: d["edges"].append({"from": {"node": "nowhere", "output": 0}, "to": {"node": "x", "input": 0}})),
     "names the node 'nowhere'"),
    (_mutate(lambda d: d["edges"][0]["from"].update(output=5)), "an output or input its node does not have"),
    (_mutate(lambda d: d["nodes"].append(dict(d["nodes"][0]))), "two nodes have the same name"),
    (_mutate(lambda d: d.update(extra=1)), "does not fit"),
    # what the schema cannot say: the parts of the document agree
    (_mutate(lambda d: d["edges"].append(dict(d["edges"][1]))), "feeds already"),
    (_mutate(lambda d: d["edges"].pop(1)), "is fed by no edge"),
    (_mutate(lambda d: d["nodes"][1]["inputs"][0].update(shape=["N", 65])), "which says it takes [N, 65]"),
    (_mutate(lambda d: (d["edges"].__setitem__(0, {"from": {"node": d["nodes"][-1]["name"], "output": 0},
                                                  "to": d["edges"][0]["to"]}),
                        d["nodes"][1]["inputs"].__setitem__(0, d["nodes"][-1]["outputs"][0]))), "make a cycle"),
    (_mutate(lambda d: d["outputs"]["out"].update(node="x")), "but 'x' gives"),
    (_mutate(lambda d: d["outputs"]["out"].update(node="gone")), "names the node 'gone'"),
    (_mutate(lambda d: d["nodes"][1].update(parameters=1)), "says 1 parameters, but its weights hold 8,320"),
])
def test_hostile_documents_are_refused(bad, needle):
    text = bad if isinstance(bad, str) else json.dumps(bad)
    with pytest.raises(GraphDataError) as e:
        graph_from_json(text, name="g.json")
    assert needle in e.value.message and str(e.value.loc).startswith("g.json:")
