"""Supervised classification and regression: inputs -> network -> loss against the target array."""
from __future__ import annotations

import torch

from ...errors import SpecError
from .base import Method


def first_output(out):
    """The network's (first) output: a tensor, or the first value of the dict a multi-output network returns."""
    return next(iter(out.values())) if isinstance(out, dict) else out


class Classify(Method):
    """Class scores (N, C) or per-position scores (N, C, ...) against integer labels."""

    def check_target(self, graph) -> None:
        out = next(iter(graph.output_types().values()))
        k = self.data.info.get("num_classes")
        if k is not None and len(out.shape) >= 2 and isinstance(out.shape[1], int) and out.shape[1] < k:
            raise SpecError(f"the network gives {out.shape[1]} class scores ({out}) but the data has {k} classes",
                            self.run.loc("params"), f"set the spec's class count, e.g. train.params: "
                                                    f"{{num_classes: {k}}}")

    def loss(self, batch: dict, meter=None):
        logits = first_output(self.forward(batch))
        target = batch[self.data.target]
        loss = self.loss_fn(logits, target)
        if meter is not None:
            meter.classify(logits.float(), target)
        return loss, {}


class Regress(Method):
    """Real-valued outputs against real-valued targets (MSE, L1, Huber, ...)."""

    def loss(self, batch: dict, meter=None):
        pred = first_output(self.forward(batch))
        target = batch[self.data.target].to(pred.dtype)
        if target.dim() == 1 and pred.dim() == 2 and pred.shape[1] == 1:
            target = target.unsqueeze(1)
        loss = self.loss_fn(pred, target)
        if meter is not None:
            meter.regress(pred, target)
        return loss, {}


def predict(module, inputs: dict) -> torch.Tensor:
    return first_output(module(**inputs))
