"""Compile: generated source (golden files), the built module, the standalone file, weights and the CLI.

Regenerate the golden files after an intended change with ``NETSPEC_UPDATE_GOLDEN=1 pytest tests/test_codegen.py``.
"""
from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch

import netspec
from netspec import expand, load
from netspec.codegen.build import build, compile_source, exec_source, top_class_name
from netspec.codegen.source import generate, ident, is_attr_name
from netspec.errors import NetspecError, WeightsError
from netspec.weights import load_weights, save_weights

from codegen_helpers import (ROOT, bundled, case_id, expected_keys, golden_path, import_file, make_inputs, outputs,
                             small_bindings, small_params)

CASES = bundled()
UPDATE = os.environ.get("NETSPEC_UPDATE_GOLDEN") == "1"

TINY = """
netspec: 1
name: tiny
params: {width: 8}
inputs: {x: [N, 3, H, W]}
blocks:
  basic:
    params: {planes: int, stride: 1}
    layers:
      - {name: conv1, op: conv2d, out: planes, kernel: 3, stride: stride, padding: 1, bias: false}
      - {name: relu, op: relu}
      - {name: conv2, op: conv2d, out: planes, kernel: 3, padding: 1, bias: false}
      - {name: downsample, op: conv2d, from: x, out: planes, kernel: 1, stride: stride, bias: false,
         if: "stride != 1 or channels(x) != planes"}
      - {name: add, op: add, from: [conv2, downsample]}
      - {name: relu2, op: relu, share: relu}
layers:
  - {name: stem, op: conv2d, out: width, kernel: 3, stride: 2, padding: 1}
  - {name: layer1, op: basic, repeat: 2, planes: width}
  - {name: layer2, op: basic, repeat: 2, planes: "width * 2", stride: "2 if i == 0 else 1"}
  - {name: pool, op: global_avg_pool, flatten: true}
  - {name: fc, op: linear, out: 10}
"""

# holders (a seq and a repeat that are not plain chains), params and buffers, a two-input two-output block,
# weight sharing of a conv, an RNN with several outputs, several named inputs and outputs
EDGES = """
netspec: 1
name: edge_case_net
doc: "A doc with \\"quotes\\", a backslash \\\\ and a\\nnewline; import os"
inputs: {x: [N, 3, H, W], tokens: {shape: [N, T], dtype: int64}}
blocks:
  pair:
    inputs: [a, b]
    params: {w: 8}
    layers:
      - {name: ca, op: conv2d, from: a, out: w, kernel: 1}
      - {name: cb, op: conv2d, from: b, out: w, kernel: 1}
      - {name: s, op: add, from: [ca, cb]}
      - {name: r, op: relu, from: s}
    outputs: {sum: r, left: ca}
  plain:
    layers:
      - {op: conv2d, out: 8, kernel: 3, padding: 1}
      - {op: relu}
layers:
  - {name: stem, op: conv2d, out: 8, kernel: 3, padding: 1}
  - {name: scale, op: param, shape: [1, 8, 1, 1], init: ones}
  - {name: offset, op: buffer, shape: [1, 8, 1, 1], init: constant, value: 0.5}
  - {name: scaled, op: multiply, from: [stem, scale]}
  - {name: shifted, op: add, from: [scaled, offset]}
  - name: body
    op: seq
    layers:
      - {op: conv2d, out: 8, kernel: 3, padding: 1}
      - {name: act, op: relu}
      - {op: add, from: [act, shifted]}
  - {name: twin, op: pair, from: [body, stem]}
  - {name: again, op: conv2d, from: twin.sum, out: 8, kernel: 3, padding: 1}
  - {name: again2, op: conv2d, out: 8, kernel: 3, padding: 1, share: again}
  - {name: rep, op: plain, repeat: 3}
  - {name: deep, op: pair, repeat: 2, from: [rep, stem]}
  - {name: emb, op: embedding, from: tokens, num: 10, out: 16}
  - {name: lstm, op: lstm, from: emb, hidden: 12}
  - {name: gru, op: gru, from: lstm.out, hidden: 6}
outputs: {img: deep, seq: gru.out, h: lstm.h, left: twin.left}
"""

