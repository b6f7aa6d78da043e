"""The spec cache (netspec/cache.py): a repeated command reuses the expansion only while every file it read is
unchanged, and a cache folder or entry that someone else could have written is never trusted (never unpickled)."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from netspec import cache
from netspec.cli import main

SPEC = """netspec: 1
name: net
imports: [blocks.yaml]
inputs:
  x: [N, 8]
layers:
  - {name: body, op: unit, repeat: 3}
"""
BLOCKS = """netspec: 1
blocks:
  unit:
    layers:
      - {name: fc, op: linear, out: %d}
      - {name: act, op: relu}
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A spec importing a block file, a private cache folder, and a counter of expansions."""
    monkeypatch.delenv("NETSPEC_NO_CACHE", raising=False)
    monkeypatch.setenv("NETSPEC_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "net.yaml").write_text(SPEC)
    (tmp_path / "blocks.yaml").write_text(BLOCKS % 8)
    import netspec.graph.expand as ex
    calls = []
    real = ex.expand

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)
    monkeypatch.setattr(ex, "expand", counting)
    from dataclasses import asdict
    from netspec.limits import LIMITS
    saved = asdict(LIMITS)
    yield tmp_path, calls
    for k, v in saved.items():           # --limit sets the process-wide limits
        LIMITS.set(k, v)


def check(tmp_path, capsys, *extra):
    rc = main([*extra, "check", str(tmp_path / "net.yaml")])
    out = capsys.readouterr()
    return rc, out.out + out.err


def entries(tmp_path) -> list[Path]:
    d = tmp_path / "cache"
    return sorted(d.glob("*.pkl")) if d.exists() else []


def test_second_check_reuses_the_expansion(env, capsys):
    tmp_path, calls = env
    rc1, out1 = check(tmp_path, capsys)
    rc2, out2 = check(tmp_path, capsys)
    assert rc1 == rc2 == 0 and out1 == out2 and "OK net: 7 nodes, 216 parameters" in out1
    assert len(calls) == 1                      # the second run expanded nothing
    assert len(entries(tmp_path)) == 1
    mode = os.stat(tmp_path / "cache").st_mode & 0o777
    assert mode == 0o700, oct(mode)
    assert os.stat(tmp_path / "cache" / "key").st_mode & 0o777 == 0o600
    assert cache.ENABLED is False               # the CLI turns it on for its own run only


def test_editing_an_imported_file_changes_the_result(env, capsys):
    tmp_path, calls = env
    rc, out = check(tmp_path, capsys)
    assert rc == 0 and "216 parameters" in out
    (tmp_path / "blocks.yaml").write_text(BLOCKS % 16)
    rc, out = check(tmp_path, capsys)
    assert rc == 0 and "688 parameters" in out and "outputs: out [N, 16]" in out, out   # the blocks say 16 now
    assert len(calls) == 2
    (tmp_path / "blocks.yaml").write_text(BLOCKS.replace("linear", "linaer") % 8)
    rc, out = check(tmp_path, capsys)
    assert rc == 1 and "blocks.yaml:" in out and "linaer" in out, out


def test_arguments_and_limits_are_part_of_the_key(env, capsys):
    tmp_path, calls = env
    assert check(tmp_path, capsys)[0] == 0
    rc, out = check(tmp_path, capsys, "--limit", "max_nodes=3")
    assert rc == 1 and "max_nodes" in out, out
    rc, out = main(["check", "-p", "x=1", str(tmp_path / "net.yaml")]), capsys.readouterr()
    assert len(calls) == 3


def test_disabled_by_option_and_environment(env, capsys, monkeypatch):
    tmp_path, calls = env
    assert check(tmp_path, capsys, "--no-cache")[0] == 0
    assert check(tmp_path, capsys, "--no-cache")[0] == 0
    monkeypatch.setenv("NETSPEC_NO_CACHE", "1")
    assert check(tmp_path, capsys)[0] == 0
    assert len(calls) == 3 and not entries(tmp_path)


def test_tampered_entry_is_never_unpickled(env, capsys):
    tmp_path, calls = env
    assert check(tmp_path, capsys)[0] == 0
    (entry,) = entries(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    blob = entry.read_bytes()
    head_len = int.from_bytes(blob[40:44], "big")
    evil = blob[:44 + head_len] + pickle.dumps(Evil())            # the old MAC, another payload
    entry.write_bytes(evil)
    rc, out = check(tmp_path, capsys)
    assert rc == 0 and "OK net" in out and not marker.exists()
    assert len(calls) == 2                      # rebuilt, and stored again
    assert entry.read_bytes() != evil


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_corrupt_entry_is_rebuilt(env, capsys, damage):
    tmp_path, calls = env
    assert check(tmp_path, capsys)[0] == 0
    (entry,) = entries(tmp_path)
    blob = entry.read_bytes()
    entry.write_bytes({"truncate": blob[: len(blob) // 2], "flip": blob[:-1] + bytes([blob[-1] ^ 1]),
                       "empty": b"", "garbage": os.urandom(100)}[damage])
    rc, out = check(tmp_path, capsys)
    assert rc == 0 and "OK net: 7 nodes" in out
    assert len(calls) == 2


def test_a_folder_others_can_write_is_not_used(env, capsys):
    tmp_path, calls = env
    (tmp_path / "cache").mkdir(mode=0o777)
    os.chmod(tmp_path / "cache", 0o777)
    assert check(tmp_path, capsys)[0] == 0
    assert check(tmp_path, capsys)[0] == 0
    assert len(calls) == 2 and not entries(tmp_path)


def test_a_key_others_can_read_is_not_used(env, capsys):
    tmp_path, calls = env
    assert check(tmp_path, capsys)[0] == 0
    os.chmod(tmp_path / "cache" / "key", 0o644)
    assert check(tmp_path, capsys)[0] == 0
    assert len(calls) == 2


def test_a_linked_cache_folder_is_not_used(env, capsys, tmp_path_factory):
    tmp_path, calls = env
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.chmod(elsewhere, 0o700)
    (tmp_path / "cache").symlink_to(elsewhere)
    assert check(tmp_path, capsys)[0] == 0
    assert check(tmp_path, capsys)[0] == 0
    assert len(calls) == 2 and not list(elsewhere.iterdir())


def test_errors_are_not_cached(env, capsys):
    tmp_path, _ = env
    (tmp_path / "net.yaml").write_text(SPEC.replace("op: unit", "op: unti"))
    assert check(tmp_path, capsys)[0] == 1
    assert not entries(tmp_path)


def test_other_commands_use_it_too(env, capsys):
    tmp_path, calls = env
    (tmp_path / "net.yaml").write_text(SPEC.replace("inputs:", "params: {width: 8}\ninputs:")
                                       .replace("repeat: 3}", "repeat: 3}\n  - {name: head, op: linear, out: width}"))
    assert main(["--no-cache", "compile", str(tmp_path / "net.yaml"), "-o", str(tmp_path / "plain.py"), "-q"]) == 0
    plain = (tmp_path / "plain.py").read_text()
    assert "def __init__(self, width=8)" in plain           # code generation expands again at other values
    calls.clear()
    for _ in range(2):                                       # a miss, then a hit: the same source as without cache
        assert main(["compile", str(tmp_path / "net.yaml"), "-o", str(tmp_path / "model.py"), "-q"]) == 0
        assert (tmp_path / "model.py").read_text() == plain
    assert len(calls) == 3          # the first run: the network, then two more values of width; the second: none
    # an output may never replace an input, also when the inputs were not read again
    assert main(["compile", str(tmp_path / "net.yaml"), "-o", str(tmp_path / "blocks.yaml")]) == 1
    assert "blocks.yaml" in capsys.readouterr().err
    assert (tmp_path / "blocks.yaml").read_text() == BLOCKS % 8
