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


def _weights(path):
    return load_file(str(path))


def test_fsdp_two_processes_equal_one_and_resume_bitwise(tmp_path):
    """FSDP2 (fully_shard over gloo): 2 processes holding half of every parameter end where 1 process ends; the
    checkpoints are whole state dicts; a run resumed from a middle checkpoint ends bitwise equal to the whole run;
    a checkpoint made under fsdp refuses to resume under ddp (its optimizer state is keyed by name)."""
    import shutil
    cfg = tmp_path / "train.yaml"
    cfg.write_text(CONFIG + "  checkpoint_every: 20\n  keep: 5\n")
    spec = ROOT / "specs" / "mlp.yaml"
    base = [sys.executable, "-m", "netspec", "train", str(spec), "--config", str(cfg), "-q"]
    two = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] + base[1:]
    _run(base + ["--out", "one"], tmp_path)
    _run(two + ["--out", "fsdp", "--strategy", "fsdp"], tmp_path)
    one, sharded = _weights(tmp_path / "one" / "mlp.safetensors"), _weights(tmp_path / "fsdp" / "mlp.safetensors")
    assert one.keys() == sharded.keys()
    for k in one:
        assert one[k].shape == sharded[k].shape    # whole tensors, not one rank's shard
        assert torch.allclose(one[k], sharded[k], rtol=1e-4, atol=1e-5), (k, (one[k] - sharded[k]).abs().max())
    # per-layer gradient norms of the whole (gathered) gradients, as one process measures them
    import json
    norms = [[json.loads(x) for x in (tmp_path / d / "grad_norms.jsonl").read_text().splitlines()] for d in ("one", "fsdp")]
    assert [r["step"] for r in norms[0]] == [r["step"] for r in norms[1]] and norms[0]
    for a, b in zip(*norms):
        assert a["norms"].keys() == b["norms"].keys()
        assert all(abs(a["norms"][k] - b["norms"][k]) <= 1e-4 * max(1.0, a["norms"][k]) for k in a["norms"])
    ck = _weights(tmp_path / "fsdp" / "checkpoints" / "step-00000040" / "mlp.safetensors")
    assert {k: v.shape for k, v in ck.items()} == {k: v.shape for k, v in one.items()}

    # resume from step 40 in a copy of the run: the same final weights, bit for bit
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(tmp_path / "fsdp" / "checkpoints", resumed / "checkpoints")
    shutil.rmtree(resumed / "checkpoints" / "step-00000060")
    (resumed / "checkpoints" / "latest").write_text("step-00000040\n")
    _run(two + ["--out", "resumed", "--strategy", "fsdp", "--resume"], tmp_path)
    again = _weights(resumed / "mlp.safetensors")
    assert all(torch.equal(again[k], sharded[k]) for k in sharded)

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    r = subprocess.run(base + ["--out", "fsdp", "--resume"], env=env, capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 1 and 'strategy: "fsdp" -> "ddp"' in r.stdout + r.stderr, r.stdout + r.stderr


def test_fsdp_refused_for_dqn(tmp_path):
    from netspec.train.loop import resolve_config
    from netspec.errors import SpecError, ErrorList
    import netspec
    spec = netspec.load(ROOT / "examples" / "dqn_cartpole.yaml")
    try:
        resolve_config(spec, None, {"strategy": "fsdp"})
    except (SpecError, ErrorList) as e:
        assert "fsdp" in str(e)
    else:
        raise AssertionError("dqn with strategy fsdp was accepted")
