"""GAN: both networks of specs/dcgan.yaml train adversarially, and the generator learns the shapes' distribution.

Check: the Frechet distance between real and generated images (means and covariances of 8x8 average-pooled images,
the FID recipe without an Inception network, which would have to be downloaded) falls below a fifth of an untrained
generator's. Pooled intensities capture where ink is and how much of it there is; a generator that still makes
noise, or a mode-collapsed one making one blob, keeps a large distance (the covariance term)."""
from __future__ import annotations

from pathlib import Path

import math
import torch
from safetensors.torch import load_file

import netspec
from netspec.train.data import make_shapes
from netspec.train.methods.gan import features, frechet_distance

ROOT = Path(__file__).resolve().parents[2]


def test_gan_trains_both_networks_and_matches_the_data(tmp_path):
    res = netspec.train(ROOT / "specs" / "dcgan.yaml", out=str(tmp_path))
    assert set(res.networks) == {"generator", "discriminator"}
    train = [r for r in res.history if r["split"] == "train"]
    assert train and all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in train)

    torch.manual_seed(0)
    untrained = netspec.build(ROOT / "specs" / "dcgan.yaml", "generator", nz=32, ngf=16, nc=1).eval()
    real, _, _ = make_shapes(1000, 64, noise=0.0, max_shapes=2)
    with torch.no_grad():
        fake = (untrained(z=torch.randn(512, 32, 1, 1, generator=torch.Generator().manual_seed(1))) + 1) / 2
    fd_untrained = frechet_distance(features(torch.from_numpy(real[:512])), features(fake))
    assert res.metrics["fd"] < 0.2 * fd_untrained, (res.metrics, fd_untrained)

    ck = tmp_path / "checkpoints" / (tmp_path / "checkpoints" / "latest").read_text().strip()
    assert {p.name for p in ck.iterdir()} == {"generator.safetensors", "discriminator.safetensors",
                                              "state.safetensors"}
    assert load_file(str(ck / "discriminator.safetensors")).keys() == res.networks["discriminator"].state_dict().keys()
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"
