"""Adversarial training of the two networks of one spec file (Goodfellow et al. 2014; DCGAN's recipe).

Each step: the discriminator learns to tell real images (label 1) from generated ones (label 0), then the generator
learns to make the discriminator say 1 (the non-saturating loss). Real images are scaled from [0, 1] to [-1, 1], the
range of the generator's tanh. Evaluation reports a Frechet distance between real and generated images (``fd``:
means and covariances of 8x8 average-pooled images; the FID recipe without an Inception network, which would have
to be downloaded).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...errors import SpecError
from ..data import augment, batches, bind_inputs, load_data, to_device
from ..metrics import layer_grad_norms
from ..losses import build_loss
from ..optim import build_optimizer
from .base import Method
from .supervised import first_output


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """|mu_a - mu_b|^2 + tr(Sa + Sb - 2 (Sa^1/2 Sb Sa^1/2)^1/2) between two (n, d) feature sets."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = torch.cov(a.T), torch.cov(b.T)

    def sqrtm(m):
        w, v = torch.linalg.eigh((m + m.T) / 2)
        return (v * w.clamp(min=0).sqrt()) @ v.T

    r = sqrtm(sa)
    cross = sqrtm(r @ sb @ r)
    return float((mu_a - mu_b).pow(2).sum() + torch.trace(sa + sb - 2 * cross))


def features(images: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(images.float(), 8).flatten(1)


class Gan(Method):
    def setup(self) -> None:
        c = self.cfg.gan
        spec = self.run.spec
        for name in (c.generator, c.discriminator):
            if name not in spec.networks:
                raise SpecError(f"a GAN needs networks '{c.generator}' and '{c.discriminator}'; the spec has "
                                f"{', '.join(spec.networks)}", self.run.loc("gan"),
                                "name them with train.gan.generator / train.gan.discriminator")
        self.data = load_data(self.cfg.data, self.run.loc("data"))
        self.g, self.d = self.run.build(c.generator), self.run.build(c.discriminator)
        self.net = self.g
        self.networks = {c.generator: self.g, c.discriminator: self.d}
        gg = self.run.graphs[c.generator]
        self.z_name = c.z_input or next(iter(gg.inputs))
        zt = gg.input_types()[self.z_name]
        if any(not isinstance(s, int) for s in zt.shape[1:]):
            raise SpecError(f"the generator's noise input '{self.z_name}' {zt} needs fixed sizes after N",
                            self.run.loc("gan"))
        self.z_shape = tuple(zt.shape[1:])
        self.inputs = bind_inputs(self.run.graphs[c.discriminator], self.data, self.cfg.data.inputs,
                                  self.run.loc("data"))
        self.image_key = next(iter(self.inputs.values()))
        self.loss_fn = build_loss(self.cfg.loss or self.run.default_loss("bce")).to(self.run.device)
        self.gm, self.dm = self.run.wrap(self.g), self.run.wrap(self.d)
        self.optimizers["generator"] = build_optimizer(self.cfg.optimizer, [self.g])
        self.optimizers["discriminator"] = build_optimizer(self.cfg.optimizer, [self.d], lr=c.d_lr)

    def lr(self) -> float:
        return self.optimizers["generator"].param_groups[0]["lr"]

    def noise(self, n: int, generator=None) -> torch.Tensor:
        return torch.randn((n, *self.z_shape), generator=generator).to(self.run.device)

    def score(self, module, images) -> torch.Tensor:
        return first_output(module(**{next(iter(self.inputs)): images})).reshape(-1).float()

    def train_step(self, group: list[dict]) -> dict:
        batch = to_device(augment(group[0], self.cfg.data.augment, {self.image_key}), self.run.device,
                          self.run.channels_last)
        real = batch[self.image_key] * 2 - 1                                    # [0, 1] -> [-1, 1]
        n = real.shape[0]
        ones, zeros = torch.ones(n, device=real.device), torch.zeros(n, device=real.device)
        od, og = self.optimizers["discriminator"], self.optimizers["generator"]
        with self.run.autocast():
            fake = first_output(self.gm(**{self.z_name: self.noise(n)}))
            loss_d = self.loss_fn(self.score(self.dm, real), ones) + self.loss_fn(self.score(self.dm, fake.detach()),
                                                                                   zeros)
        if not torch.isfinite(loss_d):
            return {"loss": float(loss_d)}
        loss_d.backward()
        names = {id(m): k for k, m in self.networks.items()}
        if self.run.log_grads:                          # each network's norms from its own loss, before clipping
            self.run.grad_norms = layer_grad_norms({names[id(self.d)]: self.d}, prefixed=True)
        self.run.clip(self.d.parameters())
        od.step()
        od.zero_grad(set_to_none=True)
        with self.run.autocast():
            loss_g = self.loss_fn(self.score(self.dm, fake), ones)
        loss_g.backward()
        if self.run.log_grads:
            self.run.grad_norms = {**layer_grad_norms({names[id(self.g)]: self.g}, prefixed=True),
                                   **self.run.grad_norms}
        self.run.clip(self.g.parameters())
        og.step()
        og.zero_grad(set_to_none=True)
        self.d.zero_grad(set_to_none=True)          # the generator's step also filled the discriminator's grads
        for s in self.schedules.values():
            s.step()
        return {"loss": loss_d.item() + loss_g.item(), "loss_d": loss_d.item(), "loss_g": loss_g.item()}

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """n generated images in [0, 1], from noise with its own generator (the run's RNG untouched)."""
        self.g.eval()
        try:
            return (first_output(self.g(**{self.z_name: self.noise(n, torch.Generator().manual_seed(seed))})) + 1) / 2
        finally:
            self.g.train()

    @torch.no_grad()
    def evaluate(self, split: str) -> dict:
        real = torch.cat([b[self.image_key] for b in batches(self.data, split, 256, shuffle=False, drop_last=False)])
        real = real[:512].to(self.run.device)
        fake = self.sample(len(real), seed=1)
        return {"fd": frechet_distance(features(real).cpu(), features(fake).cpu())}

    def finish(self, out) -> None:
        from ..metrics import save_image_grid
        save_image_grid(self.sample(64, seed=2), out / "samples.png")
