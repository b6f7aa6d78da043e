"""Short, deterministic runs of the fuzzers in tools/fuzz/: the same properties as the long runs, a few hundred inputs.

Structure (hypothesis, derandomized): spec-shaped documents, mostly plausible with hostile values mixed in; check
exits 0 or 1 with a located first error, and a document that checks also summarises and compiles to valid Python.
Bytes (the built-in mutator, fixed seed): mutated corpus and zoo files; check exits 0 or 1 with a located error.
Long runs and atheris: see docs/safety.md. A failure here prints the input: add it to tests/hostile/ once fixed.
"""
from __future__ import annotations

from pathlib import Path
import sys

from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tools" / "fuzz"))

import fuzz_bytes  # noqa: E402
import fuzz_structure  # noqa: E402


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(doc=fuzz_structure.documents)
def test_structure_fuzz_short(doc, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_structure", numbered=True)
    fuzz_structure.check_document(doc[0], doc[1], folder)


def test_bytes_fuzz_short(tmp_path):
    assert fuzz_bytes.run_builtin(300, seed=0, folder=tmp_path) == 300
