"""Every complete example in docs/spec-language.md (a yaml block starting with 'netspec: 1') checks."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import netspec

DOC = Path(__file__).parent.parent / "docs" / "spec-language.md"
BLOCKS = [b for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S) if b.startswith("netspec: 1")]


def test_there_are_examples():
    assert len(BLOCKS) >= 12


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_doc_example_checks(k):
    res = netspec.check(netspec.load(BLOCKS[k], name=f"docs-example-{k}.yaml"))
    assert res.ok, "\n".join(e.format() for e in res.errors)
    assert res.graphs
