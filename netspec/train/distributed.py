"""Several processes: under ``torchrun`` (WORLD_SIZE > 1) each process joins the group and trains its share.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; the backend is NCCL on CUDA and gloo on the CPU. The model is wrapped
in DistributedDataParallel, every global batch is cut into one slice per rank (``data.batches``), gradients are
averaged by DDP, and only rank 0 writes logs, checkpoints and weights.
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
