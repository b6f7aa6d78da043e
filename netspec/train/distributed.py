"""Several processes: under ``torchrun`` (WORLD_SIZE > 1) each process joins the group and trains its share.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; the backend is NCCL on CUDA and gloo on the CPU. Every global batch is
cut into one slice per rank (``data.batches``) and only rank 0 writes logs, checkpoints and weights. With the ``ddp``
strategy each process holds the whole model in DistributedDataParallel, which averages the gradients; with ``fsdp``
(FSDP2, ``fully_shard``) each holds a shard of every parameter, gradient and optimizer state, so a model larger than
one device fits: evaluation then runs on every rank (each forward gathers the weights it needs), and checkpoints are
gathered into whole state dicts, so a checkpoint reads the same whichever way it was trained.
"""
from __future__ import annotations

import os

import torch


def world() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment; (0, 0, 1) when run alone."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init(device: torch.device) -> None:
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def barrier() -> None:
    import torch.distributed as dist
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    import torch.distributed as dist
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel as DDP
    return DDP(module, device_ids=[device.index] if device.type == "cuda" else None)


# -- FSDP2: networks larger than one device ------------------------------------------------------------------------

def _has_params(module: torch.nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=True))


def shard_units(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The submodules sharded as units of their own: each direct child with parameters, and each element of a
    child that is a repeat (ModuleList, or a Sequential of blocks). A unit that shares a parameter with another
    (tied embeddings, ``share:``) stays with the root, since one parameter cannot belong to two units."""
    candidates: list[torch.nn.Module] = []
    for child in module.children():
        if isinstance(child, (torch.nn.ModuleList, torch.nn.Sequential)) and len(child) > 1:
            candidates.extend(c for c in child if _has_params(c))
        elif _has_params(child):
            candidates.append(child)
    owners: dict[int, int] = {}
    for i, unit in enumerate(candidates):
        for p in unit.parameters():
            owners[id(p)] = -1 if owners.get(id(p), i) != i else i
    shared = {i for i, unit in enumerate(candidates) if any(owners[id(p)] == -1 for p in unit.parameters())}
    return [u for i, u in enumerate(candidates) if i not in shared]


def shard(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Shard the module's parameters, gradients and optimizer state across the processes (FSDP2 ``fully_shard``):
    each unit of ``shard_units`` is gathered for its forward and backward only, then the root. In place."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    mesh = init_device_mesh(device.type, (world()[2],))
    for unit in shard_units(module):
        fully_shard(unit, mesh=mesh)
    fully_shard(module, mesh=mesh)
    return module


def _options(**kw):
    from torch.distributed.checkpoint.state_dict import StateDictOptions
    return StateDictOptions(full_state_dict=True, **kw)


def full_states(networks: dict, optimizers: dict) -> tuple[dict, dict]:
    """Every process calls this together: the networks' whole state dicts and the optimizers' whole states (keyed by
    parameter names), gathered on rank 0 on the CPU (other ranks get empty dicts)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict
    nets = {n: get_model_state_dict(m, options=_options(cpu_offload=True)) for n, m in networks.items()}
    holder = torch.nn.ModuleDict(networks)
    opts = {k: get_optimizer_state_dict(holder, o, options=_options(cpu_offload=True)) for k, o in optimizers.items()}
    return nets, opts


def load_full_model(module: torch.nn.Module, state: dict) -> None:
    """Load a whole (unsharded) state dict into a sharded module; every process calls it with the same state."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict
    set_model_state_dict(module, state, options=_options(strict=True))


def load_full_optimizer(networks: dict, optimizer, state: dict) -> None:
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict
    set_optimizer_state_dict(torch.nn.ModuleDict(networks), optimizer, state, options=_options())
