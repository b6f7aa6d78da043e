"""docs/training.md's config block is a valid train: section; every spec with a train: section checks."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import netspec
from netspec.train.config import TrainFile

ROOT = Path(__file__).resolve().parents[2]
TRAINED = sorted(p for p in list((ROOT / "specs").glob("*.yaml")) + list((ROOT / "examples").glob("*.yaml"))
                 if re.search(r"^train:", p.read_text(), re.M))


def test_documented_train_section_validates():
    text = (ROOT / "docs" / "training.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("train:"))
    cfg = TrainFile.model_validate(yaml.safe_load(block)).train
    assert cfg.method == "classify" and cfg.optimizer.name == "adamw" and cfg.schedule.warmup == 50


def test_the_trained_specs_are_the_expected_ones():
    assert {p.stem for p in TRAINED} == {"mlp", "lenet5", "unet", "autoencoder", "dcgan", "vae", "char_lm",
                                         "dqn_cartpole", "shapes_detector"}


def test_documented_detection_section_validates():
    text = (ROOT / "docs" / "training.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "method: detection" in b)
    cfg = TrainFile.model_validate(yaml.safe_load(block)).train
    assert cfg.method == "detection" and cfg.data.source == "shapes" and cfg.loss is None


@pytest.mark.parametrize("path", TRAINED, ids=[p.stem for p in TRAINED])
def test_spec_with_train_section_checks(path):
    res = netspec.check(path)
    assert res.ok, "\n".join(e.format() for e in res.errors)
    assert netspec.load(path).model.train is not None
