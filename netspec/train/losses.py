"""Losses: torch's own, built from the ``loss:`` config; Dice is the one written here (torch has none)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class DiceLoss(nn.Module):
    """1 - mean soft Dice over classes of (N, C, ...) logits against (N, ...) class indices; optionally + w * CE.

    Dice = (2 |P . G| + s) / (|P| + |G| + s) per class, with P the softmax probabilities and G the one-hot target.
    """

    def __init__(self, smooth: float = 1.0, with_ce: float = 0.0, reduction: str = "mean"):
        super().__init__()
        self.smooth, self.with_ce, self.reduction = smooth, with_ce, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probs = logits.float().softmax(1)                                       # (N, C, ...)
        onehot = F.one_hot(target, probs.shape[1]).movedim(-1, 1).to(probs)     # (N, C, ...)
        dims = (0,) + tuple(range(2, probs.dim()))
        inter = (probs * onehot).sum(dims)
        total = probs.sum(dims) + onehot.sum(dims)
        dice = (2 * inter + self.smooth) / (total + self.smooth)                # (C,)
        loss = 1 - dice.mean() if self.reduction == "mean" else (1 - dice).sum()
        if self.with_ce:
            loss = loss + self.with_ce * F.cross_entropy(logits, target)
        return loss


def build_loss(cfg) -> nn.Module:
    """The torch loss module for a loss config (``netspec.train.config.*Loss``)."""
    kw = cfg.model_dump(exclude={"name"})
    for k in ("weight", "pos_weight"):
        if kw.get(k) is not None:
            kw[k] = torch.tensor(kw[k], dtype=torch.float32)
    make = {
        "mse": nn.MSELoss, "l1": nn.L1Loss, "smooth_l1": nn.SmoothL1Loss, "huber": nn.HuberLoss,
        "cross_entropy": nn.CrossEntropyLoss, "nll": nn.NLLLoss, "bce": nn.BCELoss,
        "bce_with_logits": nn.BCEWithLogitsLoss, "kl_div": nn.KLDivLoss, "hinge": nn.MultiMarginLoss,
        "dice": DiceLoss,
    }[cfg.name]
    return make(**kw)


DEFAULT_LOSS = {"classify": "cross_entropy", "segment": "cross_entropy", "regress": "mse", "autoencoder": "mse",
                "vae": "mse", "lm": "cross_entropy", "gan": "bce", "dqn": "huber",
                "detection": None}   # the detector's losses, summed (the detection steps compute them)
