"""torchrun with 2 CPU processes (gloo) trains to the same weights as 1 process with the same global batch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
train:
  method: classify
  data: {source: digits}
  optimizer: {name: sgd, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.0001}
  schedule: {name: step, step_size: 20, gamma: 0.5, warmup: 5}
  steps: 60
  batch_size: 64
  threads: 1
  metrics: [accuracy]
"""


def _run(cmd, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_two_process_ddp_equals_one_process(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(CONFIG)
    spec = ROOT / "specs" / "mlp.yaml"
    _run([sys.executable, "-m", "netspec", "train", str(spec), "--config", str(cfg), "--out", "one", "-q"], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "netspec",
          "train", str(spec), "--config", str(cfg), "--out", "two", "-q"], tmp_path)
    one = load_file(str(tmp_path / "one" / "mlp.safetensors"))
    two = load_file(str(tmp_path / "two" / "mlp.safetensors"))
    assert one.keys() == two.keys()
    for k in one:
        assert torch.allclose(one[k], two[k], rtol=1e-4, atol=1e-5), (k, (one[k] - two[k]).abs().max())
    # training did learn (chance is 0.1; two runs that did nothing would match too), and both report the same test accuracy
    import json
    tests = [json.loads((tmp_path / d / "metrics.jsonl").read_text().splitlines()[-1]) for d in ("one", "two")]
    assert tests[0]["split"] == tests[1]["split"] == "test"
    assert tests[0]["accuracy"] > 0.5 and abs(tests[0]["accuracy"] - tests[1]["accuracy"]) < 0.01
    # only rank 0 wrote: one metrics file, one set of checkpoints
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
