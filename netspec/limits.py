"""Named limits that bound the work a spec can cause (documented in docs/safety.md). Overridable from the command line
(``netspec --limit NAME=VALUE``) or by setting them on ``LIMITS``."""
from __future__ import annotations

from dataclasses import dataclass, fields

FALLBACK_AVAILABLE_BYTES = 4 * 1024**3      # when /proc/meminfo cannot be read


def available_memory_bytes() -> int:
    """The memory this machine can still give (``MemAvailable`` in /proc/meminfo), or 4 GiB if unknown."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    parts = line.split()
                    return int(parts[1]) * (1024 if parts[2:3] == [b"kB"] else 1)
    except (OSError, ValueError, IndexError):
        pass
    return FALLBACK_AVAILABLE_BYTES


def default_alloc_bytes() -> int:
    """Half of the available memory: what one command may allocate for weights and example inputs."""
    return max(64 * 1024**2, available_memory_bytes() // 2)


DEFAULT_ALLOC_BYTES = default_alloc_bytes()    # read once, when netspec is imported


@dataclass
class Limits:
    max_file_bytes: int = 4 * 1024 * 1024        # a spec file larger than this is refused
    max_depth: int = 64                          # nesting of YAML collections
    max_yaml_nodes: int = 100_000                # values in one file
    max_alias_nodes: int = 10_000                # values that YAML aliases may expand to
    max_key_chars: int = 256                     # a key or name longer than this is refused
    max_string_chars: int = 10_000               # a string value longer than this is refused
    max_nodes: int = 50_000                      # nodes in the expanded graph
    max_repeat: int = 10_000                     # a single repeat count
    max_block_depth: int = 32                    # blocks inside blocks
    max_param_bytes: int = 64 * 1024**3          # parameters+buffers (float32) a network may declare (check time)
    max_dim: int = 2**40                         # any concrete tensor dimension
    max_imports: int = 64                        # files reachable through imports
    max_work: int = 2_000_000                    # expansion steps: instances, repeat copies, expression work
    max_layout_cost: int = 100_000               # draw: the sum over ranks of their squared widths (see draw.py)
    max_drawn_nodes: int = 2_000                 # draw: boxes in one picture (edges: three times as many)
    max_alloc_bytes: int = DEFAULT_ALLOC_BYTES
    """what build, export and load_weights may allocate (weights, example inputs, tensors read from a file);
    check and summary warn past it. Default: half of MemAvailable when netspec starts."""

    def names(self) -> list[str]:
        return [f.name for f in fields(self)]

    def set(self, name: str, value: int) -> None:
        if name not in self.names():
            raise KeyError(name)
        setattr(self, name, int(value))


LIMITS = Limits()
"""The process-wide limits (the CLI sets them from its options)."""


def fmt_bytes(n: int | float) -> str:
    """1,536 -> '1.5 KiB'; sizes in messages, from bytes to TiB."""
    try:
        n = float(n)
    except OverflowError:
        return "more than 10**300 bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{int(n):,} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PiB"  # pragma: no cover