# a block passing an input through, blocks whose only layer is switched off by 'if'
PASSTHROUGH = """
netspec: 1
name: passthrough
inputs: {x: [N, 4, H, W]}
blocks:
  both:
    inputs: [a, b]
    layers:
      - {name: c, op: conv2d, from: a, out: 4, kernel: 1}
    outputs: {y: c, same: b}
  maybe:
    params: {enabled: false}
    layers:
      - {name: c, op: conv2d, out: 4, kernel: 1, if: enabled}
layers:
  - {name: pre, op: conv2d, out: 4, kernel: 1}
  - {name: blk, op: both, from: [pre, x]}
  - {name: post, op: add, from: [blk.y, blk.same, x]}
  - {name: skip1, op: maybe}
  - {name: kept, op: maybe, enabled: true}
  - {name: skip2, op: maybe, from: x}
  - {name: fin, op: add, from: [skip1, kept, skip2]}
"""

# two networks in one file, each with a block called 'up' of a different body
TWO = """
netspec: 1
name: pair
blocks:
  up:
    params: {out: int}
    layers:
      - {name: conv, op: conv2d, out: out, kernel: 3, padding: 1}
      - {name: act, op: relu}
networks:
  gen:
    inputs: {z: [N, 4, H, W]}
    layers:
      - {name: a, op: up, out: 8}
      - {name: b, op: up, out: 3}
  disc:
    inputs: {img: [N, 3, H, W]}
    layers:
      - {name: a, op: up, out: 8}
      - {name: pool, op: global_avg_pool, flatten: true}
      - {name: fc, op: linear, out: 1}
"""


def _graph(text_or_path, network=None):
    return expand(load(text_or_path), network)


def _run(model, graph, bindings=None, seed=0):
    bindings = bindings or {"N": 2, "H": 16, "W": 16, "T": 5}
    ins = make_inputs(graph, bindings, seed)
    return model(**ins)


# -- golden source per bundled spec ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_golden_source(case):
    path, network = case
    src = compile_source(path, network or None)
    gp = golden_path(case)
    if UPDATE:
        gp.parent.mkdir(exist_ok=True)
        gp.write_text(src, encoding="utf-8")
    assert gp.exists(), f"no golden file {gp.name}: run NETSPEC_UPDATE_GOLDEN=1 pytest tests/test_codegen.py"
    assert src == gp.read_text(encoding="utf-8"), \
        f"{gp.name} differs from the generated source; if the change is intended, regenerate with NETSPEC_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_file_class_matches_built_module(case, tmp_path):
    """The class in the written file loads the built module's state_dict strictly and computes the same outputs."""
    path, network = case
    spec = load(path)
    params = small_params(path)
    b = small_bindings(spec, network, params)
    g = expand(spec, network, params=params)
    model = build(g).eval()
    f = tmp_path / "model_file.py"
    f.write_text(generate(g), encoding="utf-8")
    mod = import_file(f, f"netspec_test_{case_id(case).replace('.', '_')}")
    cls = getattr(mod, top_class_name(f.read_text()))
    with torch.device("meta"):       # no second initialisation: the weights come from the built module
        other = cls()
    other.load_state_dict(model.state_dict(), strict=True, assign=True)
    if any(t.is_meta for t in list(other.parameters()) + list(other.buffers())):
        other = cls()                # non-persistent buffers (not in the state_dict) need a real construction
        other.load_state_dict(model.state_dict(), strict=True)
    other.eval()
    ins = make_inputs(g, b)
    with torch.no_grad():          # the same seed for both: a network may draw random numbers (a VAE's noise)
        torch.manual_seed(0)
        ya = outputs(model(**ins))
        torch.manual_seed(0)
        yb = outputs(other(**ins))
    assert len(ya) == len(yb)
    for a, c in zip(ya, yb):
        assert torch.equal(a, c)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_state_dict_keys_are_node_ids(case):
    path, network = case
    g = _graph(path, network or None)
    model = build(g, device="meta")
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == expected_keys(g)
    assert sum(p.numel() for p in model.parameters()) == g.num_params()


# -- the generated source ------------------------------------------------------------------------------------

