"""Helpers shared by the compile tests: bundled specs, small concrete inputs, importing generated files."""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import torch

from netspec import expand, load
from netspec.errors import NetspecError

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "golden"

# concrete sizes tried for symbolic dims, smallest first (a symbol's multiple_of is respected)
DEFAULTS = {"N": [2], "T": [7], "S": [5], "L": [16]}
SPATIAL = [32, 64, 128, 256]

# bundled specs whose input size is a network parameter, not a symbol (NASNet's TF 'SAME' padding depends on the
# parity of each stage's size): the smallest size with the default's padding pattern (11 -> stages 5, 3, 2, 1, 1: odd,
# odd, even, odd into the strided layers, like 331 -> 165, 83, 42, 21, 11)
SMALL_PARAMS = {"nasnet_a_large": {"size": 11}}
# the detectors resize every image to 800 pixels and keep 2000 proposals per image: small settings instead (score
# threshold 0: random weights score under the default 0.05, and a run without detections would prove nothing);
# their parity with torchvision is tests/test_detection.py
SMALL_PARAMS.update({stem: {"min_size": 64, "max_size": 96, "rpn_pre_nms_top_n": [200, 100],
                            "rpn_post_nms_top_n": [50, 50], "box_score_thresh": 0.0}
                     for stem in ("faster_rcnn", "mask_rcnn")})


def small_params(path) -> dict:
    """Network parameters that make a bundled spec small (its defaults otherwise)."""
    return dict(SMALL_PARAMS.get(Path(path).stem, {}))


def bundled() -> list[tuple[str, str]]:
    """(spec path, network name) for every network of every bundled spec."""
    out = []
    for p in sorted(SPECS.glob("*.yaml")) + sorted(SPECS.glob("*.json")):
        try:
            spec = load(p)
        except NetspecError:
            out.append((str(p), ""))      # the test reports the error
            continue
        for name in spec.networks or {}:
            out.append((str(p), name))
    return out


def case_id(case) -> str:
    path, net = case
    stem = Path(path).stem
    return stem if not net or net == stem or _single(path) else f"{stem}.{net}"


def _single(path) -> bool:
    try:
        return len(load(path).networks) <= 1
    except NetspecError:
        return True


def golden_path(case) -> Path:
    return GOLDEN / f"{case_id(case)}.py"


def small_bindings(spec, network: str, params: dict | None = None) -> dict:
    """Concrete values for the input symbols: small, and valid for the network (divisibility, minimum sizes)."""
    g = expand(spec, network, params=params)
    syms = set()
    for t in g.input_types().values():
        for d in t.shape:
            if not isinstance(d, int):
                syms |= set(d.free_symbols())
    last = None
    for k in range(len(SPATIAL)):
        b = {}
        for s in sorted(syms):
            m = g.sym.multiple(s)
            want = DEFAULTS.get(s, SPATIAL)
            v = want[min(k, len(want) - 1)]
            b[s] = max(m, math.ceil(v / m) * m)
        try:
            expand(spec, network, params=params, bindings=b)
            return b
        except NetspecError as e:
            last = e
    raise AssertionError(f"no small input size fits {network}: {last}")


def make_inputs(graph, bindings: dict, seed: int = 0) -> dict:
    """Random tensors for the graph's inputs (token ids in 0..1, masks all False)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in graph.input_types().items():
        shape = [d if isinstance(d, int) else d.evaluate(bindings) for d in t.shape]
        if t.dtype == "bool":
            out[name] = torch.zeros(shape, dtype=torch.bool)
        elif t.dtype.startswith(("int", "uint")):
            out[name] = torch.randint(0, 2, shape, generator=gen).to(getattr(torch, t.dtype))
        else:
            out[name] = torch.randn(shape, generator=gen, dtype=getattr(torch, t.dtype))
    return out


def outputs(y) -> list:
    """The output tensors of a call, in order (a tensor, a tuple, or a dict by output name)."""
    if isinstance(y, dict):
        return list(y.values())
    if isinstance(y, (tuple, list)):
        return list(y)
    return [y]


def import_file(path: Path, name: str):
    """Import a generated model file as a module (no subprocess)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    return mod


def expected_keys(graph) -> dict:
    """{state_dict key: shape} the graph promises: node id + weight suffix, shared modules once."""
    out = {}
    for n in graph.nodes.values():
        if n.meta.get("shared_with"):
            continue
        for suffix, (shape, kind) in n.meta.get("weights", {}).items():
            out[n.id + (f".{suffix}" if suffix else "")] = tuple(shape)
    return out
