"""The command line as users and scripts see it: `netspec` and `python -m netspec` run as subprocesses, with pipes
(so output must be plain), exit codes 0 (ok), 1 (the user's input is wrong), 2 (wrong usage), never a traceback."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs").glob("*.json"))
ANSI = re.compile(r"\x1b\[")

# a colour-capable terminal type, so that only the pipe can be what turns colour off
ENV = {**{k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "NETSPEC_DEBUG", "COLUMNS")},
       "TERM": "xterm-256color"}


def _script() -> list[str]:
    here = Path(sys.executable).with_name("netspec")
    found = str(here) if here.exists() else shutil.which("netspec")
    if found is None:
        pytest.skip("the netspec script is not installed")
    return [found]


MODULE = [sys.executable, "-m", "netspec"]


def run(*args: str, cmd: list[str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run netspec with its output piped; whatever the command, piped output must be plain (no colour codes)."""
    r = subprocess.run([*(cmd or MODULE), *map(str, args)], capture_output=True, text=True, timeout=120,
                       cwd=cwd, env=ENV, stdin=subprocess.DEVNULL)
    assert not ANSI.search(r.stdout), f"colour codes in piped stdout:\n{r.stdout}"
    assert not ANSI.search(r.stderr), f"colour codes in piped stderr:\n{r.stderr}"
    assert "Traceback" not in r.stdout + r.stderr
    assert "internal error" not in r.stderr
    return r


def run_on_terminal(*args: str) -> str:
    """Run netspec with stdout and stderr on a pseudo-terminal; returns what it wrote."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    try:
        subprocess.run([*MODULE, *map(str, args)], stdout=slave, stderr=slave, stdin=subprocess.DEVNULL,
                       cwd=ROOT, env=ENV, timeout=120)
    finally:
        os.close(slave)
    out = b""
    try:
        while chunk := os.read(master, 65536):
            out += chunk
    except OSError:              # EIO once the terminal's other end is closed (Linux)
        pass
    finally:
        os.close(master)
    return out.decode("utf-8", "replace")


BROKEN = """\
netspec: 1
inputs: {x: [N, 3, H, W]}
layers:
  - {name: conv1, op: conv2, out: 64, kernel: 3}
