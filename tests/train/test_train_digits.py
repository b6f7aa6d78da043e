"""Training on scikit-learn's digits: the bundled specs reach their accuracy; evaluate and predict use the weights."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.errors import WeightsError

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "netspec", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp")
    return netspec.train(SPECS / "mlp.yaml", out=str(out))


def test_mlp_digits_reaches_95_percent(mlp_run):
    assert mlp_run.metrics["accuracy"] >= 0.95, mlp_run.metrics
    out = mlp_run.out
    for f in ("mlp.safetensors", "metrics.jsonl", "curves.png", "config.json", "checkpoints/latest"):
        assert (out / f).is_file(), f
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert {"step", "epoch", "loss", "lr", "samples_per_s"} <= set(train[0])
    assert train[-1]["loss"] < train[0]["loss"] / 5
    assert [r["split"] for r in records].count("val") == 20           # one evaluation per epoch
    assert records[-1]["split"] == "test" and records[-1]["accuracy"] == mlp_run.metrics["accuracy"]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lenet5_digits_reaches_97_percent(tmp_path):
    res = netspec.train(SPECS / "lenet5.yaml", out=str(tmp_path))
    assert res.metrics["accuracy"] >= 0.97, res.metrics


def test_evaluate_reports_the_same_test_accuracy(mlp_run):
    r = _cli("evaluate", SPECS / "mlp.yaml", "--weights", mlp_run.out / "mlp.safetensors")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["split"] == "test" and got["accuracy"] == pytest.approx(mlp_run.metrics["accuracy"])


def test_predict_classifies_digits(mlp_run, tmp_path):
    from netspec.train.data import read_digits
    x, y = read_digits(None)
    np.savez(tmp_path / "in.npz", x=(x[:20] / 16).numpy())
    r = _cli("predict", SPECS / "mlp.yaml", "--weights", mlp_run.out / "mlp.safetensors", "-i", tmp_path / "in.npz",
             "-o", tmp_path / "out.npz")
    assert r.returncode == 0, r.stderr
    classes = [int(line.split("class ")[1].split()[0]) for line in r.stdout.splitlines() if ": class " in line]
    assert len(classes) == 20 and sum(c == int(t) for c, t in zip(classes, y[:20])) >= 18
    with np.load(tmp_path / "out.npz") as z:
        assert z["out"].shape == (20, 10)


def test_weights_record_their_spec_and_refuse_other_params(mlp_run):
    from netspec.train.checkpoint import read_meta
    meta = read_meta(mlp_run.out / "mlp.safetensors")
    assert meta["netspec.network"] == "mlp" and len(meta["netspec.spec_hash"]) == 16
    assert json.loads(meta["netspec.params"]) == {"hidden": [128, 64], "num_classes": 10}
    r = _cli("predict", SPECS / "mlp.yaml", "--weights", mlp_run.out / "mlp.safetensors", "-i", "x.npz",
             "-p", "hidden=[32]")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "hidden: file [128, 64], here [32]" in r.stderr and "-p hidden=[128,64]" in r.stderr
    with pytest.raises(WeightsError, match="network: file 'mlp', here 'lenet5'"):
        from netspec.train.checkpoint import check_weights_meta
        check_weights_meta(mlp_run.out / "mlp.safetensors", "lenet5", {"num_classes": 10})


def test_cli_train_prints_plain_progress_without_a_tty(tmp_path):
    r = _cli("train", SPECS / "mlp.yaml", "--epochs", "1", "--out", tmp_path / "run", "--lr", "0.003",
             "--batch-size", "64", "--seed", "3")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("epoch 1 step")]
    assert lines and all(k in lines[0] for k in ("loss", "lr", "samples/s", "eta"))
    assert "trained in" in r.stdout and "test: accuracy" in r.stdout
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["epochs"] == 1 and cfg["optimizer"]["lr"] == 0.003 and cfg["batch_size"] == 64 and cfg["seed"] == 3


def test_trained_weights_reload_in_a_fresh_process(mlp_run):
    """The supported way to ship a trained network: the spec plus its weight file (no pickled module): a new process
    rebuilds it with the parameters the file records and gets the same outputs."""
    import torch
    from netspec.train.data import read_digits
    x = (read_digits(None)[0][:8] / 16)
    with torch.no_grad():
        want = mlp_run.module.eval()(x)
    code = ("import sys, torch, netspec; from netspec.train.use import load_trained; "
            "m, g, w = load_trained(netspec.load(sys.argv[1]), sys.argv[2]); "
            "x = torch.load(sys.argv[3], weights_only=True); "
            "torch.save(m(x).detach(), sys.argv[4])")
    torch.save(x, mlp_run.out / "x.pt")
    r = subprocess.run([sys.executable, "-c", code, str(SPECS / "mlp.yaml"), str(mlp_run.out / "mlp.safetensors"),
                        str(mlp_run.out / "x.pt"), str(mlp_run.out / "y.pt")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert torch.equal(torch.load(mlp_run.out / "y.pt", weights_only=True), want)
