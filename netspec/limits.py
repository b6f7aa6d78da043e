"""Named limits that bound the work a spec can cause (documented in docs/safety.md). Overridable from the command line
(``netspec --limit NAME=VALUE``) or by setting them on ``LIMITS``."""
from __future__ import annotations

from dataclasses import dataclass, fields


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
    max_param_bytes: int = 64 * 1024**3          # parameters+buffers (float32) a network may declare
    max_dim: int = 2**40                         # any concrete tensor dimension
    max_imports: int = 64                        # files reachable through imports

    def names(self) -> list[str]:
        return [f.name for f in fields(self)]

    def set(self, name: str, value: int) -> None:
        if name not in self.names():
            raise KeyError(name)
        setattr(self, name, int(value))


LIMITS = Limits()
"""The process-wide limits (the CLI sets them from its options)."""
