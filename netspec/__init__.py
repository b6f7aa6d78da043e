"""netspec: neural networks written as data.

Pipeline: text -> Spec (``load``) -> Graph with shapes (``expand``) -> {check report, diagram, torch module, source}.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import NetspecError, SpecError, GraphError, ShapeError, LimitError  # noqa: F401

# the rest of the API is imported when first used, so that each command loads only what it needs
_LAZY = {"load": ".spec.load", "Spec": ".spec.load", "expand": ".graph.expand", "expand_all": ".graph.expand",
         "check": ".check", "CheckResult": ".check", "summary": ".summary", "Summary": ".summary",
         "draw": ".draw", "graph": ".pipeline", "graphs": ".pipeline", "graph_from_json": ".graph.data",
         "graph_to_json": ".graph.data"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'netspec' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


# -- compile: these import torch, so they are loaded on first use (``import netspec`` stays torch-free) ----------

def build(spec_or_path, network=None, *, device=None, dtype=None, check_inputs: bool = False, compile=False,
          channels_last=False, cuda_graph=False, example_inputs=None, **params):
    """Build the torch ``nn.Module`` a spec describes (see ``netspec.codegen.build.build``).

    Runtime options (``netspec.codegen.runtime``): ``compile=True`` (torch.compile in place), ``channels_last=True``,
    ``cuda_graph=True`` with ``example_inputs`` (static-shape inference on a CUDA device).
    Refuses (LimitError, located at the largest layer) when the weights would need more than
    ``LIMITS.max_alloc_bytes``, before anything is allocated; ``device="meta"`` allocates nothing and is never refused.
    With ``check_inputs=True`` the module checks every call's inputs against the declared ones (ValueError naming the
    spec's input and where it is declared).
    """
    from .codegen.build import build as _build
    return _build(spec_or_path, network, device=device, dtype=dtype, check_inputs=check_inputs, compile=compile,
                  channels_last=channels_last, cuda_graph=cuda_graph, example_inputs=example_inputs, **params)


def compile_source(spec_or_path, network=None, **params) -> str:
    """Standalone PyTorch source for a spec (see ``netspec.codegen.build.compile_source``)."""
    from .codegen.build import compile_source as _compile_source
    return _compile_source(spec_or_path, network, **params)


def load_weights(module, path, strict: bool = True, *, allow_cast: bool = False, allow_nonfinite: bool = False):
    """Load safetensors / torch.save weights into a module, all or nothing, reporting every problem
    (``netspec.weights``)."""
    from .weights import load_weights as _load_weights
    return _load_weights(module, path, strict=strict, allow_cast=allow_cast, allow_nonfinite=allow_nonfinite)


def save_weights(module, path) -> None:
    """Save a module's weights as safetensors, atomically (``netspec.weights``)."""
    from .weights import save_weights as _save_weights
    return _save_weights(module, path)


def train(spec_or_path, *, config=None, resume: bool = False, quiet: bool = True, **overrides):
    """Train a spec's network(s) as its ``train:`` section says (see ``netspec.train.loop.train``).

    Returns a ``Result`` with ``.module`` (the trained network), ``.networks``, ``.history`` (the logged records),
    ``.metrics`` (final test metrics) and ``.out`` (the output folder). Overrides: epochs, steps, lr, batch_size,
    device, seed, out, compile, ...
    """
    from .train.loop import train as _train
    return _train(spec_or_path, config=config, resume=resume, quiet=quiet, **overrides)


# -- names that are both a function of the API and a submodule (netspec.check, .summary, .draw, .train) ------------
# Importing a submodule sets it as an attribute of its package; these attributes stay the API's functions.

class _Package(__import__("types").ModuleType):
    def __setattr__(self, name, value):
        if name in _API_FUNCTIONS and isinstance(value, __import__("types").ModuleType):
            return
        super().__setattr__(name, value)


_API_FUNCTIONS = frozenset({"check", "summary", "draw", "train"})
__import__("sys").modules[__name__].__class__ = _Package
