"""Load and save weights: safetensors, or torch.save state dicts read with ``weights_only=True``.

Loading is all or nothing. ``load_weights`` first reads what a file *declares* -- the JSON header of a safetensors
file, or the zip directory and the pickle (with every storage on the meta device) of a ``torch.save`` file -- and
checks every key, shape, dtype and the total size against the module and ``LIMITS.max_alloc_bytes`` before a single
tensor is inflated. Then it reads the tensors it needs and checks that they are finite. Only when all of that passed
does it copy anything; on any problem the module is left bitwise unchanged and one WeightsError lists every problem.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import json
import os
import pickle
import struct
import warnings
import zipfile
from pathlib import Path

from .errors import Loc, WeightsError
from .limits import LIMITS, fmt_bytes

_SHOW = 20                              # problems listed per kind before "... and N more"
MAX_HEADER_BYTES = 100 * 1024 * 1024    # a safetensors JSON header (the format's own bound)
MAX_PICKLE_BYTES = 64 * 1024 * 1024     # the data.pkl of a torch zip file (the structure, not the tensors)

# safetensors dtype -> (torch dtype name, bytes per element)
ST_DTYPES = {
    "BOOL": ("bool", 1), "U8": ("uint8", 1), "I8": ("int8", 1), "I16": ("int16", 2), "U16": ("uint16", 2),
    "I32": ("int32", 4), "U32": ("uint32", 4), "I64": ("int64", 8), "U64": ("uint64", 8),
    "F16": ("float16", 2), "BF16": ("bfloat16", 2), "F32": ("float32", 4), "F64": ("float64", 8),
    "F8_E4M3": ("float8_e4m3fn", 1), "F8_E5M2": ("float8_e5m2", 1),
}

# casts that keep every value exactly (file dtype -> model dtypes); any other cast needs allow_cast=True
LOSSLESS = {
    "float16": {"float32", "float64"}, "bfloat16": {"float32", "float64"}, "float32": {"float64"},
    "float8_e4m3fn": {"float16", "bfloat16", "float32", "float64"},
    "float8_e5m2": {"float16", "bfloat16", "float32", "float64"},
    "uint8": {"int16", "int32", "int64"}, "int8": {"int16", "int32", "int64"},
    "int16": {"int32", "int64"}, "int32": {"int64"}, "uint16": {"int32", "int64"}, "uint32": {"int64"},
}


def _loc(path) -> Loc:
    return Loc(str(path), 1, 1)


@dataclass
class Declared:
    """A tensor as a weight file declares it, before any of its data is read."""

    key: str
    dtype: str            # torch dtype name: 'float32'
    shape: tuple
    nbytes: int
    offsets: tuple | None = None    # safetensors: (begin, end) in the data section


@dataclass
class WeightsPlan:
    """What ``load_weights`` would do: the tensors to read, the casts, and every problem found."""

    path: str
    kind: str                                   # 'safetensors', 'torch-zip' or 'torch-legacy'
    declared: dict = field(default_factory=dict)     # key -> Declared
    load: list = field(default_factory=list)          # keys to read and copy
    casts: list = field(default_factory=list)         # (key, file dtype, model dtype), lossless ones
    problems: list = field(default_factory=list)      # strings
    read_bytes: int = 0


# -- reading what a file declares ------------------------------------------------------------------------------

def _no_dups(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r} in the header")
        d[k] = v
    return d


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict, int, list]:
    """(key -> Declared, start of the data section, problems) from a safetensors file's header; reads no tensor."""
    p = Path(path)
    size = p.stat().st_size
    problems: list[str] = []
    with open(p, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise WeightsError(f"'{p}' is not a safetensors file: it is {size} bytes long", _loc(p))
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or n > size - 8:
            raise WeightsError(f"'{p}' is not a readable safetensors file: its header claims {n:,} bytes "
                               f"(the file has {size - 8:,} after the length)", _loc(p))
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_dups)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WeightsError(f"'{p}' is not a readable safetensors file: bad JSON header ({_first_line(e)})",
                           _loc(p)) from None
    if not isinstance(header, dict):
        raise WeightsError(f"'{p}' is not a readable safetensors file: the header is not a JSON object", _loc(p))
    data_len = size - 8 - n
    out: dict[str, Declared] = {}
    spans = []
    for key, entry in header.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                problems.append("__metadata__ is not a mapping of strings")
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            problems.append(f"{_show(key)}: the entry needs exactly dtype, shape and data_offsets")
            continue
        dt, shape, offs = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dt not in ST_DTYPES:
            problems.append(f"{_show(key)}: unknown dtype {_show(dt)}")
            continue
        if not isinstance(shape, list) or not all(type(d) is int and 0 <= d < 2**62 for d in shape) \
                or len(shape) > 64:
            problems.append(f"{_show(key)}: the shape {_show(shape)} is not a list of sizes")
            continue
        if not isinstance(offs, list) or len(offs) != 2 or not all(type(o) is int for o in offs) \
                or not 0 <= offs[0] <= offs[1]:
            problems.append(f"{_show(key)}: data_offsets {_show(offs)} is not [begin, end]")
            continue
        name, item = ST_DTYPES[dt]
        numel = 1
        for d in shape:
            numel *= d
        nbytes = numel * item
        if offs[1] - offs[0] != nbytes:
            problems.append(f"{_show(key)}: {dt} {shape} needs {nbytes:,} bytes, but data_offsets span "
                            f"{offs[1] - offs[0]:,}")
            continue
        if offs[1] > data_len:
            problems.append(f"{_show(key)}: data_offsets end at {offs[1]:,}, past the end of the file "
                            f"({data_len:,} bytes of data)")
            continue
        out[key] = Declared(key, name, tuple(shape), nbytes, (offs[0], offs[1]))
        spans.append((offs[0], offs[1], key))
    spans.sort()
    for (b0, e0, k0), (b1, e1, k1) in zip(spans, spans[1:]):
        if b1 < e0:
            problems.append(f"{_show(k0)} and {_show(k1)} overlap in the file")
    return out, 8 + n, problems