def test_tiny_source_reads_like_torchvision():
    src = compile_source(TINY)
    # one class for every instance: the optional projection is None where its condition is false
    assert "class Basic(nn.Module):" in src and "class Basic2" not in src
    assert "def __init__(self, in_channels, planes, stride=1):" in src
    assert "if stride != 1 or in_channels != planes\n            else None" in src
    assert "if self.downsample is not None:" in src
    assert "class Tiny(nn.Module):" in src and "def __init__(self, width=8):" in src
    assert "nn.Conv2d(3, width, kernel_size=3, stride=2, padding=1)" in src      # the spec's own names
    assert "self.layer1 = nn.Sequential(*[Basic(width, width) for _ in range(2)])" in src
    assert "Basic(width, width * 2, stride=2)" in src
    assert "out = self.relu(out)" in src             # the shared module is called twice, created once
    assert src.count("self.relu = nn.ReLU(") == 1         # once in the block class, not once per call
    assert "x = self.layer2(x)  # (N, 16, ceil(H/4), ceil(W/4))  <text>:" in src   # chains reuse the variable
    assert "out += x" in src                           # the residual accumulates into the conv's output
    for line in src.splitlines():
        assert not line.startswith(("from netspec", "import netspec"))
    imports = [ln for ln in src.splitlines() if ln.startswith(("import ", "from "))]
    assert imports == ["import torch", "from torch import nn"]      # no unused imports
    assert max(len(ln) for ln in src.splitlines()) <= 100


def test_source_is_deterministic():
    a = compile_source(EDGES)
    b = compile_source(EDGES)
    assert a == b
    ast.parse(a)


def test_hostile_text_reaches_source_only_escaped():
    src = compile_source(EDGES)
    tree = ast.parse(src)
    top = [n for n in tree.body if isinstance(n, ast.ClassDef)][-1]
    assert top.name == "EdgeCaseNet"
    assert ast.get_docstring(top) == 'A doc with "quotes", a backslash \\ and a newline; import os'
    # nothing but the imports and class definitions at module level
    kinds = {type(n).__name__ for n in tree.body}
    assert kinds <= {"Expr", "Import", "ImportFrom", "ClassDef"}
    assert [n for n in tree.body if isinstance(n, ast.Expr)] == [tree.body[0]]   # the module docstring only


@pytest.mark.parametrize("name,ok", [("conv1", True), ("x", True), ("0", False), ("forward", False), ("self", True),
                                      ("class", False), ("_hidden", False), ("training", False), ("état", False)])
def test_attribute_names(name, ok):
    assert is_attr_name(name) is ok


@pytest.mark.parametrize("name,want", [("x", "x"), ("self", "self_"), ("torch", "torch_"), ("nn", "nn_"),
                                       ("F", "F_"), ("input", "input_"), ("lambda", "lambda_"), ("0", "h0"),
                                       ("a.b", "a_b"), ("a-b c", "a_b_c"), ("", "h"), ("print", "print_")])
def test_identifiers_are_sanitised(name, want):
    assert ident(name, set()) == want


def test_identifiers_are_unique():
    taken: set = set()
    assert [ident("x", taken) for _ in range(3)] == ["x", "x_2", "x_3"]


def test_edges_build_run_and_match_the_file(tmp_path):
    g = _graph(EDGES)
    model = build(g)
    y = _run(model, g)
    assert list(y) == ["img", "seq", "h", "left"]
    assert tuple(y["img"].shape) == (2, 8, 16, 16) and tuple(y["seq"].shape) == (2, 5, 6)
    sum(v.float().sum() for v in y.values()).backward()
    assert all(p.grad is not None for p in model.parameters())
    # the shared conv is one module: its weight once in the parameters and the state_dict
    assert model.again is not None and "again2.weight" not in model.state_dict()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected_keys(g)
    assert torch.equal(model.offset, torch.full((1, 8, 1, 1), 0.5))
    f = tmp_path / "edges.py"
    f.write_text(generate(g))
    other = import_file(f, "netspec_test_edges").EdgeCaseNet()
    other.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        a, b = _run(model.eval(), g, seed=1), _run(other.eval(), g, seed=1)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_single_output_returns_the_tensor_and_blocks_return_tuples():
    g = _graph(EDGES)
    model = build(g)
    x = torch.randn(2, 8, 4, 4)
    out = model.twin(x, x)
    assert isinstance(out, tuple) and len(out) == 2
    tiny = build(TINY)
    y = tiny(torch.randn(1, 3, 16, 16))
    assert isinstance(y, torch.Tensor) and tuple(y.shape) == (1, 10)


