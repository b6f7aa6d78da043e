"""Byte fuzzer: any bytes given to ``netspec check`` end in exit 0 or 1, never an internal error.

With atheris installed (``.venv/bin/pip install atheris``; it needs a clang toolchain where no wheel exists) this is
a coverage-guided libFuzzer target. Without it, a small built-in mutator (flip, insert, delete, splice and
duplicate bytes and lines of the seed files, seeded ``random``) runs the same property; it is slower and blind
to coverage, and it is what tests/hostile/test_fuzz_short.py runs for a few hundred inputs.

The seeds are the hostile corpus (tests/hostile/cases) and the zoo (specs/). Long runs::

    # atheris: the first folder collects new inputs (keep it out of the repository); -max_len bounds input size
    mkdir -p /tmp/netspec-fuzz
    .venv/bin/python tools/fuzz/fuzz_bytes.py /tmp/netspec-fuzz tests/hostile/cases specs -max_len=65536 -timeout=10

    # built-in mutator
    .venv/bin/python tools/fuzz/fuzz_bytes.py --runs 100000 --seed 1

A failing input is saved (crash-* by libFuzzer, failure-*.yaml by the built-in mutator): shrink it, fix netspec,
and add it to tests/hostile/ with its expected message.
"""
from __future__ import annotations

import argparse
from contextlib import chdir, redirect_stderr, redirect_stdout
import io
from pathlib import Path
import random
import re
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[2]
ERROR_LINE = re.compile(r"^[^:]+:\d+:\d+: error: \S")
MUTATIONS = ("flip", "insert", "delete", "splice", "dup_line", "drop_line", "swap_lines", "token")
TOKENS = [b"&a ", b"*a", b"!!python/name:os.system ", b"<<: ", b"---\n", b"\t", b"\x00", b"\xff", b"\xef\xbb\xbf",
          b"[", b"]", b"{", b"}", b": ", b"- ", b"'", b'"', b"#", b"\r\n", b"op: ", b"from: ", b"repeat: ",
          b"10**10**10", b"__import__('os')", b"name: forward", b"1e999", b"0x", b"? ", b"|", b">", b"%YAML 1.1\n"]


def seeds() -> list[bytes]:
    files = [p for d in (ROOT / "tests" / "hostile" / "cases", ROOT / "specs") if d.is_dir()
             for p in sorted(d.rglob("*")) if p.is_file() and p.suffix in (".yaml", ".yml", ".json")]
    return [p.read_bytes() for p in files]


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(MUTATIONS)
        i = rng.randint(0, len(data)) if data else 0
        if kind == "flip" and data:
            j = min(i, len(data) - 1)
            data = data[:j] + bytes([data[j] ^ (1 << rng.randint(0, 7))]) + data[j + 1:]
        elif kind == "insert":
            data = data[:i] + bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 4))) + data[i:]
        elif kind == "delete":
            data = data[:i] + data[i + rng.randint(1, 16):]
        elif kind == "splice":
            other = rng.choice(pool)
            k = rng.randint(0, len(other))
            data = data[:i] + other[k:k + rng.randint(1, 200)] + data[i:]
        elif kind == "token":
            data = data[:i] + rng.choice(TOKENS) + data[i:]
        else:
            lines = data.split(b"\n")
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            if kind == "dup_line":
                lines.insert(a, lines[b])
            elif kind == "drop_line" and len(lines) > 1:
                del lines[a]
            else:
                lines[a], lines[b] = lines[b], lines[a]
            data = b"\n".join(lines)
    return data


class Target:
    """Runs ``netspec check`` on bytes in this process (``netspec.cli.main``, as the command does)."""

    def __init__(self, folder: Path, max_seconds: float = 5.0):
        self.folder = folder
        self.max_seconds = max_seconds

    def __call__(self, data: bytes, suffix: str = ".yaml") -> None:
        from netspec import cli
        path = self.folder / f"input{suffix}"
        path.write_bytes(data)
        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        with chdir(self.folder), redirect_stdout(out), redirect_stderr(err):
            rc = cli.main(["check", path.name])
        took = time.perf_counter() - start
        text = out.getvalue() + err.getvalue()
        problem = None
        if rc not in (0, 1) or "Traceback" in text or "internal error" in text:
            problem = f"exit code {rc}"
        elif rc == 1 and not ERROR_LINE.match(next((ln for ln in err.getvalue().splitlines() if ": error: " in ln), "")):
            problem = "the first error is not 'file:line:col: error: ...'"      # (warnings may come before it)
        elif took > self.max_seconds:
            problem = f"took {took:.1f} s"
        if problem:
            raise AssertionError(f"{problem}\n--- input ({len(data)} bytes): {data[:2000]!r}\n--- output\n{text[-3000:]}")


def run_builtin(runs: int, seed: int, folder: Path, save_to: Path | None = None) -> int:
    """The built-in mutator: ``runs`` mutated seeds; returns how many ran. Raises AssertionError on a failure."""
    rng = random.Random(seed)
    pool = seeds()
    target = Target(folder)
    for k in range(runs):
        data = mutate(rng.choice(pool), rng, pool)
        suffix = ".json" if data.lstrip()[:1] == b"{" and rng.random() < 0.8 else ".yaml"
        try:
            target(data, suffix)
        except AssertionError as e:
            if save_to is None:
                raise
            saved = save_to / f"failure-{seed}-{k}{suffix}"
            saved.write_bytes(data)
            raise AssertionError(f"{e}\n--- saved as {saved}") from None
    return runs


def main() -> int:
    try:
        import atheris
    except ImportError:
        atheris = None
    if atheris is not None and not any(a.startswith("--runs") or a.startswith("--seed") for a in sys.argv[1:]):
        with atheris.instrument_imports():
            import netspec.cli  # noqa: F401
        folder = Path(tempfile.mkdtemp(prefix="netspec-fuzz-"))
        target = Target(folder)

        def one_input(data: bytes) -> None:
            target(data, ".json" if data[:1] == b"{" else ".yaml")

        atheris.Setup(sys.argv, one_input)
        atheris.Fuzz()
        return 0
    ap = argparse.ArgumentParser(description="built-in byte mutator (atheris is not installed)")
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    print(f"fuzz_bytes: atheris {'found' if atheris else 'not installed'}; built-in mutator, {args.runs} runs, "
          f"seed {seed}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        run_builtin(args.runs, seed, Path(d), save_to=Path.cwd())
    print("no failures")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
