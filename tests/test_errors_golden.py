"""Golden user mistakes: each broken spec in tests/errors/ gives exactly the message in its .expected file.

Regenerate with NETSPEC_UPDATE_GOLDEN=1 (then read every diff: these messages are the product).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import netspec

HERE = Path(__file__).parent / "errors"
CASES = sorted(p.stem for p in HERE.glob("*.yaml"))
UPDATE = os.environ.get("NETSPEC_UPDATE_GOLDEN") == "1"


def _report(name: str) -> str:
    rel = f"tests/errors/{name}.yaml"
    cwd = os.getcwd()
    os.chdir(HERE.parent.parent)
    try:
        res = netspec.check(rel)
    finally:
        os.chdir(cwd)
    assert not res.ok, f"{name}: expected an error, but the spec checked fine"
    return "\n".join(e.format() for e in res.errors) + "\n"


def test_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", CASES)
def test_golden_error(name):
    got = _report(name)
    exp_path = HERE / f"{name}.expected"
    if UPDATE or not exp_path.exists():
        exp_path.write_text(got, encoding="utf-8")
    assert got == exp_path.read_text(encoding="utf-8")
    # every message is located
    for line in got.splitlines():
        if not line.startswith("  hint:"):
            assert line.startswith(f"tests/errors/{name}.yaml:"), line
            loc = line.split(": ")[0].split(":")
            assert len(loc) == 3 and loc[1].isdigit() and loc[2].isdigit(), line


def test_cli_reports_all_errors_exit_1():
    root = HERE.parent.parent
    files = [f"tests/errors/{n}.yaml" for n in CASES[:6]]
    r = subprocess.run([sys.executable, "-m", "netspec", "check", *files], capture_output=True, text=True, cwd=root)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr + r.stdout
    for f in files:
        assert f + ":" in r.stderr
