"""The parts: every loss, optimizer and schedule the config names builds from torch; Dice; parameter groups; the
train: section in the JSON Schema; checkpoints round-trip optimizer and scheduler state without pickles."""
from __future__ import annotations

import json
import subprocess
import sys
import typing

import pytest
import torch
from pydantic import TypeAdapter
from torch import nn

from netspec.train import config as C
from netspec.train.losses import DiceLoss, build_loss
from netspec.train.optim import build_optimizer, build_schedule, param_groups


def _members(union) -> list[str]:
    models = [a for a in typing.get_args(typing.get_args(union)[0])]
    return [typing.get_args(m.model_fields["name"].annotation)[0] for m in models]


LOSSES = _members(C.LossConfig)
OPTIMIZERS = _members(C.OptimizerConfig)
SCHEDULES = _members(C.ScheduleConfig)


def test_the_issue_lists_are_all_there():
    assert set(LOSSES) >= {"mse", "l1", "smooth_l1", "huber", "cross_entropy", "nll", "bce", "bce_with_logits",
                           "kl_div", "hinge", "dice"}
    assert set(OPTIMIZERS) == {"sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw"}
    assert set(SCHEDULES) >= {"step", "multistep", "cosine", "onecycle"}


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_builds_and_gives_a_finite_gradient(name):
    torch.manual_seed(0)
    logits = torch.randn(8, 4, requires_grad=True)
    labels = torch.randint(0, 4, (8,))
    args = {
        "mse": (logits, torch.randn(8, 4)), "l1": (logits, torch.randn(8, 4)),
        "smooth_l1": (logits, torch.randn(8, 4)), "huber": (logits, torch.randn(8, 4)),
        "cross_entropy": (logits, labels), "nll": (logits.log_softmax(1), labels),
        "bce": (logits.sigmoid(), torch.rand(8, 4)), "bce_with_logits": (logits, torch.rand(8, 4)),
        "kl_div": (logits.log_softmax(1), torch.rand(8, 4).softmax(1)), "hinge": (logits, labels),
        "dice": (logits, labels),
    }[name]
    loss = build_loss(TypeAdapter(C.LossConfig).validate_python({"name": name}))(*args)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_cross_entropy_options_reach_torch():
    cfg = TypeAdapter(C.LossConfig).validate_python({"name": "cross_entropy", "label_smoothing": 0.1,
                                                     "weight": [1, 2, 1, 1]})
    fn = build_loss(cfg)
    assert isinstance(fn, nn.CrossEntropyLoss) and fn.label_smoothing == 0.1 and fn.weight.tolist() == [1, 2, 1, 1]


def test_dice_is_zero_for_a_perfect_prediction_and_high_for_the_opposite():
    target = torch.randint(0, 2, (2, 8, 8))
    perfect = torch.nn.functional.one_hot(target, 2).movedim(-1, 1).float() * 50
    assert DiceLoss(smooth=0)(perfect, target) < 1e-6
    assert DiceLoss(smooth=0)(-perfect, target) > 0.99


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_builds_with_no_decay_on_biases_and_norms(name):
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    cfg = TypeAdapter(C.OptimizerConfig).validate_python({"name": name, "lr": 0.01, "weight_decay": 0.1})
    opt = build_optimizer(cfg, [net])
    decay, no = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[2].weight)}
    assert len(no["params"]) == 4                                   # two biases, LayerNorm weight and bias
    net(torch.randn(3, 4)).sum().backward()
    opt.step()


def test_shared_parameters_are_in_one_group_once():
    lin = nn.Linear(3, 3)
    groups = param_groups([nn.Sequential(lin, lin)], 0.1)
    assert sum(len(g["params"]) for g in groups) == 2


def _lrs(sched_cfg, steps, lr=1.0):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    s = build_schedule(TypeAdapter(C.ScheduleConfig).validate_python(sched_cfg), opt, steps)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out


def test_schedules():
    warm = _lrs({"name": "cosine", "warmup": 4}, 20)
    assert warm[0] == pytest.approx(0.2) and warm[3] == pytest.approx(0.8) and warm[4] == pytest.approx(1.0)
    assert warm[-1] < 0.05 and all(a >= b for a, b in zip(warm[4:], warm[5:]))
    assert _lrs({"name": "step", "step_size": 5, "gamma": 0.5}, 12)[::5] == [1.0, 0.5, 0.25]
    ms = _lrs({"name": "multistep", "milestones": [3, 7]}, 10)
    assert ms[2] == 1.0 and ms[3] == pytest.approx(0.1) and ms[7] == pytest.approx(0.01)
    one = _lrs({"name": "onecycle"}, 100)
    assert max(one) == pytest.approx(1.0) and one[0] < 0.05 and one[-1] < 1e-3
    assert _lrs({"name": "constant"}, 5) == [1.0] * 5


