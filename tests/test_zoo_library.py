"""The zoo as a library: bundled specs by name in every command and in the API (a file always wins, and an
ambiguous name says which was read), specs shipped inside the wheel, `netspec zoo`, inputs that declare
`multiple_of`, and drawings that are not refused (DOT of a large network) or not lost (a spec with a shape error)."""
from __future__ import annotations

import glob
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import netspec
from netspec import zoo
from netspec.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = "netspec: 1\ninputs: {x: [N, 4]}\nlayers:\n  - {op: linear, out: 3}\n"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working folder with no spec files: names can only mean bundled specs."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_by_name(elsewhere, capsys):
    assert main(["check", "resnet18"]) == 0
    out, err = capsys.readouterr()
    assert "OK resnet18: 70 nodes, 11,689,512 parameters" in out
    assert "note:" not in err


def test_every_command_takes_a_name(elsewhere, capsys):
    assert main(["summary", "mlp"]) == 0
    assert "mlp" in capsys.readouterr().out
    assert main(["draw", "resnet18", "-o", "r.dot"]) == 0
    assert (elsewhere / "r.dot").read_text().startswith("digraph")
    assert main(["compile", "lenet5", "-o", "m.py"]) == 0
    assert "class Lenet5(nn.Module)" in (elsewhere / "m.py").read_text()
    # train/evaluate/predict read the spec the same way: the error is about the spec, not a missing file
    assert main(["train", "resnet18", "--steps", "1"]) == 1
    assert "No such file" not in capsys.readouterr().err


def test_api_takes_a_name(elsewhere):
    spec = netspec.load("lenet5")
    assert Path(spec.file).name == "lenet5.yaml"
    model = netspec.build("lenet5")
    assert sum(p.numel() for p in model.parameters()) == 61_706


def test_a_file_wins_and_says_so(elsewhere, capsys):
    (elsewhere / "resnet18").write_text(SMALL)
    assert main(["check", "resnet18"]) == 0
    out, err = capsys.readouterr()
    assert "15 parameters" in out                       # the local file, not the bundled ResNet
    assert "note: 'resnet18' is the file resnet18; the bundled spec of that name is" in err


def test_a_name_beside_a_local_file_with_suffix_says_which(elsewhere, capsys):
    (elsewhere / "resnet18.yaml").write_text(SMALL)
    assert main(["check", "resnet18"]) == 0
    out, err = capsys.readouterr()
    assert "11,689,512 parameters" in out
    assert "the local file resnet18.yaml was not read" in err
    assert main(["check", "resnet18.yaml"]) == 0         # with its suffix, the local file
    out, err = capsys.readouterr()
    assert "15 parameters" in out and "note:" not in err


def test_unknown_name_guesses_bundled_ones(elsewhere, capsys):
    assert main(["check", "resnet19"]) == 1
    err = capsys.readouterr().err
    assert "resnet19:1:1: error: cannot read 'resnet19'" in err
    assert "did you mean 'resnet18'" in err and "netspec zoo" in err


def test_path_like_names_are_not_looked_up(elsewhere):
    assert zoo.bundled("../specs/resnet18") is None
    assert zoo.bundled("resnet18/..") is None
    assert zoo.resolve("sub/resnet18").path == "sub/resnet18"


def test_zoo_lists_path_parameters_macs_and_reference(capsys):
    assert main(["zoo", "resnet18", "dqn"]) == 0
    out = capsys.readouterr().out
    assert "resnet18: 11,689,512 parameters, 1.81G MACs at N=1, H=224, W=224" in out
    assert "file: " in out and "resnet18.yaml" in out
    assert "reproduces: ResNet-18 (He et al." in out and "torchvision.models.resnet18" in out
    assert "dqn: 1,693,362 parameters" in out
    assert main(["zoo", "resnet19"]) == 1
    assert "did you mean 'resnet18'" in capsys.readouterr().err


def test_every_bundled_spec_has_a_header_and_counts():
    entries = zoo.entries()
    assert {e.name for e in entries} == {p.stem for p in (ROOT / "specs").glob("*.yaml")}
    for e in entries:
        assert e.error is None, (e.name, e.error)
        assert len(e.reproduces) > 40, f"{e.name}: the header comment should say what it reproduces"
        assert e.params > 0 and e.macs > 0


