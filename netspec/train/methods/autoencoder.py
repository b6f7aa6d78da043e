"""Autoencoders: reconstruct the input. ``autoencoder``: one network, loss(recon, x). ``vae``: an encoder giving
(mu, logvar) and a decoder; z = mu + sigma * eps (the reparameterisation trick); loss = reconstruction summed over
an example's values + beta * KL(q(z|x) || N(0, I)), both averaged over the batch (the negative ELBO)."""
from __future__ import annotations

import torch

from ...errors import SpecError
from ..data import bind_inputs, load_data
from ..losses import DEFAULT_LOSS, build_loss
from ..optim import build_optimizer
from .base import Method
from .supervised import first_output


def reconstruction(out):
    """The reconstruction among a network's outputs: 'recon' when it has several, else its only output."""
    return out["recon"] if isinstance(out, dict) and "recon" in out else first_output(out)


class Autoencoder(Method):
    def setup(self) -> None:
        if self.cfg.method == "autoencoder":
            super().setup()
            return
        v = self.cfg.vae
        self.data = load_data(self.cfg.data, self.run.loc("data"))
        for name in (v.encoder, v.decoder):
            if name not in self.run.spec.networks:
                raise SpecError(f"a VAE needs networks '{v.encoder}' and '{v.decoder}'; the spec has "
                                f"{', '.join(self.run.spec.networks)}", self.run.loc("vae"),
                                "name them with train.vae.encoder / train.vae.decoder")
        self.net = self.run.build(v.encoder)
        self.decoder = self.run.build(v.decoder)
        self.networks = {v.encoder: self.net, v.decoder: self.decoder}
        self.inputs = bind_inputs(self.run.graphs[v.encoder], self.data, self.cfg.data.inputs, self.run.loc("data"))
        outs = self.run.graphs[v.encoder].output_types()
        if v.mean not in outs or v.logvar not in outs:
            raise SpecError(f"the encoder's outputs are {', '.join(outs)}; a VAE needs '{v.mean}' and '{v.logvar}'",
                            self.run.loc("vae"), "name them with train.vae.mean / train.vae.logvar")
        self.z_input = next(iter(self.run.graphs[v.decoder].inputs))
        self.latent = outs[v.mean].shape[1:]
        self.loss_fn = build_loss(self.cfg.loss or self.run.default_loss(DEFAULT_LOSS["vae"])).to(self.run.device)
        self.loss_fn.reduction = "sum"
        self.model = self.run.wrap(self.net)
        self.decoder_model = self.run.wrap(self.decoder)
        self.optimizers["main"] = build_optimizer(self.cfg.optimizer, [self.net, self.decoder])

    def loss(self, batch: dict, meter=None):
        x = batch[next(iter(self.inputs.values()))]
        if self.cfg.method == "autoencoder":
            recon = reconstruction(self.forward(batch))
            loss = self.loss_fn(recon, x)
            if meter is not None:
                meter.regress(recon, x)
            return loss, {}
        v = self.cfg.vae
        enc = self.forward(batch)
        mu, logvar = enc[v.mean], enc[v.logvar]
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.net.training else mu
        decoder = self.decoder_model if self.net.training else self.decoder
        recon = reconstruction(decoder(**{self.z_input: z})).reshape(x.shape)
        n = x.shape[0]
        rec = self.loss_fn(recon, x) / n
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / n
        if meter is not None:
            meter.regress(recon, x)
            meter.add("recon", rec.item() * n, n)
            meter.add("kl", kl.item() * n, n)
        return rec + v.beta * kl, {"recon": rec.item(), "kl": kl.item()}

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """n decoded draws from the prior N(0, I) (VAE only), with their own generator (the run's RNG untouched)."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn((n, *self.latent), generator=g).to(self.run.device)
        self.decoder.eval()
        try:
            return reconstruction(self.decoder(**{self.z_input: z}))
        finally:
            self.decoder.train()

    def finish(self, out) -> None:
        from ..metrics import save_image_grid
        x = self.data.arrays[next(iter(self.inputs.values()))]
        if self.cfg.method == "vae":
            imgs = self.sample(64)
        else:
            idx = self.data.splits["test"][:32]
            with torch.no_grad():
                self.net.eval()
                recon = reconstruction(self.net(**{k: x[idx].to(self.run.device) for k in self.inputs}))
            imgs = torch.cat([x[idx].to(recon.device), recon])
        side = int(round(imgs[0].numel() ** 0.5))
        if imgs.dim() == 2 and side * side == imgs.shape[1]:
            imgs = imgs.reshape(-1, 1, side, side)
        if imgs.dim() == 4:
            save_image_grid(imgs, out / "samples.png")
