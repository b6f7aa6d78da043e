"""Faults during work: outputs are written atomically, so a full disk or a kill mid-write keeps the previous file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path


ROOT = Path(__file__).parent.parent


def _run(code: str, **kw):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT, **kw)


def test_full_disk_keeps_the_previous_file(tmp_path):
    target = tmp_path / "model.py"
    target.write_text("previous\n")
    # RLIMIT_FSIZE makes any write beyond 64 KiB fail with EFBIG, as a full disk fails with ENOSPC
    r = _run(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        from netspec.io import atomic_write_bytes
        from netspec.errors import NetspecError
        try:
            atomic_write_bytes({str(target)!r}, b"x" * 10_000_000)
        except NetspecError as e:
            print("ERR", e.format())
    """)
    assert "ERR" in r.stdout and "cannot write" in r.stdout, r.stdout + r.stderr
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]     # no temporary file left behind


def test_cli_compile_on_a_full_disk_exits_1_and_keeps_the_file(tmp_path):
    target = tmp_path / "r18.py"
    target.write_text("previous\n")
    r = _run(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
        from netspec.cli import main
        sys.exit(main(["compile", "specs/resnet18.yaml", "-o", {str(target)!r}]))
    """)
    assert r.returncode == 1, r.stderr
    assert "error: cannot write" in r.stderr and "Traceback" not in r.stderr
    assert target.read_text() == "previous\n"


def test_sigkill_mid_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "big.bin"
    target.write_bytes(b"previous")
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os
        from netspec import io
        real = os.fsync
        def slow(fd):                        # the data is written; stop before the rename
            print("written", flush=True)
            import time; time.sleep(30)
        os.fsync = slow
        io.atomic_write_bytes({str(target)!r}, b"y" * 5_000_000)
    """)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "written"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert target.read_bytes() == b"previous"


def test_output_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    from netspec.io import atomic_write_text
    p = tmp_path / "model.py"
    p.write_text("old")
    os.chmod(p, 0o640)
    atomic_write_text(p, "new")
    assert p.read_text() == "new" and (p.stat().st_mode & 0o777) == 0o640
