"""`netspec check`: load, expand and shape-check a spec; report shapes and requirements, or every error."""
from __future__ import annotations

from dataclasses import dataclass, field
import os

from .errors import ErrorList, NetspecError
from . import pipeline
from .graph.ir import Graph
from .memory import estimate, warnings_for
from .spec.load import Spec, load


@dataclass
class CheckResult:
    """The outcome of checking one file."""

    file: str
    graphs: dict[str, Graph] = field(default_factory=dict)
    memory: dict = field(default_factory=dict)          # network -> MemoryEstimate
    errors: list[NetspecError] = field(default_factory=list)
    warnings: list[NetspecError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check(path_or_spec: str | os.PathLike | Spec, *, params: dict | None = None, bindings: dict | None = None,
          search_path: list[str] | None = None) -> CheckResult:
    """Check a spec file: every network is expanded and shape-checked. Never raises for user errors."""
    file = path_or_spec.file if isinstance(path_or_spec, Spec) else str(path_or_spec)
    res = CheckResult(file)
    try:
        spec = path_or_spec if isinstance(path_or_spec, Spec) else load(path_or_spec, search_path=search_path)
        if not spec.networks:
            # a library of blocks: nothing to expand, but it loaded and validated
            return res
        for name in spec.networks:
            try:
                g = pipeline.graph(spec, name, params=params, bind=bindings)
                res.graphs[name] = g
                res.warnings.extend(g.warnings)
                res.memory[name] = estimate(g)
                res.warnings.extend(warnings_for(g))
            except ErrorList as e:
                res.errors.extend(e.errors)
            except NetspecError as e:
                res.errors.append(e)
    except ErrorList as e:
        res.errors.extend(e.errors)
    except NetspecError as e:
        res.errors.append(e)
    return res
