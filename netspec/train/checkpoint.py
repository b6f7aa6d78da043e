"""Checkpoints that survive a kill at any moment, and weight files that say where they came from.

A checkpoint is a folder ``checkpoints/step-00000120/`` holding one ``NETWORK.safetensors`` per network and
``state.safetensors``: optimizer tensors and RNG states as tensors, everything else (step, epoch, batch, optimizer
hyper-parameters, scheduler state, the spec's hash and parameters) as JSON in the safetensors metadata. Nothing is
pickled, so loading never runs code. The folder is written under a temporary name and renamed; then the ``latest``
file is replaced atomically. A kill leaves either the old or the new checkpoint complete.

Weight files (final weights and each checkpoint's) carry ``netspec.spec_hash``, ``netspec.network`` and
``netspec.params`` in their safetensors metadata; ``check_weights_meta`` says exactly what differs from a build.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch

from ..errors import Loc, WeightsError

LATEST = "latest"


def spec_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def weights_meta(spec_name: str, spec_text: str, network: str, params: dict) -> dict[str, str]:
    return {"format": "pt", "producer": "netspec", "netspec.spec": spec_name, "netspec.spec_hash": spec_hash(spec_text),
            "netspec.network": network, "netspec.params": json.dumps(params, sort_keys=True, default=str)}


def _state_tensors(module) -> dict[str, torch.Tensor]:
    """The state dict (of a module, or one given as a dict) on the CPU, contiguous, with tensors shared under two
    names stored once per name."""
    state, seen = {}, set()
    for k, v in (module if isinstance(module, dict) else module.state_dict()).items():
        t = v.detach().cpu()
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
        t = t.clone() if key in seen or not t.is_contiguous() else t
        seen.add(key)
        state[k] = t.contiguous()
    return state


def save_weights(module, path: str | os.PathLike, meta: dict[str, str]) -> None:
    """Save a module's weights (or a whole state dict's) as safetensors with ``meta`` in the header, atomically."""
    from safetensors.torch import save
    from ..io import atomic_write_bytes
    atomic_write_bytes(path, save(_state_tensors(module), metadata=meta))


def read_meta(path: str | os.PathLike) -> dict[str, str]:
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:   # not a safetensors file (a torch.save'd state dict has no metadata)
        return {}


def check_weights_meta(path, network: str, params: dict, spec_text: str | None = None) -> list[str]:
    """Raise WeightsError naming each difference of network or parameters; return warnings (a changed spec)."""
    meta = read_meta(path)
    if "netspec.network" not in meta:
        return [f"'{path}' does not say which spec it came from (not written by netspec train)"]
    diffs = []
    if meta["netspec.network"] != network:
        diffs.append(f"network: file '{meta['netspec.network']}', here '{network}'")
    saved = json.loads(meta.get("netspec.params", "{}"))
    here = json.loads(json.dumps(params, sort_keys=True, default=str))
    for k in sorted(set(saved) | set(here)):
        if saved.get(k, "(unset)") != here.get(k, "(unset)"):
            diffs.append(f"{k}: file {json.dumps(saved.get(k, '(unset)'))}, here {json.dumps(here.get(k, '(unset)'))}")
    if diffs:
        fix = " ".join(f"-p {k}={json.dumps(saved[k]).replace(' ', '')}" for k in sorted(saved)
                       if saved.get(k) != here.get(k))
        raise WeightsError(f"'{path}' was saved from '{meta.get('netspec.spec', '?')}' with other settings: "
                           + "; ".join(diffs), Loc(str(path)),
                           [f"build with the file's parameters: {fix}" if fix else "use the spec the weights are for"])
    warnings = []
    if spec_text is not None and meta.get("netspec.spec_hash") not in (None, spec_hash(spec_text)):
        warnings.append(f"the spec changed since '{path}' was saved (hash {meta['netspec.spec_hash']}, now "
                        f"{spec_hash(spec_text)}); the weights fit its shapes")
    return warnings


# -- checkpoints --------------------------------------------------------------------------------------------------

def _split_state(obj, tensors: dict, prefix: str):
    """A JSON-able copy of ``obj`` with every tensor moved into ``tensors`` (replaced by {"__tensor__": key})."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[_split_state(k, tensors, f"{prefix}.k{i}"), _split_state(v, tensors, f"{prefix}.{i}")]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return {"__list__" if isinstance(obj, list) else "__tuple__":
                [_split_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {prefix}")


def _join_state(obj, tensors: dict):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {_join_state(k, tensors): _join_state(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            return [_join_state(v, tensors) for v in obj["__list__"]]
        if "__tuple__" in obj:
            return tuple(_join_state(v, tensors) for v in obj["__tuple__"])
    return obj


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, step: int, networks: dict, state: dict, metas: dict, keep: int) -> Path:
    """Write checkpoint ``step`` into ``folder`` atomically and drop all but the newest ``keep``."""
    from safetensors.torch import save
    folder.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = folder / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for net, module in networks.items():
        _write(tmp / f"{net}.safetensors", save(_state_tensors(module), metadata=metas[net]))
    tensors: dict = {}
    meta = json.dumps(_split_state(state, tensors, "s"))
    _write(tmp / "state.safetensors", save(tensors, metadata={"format": "pt", "netspec.state": meta}))
    _fsync_dir(tmp)
    final = folder / name
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    from ..io import atomic_write_text
    atomic_write_text(folder / LATEST, name + "\n")
    _fsync_dir(folder)
    for old in sorted(p for p in folder.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (the one ``latest`` names, or the highest step)."""
    try:
        name = (folder / LATEST).read_text().strip()
        if name and (folder / name / "state.safetensors").is_file():
            return folder / name
    except OSError:
        pass
    done = sorted(p for p in folder.glob("step-*") if (p / "state.safetensors").is_file())
    return done[-1] if done else None


def load_checkpoint(path: Path, networks: dict, load=None) -> dict:
    """Load the networks' weights from checkpoint ``path`` (strict) and return its state.

    ``load(module, state)`` copies a checked whole state dict into a module that cannot take it by
    ``load_state_dict`` (a sharded one); by default ``weights.load_weights`` checks and loads it.
    """
    from safetensors.torch import load_file
    from safetensors import safe_open
    from ..weights import load_weights, plan_weights
    for net, module in networks.items():
        file = path / f"{net}.safetensors"
        if load is None:
            load_weights(module, file, strict=True)
            continue
        plan = plan_weights(module, file, strict=True)
        if plan.problems:       # the same check and message as load_weights
            load_weights(module, file, strict=True)
        load(module, load_file(str(file)))
    tensors = load_file(str(path / "state.safetensors"))
    with safe_open(str(path / "state.safetensors"), framework="pt") as f:
        meta = f.metadata()
    return _join_state(json.loads(meta["netspec.state"]), tensors)
