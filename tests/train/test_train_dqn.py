"""Deep Q-learning solves CartPole-v1: greedy play averages >= 195 over 100 evaluation episodes."""
from __future__ import annotations

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
