#!/usr/bin/env python
"""Overhead benchmark: spec-built modules vs their hand-written references, in one process, interleaved.

For each model (torchvision resnet18 and resnet50; a Transformer built on torch.nn.Transformer), device (CPU, and
CUDA when present), batch size and mode (forward in eval/no_grad; forward+backward in train), the two modules are
timed in alternating rounds; the throughput ratio spec/reference of each round is collected and the median and spread
(min..max) are printed as a Markdown table. The bar: ratio >= 0.98.

    .venv/bin/python tools/bench_overhead.py                 # CPU (and CUDA if available), default sizes
    .venv/bin/python tools/bench_overhead.py --device cuda --rounds 20 --out bench.md
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netspec.codegen.build import build  # noqa: E402


class RefTransformer(nn.Module):
    """The hand-written reference for specs/transformer.yaml (the PyTorch translation tutorial's model)."""

    def __init__(self, src_vocab=10000, tgt_vocab=10000, d_model=512, heads=8, enc=6, dec=6, ffn=2048, dropout=0.1):
        super().__init__()
        self.d_model = d_model
        self.src_tok = nn.Embedding(src_vocab, d_model)
        self.tgt_tok = nn.Embedding(tgt_vocab, d_model)
        pos = torch.arange(5000).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(5000, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe.unsqueeze(0), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.core = nn.Transformer(d_model, heads, enc, dec, ffn, dropout, batch_first=True)
        self.generator = nn.Linear(d_model, tgt_vocab)

    def forward(self, src, tgt):
        s = self.drop(self.src_tok(src) * math.sqrt(self.d_model) + self.pe[:, : src.shape[1]])
        t = self.drop(self.tgt_tok(tgt) * math.sqrt(self.d_model) + self.pe[:, : tgt.shape[1]])
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device, dtype=s.dtype)
        return self.generator(self.core(s, t, tgt_mask=mask, tgt_is_causal=True))


def models(device):
    import torchvision
    yield "resnet18", build(ROOT / "specs/resnet18.yaml"), torchvision.models.resnet18(weights=None), "image"
    if (ROOT / "specs/resnet50.yaml").exists():
        yield "resnet50", build(ROOT / "specs/resnet50.yaml"), torchvision.models.resnet50(weights=None), "image"
    yield "transformer", build(ROOT / "specs/transformer.yaml"), RefTransformer(), "tokens"


def inputs(kind, batch, device, size):
    g = torch.Generator().manual_seed(0)
    if kind == "image":
        return (torch.randn(batch, 3, size, size, generator=g).to(device),)
    src = torch.randint(0, 10000, (batch, 32), generator=g).to(device)
    tgt = torch.randint(0, 10000, (batch, 32), generator=g).to(device)
    return (src, tgt)


def timed(fn, reps, device):
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps


def step_fn(model, args, mode):
    if mode == "fwd":
        def f():
            with torch.no_grad():
                model(*args)
    else:
        def f():
            out = model(*args)
            out.float().mean().backward()
    return f


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", action="append", help="cpu and/or cuda (default: cpu, plus cuda if available)")
    ap.add_argument("--batch", type=int, action="append", help="batch sizes (default: 1 and 8)")
    ap.add_argument("--size", type=int, default=None, help="image size (default 224 on CUDA, 112 on CPU)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds per cell")
    ap.add_argument("--reps", type=int, default=3, help="calls per timing")
    ap.add_argument("--out", type=Path, help="also write the table here")
    a = ap.parse_args(argv)
    devices = a.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    batches = a.batch or [1, 8]
    machine = (torch.cuda.get_device_name(0) if "cuda" in devices and torch.cuda.is_available() else "") or \
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    lines = [f"machine: {machine}; torch {torch.__version__}; python {platform.python_version()}", "",
             "| model | device | batch | mode | ref ms | spec ms | ratio spec/ref (median) | spread |",
             "|---|---|---:|---|---:|---:|---:|---|"]
    print("\n".join(lines), flush=True)
    for device in devices:
        size = a.size or (224 if device == "cuda" else 112)
        for name, spec_m, ref_m, kind in models(device):
            spec_m.to(device)
            ref_m.to(device)
            for batch in batches:
                args = inputs(kind, batch, device, size)
                for mode in ("fwd", "fwd+bwd"):
                    for m in (spec_m, ref_m):
                        m.train(mode != "fwd")
                        if mode != "fwd":
                            m.zero_grad(set_to_none=True)
                    fs, fr = step_fn(spec_m, args, mode), step_fn(ref_m, args, mode)
                    fs(); fr(); fs(); fr()     # warm-up
                    ratios, ts, tr = [], [], []
                    for r in range(a.rounds):
                        order = (fs, fr) if r % 2 == 0 else (fr, fs)
                        res = {}
                        for f in order:
                            res[f] = timed(f, a.reps, device)
                        ts.append(res[fs]); tr.append(res[fr])
                        ratios.append(res[fr] / res[fs])     # throughput ratio = time_ref / time_spec
                    row = (f"| {name} | {device} | {batch} | {mode} | {statistics.median(tr)*1e3:.2f} | "
                           f"{statistics.median(ts)*1e3:.2f} | {statistics.median(ratios):.3f} | "
                           f"{min(ratios):.3f}..{max(ratios):.3f} |")
                    lines.append(row)
                    print(row, flush=True)
            spec_m.to("cpu"); ref_m.to("cpu")
    if a.out:
        a.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