def _torch_zip_declared(p: Path) -> tuple[dict, int]:
    """(key -> Declared, bytes of tensor data to inflate) of a torch.save zip file, from its zip directory and its
    pickle read with every storage on the meta device: no tensor data is read."""
    try:
        with zipfile.ZipFile(p) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise WeightsError(f"'{p}' is not a readable torch weight file: {_first_line(e)}", _loc(p)) from None
    pkl = [i for i in infos if i.filename.endswith("data.pkl") and i.filename.count("/") == 1]
    if len(pkl) != 1:
        raise WeightsError(f"'{p}' is a zip file, but not one torch.save wrote (no single data.pkl)", _loc(p),
                           "expected a .safetensors file or a torch.save'd state dict")
    if pkl[0].file_size > MAX_PICKLE_BYTES:
        raise WeightsError(f"'{p}': its data.pkl declares {fmt_bytes(pkl[0].file_size)}, over the "
                           f"{fmt_bytes(MAX_PICKLE_BYTES)} a state dict's structure needs", _loc(p))
    prefix = pkl[0].filename.split("/")[0] + "/data/"
    data_bytes = sum(i.file_size for i in infos if i.filename.startswith(prefix))
    biggest = max((i.file_size for i in infos if i.filename.startswith(prefix)), default=0)
    if data_bytes > LIMITS.max_alloc_bytes:
        raise WeightsError(f"'{p}' declares {fmt_bytes(data_bytes)} of tensor data, over the limit of "
                           f"{fmt_bytes(LIMITS.max_alloc_bytes)} (max_alloc_bytes)", _loc(p),
                           ["nothing was read; raise the limit with --limit max_alloc_bytes=N "
                            "(or LIMITS.set) if the machine has the memory"])
    obj = _torch_load(p, map_location="meta")
    state = _state_of(obj, p)
    out = {}
    for k, t in state.items():
        storage = t.untyped_storage().nbytes()
        if storage > biggest:
            raise WeightsError(f"'{p}': the tensor {_show(k)} claims a storage of {fmt_bytes(storage)}, larger "
                               f"than any record in the file ({fmt_bytes(biggest)})", _loc(p),
                               "the file is damaged or was made to mislead")
        out[k] = Declared(k, str(t.dtype).removeprefix("torch."), tuple(t.shape), t.numel() * t.element_size())
    return out, data_bytes


