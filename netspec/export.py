"""Spec -> ONNX through torch.onnx (the optional 'export' extra: onnx, onnxscript; onnxruntime to compare outputs).

Symbolic dimensions of the spec's inputs stay dynamic in the exported graph where the exporter can keep them
(``torch.export.Dim.AUTO``); ``bindings`` fix them. The file is checked with ``onnx.checker`` and, when onnxruntime is
installed, run on the example inputs and compared with the PyTorch module.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Loc, NetspecError, OutputError
from .io import atomic_write_bytes
from .shapes_dim import is_sym

# sizes given to symbols for the example inputs (a multiple of whatever the spec requires)
EXAMPLE_SIZES = {"N": 2, "T": 8, "S": 8, "L": 16}
DEFAULT_SIZE = 64


class ExportError(NetspecError):
    """The network could not be exported."""


@dataclass
class ExportReport:
    path: str
    opset: int
    inputs: dict            # name -> example shape used
    dynamic: list           # symbols left dynamic
    max_abs_diff: float | None    # vs onnxruntime, None if onnxruntime is not installed
    nbytes: int


def _max_diff(got, want) -> tuple[float, bool]:
    """(max |got - want|, whether they agree within rtol 1e-3 / atol 1e-4): equal values count 0 (so do infinities
    of one sign and NaNs in the same places); a shape or dtype-kind mismatch is an infinite difference."""
    import torch
    want = want.detach().cpu()
    if tuple(got.shape) != tuple(want.shape):
        return float("inf"), False
    if not (got.is_floating_point() or want.is_floating_point()):
        ok = bool((got.to(want.dtype) == want).all())
        return (0.0 if ok else float("inf")), ok
    a, b = got.double(), want.double()
    same = (a == b) | (torch.isnan(a) & torch.isnan(b))
    d = (a - b).abs().masked_fill(same, 0.0)
    diff = float(d.max()) if d.numel() else 0.0
    ok = bool(torch.isclose(a, b, rtol=1e-3, atol=1e-4, equal_nan=True).all())
    return (diff if diff == diff else float("inf")), ok


def _example_value(sym: str, multiple: int) -> int:
    v = EXAMPLE_SIZES.get(sym, DEFAULT_SIZE)
    return max(multiple, (v + multiple - 1) // multiple * multiple)


def _require_memory(g) -> None:
    from .memory import DTYPE_BYTES, require
    total, where, names = 0, None, []
    for name, t in g.input_types().items():
        n = 1
        for d in t.shape:
            if is_sym(d):
                env = {s: _example_value(s, g.sym.multiple_of.get(s, 1)) for s in d.free_symbols()}
                n *= max(1, int(d.evaluate(env)))
            else:
                n *= int(d)
        nbytes = n * DTYPE_BYTES.get(t.dtype, 4)
        total += nbytes
        names.append(name)
        if where is None or nbytes > where[1]:
            where = (name, nbytes, g.nodes[g.inputs[name]].loc)
    env = {s: _example_value(s, m) for s, m in g.sym.multiple_of.items()}
    acts = 0
    for node in g.nodes.values():                 # one forward pass (torch, then onnxruntime) at these sizes
        for t in node.meta.get("out", []):
            n = 1
            for d in t.shape:
                if is_sym(d):
                    env.update({s: _example_value(s, g.sym.multiple_of.get(s, 1)) for s in d.free_symbols()
                                if s not in env})
                    n *= max(1, int(d.evaluate(env)))
                else:
                    n *= int(d)
            acts += n * DTYPE_BYTES.get(t.dtype, 4)
    require(g, "exporting", extra=total + acts,
            extra_what="the example input " + ", ".join(names) + " and one forward pass",
            extra_loc=where[2] if where else None)


def export_onnx(spec_or_path: Any, path: str | os.PathLike, network: str | None = None, *,
                bindings: dict | None = None, opset: int | None = None, check_runtime: bool = True,
                weights: str | os.PathLike | None = None, **params) -> ExportReport:
    """Export a spec's network to ONNX, written atomically to ``path``.

    Args:
        spec_or_path: a path, spec text, a loaded Spec or an expanded Graph.
        path: the .onnx file to write.
        bindings: fixed values for symbols (the rest stay dynamic where the exporter allows).
        opset: ONNX opset (default: the exporter's).
        weights: a weight file to load first (all or nothing, see ``netspec.weights.load_weights``).
    Returns:
        an ExportReport; raises ExportError/OutputError with a hint on failure.
    """
    from .codegen.build import to_graph

    g = to_graph(spec_or_path, network, params=params, bindings=bindings)   # the spec is checked before torch loads
    out = Path(path)
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"the output '{out}' must end in .onnx", Loc(str(out), 1, 1))
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise OutputError(f"cannot write '{out}': the folder '{out.parent}' does not exist", Loc(str(out), 1, 1),
                          "create the folder first")
    _require_memory(g)            # the weights and the example inputs, before torch allocates either
    if g.sym.data:      # torch.onnx cannot trace sizes that only the data decides (it ran for minutes on a detector)
        data = ", ".join(sorted(g.sym.data))
        raise ExportError(f"'{g.name}' has sizes that only the data decides ({data}): ONNX export does not support "
                          "them yet", Loc(g.file, 1, 1),
                          "use 'netspec compile' for a standalone model.py, or export the backbone as its own spec")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ExportError("ONNX export needs the 'onnx' and 'onnxscript' packages", None,
                          "install them: pip install 'netspec[export]' (or pip install onnx onnxscript)") from None
    import torch

    from .codegen.build import build

    model = build(g).eval()
    if weights is not None:
        from .weights import load_weights
        load_weights(model, weights)
    gen = torch.Generator().manual_seed(0)
    args, names, shapes, dyn_shapes, dynamic = [], [], {}, [], set()
    for name, t in g.input_types().items():
        dims, dyn = [], {}
        for k, d in enumerate(t.shape):
            if is_sym(d):
                syms = sorted(d.free_symbols())
                env = {s: _example_value(s, g.sym.multiple_of.get(s, 1)) for s in syms}
                dims.append(d.evaluate(env))
                dyn[k] = torch.export.Dim.AUTO
                dynamic.update(syms)
            else:
                dims.append(int(d))
        if t.is_float:
            x = torch.randn(*dims, generator=gen, dtype=getattr(torch, t.dtype))
        elif t.dtype == "bool":
            x = torch.zeros(*dims, dtype=torch.bool)
        else:
            x = torch.randint(0, 2, dims, generator=gen, dtype=getattr(torch, t.dtype))
        args.append(x)
        names.append(name)
        shapes[name] = tuple(dims)
        dyn_shapes.append(dyn or None)
    with torch.no_grad():
        ref = model(*args)
    refs = list(ref.values()) if isinstance(ref, dict) else [ref]
    out_names = list(g.outputs)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_file = Path(tmp) / "model.onnx"
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kw = {"opset_version": opset} if opset else {}
                torch.onnx.export(model, tuple(args), str(tmp_file), input_names=names, output_names=out_names,
                                  dynamic_shapes=tuple(dyn_shapes), dynamo=True, external_data=False, **kw)
        except Exception as e:  # the exporter's failures are many and varied; report the first line
            first = str(e).strip().split("\n")[0][:300]
            raise ExportError(f"torch.onnx could not export '{g.name}': {type(e).__name__}: {first}",
                              Loc(g.file, 1, 1), "try fixing the symbols with --bind, or report the op that fails") from None
        data = tmp_file.read_bytes()
        import onnx
        model_proto = onnx.load_from_string(data)
        try:
            onnx.checker.check_model(model_proto)
        except Exception as e:
            raise ExportError(f"the exported model fails onnx.checker: {e}", Loc(g.file, 1, 1)) from None
        diff = None
        if check_runtime:
            try:
                import onnxruntime as ort
            except ImportError:
                ort = None
            if ort is not None:
                sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
                feeds = {n: a.numpy() for n, a in zip(names, args)}
                outs = sess.run(None, feeds)
                diffs = [_max_diff(torch.from_numpy(o), r) for o, r in zip(outs, refs)]
                diff = max(d for d, _ in diffs) if diffs else 0.0
                bad = [(n, d) for n, (d, ok) in zip(out_names, diffs) if not ok]
                if bad:         # an export that computes something else is not written
                    name, d = bad[0]
                    raise ExportError(f"the exported model computes another '{name}' than the network: onnxruntime "
                                      f"differs from torch by up to {d:.3g} on the same input",
                                      Loc(g.file, 1, 1), ["nothing was written", "report the network's ops: one of "
                                                          "them exports to ONNX differently"])
    atomic_write_bytes(out, data)
    op_set = next((o.version for o in model_proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return ExportReport(str(out), op_set, shapes, sorted(dynamic), diff, len(data))
