"""Run the netspec CLI in child processes forked from a server that imported netspec once.

Each run is its own process: it calls ``netspec.cli.main(argv)`` -- what ``python -m netspec`` calls -- in a
fresh fork with its own working folder, stdout and stderr files, and CPU limit, and the server reports the
child's exit code, CPU time, peak memory (ru_maxrss from wait4) and wall time. Forking skips the half second of
interpreter start and imports per run, which keeps hundreds of (case, command) runs within the test budget.
``test_hostile.py`` also runs every case through a cold ``python -m netspec check``.

Run as a script it is the server: one JSON request per line on stdin, one JSON reply per line on stdout.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
import json
import os
from pathlib import Path
import queue
import subprocess
import sys
import tempfile
import threading
import time

CPU_LIMIT_S = 60          # a child that spins is killed by the kernel well before the test's own timeout
MEMORY_HEADROOM_MB = 1024  # address space a child may add to what the server holds (RLIMIT_AS; see _cap_memory)


@dataclass
class Result:
    argv: list
    rc: int | None
    stdout: str
    stderr: str
    cpu_s: float
    wall_s: float
    maxrss_mb: float
    timed_out: bool


def _serve() -> None:  # pragma: no cover - runs in the server process
    import resource
    import signal
    import traceback

    from netspec import cli

    _warm_up(cli)
    reply = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            rc = 70
            try:
                fd_in = os.open(os.devnull, os.O_RDONLY)
                fd_out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                fd_err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd_in, 0)
                os.dup2(fd_out, 1)
                os.dup2(fd_err, 2)
                os.chdir(req["cwd"])
                resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT_S, CPU_LIMIT_S))
                _cap_memory(resource)
                rc = cli.main(req["argv"])
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 1
            except BaseException:
                traceback.print_exc()
                rc = 71
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(rc if isinstance(rc, int) else 72)
        deadline = start + req["timeout"]
        timed_out = False
        while True:
            got, status, usage = os.wait4(pid, os.WNOHANG)
            if got == pid:
                break
            if time.perf_counter() > deadline:
                os.kill(pid, signal.SIGKILL)
                timed_out = True
                got, status, usage = os.wait4(pid, 0)
                break
            time.sleep(0.002)
        reply.write(json.dumps({
            "rc": os.waitstatus_to_exitcode(status),
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "maxrss_mb": usage.ru_maxrss / 1024,
            "wall_s": time.perf_counter() - start,
            "timed_out": timed_out,
        }) + "\n")
        reply.flush()


def _cap_memory(resource) -> None:  # pragma: no cover - runs in the child
    """Cap the child's address space (RLIMIT_AS) at what it holds now plus MEMORY_HEADROOM_MB: a case that tries to
    allocate more gets a MemoryError (and fails its test as an internal error) instead of taking the machine's memory.
    The Graphviz ``dot`` that draw starts inherits the cap."""
    try:
        with open("/proc/self/statm") as f:
            now = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return
    cap = now + MEMORY_HEADROOM_MB * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _warm_up(cli) -> None:  # pragma: no cover - runs in the server process
    """Run each command once on a small valid spec, so that children inherit the lazily built caches
    (op models, typer's commands) instead of each paying ~70 ms to build them."""
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as d:
        spec = Path(d) / "warm.yaml"
        spec.write_text("netspec: 1\ninputs: {x: [N, 3, 8, 8]}\nlayers:\n  - {op: conv2d, out: 4, kernel: 3}\n"
                        "  - {op: relu}\n  - {op: flatten}\n  - {op: linear, out: 2}\n")
        for argv in (["check", str(spec)], ["summary", str(spec)], ["compile", str(spec), "-o", f"{d}/m.py"],
                     ["draw", str(spec), "-o", f"{d}/m.dot"]):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    cli.main(argv)
                except BaseException:
                    pass


class ForkServer:
    """One server process; ``run`` is not thread-safe (use a Pool)."""

    def __init__(self, python: str, root: Path):
        self.scratch = Path(tempfile.mkdtemp(prefix="netspec-forkserver-"))
        self.log = self.scratch / "server.log"      # never a terminal: the CLI prints plain text as in a pipe
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([python, __file__], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True, bufsize=1)

    def run(self, argv: list[str], cwd: Path, timeout: float = 60.0) -> Result:
        out, err = self.scratch / "stdout", self.scratch / "stderr"
        self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "stdout": str(out), "stderr": str(err),
                                          "timeout": timeout}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died:\n" + self.log.read_text(errors="replace"))
        r = json.loads(line)
        return Result(argv, r["rc"], out.read_text(errors="replace"), err.read_text(errors="replace"), r["cpu_s"],
                      r["wall_s"], r["maxrss_mb"], r["timed_out"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        for p in self.scratch.iterdir():
            p.unlink()
        self.scratch.rmdir()


class Pool:
    """A few servers for running cases in parallel threads."""

    def __init__(self, python: str, root: Path, size: int):
        self.size = size
        self._python, self._root = python, root
        self._free: queue.Queue = queue.Queue()
        self._all: list[ForkServer] = []
        self._lock = threading.Lock()

    @contextmanager
    def server(self):
        try:
            s = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                s = ForkServer(self._python, self._root)
                self._all.append(s)
        try:
            yield s
        finally:
            self._free.put(s)

    def close(self) -> None:
        for s in self._all:
            s.close()


if __name__ == "__main__":
    _serve()