def test_traceback_points_at_the_generated_line():
    model = build(TINY)
    with pytest.raises(RuntimeError) as ei:
        model(torch.randn(1, 4, 16, 16))       # 4 channels where the spec says 3
    frames = traceback.extract_tb(ei.value.__traceback__)
    ours = [f for f in frames if f.filename.startswith("<netspec:tiny:")]
    assert ours, [f.filename for f in frames]
    assert ours[-1].line.startswith("x = self.stem(x)")


def test_build_device_dtype_and_meta():
    m = build(TINY, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in m.parameters())
    assert m(torch.randn(1, 3, 8, 8, dtype=torch.float64)).dtype == torch.float64
    meta = build(TINY, device="meta")
    assert all(p.is_meta for p in meta.parameters())


def test_build_params_and_api_wrappers():
    m = netspec.build(TINY, width=4)
    assert m.stem.out_channels == 4
    assert "class Tiny(nn.Module)" in netspec.compile_source(TINY, width=4)


def test_import_netspec_does_not_import_torch():
    code = "import sys, netspec; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# -- the standalone file --------------------------------------------------------------------------------------

def test_compiled_resnet18_imports_without_netspec(tmp_path):
    from netspec.cli import main
    out = tmp_path / "r18.py"
    assert main(["compile", str(ROOT / "specs" / "resnet18.yaml"), "-o", str(out), "--quiet"]) == 0
    code = (
        "import os, sys\n"
        f"sys.path[:] = [{str(tmp_path)!r}] + [p for p in sys.path if p and not os.path.isdir(p + '/netspec')]\n"
        "sys.modules['netspec'] = None   # any 'import netspec' now fails\n"
        "import torch, r18\n"
        "m = r18.Resnet18().eval()\n"
        "with torch.no_grad():\n"
        "    print(tuple(m(torch.randn(1, 3, 64, 64)).shape), sum(p.numel() for p in m.parameters()))\n"
        "assert not any(k.startswith('netspec') and v is not None for k, v in sys.modules.items())\n"
    )
    r = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(1, 1000) 11689512"


def test_cli_compile_writes_and_reports(tmp_path, capsys):
    from netspec.cli import main
    out = tmp_path / "model.py"
    assert main(["compile", str(ROOT / "specs" / "resnet18.yaml"), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}: class Resnet18, 11,689,512 parameters"
    assert out.read_text() == compile_source(ROOT / "specs" / "resnet18.yaml")
    assert main(["compile", str(ROOT / "specs" / "resnet18.yaml"), "-o", str(out), "--param", "num_classes=10",
                 "--class-name", "Net"]) == 0
    text = out.read_text()
    assert "class Net(nn.Module)" in text and "def __init__(self, num_classes=10):" in text
    assert "nn.Linear(512, num_classes" in text
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_compile_errors_exit_1(tmp_path, capsys):
    from netspec.cli import main
    bad = tmp_path / "bad.yaml"
    bad.write_text("netspec: 1\ninputs: {x: [N, 3]}\nlayers:\n  - {op: conv2d, out: 4, kernel: 3}\n")
    out = tmp_path / "model.py"
    assert main(["compile", str(bad), "-o", str(out)]) == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert "bad.yaml:4" in err and "error" in err


# -- weights ----------------------------------------------------------------------------------------------------

def test_weights_roundtrip_safetensors_and_torch(tmp_path):
    a, b = build(TINY), build(TINY)
    save_weights(a, tmp_path / "w.safetensors")
    load_weights(b, tmp_path / "w.safetensors")
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    c = build(TINY)
    torch.save(a.state_dict(), tmp_path / "w.pt")
    netspec.load_weights(c, tmp_path / "w.pt")
    assert all(torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())
    assert not list(tmp_path.glob(".*.tmp"))


def test_weights_mismatch_is_reported_in_full_and_nothing_is_loaded(tmp_path):
    a = build(TINY)
    b = build(TINY, width=4)                  # every conv differs in shape
    sd = a.state_dict()
    sd.pop("fc.bias")
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "w.pt")
    before = {k: v.clone() for k, v in b.state_dict().items()}
    with pytest.raises(WeightsError) as ei:
        load_weights(b, tmp_path / "w.pt")
    msg = str(ei.value)
    assert "mis-shaped" in msg and "stem.weight (model [4, 3, 3, 3], file [8, 3, 3, 3])" in msg
    assert "missing from the file: fc.bias" in msg and "unexpected in the file: extra.weight" in msg
    assert all(torch.equal(before[k], v) for k, v in b.state_dict().items())
    # not strict: missing/unexpected are ignored, shapes must still fit
    c = build(TINY)
    load_weights(c, tmp_path / "w.pt", strict=False)
    assert torch.equal(c.stem.weight, a.stem.weight)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    p = tmp_path / "evil.pt"
    with open(p, "wb") as f:
        pickle.dump({"w": _Evil()}, f, protocol=2)
    with pytest.raises(WeightsError, match="refused"):
        load_weights(build(TINY), p)


