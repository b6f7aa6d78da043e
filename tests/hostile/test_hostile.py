"""The hostile-input corpus: every file in cases/ and every generated case ends in one clear, located error.

For each case and each command a user would run on it (``check``, and ``compile``, ``draw``, ``summary`` where
the CLI has them; ``export`` on a sample, see test_export_sample) the run must: exit 1; print as its first error
line exactly the ``file:line:col: error: message`` recorded in expected.json; print no traceback; stay under 5 s of
CPU time (and of wall time, scaled by the machine's load) and 500 MB of memory; and write or change no file
(neither in the case's folder, which is also the working folder and holds the output folder, nor in specs/), except
that ``draw`` of a spec with a shape error writes its diagram, the failing layer marked, to the output path.

The runs go through fork servers (see forkserver.py) to fit the test budget; ``test_cold_check_of_every_case``
also runs every case through a cold ``python -m netspec check`` exactly as a user would.

Regenerate expected.json with NETSPEC_UPDATE_GOLDEN=1, then read every changed line: these messages are the product.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import hashlib
import json
import os
from pathlib import Path
import re
import shutil
import stat
import subprocess
import sys
import threading

import pytest

from forkserver import Result
from generated_cases import GENERATED

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CASES = HERE / "cases"
EXPECTED_PATH = HERE / "expected.json"
EXPECTED: dict = json.loads(EXPECTED_PATH.read_text(encoding="utf-8")) if EXPECTED_PATH.exists() else {}
UPDATE = os.environ.get("NETSPEC_UPDATE_GOLDEN") == "1"

CPU_LIMIT_S = 5.0
WALL_LIMIT_S = 5.0
MEMORY_LIMIT_MB = 500.0
SHAPE_ERROR = re.compile(r"^\S+:\d+:\d+: error: \S+ \([a-z_0-9]+\): ", re.M)   # 'name (op): ...', a shape rule's
ERROR_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): error: (?P<message>\S.*)$")


def _case_names() -> list[str]:
    names = [p.stem if p.is_file() else p.name for p in CASES.iterdir() if not p.name.startswith(".")]
    names += list(GENERATED)
    dups = {n for n in names if names.count(n) > 1}
    assert not dups, f"case names must be unique: {sorted(dups)}"
    return sorted(names)


def _commands() -> dict[str, list[str]]:
    """The commands the CLI has, each with the output arguments it needs (into the case's empty out/ folder)."""
    from netspec.cli import app
    have = {c.name or c.callback.__name__ for c in app.registered_commands}
    wanted = {"check": [], "compile": ["-o", "out/model.py"], "draw": ["-o", "out/net.svg"], "summary": []}
    return {cmd: extra for cmd, extra in wanted.items() if cmd in have}


NAMES = _case_names()
COMMANDS = _commands()


def prepare(name: str, folder: Path) -> str:
    """Put case ``name`` into the empty ``folder`` (plus an empty out/); return the path to run netspec on."""
    folder.mkdir(parents=True)
    if name in GENERATED:
        entry = GENERATED[name](folder)
    else:
        found = [p for p in CASES.iterdir() if (p.stem if p.is_file() else p.name) == name]
        src = found[0]
        if src.is_dir():
            shutil.copytree(src, folder, dirs_exist_ok=True, symlinks=True)
            entry = "main.yaml"
        else:
            shutil.copyfile(src, folder / src.name)
            entry = src.name
    (folder / "out").mkdir(exist_ok=True)
    return EXPECTED.get(name, {}).get("run", entry)


def snapshot(folder: Path, hashed: bool = True) -> dict:
    """Every entry under ``folder`` (links not followed, pipes not opened) with what would show a change."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            rel = p.relative_to(folder).as_posix()
            if hashed and stat.S_ISREG(st.st_mode) and st.st_size <= 1 << 20:
                out[rel] = ("file", st.st_size, hashlib.sha1(p.read_bytes()).hexdigest())
            else:
                out[rel] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns)
    return out


def _changes(before: dict, after: dict) -> list[str]:
    return sorted(f"{'new' if k not in before else 'gone' if k not in after else 'changed'}: {k}"
                  for k in set(before) | set(after) if before.get(k) != after.get(k))


@dataclass
class Outcome:
    result: Result
    changed: list
    tmp: str            # the case's folder, resolved: replaces {tmp} in expected messages


def run_case(pool, name: str, root: Path) -> dict[str, Outcome]:
    folder = root / name
    entry = prepare(name, folder)
    args = EXPECTED.get(name, {}).get("args", [])
    outcomes = {}
    for cmd, extra in COMMANDS.items():
        before, specs_before = snapshot(folder), snapshot(ROOT / "specs", hashed=False)
        with pool.server() as server:
            result = server.run(args + [cmd, entry] + extra, folder, timeout=60)
        changed = _changes(before, snapshot(folder))
        changed += [f"specs/{c}" for c in _changes(specs_before, snapshot(ROOT / "specs", hashed=False))]
        outcomes[cmd] = Outcome(result, changed, str(folder.resolve()))
    return outcomes


class Outcomes:
    """Runs the cases on first use: all of them at once in parallel threads, or one by one under xdist."""

    def __init__(self, pool, root: Path):
        self.pool, self.root = pool, root
        self.done: dict[str, dict[str, Outcome]] = {}
        self.lock = threading.Lock()

    def get(self, name: str) -> dict[str, Outcome]:
        with self.lock:
            if not self.done and not os.environ.get("PYTEST_XDIST_WORKER"):
                with ThreadPoolExecutor(self.pool.size) as ex:
                    for n, res in zip(NAMES, ex.map(lambda n: run_case(self.pool, n, self.root), NAMES)):
                        self.done[n] = res
            if name not in self.done:
                self.done[name] = run_case(self.pool, name, self.root)
            return self.done[name]


@pytest.fixture(scope="module")
def outcomes(cli_pool, tmp_path_factory):
    got = Outcomes(cli_pool, tmp_path_factory.mktemp("hostile"))
    yield got
    if UPDATE:
        table = {}
        for name in NAMES:
            entry = dict(EXPECTED.get(name, {}))
            o = got.done.get(name, {}).get("check")
            if o is not None:
                first = _first_error(o.result.stderr)
                entry["error"] = first.replace(o.tmp, "{tmp}") if first else None
            table[name] = {k: entry[k] for k in sorted(entry, key=lambda k: k != "error")}
        EXPECTED_PATH.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _first_error(stderr: str) -> str | None:
    return next((line for line in stderr.splitlines() if ": error: " in line), None)


def _wall_limit() -> float:
    # the bar is 5 s on a core of its own; on a machine busier than it has cores, scale by how busy it is
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return WALL_LIMIT_S * max(1.0, load)


def test_corpus_size_and_table():
    assert len(NAMES) >= 60
    if not UPDATE:
        missing = [n for n in NAMES if not (EXPECTED.get(n) or {}).get("error")]
        assert not missing, f"cases without an expected error in expected.json: {missing}"
        stale = sorted(set(EXPECTED) - set(NAMES))
        assert not stale, f"expected.json names cases that do not exist: {stale}"


@pytest.mark.parametrize("cmd", list(COMMANDS))
@pytest.mark.parametrize("name", NAMES)
def test_hostile_case(name, cmd, outcomes):
    o = outcomes.get(name)[cmd]
    r = o.result
    shown = f"$ netspec {' '.join(r.argv)}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"
    assert not r.timed_out, f"no result within 60 s\n{shown}"
    assert "Traceback" not in r.stdout + r.stderr and "internal error" not in r.stderr, shown
    assert r.rc == 1, f"exit code {r.rc}, expected 1\n{shown}"
    first = _first_error(r.stderr)
    assert first is not None and ERROR_LINE.match(first), f"no 'file:line:col: error: ...' line\n{shown}"
    if not UPDATE:
        spec = EXPECTED[name]
        expected = spec.get("errors", {}).get(cmd, spec["error"]).replace("{tmp}", o.tmp)
        assert first == expected, shown
    assert r.cpu_s < CPU_LIMIT_S, f"{r.cpu_s:.1f} s of CPU\n{shown}"
    assert r.wall_s < _wall_limit(), f"{r.wall_s:.1f} s of wall time\n{shown}"
    assert r.maxrss_mb < MEMORY_LIMIT_MB, f"{r.maxrss_mb:.0f} MB of memory\n{shown}"
    changed = o.changed
    if cmd == "draw" and "wrote out/net.svg anyway: the failing layer is in red" in r.stderr:
        # a shape error still draws (the failing layer marked), into the output path and nowhere else
        assert "error: " in first and SHAPE_ERROR.search(r.stderr), shown
        changed = [c for c in changed if c not in ("changed: out", "new: out/net.svg")]
    assert not changed, f"files written or changed: {changed}\n{shown}"


def test_cold_check_of_every_case(tmp_path):
    """All cases in one cold ``python -m netspec check A B C ...``: the real entry point, as a user runs it."""
    names = [n for n in NAMES if not EXPECTED.get(n, {}).get("args")]
    entries = [f"{n}/{prepare(n, tmp_path / n)}" for n in names]
    before = snapshot(tmp_path)
    r = subprocess.run([sys.executable, "-m", "netspec", "check", "--quiet", *entries], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr[-5000:]
    assert r.returncode == 1
    assert _changes(before, snapshot(tmp_path)) == []
    if UPDATE:
        return
    errors = [line for line in r.stderr.splitlines() if ": error: " in line]
    for n in names:
        # files are shown relative to the working folder, one up from the case's: drop that first step to compare
        relative = re.compile(rf"(?<![\w/.-]){re.escape(n)}/")
        got = [relative.sub("", line.replace(str((tmp_path / n).resolve()), "{tmp}"))
               for line in errors if line.startswith(f"{n}/")]
        assert EXPECTED[n]["error"] in got, n


# -- output paths: a valid spec, an output that cannot or must not be written -----------------------------------

GOOD_SPEC = "netspec: 1\ninputs: {x: [N, 8]}\nlayers:\n  - {op: linear, out: 4}\n"
OUTPUT_CASES = {
    # name: (command, output path, expected error line; {spec} is the spec's file name)
    "missing_folder": ("compile", "nowhere/model.py",
                       "nowhere/model.py:1:1: error: cannot write 'nowhere/model.py': the folder 'nowhere' does not exist"),
    "read_only_folder": ("compile", "/proc/model.py",
                         "/proc/model.py:1:1: error: cannot write '/proc/model.py': No such file or directory"),
    "a_folder": ("compile", "out", "out:1:1: error: cannot write 'out': it is a directory"),
    "the_spec_itself": ("compile", "{spec}", "{spec}:1:1: error: cannot write '{spec}': it is a spec file this command reads"),
    "draw_missing_folder": ("draw", "nowhere/net.svg", "cannot write 'nowhere/net.svg': the folder 'nowhere' does not exist"),
    "draw_read_only_folder": ("draw", "/proc/net.svg", "cannot write '/proc/net.svg': No such file or directory"),
}


@pytest.mark.parametrize("name", sorted(OUTPUT_CASES))
def test_output_path(name, cli_pool, tmp_path):
    cmd, output, expected = OUTPUT_CASES[name]
    if cmd not in COMMANDS:
        pytest.skip(f"no '{cmd}' command yet")
    if output.startswith("/proc/") and not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    (tmp_path / "net.yaml").write_text(GOOD_SPEC)
    (tmp_path / "out").mkdir()
    output, expected = output.replace("{spec}", "net.yaml"), expected.replace("{spec}", "net.yaml")
    before = snapshot(tmp_path)
    with cli_pool.server() as server:
        r = server.run([cmd, "net.yaml", "-o", output], tmp_path)
    assert "Traceback" not in r.stdout + r.stderr and r.rc == 1, r.stderr
    first = _first_error(r.stderr) or r.stderr.splitlines()[0]
    # draw reports output errors without a location so far (its own OutputError); compile goes through io.py
    assert first == expected if cmd == "compile" else first.endswith(expected), r.stderr
    assert _changes(before, snapshot(tmp_path)) == []
    assert (tmp_path / "net.yaml").read_text() == GOOD_SPEC


# -- export: the spec is read and checked before torch and onnx are imported ---------------------------------------

EXPORT_SAMPLE = ["yaml_billion_laughs", "dup_key_layers", "graph_cycle", "size_linear_terabytes", "expr_dunder_import"]


@pytest.mark.parametrize("name", EXPORT_SAMPLE)
def test_export_sample(name, cli_pool, tmp_path):
    from netspec.cli import app
    if "export" not in {c.name or c.callback.__name__ for c in app.registered_commands}:
        pytest.skip("no 'export' command yet")
    entry = prepare(name, tmp_path / name)
    before = snapshot(tmp_path)
    with cli_pool.server() as server:
        r = server.run(["export", entry, "-o", "out/model.onnx"], tmp_path / name)
    assert "Traceback" not in r.stdout + r.stderr and r.rc == 1, r.stderr
    assert _first_error(r.stderr) == EXPECTED[name]["error"]
    assert _changes(before, snapshot(tmp_path)) == []
    assert r.cpu_s < CPU_LIMIT_S and r.maxrss_mb < MEMORY_LIMIT_MB, f"{r.cpu_s:.1f} s, {r.maxrss_mb:.0f} MB"


def test_diamond_import_is_not_a_clash(cli_pool, tmp_path):
    """main imports b and c, both import d: d's blocks arrive twice but are the same blocks."""
    files = {"main.yaml": "netspec: 1\ninputs: {x: [N, 8]}\nimports: [b.yaml, c.yaml]\nlayers:\n  - {op: ub}\n"
                          "  - {op: uc}\n  - {op: ud}\n",
             "b.yaml": "netspec: 1\nimports: [d.yaml]\nblocks:\n  ub: {layers: [{op: relu}]}\n",
             "c.yaml": "netspec: 1\nimports: [d.yaml]\nblocks:\n  uc: {layers: [{op: relu}]}\n",
             "d.yaml": "netspec: 1\nblocks:\n  ud: {layers: [{op: relu}]}\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with cli_pool.server() as server:
        r = server.run(["check", "main.yaml"], tmp_path)
    assert r.rc == 0, r.stderr