"""


# -- help --------------------------------------------------------------------------------------------------------

def test_python_m_netspec_help():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    for command in ("check", "schema", "zoo"):
        assert command in r.stdout


def test_script_and_module_agree():
    a, b = run("--help", cmd=_script()), run("--help")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout


@pytest.mark.parametrize("command", ["check", "schema", "zoo"])
def test_command_help(command):
    r = run(command, "--help")
    assert r.returncode == 0, r.stderr
    assert "Usage:" in r.stdout and command in r.stdout


# -- usage errors: exit 2 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    [],                                       # no command
    ["nosuchcommand"],
    ["check"],                                # missing spec
    ["check", "--nosuchoption", "specs/mlp.yaml"],
    ["--limit", "nosuchlimit=3", "zoo"],
    ["--limit", "max_nodes=-1", "zoo"],
])
def test_usage_errors_exit_2(args):
    r = run(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Usage:" in r.stdout + r.stderr


# -- user errors: exit 1 -----------------------------------------------------------------------------------------

def test_broken_spec_exits_1_with_a_located_error(tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN, encoding="utf-8")
    r = run("check", spec, cwd=tmp_path)
    assert r.returncode == 1
    assert f"{spec}:4:23: error: unknown op 'conv2'" in r.stderr
    assert "did you mean" in r.stderr and "conv2d" in r.stderr


def test_one_broken_file_among_good_ones_exits_1(tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN, encoding="utf-8")
    r = run("check", ROOT / "specs" / "mlp.yaml", spec)
    assert r.returncode == 1
    assert "mlp.yaml: OK" in r.stdout
    assert "2 files checked: 1 ok, 1 with errors" in r.stdout


@pytest.mark.parametrize("text,where", [
    ("", "1:1"),                                        # empty file
    ("netspec: 1\nlayers: [\n", "3:1"),                 # not YAML: ends inside a list
    ("netspec: 1\ninputs: {x: [N, 4]}\nlayers:\n  - {op: linear, out: 4}\n  - {op: linear, out: 4, out: 5}\n", "5:"),
])
def test_malformed_files_exit_1(tmp_path, text, where):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text, encoding="utf-8")
    r = run("check", spec)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"{spec}:{where}" in r.stderr


def test_missing_file_exits_1(tmp_path):
    r = run("check", tmp_path / "nope.yaml")
    assert r.returncode == 1
    assert "nope.yaml" in r.stderr


# -- output ------------------------------------------------------------------------------------------------------

def test_zoo_lists_every_spec():
    r = run("zoo")
    assert r.returncode == 0, r.stderr
    entries = r.stdout.strip().split("\n\n")            # one paragraph per spec: counts, file, what it reproduces
    assert len(entries) == len(SPECS)
    for p, entry in zip(sorted(SPECS, key=lambda p: p.stem), entries):
        head, file, reproduces = entry.split("\n")
        assert head.startswith(f"{p.stem}: ") and " parameters, " in head and " MACs" in head
        assert file.strip() == f"file: specs/{p.name}"
        assert reproduces.strip().startswith("reproduces: ") and len(reproduces) > 40, p.name


def test_check_prints_shapes():
    r = run("check", ROOT / "specs" / "unet.yaml")
    assert r.returncode == 0, r.stderr
    assert "inputs:  x [N, 1, H, W]" in r.stdout
    assert "outputs: out [N, 2, H, W]" in r.stdout
    assert "requires: H % 16 == 0, W % 16 == 0" in r.stdout


def test_output_is_coloured_on_a_terminal(tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN, encoding="utf-8")
    out = run_on_terminal("check", spec)
    assert "unknown op 'conv2'" in out
    assert ANSI.search(out), "errors should be highlighted on a terminal"


def test_quiet_check_prints_nothing_when_ok():
    r = run("check", "--quiet", *SPECS)
    assert r.returncode == 0
    assert r.stdout == "" and r.stderr == ""


def test_plain_output_is_what_rich_prints_without_styles():
    """Printing to a file or pipe skips rich (importing it costs more than a small check): the text written must be
    exactly what rich writes there, for any text netspec escapes and the tags it wraps around it."""
    import io
    import random
    from rich.console import Console
    from rich.markup import escape
    from netspec import cli
    from netspec.errors import visible
    rnd = random.Random(0)
    alphabet = ["[", "]", "\\", "/", "a", "b", "z", "@", "#", "=", " ", ":", "é", "\x1b", "0", "[red]", "[/]",
                "[/red]", "\\[", "[a=b]", "]["]
    for _ in range(3000):
        s = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 14)))
        assert cli._esc(s) == escape(visible(s)), repr(s)
        for markup in (cli._esc(s), f"[bold red]{cli._esc(s)}[/bold red]", f"x [green]OK[/green] {cli._esc(s)}"):
            buf = io.StringIO()
            Console(file=buf, highlight=False, soft_wrap=True, emoji=False).print(markup)
            assert cli._plain(markup) + "\n" == buf.getvalue(), repr(markup)


def test_check_output_does_not_import_rich_when_piped(tmp_path):
    code = ("import sys; from netspec.cli import main; rc = main(['--no-cache', 'check', 'specs/mlp.yaml']); "
            "assert rc == 0 and 'rich' not in sys.modules, sorted(m for m in sys.modules if m.startswith('rich'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "OK mlp" in r.stdout


def test_the_cyclic_gc_is_restored_after_a_command():
    """Tooling commands run with the cyclic GC off (the process ends right after); an in-process caller gets its
    own GC setting back, on or off."""
    import gc
    from netspec import cli
    assert gc.isenabled()
    assert cli.main(["check", "-q", "mlp"]) == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert cli.main(["check", "-q", "mlp"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("world, ends", [("2", "os._exit"), ("1", "sys.exit"), ("", "sys.exit"), ("x", "sys.exit")])
def test_script_ends_torchrun_workers_without_finalizing(monkeypatch, world, ends):
    """Where torch is imported the script exits normally, but a torchrun worker (WORLD_SIZE > 1) ends at once once
    its command returned: finalizing the interpreter beside gloo's threads aborted a rank now and then."""
    import torch  # noqa: F401  (the script's choice depends on torch being imported)
    from netspec import cli

    class Ended(Exception):
        pass

    def ended(how):
        def end(code):
            raise Ended(how, code)
        return end
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setattr(cli, "main", lambda: 4)
    monkeypatch.setattr(cli.os, "_exit", ended("os._exit"))
    monkeypatch.setattr(cli.sys, "exit", ended("sys.exit"))
    import gc
    try:
        with pytest.raises(Ended) as got:
            cli._script()
    finally:
        gc.enable()         # (the script leaves the GC off: see below)
    assert got.value.args == (ends, 4)


def test_script_leaves_the_cyclic_gc_off_to_the_end(monkeypatch):
    """The script's process ends after the command: main() must not turn the cyclic GC back on at its end, which
    made it collect everything the command built, at once, for nothing (0.25 s after a 100k-node compile)."""
    import gc
    from netspec import cli
    seen = []

    class Ended(Exception):
        pass

    def fake_exit(code):
        seen.append(("exit", gc.isenabled()))
        raise Ended(code)

    def fake_run(argv):
        seen.append(("run", gc.isenabled()))
        return 0
    monkeypatch.setattr(cli, "_run", fake_run)
    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    monkeypatch.setattr(cli.sys, "exit", fake_exit)
    try:
        with pytest.raises(Ended):
            cli._script()
    finally:
        gc.enable()
    assert seen == [("run", False), ("exit", False)]
