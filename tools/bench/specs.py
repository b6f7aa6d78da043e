"""Generated specs for the scale benchmarks: the same network shapes at 1k, 10k and 100k graph nodes.

Each generator returns (YAML text, the number of graph nodes it expands to). Features are tiny (8 wide) so that a
real build measures netspec's work, not weight initialisation. Kinds:

- ``repeat``:  a deep chain written with one block and ``repeat`` (linear + relu, n/2 times)
- ``literal``: the same chain written out layer by layer (n layers in the file)
- ``wide``:    groups of 16 parallel linears joined by a concat and a linear (wide concatenations)
- ``blocks``:  many small residual blocks (linear, relu, linear, add), 32 distinct block definitions used in turn
- ``nested``:  blocks nested log2(n) deep, each level two copies of the level below
- ``flat``:    residual units written out layer by layer with no block (linear, relu, linear, add), as a searched or
  generated network is: nothing to fold and no long chain, only its units to draw as boxes
"""
from __future__ import annotations

import math

KINDS = ("repeat", "literal", "wide", "blocks", "nested", "flat")
WIDTH = 8
HEADER = f"netspec: 1\nname: {{name}}\ninputs:\n  x: [N, {WIDTH}]\n"


def repeat(n: int) -> tuple[str, int]:
    k = max(1, (n - 1) // 2)
    text = HEADER.format(name="chain_repeat") + (
        "blocks:\n  unit:\n    layers:\n"
        f"      - {{name: fc, op: linear, out: {WIDTH}}}\n"
        "      - {name: act, op: relu}\n"
        f"layers:\n  - {{name: body, op: unit, repeat: {k}}}\n")
    return text, 2 * k + 1


def literal(n: int) -> tuple[str, int]:
    k = max(1, n - 1)
    lines = [HEADER.format(name="chain_literal"), "layers:\n"]
    for i in range(k):
        lines.append(f"  - {{name: fc{i}, op: linear, out: {WIDTH}}}\n" if i % 2 == 0 else
                     f"  - {{name: act{i}, op: relu}}\n")
    return "".join(lines), k + 1


def wide(n: int, branches: int = 16) -> tuple[str, int]:
    per = branches + 2
    k = max(1, (n - 1) // per)
    body = "".join(f"      - {{name: b{j}, op: linear, out: {WIDTH}, from: x}}\n" for j in range(branches))
    text = HEADER.format(name="wide_concat") + (
        "blocks:\n  fan:\n    layers:\n" + body +
        "      - {name: cat, op: concat, from: [" + ", ".join(f"b{j}" for j in range(branches)) + "]}\n"
        f"      - {{name: proj, op: linear, out: {WIDTH}}}\n"
        f"layers:\n  - {{name: body, op: fan, repeat: {k}}}\n")
    return text, per * k + 1


def blocks(n: int, distinct: int = 32) -> tuple[str, int]:
    k = max(1, (n - 1) // 4)
    lines = [HEADER.format(name="many_blocks"), "blocks:\n"]
    for b in range(min(distinct, k)):
        lines.append(f"  res{b}:\n    layers:\n"
                     f"      - {{name: fc1, op: linear, out: {WIDTH}}}\n"
                     "      - {name: act, op: relu}\n"
                     f"      - {{name: fc2, op: linear, out: {WIDTH}, bias: {'true' if b % 2 else 'false'}}}\n"
                     "      - {name: add, op: add, from: [fc2, x]}\n")
    lines.append("layers:\n")
    for i in range(k):
        lines.append(f"  - {{name: r{i}, op: res{i % distinct}}}\n")
    return "".join(lines), 4 * k + 1


def nested(n: int) -> tuple[str, int]:
    depth = max(1, round(math.log2(max(2, n - 1))))
    lines = [HEADER.format(name="nested"), "blocks:\n",
             f"  l0:\n    layers:\n      - {{name: fc, op: linear, out: {WIDTH}}}\n"]
    for d in range(1, depth + 1):
        lines.append(f"  l{d}:\n    layers:\n      - {{name: a, op: l{d - 1}}}\n      - {{name: b, op: l{d - 1}}}\n")
    lines.append(f"layers:\n  - {{name: top, op: l{depth}}}\n")
    return "".join(lines), 2 ** depth + 1


def flat(n: int) -> tuple[str, int]:
    k = max(1, (n - 2) // 4)
    lines = [HEADER.format(name="flat_residual"), "layers:\n", f"  - {{name: stem, op: linear, out: {WIDTH}}}\n"]
    prev = "stem"
    for i in range(k):
        lines.append(f"  - {{name: a{i}, op: linear, out: {WIDTH}, from: {prev}}}\n"
                     f"  - {{name: r{i}, op: relu}}\n"
                     f"  - {{name: b{i}, op: linear, out: {WIDTH}}}\n"
                     f"  - {{name: s{i}, op: add, from: [b{i}, {prev}]}}\n")
        prev = f"s{i}"
    return "".join(lines), 4 * k + 2


GENERATORS = {"repeat": repeat, "literal": literal, "wide": wide, "blocks": blocks, "nested": nested, "flat": flat}


def generate(kind: str, n: int) -> tuple[str, int]:
    """(YAML text, graph nodes) of a generated spec of about ``n`` nodes."""
    return GENERATORS[kind](n)
