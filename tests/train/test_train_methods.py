"""Each training method reaches a result a person would accept, on data that ships with netspec or Python."""
from __future__ import annotations

from pathlib import Path

import torch

import netspec
from netspec.train.data import make_shapes, read_digits

ROOT = Path(__file__).resolve().parents[2]


def test_unet_segments_generated_shapes(tmp_path):
    res = netspec.train(ROOT / "specs" / "unet.yaml", out=str(tmp_path))
    assert res.metrics["mean_iou"] >= 0.85, res.metrics
    assert res.module.state_dict()["inc.conv.0.conv.weight"].shape[0] == 8     # train.params: {width: 8}


def test_autoencoder_reconstructs_far_better_than_the_mean_image(tmp_path):
    res = netspec.train(ROOT / "specs" / "autoencoder.yaml", out=str(tmp_path))
    x, _, _ = make_shapes(1000, 32, channels=3, noise=0.0)
    baseline = float(((x - x.mean(0)) ** 2).mean())      # the best constant output
    assert res.metrics["mse"] < 0.3 * baseline, (res.metrics, baseline)
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_vae_beats_independent_pixels_and_samples_look_like_digits(tmp_path):
    """Check: the VAE's negative ELBO on test digits (an upper bound of its NLL under the Bernoulli decoder) against
    the best model with independent pixels (a Bernoulli per pixel at the pixel's mean). Grey-level targets make the
    cross-entropy of even a perfect model equal their own entropy (the floor), so the two are compared above it: the
    VAE must remove at least a quarter of the independent model's excess, which only a latent code that captures how
    pixels go together can do. Samples from the prior have the data's overall ink (mean intensity within 0.05)."""
    res = netspec.train(ROOT / "examples" / "vae.yaml", out=str(tmp_path))
    x, _ = read_digits(None)
    x = x / 16
    xc, p = x.clamp(1e-6, 1 - 1e-6), x.mean(0).clamp(1e-4, 1 - 1e-4)
    floor = float(-(x * xc.log() + (1 - x) * (1 - xc).log()).sum(1).mean())
    independent = float(-(x * p.log() + (1 - x) * (1 - p).log()).sum(1).mean())
    elbo = res.metrics["recon"] + res.metrics["kl"]
    assert elbo - floor < 0.75 * (independent - floor), (elbo, independent, floor)
    assert res.metrics["kl"] > 1.0                                   # the latent is used
    z = torch.randn(500, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        samples = res.networks["decoder"].eval()(z=z)
    assert abs(float(samples.mean()) - float(x.mean())) < 0.05
    assert (tmp_path / "samples.png").is_file()
