"""Deep Q-learning solves CartPole-v1: greedy play averages >= 195 over 100 evaluation episodes."""
from __future__ import annotations

import os
from pathlib import Path

import netspec

ROOT = Path(__file__).resolve().parents[2]


def test_dqn_cartpole_averages_at_least_195_over_100_episodes(tmp_path):
    res = netspec.train(ROOT / "examples" / "dqn_cartpole.yaml", out=str(tmp_path))
    assert res.metrics["return"] >= 195, res.metrics
    test = [r for r in res.history if r["split"] == "test"]
    assert len(test) == 1 and test[0]["return"] == res.metrics["return"]
    train = [r for r in res.history if r["split"] == "train" and "episode_return" in r]
    assert train and {"epsilon", "loss"} <= set(train[-1])
    assert (tmp_path / "dqn_cartpole.safetensors").is_file()


DQN_RESUME = """\
train:
  method: dqn
  data: {source: cartpole}
  optimizer: {name: adam, lr: 0.001}
  loss: {name: huber}
  steps: 1500
  batch_size: 32
  threads: 1
  log_every: 100
  checkpoint_every: 700
  keep: 5
  dqn: {buffer: 5000, warmup_steps: 200, target_update: 100, eps_decay_steps: 1000, eval_episodes: 5}
"""


def test_dqn_resume_is_bitwise(tmp_path):
    """A DQN run resumed from a middle checkpoint ends with bitwise the weights of the uninterrupted run: the
    checkpoint holds the replay buffer, the target network, the counters and the training episode itself (CartPole's
    state and random generator, the time limit's count, the last observation), and the RNG states."""
    import shutil
    import subprocess
    import sys
    import torch
    from safetensors.torch import load_file
    cfg = tmp_path / "train.yaml"
    cfg.write_text(DQN_RESUME)
    spec = ROOT / "examples" / "dqn_cartpole.yaml"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    base = [sys.executable, "-m", "netspec", "train", str(spec), "--config", str(cfg), "-q"]
    r = subprocess.run(base + ["--out", "whole"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(tmp_path / "whole" / "checkpoints" / "step-00000700", part / "checkpoints" / "step-00000700")
    (part / "checkpoints" / "latest").write_text("step-00000700\n")
    r = subprocess.run(base + ["--out", "part", "--resume"], env=env, capture_output=True, text=True, cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    a, b = load_file(str(tmp_path / "whole" / "dqn_cartpole.safetensors")), load_file(str(part / "dqn_cartpole.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the run learned something in between (a resumed run that skipped training would not match, but say it anyway)
    first = load_file(str(tmp_path / "whole" / "checkpoints" / "step-00000700" / "dqn_cartpole.safetensors"))
    assert any(not torch.equal(first[k], a[k]) for k in a)
