"""GAN: both networks of specs/gan.yaml train adversarially; checkpoints hold both, with both optimizers.

A quality bar (Frechet distance well below an untrained generator's) needs a few hundred steps of a 64x64 DCGAN,
minutes on a 2-core CPU: this test runs a short schedule and checks the mechanics; see docs/training.md."""
from __future__ import annotations

from pathlib import Path

import math
import torch
from safetensors.torch import load_file

import netspec

ROOT = Path(__file__).resolve().parents[2]


def test_gan_trains_both_networks_and_writes_samples(tmp_path):
    torch.manual_seed(0)
    g0 = netspec.build(ROOT / "specs" / "gan.yaml", "generator", nz=32, ngf=16, nc=1).state_dict()
    res = netspec.train(ROOT / "specs" / "gan.yaml", out=str(tmp_path), steps=6, eval_every=6,
                        data={"source": "shapes", "n": 300, "size": 64, "noise": 0.0})
    assert set(res.networks) == {"generator", "discriminator"}
    g1 = res.networks["generator"].state_dict()
    assert any(not torch.equal(g0[k], g1[k]) for k in g0 if g0[k].is_floating_point())
    train = [r for r in res.history if r["split"] == "train"]
    assert train and all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in train)
    assert math.isfinite(res.metrics["fd"]) and res.metrics["fd"] > 0
    ck = tmp_path / "checkpoints" / (tmp_path / "checkpoints" / "latest").read_text().strip()
    assert {p.name for p in ck.iterdir()} == {"generator.safetensors", "discriminator.safetensors",
                                              "state.safetensors"}
    assert load_file(str(ck / "discriminator.safetensors")).keys() == res.networks["discriminator"].state_dict().keys()
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"
