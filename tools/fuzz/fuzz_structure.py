"""Structure fuzzer: hypothesis builds spec-shaped documents, netspec must answer each one cleanly.

The documents look like specs -- ops from the registry with their own parameter names, blocks, repeats,
conditions, references, expressions -- but their values are drawn from a mix of good ones and hostile ones
(zero, negative and huge sizes, keywords and look-alike names, expressions that reach for Python, wrong types).
Each is written as YAML or JSON and run through the real CLI entry point (``netspec.cli.main``) in this process:

* ``check`` exits 0 or 1 -- never 3 (an internal error), never a traceback -- within ``--max-seconds``;
* on exit 1 its first line is ``file:line:col: error: message`` with a line and column inside the file;
* on exit 0, ``summary`` and ``compile`` exit 0 too, and the compiled source is valid Python.

A failure prints the document; put it into tests/hostile/cases/ with its expected message once it is fixed.

Short deterministic run: tests/hostile/test_fuzz_short.py. Long run::

    .venv/bin/python tools/fuzz/fuzz_structure.py --examples 20000            # random seed, prints it
    .venv/bin/python tools/fuzz/fuzz_structure.py --examples 20000 --seed 7   # reproducible
"""
from __future__ import annotations

import argparse
from contextlib import chdir, redirect_stderr, redirect_stdout
import io
import json
from pathlib import Path
import re
import sys
import tempfile
import time
import typing

from hypothesis import strategies as st

ERROR_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): error: \S")

GOOD_NAMES = ["x", "y", "fc", "conv1", "a", "b", "h", "skip", "layer1", "head", "relu1", "q", "k", "v"]
HOSTILE_NAMES = ["", "forward", "self", "__init__", "import", "class", "None", "null", "true", "a.b", "a b",
                 "\u0441onv1", "b\u0430sic", "\uff58", "1st", "x" * 300, "state_dict", "_", "-x", "x:y", "torch"]
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)     # no lone surrogates: not text
NAMES = st.one_of(st.sampled_from(HOSTILE_NAMES), TEXT)

TOKENS = ["x", "i", "width", "planes", "0", "1", "2", "3", "-1", "64", "10**9", "2**62", "0.5", "1e308", "'same'",
          "True", "None", "+", "-", "*", "/", "//", "%", "**", "==", "<", "and", "or", "not", "if", "else", "(",
          ")", "[", "]", ",", "max", "min", "len", "channels", "features", "shape", "dim", "make_divisible", ".",
          "__import__", "lambda", ":", "=", "{", "}", "~", "is", "for", "in", "__class__", "f'{x}'"]
EXPRESSIONS = st.one_of(
    st.sampled_from(["width * 2", "channels(x)", "features(x) // 2", "i + 1", "2 if i == 0 else 1", "len(shape(x))",
                     "10**10**10", "1 / 0", "width // 0", "__import__('os').system('true')", "(1).__class__",
                     "[0] * 10**9", "'a' * 10**9", "max(*[1])", "channels(y)", "dim(x, 99)", "\uff57idth"]),
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12).map(" ".join),
)
INTS = st.one_of(st.integers(-3, 70), st.sampled_from([0, -1, 10**9, 2**31, 2**62, 2**63, 10**30]))
SCALARS = st.one_of(INTS, st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False, width=32),
                    EXPRESSIONS, NAMES)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(NAMES, inner, max_size=3)), max_leaves=8)


RATE = [0]    # the document being drawn: a hostile value one time in RATE[0] (0: never)


def sometimes(draw, good: st.SearchStrategy, hostile: st.SearchStrategy, weight: int = 1):
    """Mostly a plausible value, now and then a hostile one: many documents get past validation into expansion."""
    rate = RATE[0] * weight
    return draw(hostile if rate and draw(st.integers(1, rate)) == 1 else good)


def _ops() -> dict:
    from netspec.ops.base import all_ops
    return {name: op for name, op in sorted(all_ops().items())}