def test_wheel_ships_the_specs(tmp_path):
    pytest.importorskip("setuptools")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "No module named pip" in r.stderr:
        pytest.skip("pip is not installed")
    assert r.returncode == 0, r.stderr
    (wheel,) = glob.glob(str(tmp_path / "netspec-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for p in (ROOT / "specs").rglob("*.yaml"):
        assert f"netspec/specs/{p.relative_to(ROOT / 'specs').as_posix()}" in names
    assert "netspec/zoo.py" in names and "netspec/ops/reference.py" in names


# -- inputs that declare multiple_of -------------------------------------------------------------------------

DIV = """netspec: 1
inputs:
  x: {shape: [N, 3, H, W], multiple_of: {H: 32, W: 32}}
layers:
  - {op: conv2d, out: 8, kernel: 3, stride: 2, padding: 1}
  - {op: maxpool2d, kernel: 3, stride: 2, padding: 1}
"""


def test_multiple_of_simplifies_labels_and_is_a_requirement():
    g = netspec.check(netspec.load(DIV)).graphs["net"]
    assert str(g.output_types()["out"]) == "[N, 8, H/4, W/4]"
    assert [r.text for r in g.requirements] == ["H % 32 == 0", "W % 32 == 0"]
    plain = netspec.check(netspec.load(DIV.replace(", multiple_of: {H: 32, W: 32}", ""))).graphs["net"]
    assert str(plain.output_types()["out"]) == "[N, 8, ceil(H/4), ceil(W/4)]"


def test_multiple_of_binding_is_checked(capsys, tmp_path):
    f = tmp_path / "div.yaml"
    f.write_text(DIV)
    assert main(["check", str(f), "--bind", "H=96"]) == 0
    out = capsys.readouterr().out
    assert "[N, 8, 24, W/4]" in out and "requires: W % 32 == 0" in out
    assert main(["check", str(f), "--bind", "H=100"]) == 1
    err = capsys.readouterr().err
    assert "div.yaml:3:45: error: H = 100 is not a multiple of 32, as input 'x' requires" in err
    assert "H=96" in err


def test_multiple_of_names_a_symbol_of_the_shape():
    res = netspec.check(netspec.load(DIV.replace("W: 32}", "K: 32}")))
    assert not res.ok
    assert "'K' is not a symbol of its shape [N, 3, H, W]" in res.errors[0].message


def test_bundled_cnns_read_h_over_4():
    g = netspec.check("resnet18").graphs["resnet18"]
    shapes = {str(t) for n in g.nodes.values() for t in n.out}
    assert "[N, 64, H/4, W/4]" in shapes and not any("ceil" in s for s in shapes)


# -- drawings ------------------------------------------------------------------------------------------------

BIG = "netspec: 1\ninputs: {x: [N, 8]}\nlayers:\n  - {name: acts, op: relu, repeat: 2500}\n"


def test_dot_of_a_large_network_is_not_refused(tmp_path, capsys):
    f = tmp_path / "big.yaml"
    f.write_text(BIG)
    # opened (--depth 1), 2,500 boxes would be over the limit: the chain is drawn shortened; by default draw folds
    # the repeat into one box
    assert main(["draw", str(f), "-o", str(tmp_path / "big.svg"), "--depth", "1"]) == 0
    assert "1 long chain drawn shortened" in capsys.readouterr().out
    assert "acts.1234" not in (tmp_path / "big.svg").read_text() and "2,493 layers" in (tmp_path / "big.svg").read_text()
    assert main(["draw", str(f), "-o", str(tmp_path / "big.svg")]) == 0
    assert "acts.1234" not in (tmp_path / "big.svg").read_text()
    assert main(["draw", str(f), "-o", str(tmp_path / "big.dot")]) == 0       # DOT needs no layout
    assert (tmp_path / "big.dot").read_text().count("acts.") >= 2500


BAD = """netspec: 1
inputs: {x: [N, 3, H, W]}
layers:
  - {name: stem, op: conv2d, out: 16, kernel: 3}
  - {name: fc, op: linear, out: 10}
"""


@pytest.mark.parametrize("suffix", ["dot", "svg"])
def test_a_shape_error_still_draws_with_the_failing_node_marked(tmp_path, capsys, suffix):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    out = tmp_path / f"bad.{suffix}"
    assert main(["draw", str(f), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml:5:5: error: fc (linear): linear needs a fixed number of input features" in err
    assert f"wrote {out} anyway: the failing layer is in red" in err
    text = out.read_text()
    assert "stem" in text
    if suffix == "dot":
        line = next(x for x in text.splitlines() if x.strip().startswith(("fc ", "\"fc\" ")))
        assert 'color="#c00000"' in line and "linear needs a fixed number" in line
    else:
        assert "#c00000" in text and "linear needs a fixed number" in text


def test_other_errors_draw_nothing(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD.replace("from: x", "").replace("{name: fc, op: linear, out: 10}", "{name: fc, op: linear}"))
    out = tmp_path / "bad.dot"
    assert main(["draw", str(f), "-o", str(out)]) == 1
    assert not out.exists()
