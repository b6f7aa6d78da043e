#!/usr/bin/env python
"""Write netspec/ops/_index.py: which family module defines each built-in op (its name and aliases), in the
registry's order after a full load. Run it after adding or renaming an op; tests/test_ops_index.py fails until
the index matches the registry.

    python tools/gen_ops_index.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def index_text() -> str:
    sys.path.insert(0, str(ROOT))
    from netspec.ops.base import ALIASES, all_ops
    ops = {n: c for n, c in all_ops().items() if c.__module__.startswith("netspec.ops.")}   # no plugin ops
    aliases: dict = {}
    for a, n in ALIASES.items():
        aliases.setdefault(n, []).append(a)
    lines = ['"""Which family module defines each built-in op (its name, then its aliases), in the order a full load',
             "registers them: written by tools/gen_ops_index.py and held to the registry by tests/test_ops_index.py.",
             "``lookup`` imports only the family of the op it is asked for when no installed distribution can declare",
             'plugin ops (base._family_for), and the full load puts the registry back in this order."""', "",
             "FAMILY_OF = {"]
    for name, cls in ops.items():
        fam = cls.__module__.rsplit(".", 1)[-1]
        lines.append(f"    {name!r}: {fam!r},")
        for a in aliases.get(name, []):
            lines.append(f"    {a!r}: {fam!r},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    (ROOT / "netspec" / "ops" / "_index.py").write_text(index_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