@pytest.mark.parametrize("content", [b"", b"not a weight file at all", b"\x00" * 64])
def test_garbage_weight_files_are_clear_errors(tmp_path, content):
    p = tmp_path / "w.bin"
    p.write_bytes(content)
    with pytest.raises(WeightsError):
        load_weights(build(TINY), p)
    with pytest.raises(WeightsError, match="no weight file"):
        load_weights(build(TINY), tmp_path / "missing.safetensors")


def test_compile_errors_are_netspec_errors():
    with pytest.raises(NetspecError):
        build("netspec: 1\ninputs: {x: [N, 3]}\nlayers:\n  - {op: conv2d, out: 4, kernel: 3}\n")


def test_exec_source_registers_lines_for_tracebacks():
    src = compile_source(TINY)
    ns = exec_source(src, "tiny")
    import linecache
    fn = ns["Tiny"].forward.__code__.co_filename
    assert fn.startswith("<netspec:tiny:") and linecache.getline(fn, 1).startswith('"""Tiny')


# a text block parameter that the op reads as a number ('-inf' -> -inf): the class writes the number, and keeps no
# attribute for a constructor argument it does not have (it once wrote `self.value = value`)
TEXT_TO_NUMBER = """
netspec: 1
name: text_to_number
inputs: {x: [N, 3, 8, 8]}
blocks:
  wrap:
    params: {padding: {type: list, default: [1, 1, 0, 1]}, value: {type: str, default: "-inf"}}
    layers:
      - {name: p, op: pad, padding: padding, value: value}
      - {name: pool, op: maxpool2d, kernel: 2}
layers:
  - {name: first, op: wrap}
  - {name: second, op: wrap, padding: [2, 2, 0, 2], from: x}
outputs: [first, second]
"""


@pytest.mark.parametrize("text", [TINY, EDGES, PASSTHROUGH, TEXT_TO_NUMBER],
                         ids=["tiny", "edges", "passthrough", "text-to-number"])
