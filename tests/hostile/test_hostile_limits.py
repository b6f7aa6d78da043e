"""Every named limit is documented in docs/safety.md and can be set on the command line.

For each limit, a spec that is fine with the defaults is refused when the limit is set below what it needs
(``netspec --limit NAME=VALUE check``), with a located message giving the value and a hint naming the limit;
and a spec the defaults refuse passes once the limit is raised.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from netspec.limits import LIMITS, Limits

ROOT = Path(__file__).resolve().parent.parent.parent
HEAD = "netspec: 1\ninputs: {x: [N, 8]}\n"

# limit: (value, spec text, expected message of the first error)
LOWERED = {
    "max_file_bytes": (100, HEAD + "# a comment that takes the file over a hundred bytes\nlayers:\n  - {op: relu}\n",
                       "the file is 107 bytes, over the limit of 100"),
    "max_depth": (2, HEAD + "layers:\n  - {op: relu}\n", "the spec is nested more than 2 levels deep"),
    "max_yaml_nodes": (5, HEAD + "layers:\n  - {op: relu}\n", "the spec has more than 5 YAML values"),
    "max_alias_nodes": (2, HEAD + "params: {a: &d [8, 8, 8], b: *d}\nlayers:\n  - {op: relu}\n",
                        "YAML aliases expand to more than 2 values"),
    "max_key_chars": (5, HEAD + "layers:\n  - {op: relu}\n", "a key of 7 characters is over the limit of 5"),
    "max_string_chars": (3, HEAD + "layers:\n  - {op: relu}\n", "a string of 4 characters is over the limit of 3"),
    "max_nodes": (2, HEAD + "layers:\n  - {op: relu}\n  - {op: relu}\n", "the network has more than 2 nodes"),
    "max_repeat": (3, HEAD + "layers:\n  - {op: relu, repeat: 4}\n", "repeat count 4 is over the limit of 3"),
    "max_block_depth": (1, HEAD + "blocks:\n  outer: {layers: [{op: inner}]}\n  inner: {layers: [{op: relu}]}\n"
                           "layers:\n  - {op: outer}\n", "blocks are nested more than 1 deep"),
    "max_param_bytes": (100, HEAD + "layers:\n  - {op: linear, out: 4, name: fc}\n",
                        "the network's weights would need 0.0 GiB (float32), over the limit of 0.0 GiB"),
    "max_dim": (7, HEAD + "layers:\n  - {op: relu}\n", "dimension 8 is over the limit of 7"),
    "max_imports": (1, HEAD + "imports: [a.yaml, b.yaml]\nlayers:\n  - {op: relu}\n", "more than 1 imported files"),
    # check warns (and --strict refuses) past what build and export may allocate
    "max_alloc_bytes": (100, HEAD + "layers:\n  - {op: linear, out: 4, name: fc}\n",
                        "the network's weights need 144 bytes, more than this machine can give (100 bytes, "
                        "max_alloc_bytes): build and export would refuse"),
    "max_work": (100, HEAD + "layers:\n  - {op: relu, repeat: 5}\n",
                 "repeating '#0' 5 times would take about 125 expansion steps, over the limit of 100"),
    "max_layout_cost": (3, HEAD + "layers:\n  - {op: relu}\n  - {op: relu}\n",
                        "network 'net' would take Graphviz about 4 units of layout work (4 nodes, 2 edges and the "
                        "bends of long edges), over the limit of 3 (max_layout_cost)"),
    "max_drawn_nodes": (3, HEAD + "layers:\n  - {op: relu}\n  - {op: relu}\n",
                        "network 'net' would be drawn with 4 nodes, over the limit of 3 nodes (max_drawn_nodes)"),
}
CHECK_ARGS = {"max_alloc_bytes": ["--strict"]}
COMMAND = {"max_layout_cost": ["draw", "-o", "net.svg"],     # the limits that only one command spends (a layout)
           "max_drawn_nodes": ["draw", "-o", "net.svg"]}
MACHINE_DEFAULTS = {"max_alloc_bytes": "half of `MemAvailable`"}     # documented as a rule, not a number
LIBRARY = "netspec: 1\nblocks:\n  unit_{n}: {{layers: [{{op: relu}}]}}\n"


def test_every_limit_is_tested_and_documented():
    assert set(LOWERED) == set(Limits().names())
    doc = (ROOT / "docs" / "safety.md").read_text(encoding="utf-8")
    for name in Limits().names():
        default = getattr(Limits(), name)
        assert f"`{name}`" in doc, f"docs/safety.md does not document {name}"
        if name in MACHINE_DEFAULTS:
            assert MACHINE_DEFAULTS[name] in doc, f"docs/safety.md does not say how {name}'s default is found"
            continue
        assert f"{default:,}" in doc or f"{default}" in doc, f"docs/safety.md does not give the default of {name}"


@pytest.mark.parametrize("name", sorted(LOWERED))
def test_lowered_limit_refuses(name, cli_pool, tmp_path):
    value, text, message = LOWERED[name]
    (tmp_path / "net.yaml").write_text(text)
    for n in "ab":
        (tmp_path / f"{n}.yaml").write_text(LIBRARY.format(n=n))
    with cli_pool.server() as server:
        cmd = COMMAND.get(name, ["check"])
        ok = server.run([*cmd, "net.yaml"], tmp_path)
        low = server.run(["--limit", f"{name}={value}", *cmd, *CHECK_ARGS.get(name, []), "net.yaml"], tmp_path)
    assert ok.rc == 0, ok.stderr
    assert low.rc == 1, low.stderr
    lines = low.stderr.splitlines()
    first = next(i for i, line in enumerate(lines) if ": error: " in line)
    assert lines[first].startswith("net.yaml:") and lines[first].endswith(f"error: {message}"), low.stderr
    hints = [line for line in lines[first + 1:] if line.startswith("  hint:")]
    assert any(f"--limit {name}=" in h for h in hints), f"no hint names the limit:\n{low.stderr}"


RAISED = {
    # limit: (value, spec text the defaults refuse)
    "max_repeat": (20_000, HEAD + "layers:\n  - {op: relu, repeat: 20000}\n"),
    "max_file_bytes": (8 << 20, HEAD + "# " + "x" * (5 << 20) + "\nlayers:\n  - {op: relu}\n"),
    "max_string_chars": (200_000, HEAD + "doc: " + "y" * 100_000 + "\nlayers:\n  - {op: relu}\n"),
}


@pytest.mark.parametrize("name", sorted(RAISED))
def test_raised_limit_accepts(name, cli_pool, tmp_path):
    value, text = RAISED[name]
    (tmp_path / "net.yaml").write_text(text)
    with cli_pool.server() as server:
        default = server.run(["check", "-q", "net.yaml"], tmp_path)
        raised = server.run(["--limit", f"{name}={value}", "check", "-q", "net.yaml"], tmp_path)
    assert default.rc == 1 and f"--limit {name}=" in default.stderr, default.stderr
    assert raised.rc == 0, raised.stderr


def test_limits_object_defaults_untouched():
    """The CLI sets limits in its own process; the tests' process keeps the defaults."""
    assert LIMITS == Limits()
