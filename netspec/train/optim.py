"""Optimizers and learning-rate schedules: torch's own, built from the config.

Weight decay goes to weights only: biases and the parameters of normalisation layers (any 1-D parameter, and every
parameter of a ``_NormBase``/``LayerNorm``/``GroupNorm``/``RMSNorm``) are put in a group without decay.
Schedules are stepped once per optimizer step; warm-up is a linear ramp chained in front with ``SequentialLR``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim import lr_scheduler as S

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.RMSNorm)


def param_groups(modules: list[nn.Module], weight_decay: float) -> list[dict]:
    """[{params with decay}, {biases and norms, weight_decay 0}], each parameter once (shared ones too)."""
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for m in module.modules():
            for _, p in m.named_parameters(recurse=False):
                if id(p) in seen or not p.requires_grad:
                    continue
                seen.add(id(p))
                (no_decay if isinstance(m, _NORMS) or p.dim() <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(cfg, modules: list[nn.Module], lr: float | None = None) -> torch.optim.Optimizer:
    kw = cfg.model_dump(exclude={"name", "weight_decay"})
    if lr is not None:
        kw["lr"] = lr
    cls = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop,
           "adadelta": torch.optim.Adadelta, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.name]
    if cfg.name in ("adam", "adamw"):
        kw["betas"] = tuple(kw["betas"])
    return cls(param_groups(modules, cfg.weight_decay), **kw)


def build_schedule(cfg, optimizer, total_steps: int):
    """The schedule over ``total_steps`` optimizer steps (warm-up included)."""
    total_steps = max(1, total_steps)
    if cfg.name == "onecycle":
        return S.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total_steps,
                            pct_start=cfg.pct_start, div_factor=cfg.div_factor,
                            final_div_factor=cfg.final_div_factor)
    warmup = min(cfg.warmup, total_steps - 1)
    rest = total_steps - warmup
    if cfg.name == "constant":
        main = S.ConstantLR(optimizer, factor=1.0, total_iters=0)
    elif cfg.name == "step":
        main = S.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    elif cfg.name == "multistep":
        main = S.MultiStepLR(optimizer, milestones=[m - warmup for m in cfg.milestones], gamma=cfg.gamma)
    else:
        main = S.CosineAnnealingLR(optimizer, T_max=rest, eta_min=cfg.min_lr)
    if not warmup:
        return main
    ramp = S.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), end_factor=1.0, total_iters=warmup)
    return S.SequentialLR(optimizer, [ramp, main], milestones=[warmup])