def test_inline_specs_build_and_match_their_file(text, tmp_path):
    g = _graph(text)
    model = build(g).eval()
    f = tmp_path / "m.py"
    f.write_text(generate(g))
    cls = getattr(import_file(f, "netspec_test_inline"), top_class_name(f.read_text()))
    other = cls().eval()
    other.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        a, b = outputs(_run(model, g, seed=2)), outputs(_run(other, g, seed=2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_passthrough_blocks_compute_what_the_spec_says():
    g = _graph(PASSTHROUGH)
    m = build(g).eval()
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        post = m.pre(x)
        post = m.blk.c(post) + x + x
        want = post + m.kept.c(post) + x
        assert torch.allclose(m(x), want)
    src = generate(g)
    assert ".add_(x).add_(x)" in src and "self.skip1 = Maybe(" in src and "self.skip1(" not in src


def test_several_networks_compile_into_one_module(tmp_path, capsys):
    src = compile_source(TWO)
    ns = exec_source(src, "pair")
    assert {"Gen", "Disc", "Up", "Up2"} <= set(ns)       # class names unique across the networks
    gen, disc = ns["Gen"](), ns["Disc"]()
    img = gen(torch.randn(2, 4, 8, 8))
    assert tuple(disc(img).shape) == (2, 1)
    assert compile_source(TWO, "disc").count("class ") == 2
    from netspec.cli import main
    out = tmp_path / "pair.py"
    assert main(["compile", str(_write(tmp_path, TWO)), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == \
        f"wrote {out}: classes Gen (515 parameters), Disc (233 parameters)"
    assert main(["compile", str(_write(tmp_path, TWO)), "-o", str(out), "--class-name", "X"]) == 2


def _write(tmp_path, text):
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return p


def test_inputs_keep_their_names_as_keyword_arguments():
    text = """
netspec: 1
name: kw
inputs: {input: [N, 3, H, W], sum: [N, 3, H, W]}
layers:
  - {name: len, op: add, from: [input, sum]}
  - {name: conv, op: conv2d, out: 2, kernel: 1}
"""
    src = compile_source(text)
    assert "def forward(self, input, sum):" in src and " = input + sum" in src
    m = build(text)
    y = m(input=torch.randn(1, 3, 4, 4), sum=torch.randn(1, 3, 4, 4))
    assert tuple(y.shape) == (1, 2, 4, 4)


def test_golden_sources_pass_ruff():
    """The generated sources are what a person would commit: ruff-clean, ruff-formatted, lines <= 100."""
    from ruff.__main__ import find_ruff_bin
    ruff = find_ruff_bin()
    files = sorted(str(p) for p in (Path(__file__).parent / "golden").glob("*.py"))
    assert len(files) >= len(CASES)
    r = subprocess.run([ruff, "check", "--isolated", "--line-length", "100", *files], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([ruff, "format", "--isolated", "--line-length", "100", "--check", *files],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in files:
        assert max(len(ln) for ln in Path(f).read_text().splitlines()) <= 100, f


def test_compile_with_weights_writes_a_trained_model_that_needs_only_torch(tmp_path):
    """compile --weights: model.py + model.pt; load_trained() in a fresh process (no netspec) gives the same outputs."""
    from netspec.cli import main
    m = build(ROOT / "specs" / "lenet5.yaml")
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p))
    save_weights(m, tmp_path / "trained.safetensors")
    out = tmp_path / "model.py"
    assert main(["compile", str(ROOT / "specs" / "lenet5.yaml"), "-o", str(out), "--weights",
                 str(tmp_path / "trained.safetensors"), "-q"]) == 0
    assert (tmp_path / "model.pt").exists() and "def load_trained(" in out.read_text()
    x = torch.randn(2, 1, 32, 32)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        torch.save(m.eval()(x), tmp_path / "y.pt")
    code = ("import sys; sys.path.insert(0, '.')\nimport torch, model\nm = model.load_trained().eval()\n"
            "with torch.no_grad():\n    d = (m(torch.load('x.pt')) - torch.load('y.pt')).abs().max()\n"
            "assert not any(k.startswith('netspec') for k in sys.modules)\nprint(float(d))")
    r = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) == 0.0
    # weights that do not fit the spec are refused, and nothing is written
    bad = tmp_path / "bad"
    bad.mkdir()
    save_weights(build(ROOT / "specs" / "mlp.yaml"), bad / "w.safetensors")
    assert main(["compile", str(ROOT / "specs" / "lenet5.yaml"), "-o", str(bad / "model.py"), "--weights",
                 str(bad / "w.safetensors")]) == 1
    assert not (bad / "model.py").exists() and not (bad / "model.pt").exists()


def test_a_repeat_count_parameter_is_a_constructor_argument():
    """gpt's `layers` (the repeat count of its blocks) is an argument of the generated class: constructed with another
    value, it has the state_dict of the network built with that value (the use counts in the blocks' docstrings are
    documentation, not code, and do not stop the proof)."""
    src = compile_source(ROOT / "specs" / "gpt.yaml")
    assert "def __init__(self, vocab=50257, context=1024, layers=12," in src and "range(layers)" in src
    ns = exec_source(src, "gpt_layers")
    with torch.device("meta"):
        two = ns[top_class_name(src)](layers=2)
    ref = netspec.build(ROOT / "specs" / "gpt.yaml", device="meta", layers=2)
    assert {k: v.shape for k, v in two.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
