"""Using trained weights: ``netspec evaluate`` (metrics on a split) and ``netspec predict`` (outputs for inputs).

Both build the network with the parameters the weights were saved with (recorded in the file), unless ``-p`` says
otherwise; a file saved from another network or other parameters is refused with the list of differences.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import Loc, SpecError
from . import checkpoint as ck


def _params_for(spec, network: str, weights, params: dict) -> dict:
    """The file's recorded parameters, overridden by ``params`` (only those the network declares)."""
    meta = ck.read_meta(weights)
    saved = json.loads(meta.get("netspec.params", "{}"))
    declared = set(spec.networks[network].raw.get("params") or {})
    return {k: v for k, v in {**saved, **params}.items() if k in declared}


def load_trained(spec, weights, network: str | None = None, params: dict | None = None, device=None):
    """(module in eval mode, graph, warnings): the network built to fit ``weights``, with them loaded."""
    from ..codegen.build import build
    from ..graph.expand import expand
    from ..weights import load_weights
    from .loop import pick_device
    network = network or next(iter(spec.networks))
    if network not in spec.networks:
        from ..errors import did_you_mean
        raise SpecError(f"no network '{network}' in {spec.file}", None, did_you_mean(network, list(spec.networks)))
    p = _params_for(spec, network, weights, params or {})
    g = expand(spec, network, params=p or None)
    warnings = ck.check_weights_meta(weights, network, dict(g.params), spec.source.text)
    module = build(g, device=pick_device(device or "auto"))
    load_weights(module, weights, strict=True)
    return module.eval(), g, warnings


def evaluate(spec_path, weights, *, split: str = "test", config=None, params: dict | None = None, device=None):
    """The metrics of ``weights`` on ``split`` of the spec's training data: (metrics, warnings)."""
    from ..spec.load import load
    from .loop import Run, resolve_config, pick_device
    from .methods import method_class
    spec = load(spec_path)
    cfg, src = resolve_config(spec, config, {"device": device} if device else {})
    net_name = cfg.network or next(iter(spec.networks))
    if cfg.method in ("gan", "dqn"):
        raise SpecError(f"evaluate does not score '{cfg.method}' runs; their metrics are in the run's metrics.jsonl",
                        src.loc(("train", "method")))
    p = _params_for(spec, net_name, weights, params or {})
    cfg = cfg.model_copy(update={"params": {**cfg.params, **p}})
    run = Run(spec, cfg, src, pick_device(cfg.device))
    method = method_class(cfg.method)(run)
    torch.manual_seed(cfg.seed)
    method.setup()
    warnings = ck.check_weights_meta(weights, net_name, run.params[net_name], spec.source.text)
    from ..weights import load_weights
    load_weights(method.net, weights, strict=True)
    if not method.data.size(split):
        raise SpecError(f"the '{split}' split is empty", src.loc(("train", "data", "split")))
    return method.evaluate(split), warnings


def predict(spec_path, weights, inputs, *, output=None, network=None, params=None, device=None):
    """Run the network on the arrays of an .npz (by input name) or the rows of a CSV: (lines to print, warnings)."""
    from ..spec.load import load
    spec = load(spec_path)
    module, g, warnings = load_trained(spec, weights, network, params, device)
    arrays = _read_inputs(Path(inputs), list(g.inputs))
    dev = next(module.parameters()).device
    feed = {}
    for name, t in g.input_types().items():
        a = arrays[name]
        dtype = torch.float32 if t.dtype.startswith("float") else torch.int64
        feed[name] = torch.as_tensor(a, dtype=dtype, device=dev)
        if feed[name].dim() == len(t.shape) - 1:          # one example without its batch dim
            feed[name] = feed[name].unsqueeze(0)
    with torch.no_grad():
        out = module(**feed)
    outs = out if isinstance(out, dict) else {next(iter(g.outputs)): out}
    if output is not None:
        from ..io import atomic_write_bytes
        import io
        buf = io.BytesIO()
        np.savez(buf, **{k: v.float().cpu().numpy() for k, v in outs.items()})
        atomic_write_bytes(output, buf.getvalue())
    first = next(iter(outs.values())).float().cpu()
    if {"boxes", "scores", "labels", "image"} <= set(outs):      # a detector: one line per detection
        lines = [f"image {int(i)}: class {int(c)} (score {float(s):.3f}) box {[round(v, 1) for v in b.tolist()]}"
                 for b, s, c, i in zip(outs["boxes"].cpu(), outs["scores"].cpu(), outs["labels"].cpu(),
                                       outs["image"].cpu())][:100]
    elif first.dim() == 2 and first.shape[1] > 1:              # class scores: the class and its probability
        prob = first.softmax(1)
        lines = [f"{i}: class {int(c)} (p={float(prob[i, c]):.3f})" for i, c in enumerate(prob.argmax(1))]
    else:
        lines = [f"{i}: {v}" for i, v in enumerate(first.reshape(first.shape[0], -1).tolist())][:100]
    if output is not None:
        lines.append(f"wrote {output}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in outs.items()))
    return lines, warnings


def _read_inputs(path: Path, names: list[str]) -> dict:
    loc = Loc(str(path))
    if not path.is_file():
        raise SpecError(f"no input file '{path}'", loc)
    if path.suffix == ".npz":
        from .data import read_npz
        arrays = read_npz(path, str(path), loc)
        if len(names) == 1 and names[0] not in arrays and len(arrays) == 1:
            arrays = {names[0]: next(iter(arrays.values()))}
        missing = [n for n in names if n not in arrays]
        if missing:
            raise SpecError(f"'{path}' lacks the input(s) {', '.join(missing)}; it has {', '.join(arrays)}", loc,
                            "name each array after a spec input")
        return arrays
    if path.suffix == ".csv":
        import csv
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.reader(f) if r]
        except (UnicodeDecodeError, csv.Error) as e:
            raise SpecError(f"cannot read '{path}' as CSV: {e}", loc, "a UTF-8 text file of numbers") from None
        if not rows:
            raise SpecError(f"'{path}' has no rows", loc, "one row of numbers per example")
        try:
            float(rows[0][0])
        except ValueError:
            rows = rows[1:]                                  # a header
        if len(names) != 1:
            raise SpecError("a CSV feeds a network with one input; use an .npz for several", loc)
        try:
            return {names[0]: np.array([[float(v) for v in r] for r in rows], np.float32)}
        except ValueError as e:
            raise SpecError(f"'{path}': not a number: {e}", loc) from None
    raise SpecError(f"'{path}': inputs are read from .npz or .csv files", loc)
