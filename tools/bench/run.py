#!/usr/bin/env python
"""Scale benchmark: time every stage of the pipeline on generated specs of 1k, 10k and 100k nodes, and on the zoo.

Stages (each timed on its own, in this process, median of --reps runs; the input of a stage is the output of the
one before it, made once):

    parse      YAML/JSON text -> located data (netspec.spec.parse.load_file)
    load       parse + validate (netspec.load)
    expand     expansion into a Graph, with the symbolic shape inference that runs inside it (graph.expand)
    verify     acyclic, every input resolves (graph.verify)
    summary    the summary table, rendered as text
    dot        the DOT source of the drawing (draw without the Graphviz layout)
    draw       draw to SVG: DOT + Graphviz layout (with the automatic folding depth for big graphs)
    compile    the standalone PyTorch source (codegen)
    meta       netspec.build(..., device="meta") from the graph
    build      netspec.build(...) for real (weights allocated and initialised)
    check      a whole `python -m netspec check` process (CPU time of the child, start-up included)
    compile_cli  a whole `python -m netspec compile` process (start-up, loading, expansion, code generation and
               ruff's formatting: CPU time of the child and of its ruff)

Each row gives process CPU seconds (the evidence on a shared machine) beside wall seconds, and CPU microseconds per
graph node so that growth is visible: a linear stage has the same us/node at every size.

    python tools/bench/run.py --sizes 1k,10k,100k            # the generated specs
    python tools/bench/run.py --zoo                          # every spec in specs/
    python tools/bench/run.py --sizes 1k --kinds repeat --stages load,expand --reps 5 --out table.md
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import specs as gen  # noqa: E402

STAGES = ("parse", "load", "expand", "verify", "summary", "dot", "draw", "compile", "meta", "build", "check",
          "compile_cli")
BIG_LIMITS = {"max_nodes": 1_000_000, "max_yaml_nodes": 2_000_000, "max_file_bytes": 256 * 1024**2,
              "max_work": 100_000_000, "max_repeat": 1_000_000}
REAL_BUILD_BYTES_PER_NODE = 4_000     # measured: a real build of the 10k chain holds about 2.5 KB per node


def size_of(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * mult)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Refused(Exception):
    """A stage refused the spec with a NetspecError (a limit): reported in the table, not timed."""


def timed(fn, reps: int):
    """(median CPU seconds, median wall seconds, result of the last call)."""
    from netspec.errors import NetspecError
    cpu, wall, out = [], [], None
    for _ in range(reps):
        out = None
        gc.collect()
        gc.disable()                        # as the tooling commands run (netspec.cli.main)
        c, t = time.process_time(), time.perf_counter()
        try:
            out = fn()
        except NetspecError as e:
            raise Refused(e.message) from None
        finally:
            gc.enable()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return statistics.median(cpu), statistics.median(wall), out


def reference_work() -> float:
    """CPU seconds of a fixed pure-Python workload that makes what the tooling makes: about a million small dicts,
    tuples and strings, held (some 150 MB, so that memory and caches are loaded as a big spec loads them). It is the
    speed of this shared machine at the moment, printed at the start and end of a run: its CPU time moves with the
    load of the host's other tenants (by 20% or more within minutes) as every figure of the run does, and figures
    of two runs compare only beside their reference times."""
    was = gc.isenabled()
    gc.disable()
    try:
        t = time.process_time()
        held = []
        for i in range(300_000):
            held.append({"name": f"fc{i}", "op": "linear", "out": (i & 63, str(i & 255)), "at": i << 32})
        took = time.process_time() - t
        del held
        return took
    finally:
        if was:
            gc.enable()


def reference_line(when: str) -> str:
    runs = sorted(reference_work() for _ in range(3))
    return f"reference workload at {when}: {runs[1]:.3f} s CPU (median of 3, {runs[0]:.3f}..{runs[2]:.3f})"


def child_times(cmd: list[str], reps: int, env: dict | None = None):
    """(median CPU seconds of the child processes, median wall seconds, last exit code, least CPU seconds)."""
    cpu, wall, rc = [], [], 0
    for _ in range(reps):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        wall.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        rc = proc.returncode
        if rc != 0:
            sys.stderr.write(proc.stderr.decode("utf-8", "replace")[-2000:])
    return statistics.median(cpu), statistics.median(wall), rc, min(cpu)


def whole(what: str, reps: int, least: float, rc: int) -> str:
    """The note of a whole-process row: what it is, the least of its runs (the run least disturbed by the
    machine's other tenants) beside the median the row shows, and a failed exit."""
    return what + (f"; median of {reps}, least {least:.3f}" if reps > 1 else "") + ("" if rc == 0 else f", EXIT {rc}")


def child_env(**extra) -> dict:
    """The environment of a timed ``netspec`` process: this checkout first, and bytecode caches used as after a
    pip install (an environment with PYTHONDONTWRITEBYTECODE=1 recompiles every module on every run)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "NETSPEC_NO_CACHE")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env.update(extra)
    return env


def startup_rows(b: "Bench") -> None:
    """Whole-process CPU time of a bare interpreter and of `netspec --help`: the floor under every command."""
    import compileall
    compileall.compile_dir(str(ROOT / "netspec"), quiet=1)
    for what, cmd in (("python -c pass", [sys.executable, "-c", "pass"]),
                      ("netspec --help", [sys.executable, "-m", "netspec", "--help"])):
        c, w, rc, least = child_times(cmd, b.cli_reps, child_env())
        b.row(what, 0, "process", c, w, whole("whole process", b.cli_reps, least, rc))


class Bench:
    def __init__(self, reps: int, stages: list[str], out_rows: list, workdir: Path, cli_reps: int):
        self.reps, self.stages, self.rows, self.workdir, self.cli_reps = reps, stages, out_rows, workdir, cli_reps
        self.records: list = []

    def pivot(self) -> list[str]:
        """One line per spec, one column per stage: CPU microseconds per node (flat across sizes = linear)."""
        stages = [st for st in dict.fromkeys(r[2] for r in self.records) if st != "process"]
        specs = list(dict.fromkeys(r[0] for r in self.records if r[2] != "process"))
        cell = {(r[0], r[2]): r for r in self.records}
        out = ["", "CPU microseconds per node (whole-process check: start-up included)", "",
               "| spec | nodes | " + " | ".join(stages) + " |", "|---|---:|" + "---:|" * len(stages)]
        for sp in specs:
            nodes = max(r[1] for r in self.records if r[0] == sp)
            vals = []
            for st in stages:
                r = cell.get((sp, st))
                vals.append("-" if r is None or r[3] != r[3] or not r[1] else f"{r[3] / r[1] * 1e6:.0f}")
            out.append(f"| {sp} | {nodes:,} | " + " | ".join(vals) + " |")
        return out

    def row(self, what: str, nodes: int, stage: str, cpu: float, wall: float, note: str = "") -> None:
        self.records.append((what, nodes, stage + (" cached" if "cached" in note else ""), cpu))
        per = f"{cpu / nodes * 1e6:.1f}" if nodes else "-"
        line = f"| {what} | {nodes:,} | {stage} | {cpu:.3f} | {wall:.3f} | {per} | {note} |"
        self.rows.append(line)
        print(line, flush=True)

    def stage(self, what: str, nodes: int, stage: str, fn) -> None:
        try:
            fn()
        except Refused as e:
            self.row(what, nodes, stage, float("nan"), float("nan"), f"refused: {e}")

    def run(self, what: str, path: Path, nodes: int, limits: dict, reps: int) -> None:
        from netspec.limits import LIMITS
        from netspec.spec.parse import load_file
        from netspec.spec.load import load
        from netspec.graph.expand import expand
        from netspec.graph.verify import verify
        saved = {k: getattr(LIMITS, k) for k in limits}
        for k, v in limits.items():
            LIMITS.set(k, v)
        os.environ["NETSPEC_NO_CACHE"] = "1"      # the in-process stages are measured without the spec cache
        if not nodes:
            from netspec.pipeline import graph
            nodes = len(graph(path).nodes)
        try:
            spec = g = None
            want = set(self.stages)
            if "parse" in want:
                c, w, _ = timed(lambda: load_file(path), reps)
                self.row(what, nodes, "parse", c, w)
            c, w, spec = timed(lambda: load(path), reps if "load" in want else 1)
            if "load" in want:
                self.row(what, nodes, "load", c, w)
            c, w, g = timed(lambda: expand(spec), reps if "expand" in want else 1)
            nodes = len(g.nodes)
            if "expand" in want:
                self.row(what, nodes, "expand", c, w, "shapes inferred inside")
            if "verify" in want:
                c, w, _ = timed(lambda: verify(g), reps)
                self.row(what, nodes, "verify", c, w)
            if "summary" in want:
                from netspec.summary import summarize
                c, w, _ = timed(lambda: summarize(g).render("table"), reps)
                self.row(what, nodes, "summary", c, w)
            if "dot" in want or "draw" in want:
                from netspec.draw import auto_depth, to_dot
                depth = auto_depth([g])
                note = f"depth {depth}" if depth is not None else "every block open"

                def dot():
                    c, w, drawing = timed(lambda: to_dot(g, depth=depth), reps)
                    self.row(what, nodes, "dot", c, w, note + f", {drawing.nodes:,} drawn nodes")
                if "dot" in want:
                    self.stage(what, nodes, "dot", dot)
                if "draw" in want:
                    self.stage(what, nodes, "draw", lambda: self._draw(what, g, nodes, reps, note))
            if "compile" in want:
                from netspec.codegen.source import generate_all
                c, w, src = timed(lambda: generate_all([g]), reps)
                self.row(what, nodes, "compile", c, w, f"{src.count(chr(10)):,} lines")
            if "meta" in want or "build" in want:
                import torch  # noqa: F401  (imported before timing: the targets are "beyond importing torch")
                from netspec.codegen.build import build
                if "meta" in want:
                    c, w, m = timed(lambda: build(g, device="meta"), reps)
                    self.row(what, nodes, "meta", c, w)
                    del m
                if "build" in want:
                    from netspec.limits import available_memory_bytes
                    need = nodes * REAL_BUILD_BYTES_PER_NODE + g.num_params() * 4 * 3 \
                        if isinstance(g.num_params(), int) else None
                    if need is not None and need > available_memory_bytes() // 2:
                        self.row(what, nodes, "build", float("nan"), float("nan"),
                                 f"skipped: needs about {need / 1024**3:.1f} GiB")
                    else:
                        c, w, m = timed(lambda: build(g), reps)
                        self.row(what, nodes, "build", c, w)
                        del m
            cmd = [sys.executable, "-m", "netspec"]
            for k, v in limits.items():
                cmd += ["--limit", f"{k}={v}"]
            if "compile_cli" in want:
                env = child_env(NETSPEC_NO_CACHE="1")
                out = self.workdir / "model.py"
                c, w, rc, least = child_times(cmd + ["compile", "-q", str(path), "-o", str(out)], self.cli_reps, env)
                self.row(what, nodes, "compile_cli", c, w, whole("whole process, ruff included", self.cli_reps, least,
                                                                 rc))
            if "check" in want:
                env = child_env(NETSPEC_NO_CACHE="1")
                c, w, rc, least = child_times(cmd + ["check", "-q", str(path)], self.cli_reps, env)
                self.row(what, nodes, "check", c, w, whole("whole process", self.cli_reps, least, rc))
                if "cache" in self.stages:
                    env = child_env()
                    env.setdefault("NETSPEC_CACHE_DIR", str(self.workdir / "cache"))
                    child_times(cmd + ["check", "-q", str(path)], 1, env)          # fills the cache
                    c, w, rc, least = child_times(cmd + ["check", "-q", str(path)], self.cli_reps, env)
                    self.row(what, nodes, "check", c, w, whole("whole process, cached", self.cli_reps, least, rc))
        finally:
            os.environ.pop("NETSPEC_NO_CACHE", None)
            for k, v in saved.items():
                LIMITS.set(k, v)

    def _draw(self, what, g, nodes, reps, note):
        import shutil
        from netspec.draw import draw
        if shutil.which("dot") is None:
            self.row(what, nodes, "draw", float("nan"), float("nan"), "skipped: Graphviz's dot is not installed")
            return
        target = self.workdir / "out.svg"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        c, w, d = timed(lambda: draw(g, target), reps)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        dot_cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / reps
        self.row(what, nodes, "draw", c + dot_cpu, w, note + f", {d.nodes:,} drawn nodes; CPU includes dot's "
                 f"{dot_cpu:.3f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1k,10k,100k", help="node counts of the generated specs, e.g. 1k,10k,100k "
                                                           "('' for none)")
    ap.add_argument("--kinds", default=",".join(gen.KINDS), help="which generated specs: " + ", ".join(gen.KINDS))
    ap.add_argument("--stages", default=",".join(STAGES), help="which stages: " + ", ".join(STAGES) +
                    " (add 'cache' to time a second, cached check)")
    ap.add_argument("--zoo", action="store_true", help="also every spec in specs/")
    ap.add_argument("--zoo-only", action="store_true", help="only the zoo")
    ap.add_argument("--reps", type=int, default=3, help="runs per in-process timing (median)")
    ap.add_argument("--big-reps", type=int, default=1, help="runs per timing at 50k nodes and more")
    ap.add_argument("--cli-reps", type=int, default=3, help="runs per whole-process timing (median)")
    ap.add_argument("--json", action="store_true", help="write generated specs as JSON instead of YAML")
    ap.add_argument("--out", type=Path, help="also write the table (markdown) here")
    a = ap.parse_args(argv)
    stages = [s for s in a.stages.split(",") if s]
    bad = [s for s in stages if s not in STAGES + ("cache",)]
    if bad:
        ap.error(f"unknown stage(s) {', '.join(bad)}; stages: {', '.join(STAGES)}")
    gc.set_threshold(200_000, 30, 30)      # what the CLI does (netspec.cli.main) between the timed stages
    head = [f"machine: {cpu_model()}, {os.cpu_count()} CPUs; python {platform.python_version()}; "
            f"load average at start {load_average()}; in-process stages run with the cyclic GC off, as the "
            "tooling commands do", reference_line("the start"), "",
            "| spec | nodes | stage | CPU s | wall s | CPU us/node | note |", "|---|---:|---|---:|---:|---:|---|"]
    print("\n".join(head), flush=True)
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="netspec-bench-") as tmp:
        b = Bench(a.reps, stages, rows, Path(tmp), a.cli_reps)
        from netspec.codegen.source import generate_all
        from netspec.pipeline import graph
        for kind in gen.KINDS:           # warm-up: the lazily built validation models and imports, not timed
            generate_all([graph(gen.generate(kind, 20)[0])])
        if "check" in stages:
            startup_rows(b)
        if not a.zoo_only:
            for kind in [k for k in a.kinds.split(",") if k]:
                if kind not in gen.KINDS:
                    ap.error(f"unknown kind {kind!r}; kinds: {', '.join(gen.KINDS)}")
                for n in [size_of(s) for s in a.sizes.split(",") if s.strip()]:
                    text, nodes = gen.generate(kind, n)
                    path = Path(tmp) / f"{kind}_{n}.yaml"
                    if a.json:
                        import json
                        import yaml
                        text = json.dumps(yaml.safe_load(text))
                        path = path.with_suffix(".json")
                    path.write_text(text)
                    b.run(f"{kind} {n:,}", path, nodes, BIG_LIMITS if nodes > 20_000 else {},
                          a.big_reps if nodes >= 50_000 else a.reps)
        if a.zoo or a.zoo_only:
            for path in sorted((ROOT / "specs").glob("*.yaml")):
                b.run(path.stem, path, 0, {}, a.reps)
        pivot = b.pivot()
    tail = pivot + ["", reference_line("the end"), f"load average at end {load_average()}"]
    print("\n".join(tail), flush=True)
    if a.out:
        a.out.write_text("\n".join(head + rows + tail) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
