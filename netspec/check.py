"""`netspec check`: load, expand and shape-check a spec; report shapes and requirements, or every error."""
from __future__ import annotations

from dataclasses import dataclass, field
import os
from typing import TYPE_CHECKING

from .errors import ErrorList, NetspecError
from . import cache, pipeline
from .graph.ir import Graph
from .memory import estimate, warnings_for

if TYPE_CHECKING:
    from .spec.load import Spec


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
    """Check a spec file: every network is expanded and shape-checked. Never raises for user errors.

    The expanded graphs of a file that checks are kept in the spec cache (``netspec.cache``) for the next call with
    the same arguments and the same content of every file read."""
    file = str(path_or_spec) if isinstance(path_or_spec, (str, os.PathLike)) else path_or_spec.file
    res = CheckResult(file)

    def expanded():
        _expand_all(path_or_spec, params, bindings, search_path, res)
        return dict(res.graphs)

    if pipeline.is_path(path_or_spec):
        res.graphs = cache.cached("check", path_or_spec, {"params": params, "bindings": bindings,
                                                          "search_path": search_path},
                                  expanded, storable=lambda _: not res.errors, keep_spec=False)
    else:
        expanded()
    for name, g in res.graphs.items():
        res.warnings.extend(g.warnings)
        res.memory[name] = estimate(g)
        res.warnings.extend(warnings_for(g, res.memory[name]))
    return res


def _expand_all(path_or_spec, params, bindings, search_path, res: CheckResult) -> None:
    """Every network of the file into ``res.graphs``; every error into ``res.errors``."""
    try:
        spec = pipeline.load_spec(path_or_spec, search_path)
        for name in spec.networks:      # none: a library of blocks, which loaded and validated
            try:
                res.graphs[name] = pipeline.graph(spec, name, params=params, bind=bindings)
            except ErrorList as e:
                res.errors.extend(e.errors)
            except NetspecError as e:
                res.errors.append(e)
    except ErrorList as e:
        res.errors.extend(e.errors)
    except NetspecError as e:
        res.errors.append(e)
