"""What every training method shares: one network, one optimizer and schedule, batches from the data.

A method subclass says how a batch becomes a loss (``loss``) and how a split is evaluated (``evaluate``); methods
that train differently (GAN: two optimizers; DQN: an environment) override ``train_step`` and ``batches``.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch

from ..data import Data, augment, batches, bind_inputs, load_data, num_batches, to_device
from ..losses import DEFAULT_LOSS, build_loss
from ..metrics import Meter, layer_grad_norms
from ..optim import build_optimizer, build_schedule


class Method:
    """The single-network, single-optimizer loop; see the subclasses in this package."""

    def __init__(self, run):
        self.run = run                      # netspec.train.loop.Run: config, device, networks, writers
        self.cfg = run.cfg
        self.networks: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedules: dict = {}
        self.data: Data | None = None

    # -- set-up -------------------------------------------------------------------------------------------------

    def setup(self) -> None:
        self.data = load_data(self.cfg.data, self.run.loc("data"))
        name = self.run.network_name()
        self.net = self.run.build(name)
        self.networks[name] = self.net
        graph = self.run.graphs[name]
        self.inputs = bind_inputs(graph, self.data, self.cfg.data.inputs, self.run.loc("data"))
        self.check_target(graph)
        loss_cfg = self.cfg.loss or self.run.default_loss(DEFAULT_LOSS[self.cfg.method])
        self.loss_fn = build_loss(loss_cfg).to(self.run.device)
        self.model = self.run.wrap(self.net)
        self.optimizers["main"] = build_optimizer(self.cfg.optimizer, [self.net])

    def check_target(self, graph) -> None:
        """Hook: check that the network's output fits the target (before the first step)."""

    def make_schedules(self, total_steps: int) -> None:
        for k, opt in self.optimizers.items():
            self.schedules[k] = build_schedule(self.cfg.schedule, opt, total_steps)

    # -- batches ------------------------------------------------------------------------------------------------

    def steps_per_epoch(self) -> int:
        n = num_batches(self.data, "train", self.cfg.batch_size, drop_last=True) // self.cfg.accumulate
        if n < 1:
            from ...errors import SpecError
            raise SpecError(f"the training split has {self.data.size('train')} examples: fewer than one step of "
                            f"batch_size {self.cfg.batch_size} x accumulate {self.cfg.accumulate}",
                            self.run.loc("batch_size"), "lower batch_size")
        return n

    def batches(self, epoch: int, start_step: int) -> Iterator[list[dict]]:
        """Groups of ``accumulate`` micro-batches, one group per optimizer step, from step ``start_step`` on."""
        a = self.cfg.accumulate
        it = batches(self.data, "train", self.cfg.batch_size, seed=self.cfg.seed, epoch=epoch,
                     start=start_step * a, rank=self.run.rank, world=self.run.world)
        group = []
        for b in it:
            group.append(b)
            if len(group) == a:
                yield group
                group = []

    def inputs_of(self, batch: dict) -> dict:
        return {name: batch[key] for name, key in self.inputs.items()}

    def forward(self, batch: dict):
        """The network on a batch: through its wrapper (DDP, compiled) in training, the plain module in eval."""
        module = self.model if self.net.training else self.net
        return module(**self.inputs_of(batch))

    # -- one optimizer step ---------------------------------------------------------------------------------------

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def train_step(self, group: list[dict]) -> dict:
        """Forward/backward each micro-batch, clip, step the optimizer and schedule. Returns the logged values."""
        opt = self.optimizers["main"]
        total = 0.0
        for micro in group:
            micro = augment(micro, self.cfg.data.augment, set(self.inputs.values()))
            batch = to_device(micro, self.run.device, self.run.channels_last)
            with self.run.autocast():
                loss, logs = self.loss(batch)
            value = loss.item()
            if not math.isfinite(value):
                return {"loss": value}
            (loss / len(group)).backward()
            total += value / len(group)
        if self.run.log_grads:                          # a log step: per-layer gradient norms, before clipping
            self.run.grad_norms = layer_grad_norms(self.networks)
        self.run.clip(p for m in self.networks.values() for p in m.parameters())
        opt.step()
        opt.zero_grad(set_to_none=True)
        self.schedules["main"].step()
        return {"loss": total, **{k: v for k, v in logs.items() if k != "loss"}}

    def lr(self) -> float:
        return self.optimizers["main"].param_groups[0]["lr"]

    # -- evaluation ---------------------------------------------------------------------------------------------

    def has_split(self, split: str) -> bool:
        return self.data is not None and self.data.size(split) > 0

    @torch.no_grad()
    def evaluate(self, split: str) -> dict:
        meter = Meter(list(self.cfg.metrics), self.data.info.get("num_classes"))
        self.net.eval()
        try:
            for micro in batches(self.data, split, self.cfg.batch_size, shuffle=False, drop_last=False):
                batch = to_device(micro, self.run.device, self.run.channels_last)
                with self.run.autocast():
                    loss, _ = self.loss(batch, meter=meter)
                n = next(iter(batch.values())).shape[0]
                meter.add("loss", loss.item() * n, n)
        finally:
            self.net.train()
        return meter.result()

    def finish(self, out) -> None:
        """Hook: write extra outputs at the end (sample grids)."""

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass
