"""netspec: neural networks written as data.

Pipeline: text -> Spec (``load``) -> Graph with shapes (``expand``) -> {check report, diagram, torch module, source}.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import NetspecError, SpecError, GraphError, ShapeError, LimitError  # noqa: F401
from .spec.load import load, Spec  # noqa: F401
from .graph.expand import expand, expand_all  # noqa: F401
from .check import check, CheckResult  # noqa: F401
