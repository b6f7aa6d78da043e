"""Outputs are regular files and nothing else; nothing but the named output is ever written, replaced or deleted.

Every command that writes (compile, draw, summary -o, schema -o, export) is pointed at a device node, a FIFO, a
socket, a folder and links to each: it must exit 1 with a clear message and leave the target (and every other file)
as it was. ``-o -`` writes text formats to standard output. The device is a private one made with os.mknod in the
test's folder (as root), so a broken build cannot hurt the real /dev/null.
"""
from __future__ import annotations

import os
from pathlib import Path
import socket
import stat
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from test_hostile import GOOD_SPEC, snapshot, _changes

ROOT = Path(__file__).resolve().parent.parent.parent
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def make_device(p: Path) -> None:
    os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))      # what /dev/null is


def make_fifo(p: Path) -> None:
    os.mkfifo(p)


def make_socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()


def make_dir(p: Path) -> None:
    p.mkdir()


KINDS = {"device": (make_device, "a character device"), "fifo": (make_fifo, "a named pipe (FIFO)"),
         "socket": (make_socket, "a socket"), "dir": (make_dir, "a directory")}
WRITERS = {
    "compile": ["compile", "net.yaml", "-o", "{out}"],
    "draw_svg": ["draw", "net.yaml", "-o", "{out}"],
    "draw_dot": ["draw", "net.yaml", "-o", "{out}"],
    "summary": ["summary", "net.yaml", "-o", "{out}"],
    "schema": ["schema", "-o", "{out}"],
    "export_json": ["export", "net.yaml", "-o", "{out}"],
    "schema_graph": ["schema", "--graph", "-o", "{out}"],
}
SUFFIX = {"compile": ".py", "draw_svg": ".svg", "draw_dot": ".dot", "summary": ".txt", "schema": ".json",
          "export_json": ".json", "schema_graph": ".json"}


def _setup(tmp_path: Path, kind: str, link: bool, suffix: str) -> str:
    (tmp_path / "net.yaml").write_text(GOOD_SPEC)
    make, _ = KINDS[kind]
    if kind == "device" and not IS_ROOT:
        pytest.skip("mknod of a character device needs root")
    target = tmp_path / f"special{suffix}"
    make(target)
    if not link:
        return target.name
    (tmp_path / f"link{suffix}").symlink_to(target.name)
    return f"link{suffix}"


@pytest.mark.parametrize("link", [False, True], ids=["direct", "link"])
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("cmd", sorted(WRITERS))
def test_special_targets_are_refused_and_kept(cmd, kind, link, cli_pool, tmp_path):
    out = _setup(tmp_path, kind, link, SUFFIX[cmd])
    before = snapshot(tmp_path)
    argv = [a.replace("{out}", out) for a in WRITERS[cmd]]
    with cli_pool.server() as server:
        r = server.run(argv, tmp_path, timeout=30)
    assert not r.timed_out, "blocked on the target (a FIFO opened for writing?)"
    assert r.rc == 1 and "Traceback" not in r.stderr, r.stderr
    what = KINDS[kind][1]
    shown = f"it is a symbolic link to {what}" if link else f"it is {what}"
    assert r.stderr.startswith(f"{out}:1:1: error: cannot write '{out}': {shown}"), r.stderr
    assert "hint: netspec writes only regular files" in r.stderr
    assert _changes(before, snapshot(tmp_path)) == []
    kind_now = stat.S_IFMT(os.lstat(tmp_path / f"special{SUFFIX[cmd]}").st_mode)
    assert kind_now == {"device": stat.S_IFCHR, "fifo": stat.S_IFIFO, "socket": stat.S_IFSOCK,
                        "dir": stat.S_IFDIR}[kind]


