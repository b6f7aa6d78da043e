"""A small GPT-style model on pydoc's topics (the text that ships with Python) learns the language."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import netspec
from netspec.train.data import read_corpus

ROOT = Path(__file__).resolve().parents[2]


def test_char_lm_validation_cross_entropy_40_percent_below_unigram_entropy(tmp_path):
    res = netspec.train(ROOT / "examples" / "char_lm.yaml", out=str(tmp_path))
    val = [r for r in res.history if r["split"] == "val"][-1]
    # the unigram entropy, computed here from the training stretch of the corpus (the first 70% of the windows)
    raw = np.frombuffer(read_corpus(None, None), dtype=np.uint8)
    n = (len(raw) - 1) // 64
    counts = np.bincount(raw[: (n - int(n * 0.1) - int(n * 0.2)) * 64], minlength=256).astype(float)
    p = counts[counts > 0] / counts.sum()
    unigram = float(-(p * np.log(p)).sum())
    assert val["step"] == 800
    assert val["loss"] <= 0.6 * unigram, (val, unigram)
    assert abs(val["below_unigram"] - (1 - val["loss"] / unigram)) < 1e-9
