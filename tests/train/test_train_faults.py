"""Nothing lost: a SIGKILLed run resumes to bitwise the same weights; a NaN stops with the last good checkpoint;
a wrong train: section is a located error."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import netspec
from netspec.errors import NetspecError

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "specs" / "mlp.yaml"

# mlp on digits with a checkpoint every 25 steps, dropout-free but with shuffling, warm-up and cosine decay
CONFIG = """\
train:
  method: classify
  data: {source: digits}
  optimizer: {name: adamw, lr: 0.002, weight_decay: 0.01}
  schedule: {name: cosine, warmup: 30}
  epochs: %d
  batch_size: 32
  threads: 1
  checkpoint_every: 25
  metrics: [accuracy]
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_sigkill_and_resume_ends_bitwise_equal(tmp_path):
    epochs = 40                                    # 1,560 steps: long enough to be killed in the middle
    cfg = tmp_path / "train.yaml"
    cfg.write_text(CONFIG % epochs)
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "netspec", "train", str(MLP), "--config", str(cfg), "--out", str(killed), "-q"]
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    latest = killed / "checkpoints" / "latest"
    while time.time() < deadline and p.poll() is None:
        if latest.exists() and latest.read_text().strip() >= "step-00000100":
            break
        time.sleep(0.01)
    assert p.poll() is None, "the run ended before it could be killed: " + p.stderr.read().decode()
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (killed / "mlp.safetensors").exists()       # really killed mid-run
    step = int(latest.read_text().strip().split("-")[1])
    assert 100 <= step < epochs * 39

    r = subprocess.run(cmd + ["--resume"], env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    resumed = load_file(str(killed / "mlp.safetensors"))

    whole = netspec.train(MLP, config=cfg, out=str(tmp_path / "whole"))
    straight = whole.module.state_dict()
    assert resumed.keys() == straight.keys()
    for k in straight:
        assert torch.equal(resumed[k], straight[k]), k
    # the metrics log has each step once, as if never interrupted
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in
             (killed / "metrics.jsonl").read_text().splitlines() if '"split": "train"' in line]
    assert steps == sorted(set(steps)) and steps[-1] == epochs * 39


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("train:\n  method: classify\n  data: {source: digits}\n  optimizer: {name: sgd, lr: 1.0e+12}\n"
                   "  checkpoint_every: 1\n  threads: 1\n")
    with pytest.raises(NetspecError) as e:
        netspec.train(MLP, config=cfg, out=str(tmp_path / "run"))
    msg = e.value.format()
    assert "the loss became" in msg and "training stopped" in msg and "--lr" in msg
    assert str(cfg) in msg.split(":")[0]                       # located at the optimizer in the config file
    bad_step = int(msg.split(" at step ")[1].split()[0])
    folder = tmp_path / "run" / "checkpoints"
    last = (folder / "latest").read_text().strip()
    assert last == f"step-{bad_step - 1:08d}" and f"step-{bad_step - 1:08d}" in msg
    for t in load_file(str(folder / last / "mlp.safetensors")).values():
        assert torch.isfinite(t).all()
    assert not (tmp_path / "run" / "mlp.safetensors").exists()
    # and from the command line: exit 1, the message, no traceback
    r = subprocess.run([sys.executable, "-m", "netspec", "train", str(MLP), "--config", str(cfg), "--out",
                        str(tmp_path / "run2"), "-q"], env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "the loss became" in r.stderr and "Traceback" not in r.stderr


BAD = """\
netspec: 1
inputs:
  x: [N, 64]
layers:
  - {op: linear, out: 10}
train:
  method: classify
  data: {source: digits}
  optimizer: {name: adamm, lr: 0.1}
  epochz: 3
  loss: {name: cross_entropy, label_smothing: 0.1}
  schedule: {name: cosine, warmup: -1}
"""


def test_bad_train_section_gives_located_errors(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD)
    r = subprocess.run([sys.executable, "-m", "netspec", "train", str(spec)], env=_env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    err = r.stderr
    assert f"{spec}:9:14: error: 'train.optimizer': unknown optimizer 'adamm' (did you mean 'adam'" in err
    assert f"{spec}:10:3: error: unknown field 'epochz' in 'train'" in err and "did you mean 'epochs'?" in err
    assert f"{spec}:11:31: error: unknown field 'label_smothing'" in err and "'label_smoothing'" in err
    assert f"{spec}:12:" in err and "warmup" in err
    # `check` validates the same section
    r2 = subprocess.run([sys.executable, "-m", "netspec", "check", str(spec)], env=_env(), capture_output=True,
                        text=True, timeout=60)
    assert r2.returncode == 1 and f"{spec}:10:3: error: unknown field 'epochz'" in r2.stderr


def test_spec_without_train_section_and_bad_overrides(tmp_path):
    with pytest.raises(NetspecError, match="has no 'train:' section"):
        netspec.train(ROOT / "specs" / "resnet18.yaml")
    with pytest.raises(NetspecError, match="command-line override: epochs"):
        netspec.train(MLP, epochs=0, out=str(tmp_path))
    with pytest.raises(NetspecError, match="nothing to resume"):
        netspec.train(MLP, resume=True, out=str(tmp_path / "empty"))


def test_data_that_does_not_fit_the_inputs_is_refused_before_training(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(MLP.read_text().replace("data: {source: digits}", "data: {source: digits, image_size: 8}"))
    with pytest.raises(NetspecError, match=r"input 'x' is declared \[N, 64\] but the data's 'x' examples are "
                                           r"\[1, 8, 8\]") as e:
        netspec.train(spec, out=str(tmp_path / "o"))
    assert e.value.loc.line == MLP.read_text().splitlines().index(
        next(line for line in MLP.read_text().splitlines() if "source: digits" in line)) + 1


def test_resume_with_other_settings_says_what_differs(tmp_path):
    netspec.train(MLP, out=str(tmp_path), steps=5, threads=1)
    with pytest.raises(NetspecError, match=r"other settings: batch_size: 32 -> 64") as e:
        netspec.train(MLP, out=str(tmp_path), steps=10, batch_size=64, resume=True)
    assert "only epochs, steps" in e.value.format()
    res = netspec.train(MLP, out=str(tmp_path), steps=10, threads=1, resume=True)    # longer is fine
    assert [r["step"] for r in res.history if r["split"] == "train"] == [10]


def test_config_file_unknown_top_level_key_is_located(tmp_path):
    """A --config file holds a train: section (or is a whole spec file); a setting written outside train: is an
    error at its key, never ignored."""
    cfg = tmp_path / "train.yaml"
    cfg.write_text(CONFIG % 1 + "chekpoint_every: 5\n")
    with pytest.raises(NetspecError) as e:
        netspec.train(MLP, config=cfg, quiet=True, out=str(tmp_path / "run"))
    text = str(e.value.located() if hasattr(e.value, "located") else e.value)
    assert "chekpoint_every" in text
    r = subprocess.run([sys.executable, "-m", "netspec", "train", str(MLP), "--config", str(cfg), "-q"],
                       capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{cfg}:11:1: error: unknown top-level key 'chekpoint_every'" in r.stdout + r.stderr
    # a whole spec file is a valid config: its other sections are the spec's, not unknown keys
    ok = subprocess.run([sys.executable, "-m", "netspec", "train", str(MLP), "--config", str(MLP), "--steps", "1",
                         "-q", "-o", str(tmp_path / "ok")], capture_output=True, text=True, env=_env(), cwd=tmp_path,
                        timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
