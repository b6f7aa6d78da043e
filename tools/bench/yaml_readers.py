#!/usr/bin/env python
"""YAML readers on the literal chain (every layer written out): libyaml's C parser and composer against netspec's
readers, with the pure-Python parser and JSON beside them. CPU seconds, least of ``--reps`` runs (the cyclic GC off,
as the tooling runs).

  events        libyaml's parser alone: every event taken, nothing built (the floor under any located reader)
  c_compose     yaml.compose with CSafeLoader: libyaml's C composer builds the node tree, each node with its marks;
                no data yet, and no limit checked on the way (depth, values, aliases)
  c_load        yaml.load with CSafeLoader: plain data, no locations
  one_pass      netspec's reader (spec.parse.load_file): data and every key's and value's location, in one pass over
                libyaml's events, limits checked as it reads; a layer on a line of its own as a flow mapping of
                plain words, or in block style as yaml.dump writes it, is read from its lines (libyaml reads one
                stand-in for a run of them)
  events_only   the same reader with every line left to libyaml's events (as before session 22)
  composing     netspec's other reader (the one for anchors, aliases and errors): libyaml's events composed into
                nodes in Python, then converted
  py_compose    yaml.compose with the pure-Python SafeLoader
  one_pass_block netspec's reader on the same spec written by yaml.dump (block style: one key per line)
  json_loads    json.loads of the same spec written as JSON (no locations)
  one_pass_json netspec's reader on that JSON file (JSON is read as YAML, for its locations)

    python tools/bench/yaml_readers.py --sizes 10k,100k --reps 3
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

READERS = ("events", "c_compose", "c_load", "one_pass", "events_only", "one_pass_block", "composing", "py_compose",
           "json_loads", "one_pass_json")


def least(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        gc.collect()
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
        del out
    return best


def readers(yaml_path: Path, json_path: Path, block_path: Path) -> dict:
    import yaml

    from netspec.spec import parse
    text = yaml_path.read_text()
    jtext = json_path.read_text()

    def events():
        p = yaml.CSafeLoader(text)
        try:
            n = 0
            while p.check_event():
                p.get_event()
                n += 1
            return n
        finally:
            p.dispose()

    def events_only():
        saved = parse._flow_items, parse._block_items
        parse._flow_items = parse._block_items = lambda text, words, flows: text
        try:
            return parse.load_file(yaml_path)
        finally:
            parse._flow_items, parse._block_items = saved

    def composing():
        saved = parse._read_fast
        parse._read_fast = lambda *a: False
        try:
            return parse.load_file(yaml_path)
        finally:
            parse._read_fast = saved

    return {"events": events,
            "c_compose": lambda: yaml.compose(text, Loader=yaml.CSafeLoader),
            "c_load": lambda: yaml.load(text, Loader=yaml.CSafeLoader),
            "one_pass": lambda: parse.load_file(yaml_path),
            "events_only": events_only,
            "composing": composing,
            "py_compose": lambda: yaml.compose(text, Loader=yaml.SafeLoader),
            "json_loads": lambda: json.loads(jtext),
            "one_pass_block": lambda: parse.load_file(block_path),
            "one_pass_json": lambda: parse.load_file(json_path)}


def main(argv=None) -> int:
    import specs as gen
    from run import size_of

    from netspec.limits import LIMITS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10k", help="layers, comma-separated (10k, 100k)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--readers", default=",".join(READERS))
    a = ap.parse_args(argv)
    want = [r for r in a.readers.split(",") if r]
    bad = [r for r in want if r not in READERS]
    if bad:
        ap.error(f"unknown reader(s) {', '.join(bad)}; readers: {', '.join(READERS)}")
    for k, v in {"max_yaml_nodes": 10_000_000, "max_file_bytes": 512 * 1024**2}.items():
        LIMITS.set(k, v)
    gc.disable()
    print("| layers | file | " + " | ".join(want) + " |")
    print("|---:|---|" + "---:|" * len(want))
    with tempfile.TemporaryDirectory() as tmp:
        for size in a.sizes.split(","):
            n = size_of(size)
            text, _ = gen.generate("literal", n)
            yp = Path(tmp) / "literal.yaml"
            yp.write_text(text)
            import yaml
            jp = Path(tmp) / "literal.json"
            data = yaml.load(text, Loader=yaml.CSafeLoader)
            jp.write_text(json.dumps(data, indent=1))
            bp = Path(tmp) / "literal_block.yaml"
            bp.write_text(yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False))
            fns = readers(yp, jp, bp)
            cells = [f"{least(fns[r], a.reps):.3f}" for r in want]
            print(f"| {n:,} | {len(text.encode()):,} bytes | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