def _torch_load(p: Path, map_location):
    import torch
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(str(p), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(f"refused to load '{p}': it is a pickle that needs more than tensors to load "
                           f"(it could run code): {_first_line(e)}", _loc(p),
                           ["only plain state dicts are accepted; re-save the weights as safetensors "
                            "(netspec.save_weights) or as torch.save(model.state_dict(), path)"]) from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            AssertionError, OverflowError, MemoryError, zipfile.BadZipFile, struct.error, RecursionError) as e:
        raise WeightsError(f"'{p}' is not a readable torch weight file: {_first_line(e)}", _loc(p),
                           "expected a .safetensors file or a torch.save'd state dict") from None


def _state_of(obj, p: Path) -> dict:
    if isinstance(obj, dict) and not _is_tensor_dict(obj):
        for key in ("state_dict", "model", "model_state_dict", "module"):
            if isinstance(obj.get(key), dict) and _is_tensor_dict(obj[key]):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not _is_tensor_dict(obj):
        raise WeightsError(f"'{p}' holds a {type(obj).__name__}, not a state dict of tensors", _loc(p),
                           "save it with torch.save(model.state_dict(), path)")
    return obj


def _kind(p: Path) -> str:
    with open(p, "rb") as f:
        head = f.read(16)
    if p.suffix == ".safetensors" or _looks_safetensors(head):
        return "safetensors"
    if head[:4] == b"PK\x03\x04" or zipfile.is_zipfile(p):
        return "torch-zip"
    return "torch-legacy"


def _check_file(path) -> Path:
    p = Path(path)
    try:
        if not p.is_file():
            raise WeightsError(f"no weight file '{p}'", _loc(p), "check the path")
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot read '{p}': {_first_line(e)}", _loc(p)) from None
    return p


def read_state_dict(path: str | os.PathLike) -> dict:
    """The tensors of a weight file: ``.safetensors``, or a ``torch.save``'d state dict (or checkpoint with one).

    Pickles are read with ``weights_only=True``: a file that would run code is refused, never executed. The file's
    declared size is checked against ``LIMITS.max_alloc_bytes`` first.
    """
    p = _check_file(path)
    kind = _kind(p)
    if kind == "safetensors":
        declared, start, problems = read_safetensors_header(p)
        if problems:
            raise WeightsError(f"'{p}' is not a readable safetensors file: " + _join(problems), _loc(p))
        _refuse_size(p, sum(d.nbytes for d in declared.values()))
        return {k: _read_st_tensor(p, start, d) for k, d in declared.items()}
    if kind == "torch-zip":
        _torch_zip_declared(p)
    else:
        _refuse_size(p, p.stat().st_size)
    return _state_of(_torch_load(p, map_location="cpu"), p)


def _refuse_size(p: Path, nbytes: int) -> None:
    if nbytes > LIMITS.max_alloc_bytes:
        raise WeightsError(f"'{p}' declares {fmt_bytes(nbytes)} of tensors, over the limit of "
                           f"{fmt_bytes(LIMITS.max_alloc_bytes)} (max_alloc_bytes)", _loc(p),
                           ["nothing was read; raise the limit with --limit max_alloc_bytes=N "
                            "(or LIMITS.set) if the machine has the memory"])


def _read_st_tensor(p: Path, start: int, d: Declared):
    import torch
    with open(p, "rb") as f:
        f.seek(start + d.offsets[0])
        buf = bytearray(f.read(d.nbytes))
    if len(buf) != d.nbytes:
        raise WeightsError(f"'{p}': the file ends inside {_show(d.key)}", _loc(p))
    dtype = getattr(torch, d.dtype)
    if d.nbytes == 0:
        return torch.empty(d.shape, dtype=dtype)
    return torch.frombuffer(buf, dtype=dtype).reshape(d.shape)


