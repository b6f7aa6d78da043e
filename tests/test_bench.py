"""A tiny run of the scale benchmark (tools/bench/run.py) so that the scripts never rot. Nothing here is timed: the
benchmark's figures live in BENCHMARKS.md."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "tools" / "bench" / "run.py"
ROW = re.compile(r"^\| (?P<spec>[^|]+) \| (?P<nodes>[\d,]+) \| (?P<stage>\w+) \| (?P<cpu>[\d.]+|nan) \| "
                 r"(?P<wall>[\d.]+|nan) \| (?P<per>[\d.]+|-|nan) \| (?P<note>[^|]*) \|$")


def bench(*args, tmp_path) -> list[dict]:
    out = tmp_path / "table.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NETSPEC_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, str(RUN), *args, "--out", str(out)], capture_output=True, text=True,
                       timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("machine: ") and "load average at start" in lines[0]
    assert lines[-1].startswith("load average at end")
    # the machine's speed at both ends of the run: the same fixed workload, timed
    for line, when in ((lines[1], "start"), (lines[-2], "end")):
        m = re.fullmatch(rf"reference workload at the {when}: ([\d.]+) s CPU \(median of 3, ([\d.]+)\.\.([\d.]+)\)", line)
        assert m and 0 < float(m[2]) <= float(m[1]) <= float(m[3]), line
    return [m.groupdict() for m in map(ROW.match, lines) if m]


def test_generated_specs_every_stage(tmp_path):
    sys.path.insert(0, str(ROOT / "tools" / "bench"))
    import specs
    stages = "parse,load,expand,verify,summary,dot,draw,compile,meta,build"
    rows = bench("--sizes", "60", "--reps", "1", "--stages", stages, tmp_path=tmp_path)
    got = {(r["spec"].split()[0], r["stage"]) for r in rows}
    want = {(k, s) for k in specs.KINDS for s in stages.split(",")}
    if not __import__("shutil").which("dot"):
        want = {w for w in want if w[1] != "draw"}
    assert want <= got, want - got
    for r in rows:
        assert r["cpu"] != "nan" or r["note"].startswith("skipped"), r
        # the generator's node count is the expanded graph's
        kind = r["spec"].split()[0]
        assert int(r["nodes"].replace(",", "")) == specs.generate(kind, 60)[1], r


def test_whole_process_check_with_and_without_cache(tmp_path):
    rows = bench("--sizes", "50", "--kinds", "repeat", "--stages", "check,cache", "--cli-reps", "1",
                 tmp_path=tmp_path)
    notes = [r["note"] for r in rows if r["stage"] == "check"]
    assert notes == ["whole process", "whole process, cached"], notes


def test_whole_process_rows_show_the_least_beside_the_median(tmp_path):
    rows = bench("--sizes", "50", "--kinds", "repeat", "--stages", "check", "--cli-reps", "3", tmp_path=tmp_path)
    for r in rows:
        m = re.fullmatch(r"whole process; median of 3, least ([\d.]+)", r["note"])
        assert m and float(m[1]) <= float(r["cpu"]), r


def test_whole_process_compile(tmp_path):
    rows = bench("--sizes", "50", "--kinds", "blocks", "--stages", "compile_cli", "--cli-reps", "1",
                 tmp_path=tmp_path)
    assert [(r["stage"], r["note"]) for r in rows if r["stage"] != "process"] == \
        [("compile_cli", "whole process, ruff included")]
    assert float(rows[-1]["cpu"]) > 0


def test_zoo(tmp_path):
    rows = bench("--zoo-only", "--reps", "1", "--stages", "load,expand", tmp_path=tmp_path)
    zoo = {p.stem for p in (ROOT / "specs").glob("*.yaml")}
    assert {r["spec"] for r in rows} == zoo
    assert all(int(r["nodes"].replace(",", "")) > 1 for r in rows)


def test_unknown_stage_is_a_usage_error(tmp_path):
    r = subprocess.run([sys.executable, str(RUN), "--stages", "lod"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "unknown stage" in r.stderr


def test_yaml_readers(tmp_path):
    """tools/bench/yaml_readers.py at a tiny size: every reader times the same file (nothing here is timed)."""
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "bench" / "yaml_readers.py"), "--sizes", "200", "--reps", "1"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    head, _, row = r.stdout.strip().splitlines()
    readers = [c.strip() for c in head.strip("|").split("|")][2:]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert readers == ["events", "c_compose", "c_load", "one_pass", "events_only", "one_pass_block", "composing",
                       "py_compose", "json_loads", "one_pass_json"]
    assert cells[0] == "200" and all(float(c) >= 0 for c in cells[2:]), row
