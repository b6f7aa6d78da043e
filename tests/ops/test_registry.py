"""Every registered op against its own table of shape cases (``Op.cases``), through ``netspec.testing``: the checks a
plugin's author runs with ``check_op`` are these, so the two never drift.

For each case: the shape rule gives the expected (symbolic) shapes; then, with the symbols bound to small numbers,
the module built from the printed code IR runs on random tensors and agrees with the shape rule, ``weights()``
matches its state_dict, ``macs()`` is a count, and the op has a label; then a one-layer spec with the case checks,
compiles (the first case of each op), builds and runs with the shapes check inferred.
"""
from __future__ import annotations

import pytest

from netspec.ops.base import all_ops
from netspec.testing import check_case, check_case_in_spec, check_definition

OPS = all_ops()


def _params():
    for name, op in sorted(OPS.items()):
        if not op.cases:
            yield pytest.param(name, None, id=f"{name}-no-cases")
        for i in range(len(op.cases)):
            yield pytest.param(name, i, id=f"{name}-{i}")


@pytest.mark.parametrize("name", sorted(OPS))
def test_definition(name):
    check_definition(OPS[name])


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("name, i", list(_params()))
def test_case(name, i):
    op = OPS[name]
    assert i is not None, f"op {name!r} has no shape cases: add a 'cases' table to its class"
    check_case(op, i)
    if not check_case_in_spec(op, i, compile_source=(i == 0)):
        pytest.skip("a spec cannot write this case's parameters (an infinite value); checked directly only")