def _typical(annotation) -> st.SearchStrategy:
    """Mostly plausible values for a parameter type, so that documents get past validation and into expansion."""
    args = typing.get_args(annotation)
    kinds = {annotation, *args}
    for a in args:
        kinds |= set(typing.get_args(a))
    choices = [a for a in kinds if isinstance(a, str)]
    out = []
    if int in kinds:
        out.append(st.integers(1, 16))
    if float in kinds:
        out.append(st.sampled_from([0.0, 0.1, 0.5, 1.0, 1e-5]))
    if bool in kinds:
        out.append(st.booleans())
    if choices:
        out.append(st.sampled_from(choices))
    if any(typing.get_origin(a) in (list, tuple) for a in kinds):
        out.append(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    return st.one_of(*out) if out else VALUES


@st.composite
def layers(draw, ops: dict, blocks: list, names: list, depth: int = 0) -> list:
    n = draw(st.integers(1, 5))
    out = []
    for k in range(n):
        kinds = list(ops) + blocks * 8 + (["seq"] * 4 if depth < 2 else []) + ["lineer"]
        opname = draw(st.sampled_from(kinds))
        layer: dict = {"op": opname}
        if draw(st.booleans()):
            layer["name"] = sometimes(draw, st.sampled_from(GOOD_NAMES), NAMES)
            names.append(layer["name"])
        if opname == "seq":
            layer["layers"] = draw(layers(ops, blocks, names, depth + 1))
        elif opname in ops:
            for pname, field in ops[opname].Params.model_fields.items():
                required = field.is_required()
                if required or draw(st.integers(0, 3)) == 0:
                    layer[field.alias or pname] = sometimes(draw, _typical(field.annotation),
                                                            st.one_of(INTS, EXPRESSIONS, VALUES))
        else:
            if draw(st.booleans()):
                layer["width"] = sometimes(draw, st.integers(1, 16), st.one_of(INTS, EXPRESSIONS))
        known = st.sampled_from(names or ["x"])
        for key, good, hostile in (("from", st.one_of(known, st.lists(known, min_size=1, max_size=3)), NAMES),
                                   ("repeat", st.integers(0, 4), st.one_of(INTS, EXPRESSIONS)),
                                   ("if", st.booleans(), EXPRESSIONS),
                                   ("share", known, NAMES),
                                   ("index", st.just("j"), NAMES),
                                   ("strid", st.nothing(), VALUES)):
            if draw(st.integers(0, 7)) == 0 and (key != "strid" or RATE[0]):
                layer[key] = sometimes(draw, good, hostile)
        out.append(layer)
    return out


@st.composite
def specs(draw) -> dict:
    ops = _ops()
    names: list = []
    RATE[0] = draw(st.sampled_from([0, 0, 3, 10, 30]))
    spec: dict = {"netspec": sometimes(draw, st.just(1), st.sampled_from([2, "1", None, 1.0, True]), 3)}
    if RATE[0] and draw(st.integers(0, 30)) == 0:
        del spec["netspec"]
    rank = draw(st.sampled_from([2, 3, 4, 4]))
    dims = st.one_of(st.sampled_from(["N", "T", "H", "W", "C"]), INTS, NAMES)
    plausible = st.tuples(st.integers(1, 16), st.lists(st.sampled_from([8, 16, "H"]), min_size=rank - 2,
                                                       max_size=rank - 2)).map(lambda t: ["N", t[0], *t[1]])
    inputs = {sometimes(draw, st.sampled_from(["x", "y"]), NAMES, 2):
              sometimes(draw, plausible, st.lists(dims, max_size=5)) for _ in range(draw(st.integers(1, 2)))}
    spec["inputs"] = inputs
    names += list(inputs)
    if draw(st.booleans()):
        spec["params"] = {"width": sometimes(draw, st.integers(1, 16), INTS),
                          **({draw(NAMES): draw(VALUES)} if RATE[0] and draw(st.integers(0, 9)) == 0 else {})}
    blocks: dict = {}
    for _ in range(draw(st.integers(0, 2))):
        bname = sometimes(draw, st.sampled_from(["unit", "basic", "down"]), NAMES, 2)
        inner: list = ["x"]
        body = {"params": {"width": sometimes(draw, st.integers(1, 16), st.one_of(INTS, st.just("int")))},
                "layers": None}
        blocks[bname] = body
        body["layers"] = draw(layers(ops, list(blocks), inner, 1))
    if blocks:
        spec["blocks"] = blocks
    spec["layers"] = draw(layers(ops, list(blocks), names))
    if draw(st.integers(0, 3)) == 0:
        spec["outputs"] = draw(st.one_of(st.sampled_from(names), st.lists(st.sampled_from(names), max_size=3),
                                         st.dictionaries(st.sampled_from(GOOD_NAMES), st.sampled_from(names),
                                                         max_size=2)))
    return spec


def render(spec: dict, as_json: bool) -> str:
    import yaml
    if as_json:
        return json.dumps(spec, indent=1)
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=120)


documents = st.tuples(specs(), st.booleans()).map(lambda t: (render(t[0], t[1]), ".json" if t[1] else ".yaml"))


def run_cli(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    from netspec import cli
    out, err = io.StringIO(), io.StringIO()
    with chdir(cwd), redirect_stdout(out), redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def check_document(text: str, suffix: str, folder: Path, max_seconds: float = 5.0, compile_source: bool = True) -> None:
    """The property: raises AssertionError (with the document) if netspec mishandles ``text``."""
    path = folder / f"spec{suffix}"
    path.write_text(text, encoding="utf-8")
    nlines = text.count("\n") + 1
    start = time.perf_counter()
    rc, out, err = run_cli(["check", path.name], folder)
    took = time.perf_counter() - start
    shown = f"--- {path.name}\n{text}\n--- stderr\n{err}"
    assert rc in (0, 1), f"exit code {rc}\n{shown}"
    assert "Traceback" not in out + err and "internal error" not in err, shown
    assert took < max_seconds, f"{took:.1f} s\n{shown}"
    if rc == 1:
        first = next((line for line in err.splitlines() if ": error: " in line), "")
        m = ERROR_LINE.match(first)
        assert m, f"no located first error line\n{shown}"
        if m["file"] == path.name:
            assert 1 <= int(m["line"]) <= nlines and int(m["col"]) >= 1, f"location outside the file\n{shown}"
        return
    rc, out, err = run_cli(["summary", path.name], folder)
    assert rc == 0 and "internal error" not in err, f"summary: exit {rc}\n{shown}\n{err}"
    if compile_source:
        rc, out, err = run_cli(["compile", path.name, "-o", "model.py"], folder)
        assert rc == 0 and "internal error" not in err, f"compile: exit {rc}\n{shown}\n{err}"
        compile((folder / "model.py").read_text(encoding="utf-8"), "model.py", "exec")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-seconds", type=float, default=5.0, help="the longest a check may take")
    ap.add_argument("--no-compile", action="store_true", help="only check and summary")
    args = ap.parse_args()
    from hypothesis import HealthCheck, given, seed, settings

    s = args.seed if args.seed is not None else int(time.time())
    print(f"fuzz_structure: {args.examples} examples, seed {s}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        @seed(s)
        @settings(max_examples=args.examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(documents)
        def run(doc):
            check_document(doc[0], doc[1], Path(d), args.max_seconds, not args.no_compile)

        run()
    print("no failures")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
