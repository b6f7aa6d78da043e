"""Memory told before it is spent: check and summary print what a network needs and warn past max_alloc_bytes;
build and export refuse, located, before they allocate; the limit's default follows the machine."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netspec
from netspec.errors import LimitError
from netspec.limits import LIMITS, Limits, available_memory_bytes, default_alloc_bytes
from netspec.memory import estimate

ROOT = Path(__file__).resolve().parent.parent
HUGE = "netspec: 1\ninputs: {x: [N, 100000]}\nlayers:\n  - {op: relu}\n  - {op: linear, out: 100000, name: fc}\n"
BIG_INPUT = "netspec: 1\ninputs: {x: [800000000, 2]}\nlayers:\n  - {op: linear, out: 2, name: fc}\n"


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def limit():
    old = LIMITS.max_alloc_bytes
    yield LIMITS
    LIMITS.max_alloc_bytes = old


def test_default_follows_available_memory():
    avail = available_memory_bytes()
    assert 0 < avail < 2**50
    assert default_alloc_bytes() == max(64 * 2**20, avail // 2) or abs(default_alloc_bytes() - avail // 2) < 2**30
    assert Limits().max_alloc_bytes <= avail        # never more than the machine had when netspec started
    assert Limits().max_param_bytes > Limits().max_alloc_bytes or avail > 128 * 2**30


def test_estimate():
    g = netspec.expand(netspec.load("netspec: 1\ninputs: {x: [2, 8]}\nlayers:\n  - {op: linear, out: 4}\n"))
    est = estimate(g)
    assert (est.params, est.inputs, est.activations) == ((8 * 4 + 4) * 4, 2 * 8 * 4, 2 * 8 * 4 + 2 * 4 * 4)
    sym = estimate(netspec.expand(netspec.load(HUGE)))
    assert sym.params == (10**10 + 10**5) * 4 and sym.inputs is None and sym.activations is None
    assert sym.biggest_layer[0] == "fc" and sym.biggest_layer[2].line == 5


def test_check_reports_memory_and_warns(tmp_path):
    (tmp_path / "huge.yaml").write_text(HUGE)
    r = _cli("check", "huge.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "memory:  parameters 37.3 GiB, inputs depend on the symbols" in r.stdout
    assert r.stderr.startswith("huge.yaml:5:5: warning: the network's weights need 37.3 GiB, more than this machine "
                               "can give"), r.stderr
    r = _cli("check", "--strict", "huge.yaml", cwd=tmp_path)
    assert r.returncode == 1 and "huge.yaml:5:5: error: the network's weights need 37.3 GiB" in r.stderr


def test_summary_reports_memory(tmp_path):
    s = netspec.summary(BIG_INPUT)
    assert s.memory == {"params": 24, "inputs": 800_000_000 * 2 * 4, "activations": 2 * 800_000_000 * 2 * 4}
    assert "memory: parameters 24 bytes, inputs 6.0 GiB, activations 11.9 GiB" in s.to_text()
    assert json.loads(s.to_json())["memory"]["inputs"] == 6_400_000_000
    (tmp_path / "huge.yaml").write_text(HUGE)
    r = _cli("summary", "huge.yaml", cwd=tmp_path)
    assert r.returncode == 0 and "memory: parameters 37.3 GiB" in r.stdout and ": warning: the network's weights" \
        in r.stderr, r.stderr


def test_build_refuses_before_allocating(limit):
    t0 = time.process_time()
    with pytest.raises(LimitError) as e:
        netspec.build(HUGE)                       # 37 GiB: allocating would kill this process
    assert time.process_time() - t0 < 5
    assert str(e.value.loc) == "<text>:5:5" and "building 'net' would allocate 37.3 GiB of weights" in e.value.message
    assert any("--limit max_alloc_bytes=" in h for h in e.value.hints)
    m = netspec.build(HUGE, device="meta")        # the meta device allocates nothing: never refused
    assert m.fc.weight.is_meta
    limit.max_alloc_bytes = 100
    with pytest.raises(LimitError, match="over the limit of 100 bytes"):
        netspec.build("netspec: 1\ninputs: {x: [N, 8]}\nlayers:\n  - {op: linear, out: 4}\n")


def test_export_refuses_a_huge_declared_input(tmp_path):
    pytest.importorskip("onnx")
    (tmp_path / "big.yaml").write_text(BIG_INPUT)
    (tmp_path / "huge.yaml").write_text(HUGE)
    r = _cli("--limit", "max_alloc_bytes=4000000000", "export", "big.yaml", "-o", "m.onnx", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("big.yaml:2:10: error: exporting 'big' would allocate 17.9 GiB for the example input x "
                               "and one forward pass"), r.stderr
    r = _cli("export", "huge.yaml", "-o", "m.onnx", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("huge.yaml:5:5: error: exporting 'huge' would allocate 37.3 GiB"
                                                     " of weights"), r.stderr
    assert not (tmp_path / "m.onnx").exists()