def test_checkpoint_state_round_trips_without_pickle(tmp_path):
    from netspec.train.checkpoint import load_checkpoint, save_checkpoint
    net = nn.Linear(3, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=0.1, betas=(0.8, 0.9))
    sched = build_schedule(C.CosineSchedule(name="cosine", warmup=2), opt, 10)
    for _ in range(3):
        net(torch.randn(4, 3)).sum().backward()
        opt.step()
        sched.step()
    state = {"optimizers": {"main": opt.state_dict()}, "schedules": {"main": sched.state_dict()}, "step": 3}
    path = save_checkpoint(tmp_path, 3, {"net": net}, state, {"net": {"format": "pt"}}, keep=2)
    back = load_checkpoint(path, {"net": nn.Linear(3, 2)})
    opt2 = torch.optim.AdamW(net.parameters(), lr=0.1)
    opt2.load_state_dict(back["optimizers"]["main"])
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(opt2.state_dict()["state"][0][k], v)
    assert back["schedules"]["main"]["last_epoch"] == sched.state_dict()["last_epoch"] and back["step"] == 3
    assert not list(tmp_path.glob("**/*.pt")) and not list(tmp_path.glob("**/*.pkl"))


def test_schema_describes_the_train_section():
    out = subprocess.run([sys.executable, "-m", "netspec", "schema"], capture_output=True, text=True, check=True)
    schema = json.loads(out.stdout)
    assert "train" in schema["properties"]
    text = json.dumps(schema)
    for word in ("TrainConfig", "label_smoothing", "nesterov", "onecycle", "cartpole", "checkpoint_every"):
        assert word in text


def test_accumulating_two_half_batches_equals_one_whole_batch(tmp_path):
    """accumulate: 2 with batch_size 16 sees the same 32 examples per step as batch_size 32: the same weights."""
    import netspec
    from pathlib import Path
    spec = Path(__file__).resolve().parents[2] / "specs" / "mlp.yaml"
    base = ("train:\n  method: classify\n  data: {source: digits}\n  optimizer: {name: sgd, lr: 0.1, momentum: 0.9}\n"
            "  steps: 20\n  threads: 1\n  grad_clip: 0.5\n")
    (tmp_path / "a.yaml").write_text(base + "  batch_size: 32\n")
    (tmp_path / "b.yaml").write_text(base + "  batch_size: 16\n  accumulate: 2\n")
    a = netspec.train(spec, config=tmp_path / "a.yaml", out=str(tmp_path / "a")).module.state_dict()
    b = netspec.train(spec, config=tmp_path / "b.yaml", out=str(tmp_path / "b")).module.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not torch.equal(a["out.weight"], netspec.build(spec).state_dict()["out.weight"])


def test_bf16_autocast_trains(tmp_path):
    """precision: bf16 (what --device auto uses on CUDA) also runs on the CPU's autocast."""
    import netspec
    from pathlib import Path
    spec = Path(__file__).resolve().parents[2] / "specs" / "mlp.yaml"
    res = netspec.train(spec, out=str(tmp_path), epochs=4, precision="bf16")
    assert res.metrics["accuracy"] > 0.9 and res.module.state_dict()["out.weight"].dtype == torch.float32


def test_curves_draw_every_logged_quantity(tmp_path):
    """No quantity is left out of curves.png, however many a method logs (a detector logs ten)."""
    from PIL import Image
    from netspec.train.metrics import plot_curves
    keys = [f"q{k}" for k in range(9)]
    lines = [json.dumps({"step": s, "split": "train", "loss": 1.0 / s, **{k: s * 0.1 for k in keys}})
             for s in range(1, 6)]
    lines.append(json.dumps({"step": 5, "split": "val", "accuracy": 0.5}))
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    drawn = plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png", "t")
    assert drawn[:2] == ["loss", "accuracy"] and sorted(drawn[2:]) == keys     # loss, evaluations, the rest
    w, h = Image.open(tmp_path / "curves.png").size
    assert h > w / 2                                                              # in rows, not one long strip
