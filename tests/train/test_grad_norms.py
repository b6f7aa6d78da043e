"""Per-layer gradient norms: computed at log steps (before clipping) into grad_norms.jsonl, for `train --serve`."""
from __future__ import annotations

import json

import torch
from torch import nn

import netspec
from netspec.train.metrics import layer_grad_norms

SPEC = """\
netspec: 1
name: tiny
inputs:
  x: [N, 64]
layers:
  - {name: fc1, op: linear, out: 16}
  - {name: bn, op: batchnorm1d}
  - {name: act, op: relu}
  - {name: fc2, op: linear, out: 10}
train:
  method: classify
  data: {source: digits}
  optimizer: {name: sgd, lr: 0.05}
  steps: 12
  log_every: 5
  batch_size: 32
  grad_clip: 0.001
"""


def test_norms_are_per_layer_and_match_torch():
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("a", nn.Linear(4, 3))
    net.add_module("b", nn.ReLU())
    net.add_module("c", nn.Linear(3, 2, bias=False))
    net(torch.randn(5, 4)).square().sum().backward()
    got = layer_grad_norms({"net": net})
    want_a = torch.cat([net.a.weight.grad.flatten(), net.a.bias.grad]).norm().item()
    assert list(got) == ["a", "c"]
    assert abs(got["a"] - want_a) < 1e-5 and abs(got["c"] - net.c.weight.grad.norm().item()) < 1e-5
    two = layer_grad_norms({"g": net, "d": net})
    assert list(two) == ["g/a", "g/c", "d/a", "d/c"]
    net.zero_grad(set_to_none=True)
    assert layer_grad_norms({"net": net}) == {}


def test_training_logs_norms_at_log_steps_before_clipping(tmp_path):
    (tmp_path / "net.yaml").write_text(SPEC)
    res = netspec.train(str(tmp_path / "net.yaml"), out=str(tmp_path / "run"), device="cpu")
    lines = [json.loads(x) for x in (tmp_path / "run" / "grad_norms.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [5, 10, 12]              # the log steps, and the last one
    assert [r["step"] for r in res.history if r["split"] == "train"] == [5, 10, 12]
    for r in lines:
        assert list(r["norms"]) == ["fc1", "bn", "fc2"]
        assert all(v > 0.001 for v in r["norms"].values())        # before clipping to 0.001 in total
    # metrics.jsonl keeps its flat numbers: the norms live beside it
    rec = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert "norms" not in rec and "grad_norms" not in rec


def test_a_gan_logs_both_networks_norms(tmp_path):
    from pathlib import Path
    spec = Path(__file__).resolve().parent.parent.parent / "specs" / "dcgan.yaml"
    netspec.train(str(spec), out=str(tmp_path / "run"), steps=2, log_every=1, eval_every=1000, device="cpu")
    lines = [json.loads(x) for x in (tmp_path / "run" / "grad_norms.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    names = list(lines[0]["norms"])
    assert any(n.startswith("generator/") for n in names) and any(n.startswith("discriminator/") for n in names)
    assert all(v > 0 for v in lines[0]["norms"].values())