@pytest.mark.skipif(not IS_ROOT, reason="mknod needs root")
def test_compile_onto_a_private_dev_null_leaves_the_device(tmp_path):
    """The CI idiom ``netspec compile x.yaml -o /dev/null``, run as root, on a private device node: a cold run."""
    (tmp_path / "net.yaml").write_text(GOOD_SPEC)
    dev = tmp_path / "null"
    make_device(dev)
    r = subprocess.run([sys.executable, "-m", "netspec", "compile", "net.yaml", "-o", str(dev)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    st_ = os.lstat(dev)
    assert stat.S_ISCHR(st_.st_mode) and st_.st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml", "null"]


def test_link_to_a_regular_file_writes_that_file(cli_pool, tmp_path):
    (tmp_path / "net.yaml").write_text(GOOD_SPEC)
    (tmp_path / "real.py").write_text("old\n")
    (tmp_path / "link.py").symlink_to("real.py")
    with cli_pool.server() as server:
        r = server.run(["compile", "net.yaml", "-o", "link.py"], tmp_path)
    assert r.rc == 0, r.stderr
    assert (tmp_path / "link.py").is_symlink() and "class" in (tmp_path / "real.py").read_text()


def test_dangling_link_is_refused(cli_pool, tmp_path):
    (tmp_path / "net.yaml").write_text(GOOD_SPEC)
    (tmp_path / "link.py").symlink_to("nowhere/else.py")
    before = snapshot(tmp_path)
    with cli_pool.server() as server:
        r = server.run(["compile", "net.yaml", "-o", "link.py"], tmp_path)
    assert r.rc == 1 and "is a symbolic link to" in r.stderr and "does not exist" in r.stderr, r.stderr
    assert _changes(before, snapshot(tmp_path)) == []


@pytest.mark.parametrize("argv,starts", [
    (["compile", "net.yaml", "-o", "-"], "from torch import nn"),
    (["draw", "net.yaml", "-o", "-"], "digraph"),
    (["summary", "net.yaml", "-o", "-"], ""),
    (["summary", "net.yaml", "-f", "json", "-o", "-"], "{"),
    (["schema", "-o", "-"], "{"),
    (["export", "net.yaml", "--format", "json", "-o", "-"], '"format": "netspec-graph"'),
    (["schema", "--graph", "-o", "-"], "{"),
])
def test_dash_writes_text_to_stdout(argv, starts, cli_pool, tmp_path):
    (tmp_path / "net.yaml").write_text(GOOD_SPEC)
    before = snapshot(tmp_path)
    with cli_pool.server() as server:
        r = server.run(argv, tmp_path)
    assert r.rc == 0, r.stderr
    assert starts in r.stdout[:400] and len(r.stdout) > 50, r.stdout[:300]
    assert _changes(before, snapshot(tmp_path)) == []


def test_export_to_stdout_is_refused(cli_pool, tmp_path):
    (tmp_path / "net.yaml").write_text(GOOD_SPEC)
    with cli_pool.server() as server:
        r = server.run(["export", "net.yaml", "-o", "-"], tmp_path)
    assert r.rc == 1 and r.stderr.startswith("-:1:1: error: cannot write ONNX to standard output"), r.stderr


def test_summary_to_a_file(cli_pool, tmp_path):
    (tmp_path / "net.yaml").write_text(GOOD_SPEC)
    with cli_pool.server() as server:
        r = server.run(["summary", "net.yaml", "-f", "csv", "-o", "t.csv"], tmp_path)
    assert r.rc == 0 and r.stdout == "", r.stderr
    assert (tmp_path / "t.csv").read_text().count("\n") >= 2


def test_draw_without_graphviz_never_replaces_a_sibling_dot(tmp_path, monkeypatch):
    from netspec.draw import GraphvizMissing, draw
    (tmp_path / "net.yaml").write_text(GOOD_SPEC)
    (tmp_path / "net.dot").write_text("mine, not netspec's\n")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GraphvizMissing) as e:
        draw(tmp_path / "net.yaml", tmp_path / "net.svg")
    assert (tmp_path / "net.dot").read_text() == "mine, not netspec's\n"
    assert e.value.dot_path != tmp_path / "net.dot" and e.value.dot_path.read_text().startswith("digraph")
    assert str(e.value.dot_path) in e.value.message and "new file" in e.value.message
    assert not (tmp_path / "net.svg").exists()


# -- fuzzing the options and output paths ------------------------------------------------------------------------

names = st.sampled_from(["out.py", "out.svg", "out.dot", "out.png", "out", "-", "dir", "dir/", "fifo", "link",
                         "dangling", "net.yaml", "sub/x.py", "nowhere/x.py", ".", "..", "/", "\x1b[2J.py",
                         "a\nb.py", "x" * 300 + ".py"])
commands = st.sampled_from([["compile", "net.yaml"], ["draw", "net.yaml"], ["summary", "net.yaml"], ["schema"],
                            ["check", "net.yaml"], ["export", "net.yaml", "--format", "json"]])
extras = st.lists(st.sampled_from(["--depth", "0", "-1", "--rankdir", "LR", "--network", "x", "--bind", "N=0",
                                   "N=2", "-p", "a=1", "--format", "json", "csv", "--class-name", "1x", "Net",
                                   "--limit", "max_nodes=0", "max_nodes=1", "-q", "--legend", "--no-legend"]),
                  max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(cmd=commands, out=st.one_of(st.none(), names), extra=extras)
def test_fuzz_options_and_outputs(cmd, out, extra, cli_pool, tmp_path_factory):
    """Any mix of options and output paths: exit 0, 1 or 2 (never 3 or a traceback), special files untouched,
    nothing written but the named output (and the spec never replaced)."""
    d = tmp_path_factory.mktemp("opts")
    (d / "net.yaml").write_text(GOOD_SPEC)
    (d / "dir").mkdir()
    (d / "sub").mkdir()
    os.mkfifo(d / "fifo")
    (d / "link").symlink_to("fifo")
    (d / "dangling").symlink_to("gone")
    before = snapshot(d)
    argv = list(cmd) + (["-o", out] if out is not None else []) + extra
    with cli_pool.server() as server:
        r = server.run(argv, d, timeout=30)
    assert not r.timed_out and r.rc in (0, 1, 2), (argv, r.rc, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, (argv, r.stderr[-2000:])
    changed = _changes(before, snapshot(d))
    if r.rc != 0 or out in (None, "-"):
        assert changed == [], (argv, changed)
    else:
        named = os.path.normpath(out)
        parent = os.path.dirname(named)     # a new file in a folder changes the folder's own entry (its mtime)
        assert all(c.split(": ", 1)[1] == named or (parent and c == f"changed: {parent}") for c in changed), \
            (argv, changed)
    if "net.yaml" in cmd:       # a command never replaces its own spec (schema reads none: -o net.yaml is asked for)
        assert (d / "net.yaml").read_text() == GOOD_SPEC
    assert stat.S_ISFIFO(os.lstat(d / "fifo").st_mode) and (d / "link").is_symlink()