def _looks_safetensors(head: bytes) -> bool:
    # 8-byte little-endian header length, then a JSON object
    return len(head) >= 9 and head[8:9] == b"{"


def _is_tensor_dict(d: dict) -> bool:
    import torch
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def _first_line(e: BaseException) -> str:
    s = str(e).strip().split("\n")[0]
    return s[:300]


def _show(v, n: int = 80) -> str:
    s = repr(v) if not isinstance(v, str) else v
    return s if len(s) <= n else s[: n - 3] + "..."


def _keys(keys: list[str]) -> str:
    shown = ", ".join(_show(k) for k in keys[:_SHOW])
    return shown + (f", ... and {len(keys) - _SHOW} more" if len(keys) > _SHOW else "")


def _join(problems: list[str]) -> str:
    shown = "; ".join(problems[:_SHOW])
    return shown + (f"; ... and {len(problems) - _SHOW} more problems" if len(problems) > _SHOW else "")


def check_state_dict(module, state: dict) -> tuple[list, list, list]:
    """(missing keys, unexpected keys, [(key, expected shape, file shape)]) of ``state`` against ``module``."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [(k, tuple(own[k].shape), tuple(state[k].shape)) for k in own
              if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    return missing, unexpected, shapes


# -- the plan: everything checked before anything is read -------------------------------------------------------

def plan_weights(module, path: str | os.PathLike, *, strict: bool = True, allow_cast: bool = False) -> WeightsPlan:
    """Check a weight file against ``module`` from what the file declares, reading no tensor data.

    Returns the plan (keys to read, lossless casts, problems); raises WeightsError only for a file that cannot be
    read at all or that declares more than ``LIMITS.max_alloc_bytes``.
    """
    p = _check_file(path)
    kind = _kind(p)
    plan = WeightsPlan(str(p), kind)
    if kind == "safetensors":
        plan.declared, _, plan.problems = read_safetensors_header(p)
    elif kind == "torch-zip":
        plan.declared, _ = _torch_zip_declared(p)
    else:
        _refuse_size(p, p.stat().st_size)
        state = _state_of(_torch_load(p, map_location="cpu"), p)
        plan.declared = {k: Declared(k, str(t.dtype).removeprefix("torch."), tuple(t.shape),
                                     t.numel() * t.element_size()) for k, t in state.items()}
    own = {k: v for k, v in module.state_dict().items()}
    missing = [k for k in own if k not in plan.declared]
    unexpected = [k for k in plan.declared if k not in own]
    shapes, dtypes = [], []
    for k, t in own.items():
        d = plan.declared.get(k)
        if d is None:
            continue
        if tuple(t.shape) != d.shape:
            shapes.append(f"{_show(k)} (model {list(t.shape)}, file {list(d.shape)})")
            continue
        want = str(t.dtype).removeprefix("torch.")
        if d.dtype != want:
            if d.dtype in LOSSLESS and want in LOSSLESS[d.dtype]:
                plan.casts.append((k, d.dtype, want))
            elif allow_cast:
                plan.casts.append((k, d.dtype, want))
            else:
                dtypes.append(f"{_show(k)} (model {want}, file {d.dtype})")
                continue
        plan.load.append(k)
    if shapes:
        plan.problems.append(f"{len(shapes)} mis-shaped: " + _keys(shapes))
    if dtypes:
        plan.problems.append(f"{len(dtypes)} of another dtype (a cast would change values; allow_cast=True "
                             f"casts them): " + _keys(dtypes))
    if strict and missing:
        plan.problems.append(f"{len(missing)} missing from the file: {_keys(missing)}")
    if strict and unexpected:
        plan.problems.append(f"{len(unexpected)} unexpected in the file: {_keys(unexpected)}")
    plan.read_bytes = sum(plan.declared[k].nbytes for k in plan.load)
    if kind == "torch-zip":           # torch.load inflates every record, wanted or not
        plan.read_bytes = max(plan.read_bytes, sum(d.nbytes for d in plan.declared.values()))
    _refuse_size(p, plan.read_bytes)
    return plan


def load_weights(module, path: str | os.PathLike, strict: bool = True, *, allow_cast: bool = False,
                 allow_nonfinite: bool = False):
    """Load a weight file into ``module``, all or nothing.

    Args:
        module: the torch module (e.g. from ``netspec.build``).
        path: a ``.safetensors`` file or a ``torch.save``'d state dict.
        strict: every key must match in name and shape (default). With False, matching keys are loaded and
            missing/unexpected ones ignored; mis-shaped keys are an error either way.
        allow_cast: cast tensors whose dtype differs from the model's even where values change (float64 or bool
            or int8 into float32, ...). Casts that keep every value (float16 into float32) are always allowed and
            reported with a warning.
        allow_nonfinite: accept NaN and infinite values (refused by default).
    Returns:
        the module. Raises WeightsError listing every problem; then the module is unchanged.
    """
    import torch

    p = Path(path)
    plan = plan_weights(module, p, strict=strict, allow_cast=allow_cast)
    problems = list(plan.problems)
    tensors: dict = {}
    if not problems:
        state = None
        if plan.kind == "safetensors":
            declared, start, _ = read_safetensors_header(p)
            tensors = {k: _read_st_tensor(p, start, declared[k]) for k in plan.load}
        else:
            state = _state_of(_torch_load(p, map_location="cpu"), p)
            tensors = {k: state[k] for k in plan.load}
        own = module.state_dict()
        nonfinite = []
        for k, t in tensors.items():
            if tuple(t.shape) != tuple(own[k].shape) or t.dtype != own[k].dtype and not any(
                    c[0] == k for c in plan.casts):
                problems.append(f"{_show(k)}: the data does not match what the file declared")
            elif not allow_nonfinite and (t.is_floating_point() or t.is_complex()) and t.numel() \
                    and not bool(torch.isfinite(t).all()):
                nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
                nonfinite.append(f"{_show(k)} ({nan:,} NaN, {inf:,} infinite)")
        if nonfinite:
            problems.append(f"{len(nonfinite)} with values that are not finite (allow_nonfinite=True accepts "
                            f"them): " + _keys(nonfinite))
    if problems:
        raise WeightsError(f"the weights in '{path}' do not fit the model: " + _join(problems), _loc(path),
                           ["the state_dict keys are the spec's layer names (e.g. layer1.0.conv1.weight); check "
                            "that the spec and its parameters match the ones the weights were saved from",
                            "nothing was loaded"])
    if plan.casts:
        warnings.warn(f"{p}: cast {len(plan.casts)} tensors: " +
                      _keys([f"{k} {a} -> {b}" for k, a, b in plan.casts]), stacklevel=2)
    own = module.state_dict()
    try:
        with torch.no_grad():
            for k, t in tensors.items():
                if own[k].dtype != t.dtype:
                    tensors[k] = t.to(own[k].dtype)
            module.load_state_dict(tensors, strict=False)
    except (RuntimeError, ValueError, TypeError) as e:    # pragma: no cover - everything was checked above
        raise WeightsError(f"the weights in '{path}' could not be copied: {_first_line(e)}", _loc(path)) from None
    return module


def save_weights(module, path: str | os.PathLike) -> None:
    """Save ``module``'s state dict as safetensors, atomically (a crash leaves the previous file intact).

    Tensors that share memory (a shared module reachable under two names) are saved once per name.
    """
    from safetensors.torch import save
    from .io import atomic_write_bytes

    state = {}
    seen: dict = {}
    for k, v in module.state_dict().items():
        t = v.detach().cpu()
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
        t = t.clone() if key in seen or not t.is_contiguous() else t
        seen[key] = k
        state[k] = t.contiguous()
    atomic_write_bytes(path, save(state, metadata={"format": "pt", "producer": "netspec"}))
