#!/usr/bin/env python
"""Overhead benchmark: spec-built modules vs their hand-written references, in one process, interleaved.

For each model (torchvision resnet18 and resnet50; a Transformer built on torch.nn.Transformer, and the same network
written out of attention, norm and feed-forward layers; a GPT, against a nanoGPT-style module), device (CPU, and
CUDA when present), thread count, batch size and mode (forward in eval/no_grad; forward+backward in train), the
reference's weights are loaded into the spec-built module and their outputs compared first (a benchmark of two
different computations is no benchmark); then the two are timed in alternating rounds. Each round gives a
throughput ratio spec/reference from process CPU time and one from wall time; the table shows the median and the
spread (min..max) of each. On a shared machine, wall time measures the neighbours; CPU time is the evidence. The
bar: ratio >= 0.98.

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
import torch.nn.functional as F

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


class RefGPT(nn.Module):
    """The hand-written reference for specs/gpt.yaml: nanoGPT's layout, attention through F.scaled_dot_product_attention
    with is_causal (the fused path a person would write), the output layer tied to the token embedding."""

    def __init__(self, vocab, context, d, layers, heads, dropout=0.1):
        super().__init__()
        self.heads = heads
        self.wte, self.wpe, self.drop = nn.Embedding(vocab, d), nn.Embedding(context, d), nn.Dropout(dropout)
        self.h = nn.ModuleList()
        for _ in range(layers):
            b = nn.Module()
            b.ln_1, b.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
            b.attn = nn.Module()
            b.attn.c_attn, b.attn.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            b.attn.resid_dropout = nn.Dropout(dropout)
            b.mlp = nn.Module()
            b.mlp.c_fc, b.mlp.c_proj, b.mlp.dropout = nn.Linear(d, 4 * d), nn.Linear(4 * d, d), nn.Dropout(dropout)
            self.h.append(b)
        self.ln_f = nn.LayerNorm(d)
        self.p = dropout

    def forward(self, idx):
        n, t = idx.shape
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(t, device=idx.device)))
        for b in self.h:
            q, k, v = b.attn.c_attn(b.ln_1(x)).chunk(3, dim=-1)
            q, k, v = (z.reshape(n, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0, is_causal=True)
            x = x + b.attn.resid_dropout(b.attn.c_proj(y.transpose(1, 2).reshape(n, t, -1)))
            x = x + b.mlp.dropout(b.mlp.c_proj(F.gelu(b.mlp.c_fc(b.ln_2(x)), approximate="tanh")))
        return F.linear(self.ln_f(x), self.wte.weight)


GPT_BENCH = dict(vocab=50257, context=1024, d=768, layers=4, heads=12)      # GPT-2 small's widths, 4 of 12 layers


def models(device):
    """(name, spec-built module with the reference's weights, reference, input kind)."""
    import torchvision
    for name in ("resnet18", "resnet50"):
        ref = getattr(torchvision.models, name)(weights=None)
        spec = build(ROOT / f"specs/{name}.yaml")
        spec.load_state_dict(ref.state_dict(), strict=True)
        yield name, spec, ref, "image"
    ref = RefTransformer()
    spec = build(ROOT / "specs/transformer.yaml")
    mapped = {}
    for k, v in ref.state_dict().items():
        k2 = k.replace("core.", "", 1).replace("src_tok.", "src_embed.tok.").replace("tgt_tok.", "tgt_embed.tok.")
        mapped[k2] = v
    spec.load_state_dict(mapped, strict=True)
    yield "transformer", spec, ref, "tokens"
    spec = build(ROOT / "specs/transformer_explicit.yaml")
    spec.load_state_dict(mapped, strict=True)
    yield "transformer_explicit", spec, ref, "tokens"
    ref = RefGPT(**GPT_BENCH)
    spec = build(ROOT / "specs/gpt.yaml", **GPT_BENCH)
    spec.load_state_dict(ref.state_dict(), strict=True)
    yield "gpt", spec, ref, "text"


def same_outputs(spec_m, ref_m, args) -> float:
    """The largest difference between the two modules' outputs (eval mode): they must compute the same thing."""
    spec_m.eval()
    ref_m.eval()
    with torch.no_grad():
        return float((spec_m(*args) - ref_m(*args)).abs().max())


def inputs(kind, batch, device, size):
    g = torch.Generator().manual_seed(0)
    if kind == "image":
        return (torch.randn(batch, 3, size, size, generator=g).to(device),)
    if kind == "text":
        return (torch.randint(0, 50257, (batch, 64), generator=g).to(device),)
    src = torch.randint(0, 10000, (batch, 32), generator=g).to(device)
    tgt = torch.randint(0, 10000, (batch, 32), generator=g).to(device)
    return (src, tgt)


def timed(fn, reps, device):
    """(process CPU seconds, wall seconds) per call."""
    if device == "cuda":
        torch.cuda.synchronize()
    c, t = time.process_time(), time.perf_counter()
    for _ in range(reps):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.process_time() - c) / reps, (time.perf_counter() - t) / reps


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
    ap.add_argument("--threads", type=int, action="append", help="CPU threads (default: 1 and all)")
    ap.add_argument("--size", type=int, default=None, help="image size (default 224 on CUDA, 112 on CPU)")
    ap.add_argument("--rounds", type=int, default=11, help="interleaved rounds per cell")
    ap.add_argument("--reps", type=int, default=3, help="calls per timing")
    ap.add_argument("--models", default="resnet18,resnet50,transformer,transformer_explicit,gpt",
                    help="which models")
    ap.add_argument("--out", type=Path, help="also write the table here")
    a = ap.parse_args(argv)
    devices = a.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    batches = a.batch or [1, 8]
    all_threads = torch.get_num_threads()
    threads = a.threads or sorted({1, all_threads})
    machine = (torch.cuda.get_device_name(0) if "cuda" in devices and torch.cuda.is_available() else "") or \
        f"{platform.processor() or platform.machine()}, {all_threads} CPU threads"
    lines = [f"machine: {machine}; torch {torch.__version__}; python {platform.python_version()}", "",
             "| model | device | threads | batch | mode | ref ms (cpu) | spec ms (cpu) | ratio by CPU time (median, "
             "spread) | ratio by wall time (median, spread) |",
             "|---|---|---:|---:|---|---:|---:|---|---|"]
    print("\n".join(lines), flush=True)
    wanted = set(a.models.split(","))
    for device in devices:
        size = a.size or (224 if device == "cuda" else 112)
        for name, spec_m, ref_m, kind in models(device):
            if name not in wanted:
                continue
            spec_m.to(device)
            ref_m.to(device)
            diff = same_outputs(spec_m, ref_m, inputs(kind, 2, device, size))
            assert diff <= 1e-3, f"{name}: the two modules compute different things (max difference {diff})"
            for nthreads in (threads if device == "cpu" else [all_threads]):
                torch.set_num_threads(nthreads)
                for batch in batches:
                    args = inputs(kind, batch, device, size)
                    for mode in ("fwd", "fwd+bwd"):
                        for m in (spec_m, ref_m):
                            m.train(mode != "fwd")
                            if mode != "fwd":
                                m.zero_grad(set_to_none=True)
                        fs, fr = step_fn(spec_m, args, mode), step_fn(ref_m, args, mode)
                        fs(); fr(); fs(); fr()     # warm-up
                        cpu_r, wall_r, cs, cr = [], [], [], []
                        for r in range(a.rounds):
                            order = (fs, fr) if r % 2 == 0 else (fr, fs)
                            res = {f: timed(f, a.reps, device) for f in order}
                            cs.append(res[fs][0]); cr.append(res[fr][0])
                            cpu_r.append(res[fr][0] / res[fs][0])      # throughput ratio = time_ref / time_spec
                            wall_r.append(res[fr][1] / res[fs][1])
                        row = (f"| {name} | {device} | {nthreads} | {batch} | {mode} | "
                               f"{statistics.median(cr)*1e3:.2f} | {statistics.median(cs)*1e3:.2f} | "
                               f"{statistics.median(cpu_r):.3f} ({min(cpu_r):.3f}..{max(cpu_r):.3f}) | "
                               f"{statistics.median(wall_r):.3f} ({min(wall_r):.3f}..{max(wall_r):.3f}) |")
                        lines.append(row)
                        print(row, flush=True)
            torch.set_num_threads(all_threads)
            spec_m.to("cpu"); ref_m.to("cpu")
    if a.out:
        a.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
