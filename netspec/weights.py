"""Load and save weights: safetensors, or torch.save state dicts read with ``weights_only=True``.

Loading never half-succeeds: every missing, unexpected and mis-shaped key is reported together in one
WeightsError, and with ``strict=True`` nothing is copied unless everything matches.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

from .errors import Loc, WeightsError

_SHOW = 20   # keys listed per kind before "... and N more"


def _loc(path) -> Loc:
    return Loc(str(path), 1, 1)


def read_state_dict(path: str | os.PathLike) -> dict:
    """The tensors of a weight file: ``.safetensors``, or a ``torch.save``'d state dict (or checkpoint with one).

    Pickles are read with ``weights_only=True``: a file that would run code is refused, never executed.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"no weight file '{p}'", _loc(p), "check the path")
    with open(p, "rb") as f:
        head = f.read(16)
    if p.suffix == ".safetensors" or _looks_safetensors(head):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(p))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise WeightsError(f"'{p}' is not a readable safetensors file: {e}", _loc(p)) from None
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(f"refused to load '{p}': it is a pickle that needs more than tensors to load "
                           f"(it could run code): {_first_line(e)}", _loc(p),
                           ["only plain state dicts are accepted; re-save the weights as safetensors "
                            "(netspec.save_weights) or as torch.save(model.state_dict(), path)"]) from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, KeyError) as e:
        raise WeightsError(f"'{p}' is not a readable torch weight file: {_first_line(e)}", _loc(p),
                           "expected a .safetensors file or a torch.save'd state dict") from None
    if isinstance(obj, dict) and not _is_tensor_dict(obj):
        for key in ("state_dict", "model", "model_state_dict", "module"):
            if isinstance(obj.get(key), dict) and _is_tensor_dict(obj[key]):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not _is_tensor_dict(obj):
        raise WeightsError(f"'{p}' holds a {type(obj).__name__}, not a state dict of tensors", _loc(p),
                           "save it with torch.save(model.state_dict(), path)")
    return obj


def _looks_safetensors(head: bytes) -> bool:
    # 8-byte little-endian header length, then a JSON object
    return len(head) >= 9 and head[8:9] == b"{"


def _is_tensor_dict(d: dict) -> bool:
    import torch
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def _first_line(e: BaseException) -> str:
    s = str(e).strip().split("\n")[0]
    return s[:300]


def _keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW])
    return shown + (f", ... and {len(keys) - _SHOW} more" if len(keys) > _SHOW else "")


def check_state_dict(module, state: dict) -> tuple[list, list, list]:
    """(missing keys, unexpected keys, [(key, expected shape, file shape)]) of ``state`` against ``module``."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [(k, tuple(own[k].shape), tuple(state[k].shape)) for k in own
              if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    return missing, unexpected, shapes


def load_weights(module, path: str | os.PathLike, strict: bool = True):
    """Load a weight file into ``module``.

    Args:
        module: the torch module (e.g. from ``netspec.build``).
        path: a ``.safetensors`` file or a ``torch.save``'d state dict.
        strict: every key must match in name and shape (default). With False, matching keys are loaded and
            missing/unexpected ones ignored; mis-shaped keys are an error either way.
    Returns:
        the module. Raises WeightsError listing every missing, unexpected and mis-shaped key.
    """
    state = read_state_dict(path)
    missing, unexpected, shapes = check_state_dict(module, state)
    problems = []
    if shapes:
        problems.append(f"{len(shapes)} mis-shaped: " +
                        _keys([f"{k} (model {list(a)}, file {list(b)})" for k, a, b in shapes]))
    if strict and missing:
        problems.append(f"{len(missing)} missing from the file: {_keys(missing)}")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected in the file: {_keys(unexpected)}")
    if problems:
        raise WeightsError(f"the weights in '{path}' do not fit the model: " + "; ".join(problems), _loc(path),
                           ["the state_dict keys are the spec's layer names (e.g. layer1.0.conv1.weight); check "
                            "that the spec and its parameters match the ones the weights were saved from",
                            "nothing was loaded"])
    if strict:
        module.load_state_dict(state, strict=True)
    else:
        own = module.state_dict()
        module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
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
