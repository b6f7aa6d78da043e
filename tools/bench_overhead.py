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

Variants (``--variants``), each applied the same way to both modules and compared like with like:
``eager``; ``compile`` (``module.compile()``, what ``netspec.build(compile=True)`` does); ``channels_last`` (weights
and images in channels-last memory format, as ``build(channels_last=True)``; image models only); ``bf16``
(``torch.autocast`` to bfloat16; on the CPU only where it supports bf16, said in the row otherwise); ``cuda_graph``
(forward only, CUDA only: the forward pass captured and replayed, as ``build(cuda_graph=True)``).

    .venv/bin/python tools/bench_overhead.py                 # CPU (and CUDA if available), default sizes
    .venv/bin/python tools/bench_overhead.py --device cuda --rounds 20 --out bench.md
    .venv/bin/python tools/bench_overhead.py --variants eager,channels_last,bf16,compile --models resnet18
    .venv/bin/python tools/bench_overhead.py --dry-run       # the CUDA path's code on the CPU at toy sizes
"""
from __future__ import annotations

import argparse
import copy
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
from netspec.codegen.runtime import CUDAGraphed, apply_options  # noqa: E402

VARIANTS = ("eager", "compile", "channels_last", "bf16", "cuda_graph")


def cpu_bf16_supported() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def variant_problem(variant: str, device: str, kind: str, mode: str) -> str | None:
    """Why a variant cannot run here (a note for the table), or None."""
    if variant == "channels_last" and kind != "image":
        return "channels-last applies to images only"
    if variant == "bf16" and device == "cpu" and not cpu_bf16_supported():
        return "this CPU has no bf16 support (torch.ops.mkldnn._is_mkldnn_bf16_supported() is False)"
    if variant == "cuda_graph" and device != "cuda":
        return "CUDA graphs need a CUDA device"
    if variant == "cuda_graph" and mode != "fwd":
        return "CUDA-graph capture is for inference (forward) here"
    return None


def prepare(model, variant: str, args: tuple, mode: str):
    """(callable, inputs) for one variant: the same treatment for the spec-built module and the reference."""
    if variant == "channels_last":
        return apply_options(copy.deepcopy(model), channels_last=True), \
            tuple(a.to(memory_format=torch.channels_last) if a.dim() == 4 else a for a in args)
    if variant == "compile":
        return apply_options(copy.deepcopy(model), compile=True), args
    if variant == "cuda_graph":
        return CUDAGraphed(model.eval(), args), args
    return model, args


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


def models(device, wanted=("resnet18", "resnet50", "transformer", "transformer_explicit", "gpt")):
    """(name, spec-built module with the reference's weights, reference, input kind)."""
    import torchvision
    for name in [n for n in ("resnet18", "resnet50") if n in wanted]:
        ref = getattr(torchvision.models, name)(weights=None)
        spec = build(ROOT / f"specs/{name}.yaml")
        spec.load_state_dict(ref.state_dict(), strict=True)
        yield name, spec, ref, "image"
    if {"transformer", "transformer_explicit"} & set(wanted):
        ref = RefTransformer()
        mapped = {}
        for k, v in ref.state_dict().items():
            k2 = k.replace("core.", "", 1).replace("src_tok.", "src_embed.tok.").replace("tgt_tok.", "tgt_embed.tok.")
            mapped[k2] = v
        for name in [n for n in ("transformer", "transformer_explicit") if n in wanted]:
            spec = build(ROOT / f"specs/{name}.yaml")
            spec.load_state_dict(mapped, strict=True)
            yield name, spec, ref, "tokens"
    if "gpt" in wanted:
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


def step_fn(model, args, mode, variant="eager", device="cpu"):
    bf16 = variant == "bf16"

    def run():
        if bf16:
            with torch.autocast(device_type=device, dtype=torch.bfloat16):
                return model(*args)
        return model(*args)
    if mode == "fwd":
        def f():
            with torch.no_grad():
                run()
    else:
        def f():
            out = run()
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
    ap.add_argument("--variants", default="eager", help="comma-separated: " + ", ".join(VARIANTS))
    ap.add_argument("--dry-run", action="store_true", help="test the script: CPU, toy sizes, one round, every variant "
                                                          "that runs on a CPU (the CUDA path's code included)")
    ap.add_argument("--out", type=Path, help="also write the table here")
    a = ap.parse_args(argv)
    variants = [v for v in a.variants.split(",") if v]
    if any(v not in VARIANTS for v in variants):
        ap.error(f"unknown variant in {a.variants!r}; variants: {', '.join(VARIANTS)}")
    if a.dry_run:
        a.device, a.batch, a.size, a.rounds, a.reps = ["cpu"], [2], 64, 1, 1
        a.threads = a.threads or [1]
        a.models = "resnet18,transformer" if a.models == "resnet18,resnet50,transformer,transformer_explicit,gpt" \
            else a.models
        variants = ["eager", "channels_last", "bf16", "cuda_graph"] if a.variants == "eager" else variants
    devices = a.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    if "cuda" in devices and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device (use --dry-run to test the script on a CPU)")
    batches = a.batch or [1, 8]
    all_threads = torch.get_num_threads()
    threads = a.threads or sorted({1, all_threads})
    machine = (torch.cuda.get_device_name(0) if "cuda" in devices and torch.cuda.is_available() else "") or \
        f"{platform.processor() or platform.machine()}, {all_threads} CPU threads"
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    lines = [f"machine: {machine}; torch {torch.__version__}; python {platform.python_version()}; "
             f"load average at start {load}", "",
             "| model | device | variant | threads | batch | mode | ref ms (cpu) | spec ms (cpu) | ratio by CPU time "
             "(median, spread) | ratio by wall time (median, spread) |",
             "|---|---|---|---:|---:|---|---:|---:|---|---|"]
    print("\n".join(lines), flush=True)
    wanted = set(a.models.split(","))
    for device in devices:
        size = a.size or (224 if device == "cuda" else 112)
        for name, spec_m, ref_m, kind in models(device, wanted):
            if name not in wanted:
                continue
            spec_m.to(device)
            ref_m.to(device)
            diff = same_outputs(spec_m, ref_m, inputs(kind, 2, device, size))
            assert diff <= 1e-3, f"{name}: the two modules compute different things (max difference {diff})"
            for nthreads in (threads if device == "cpu" else [all_threads]):
                torch.set_num_threads(nthreads)
                for batch in batches:
                    base_args = inputs(kind, batch, device, size)
                    for variant in variants:
                        for mode in ("fwd", "fwd+bwd"):
                            lines.append(cell(name, device, variant, nthreads, batch, mode, spec_m, ref_m, base_args,
                                              kind, a))
                            print(lines[-1], flush=True)
                            if a.out:        # row by row, so that a run stopped by a time limit keeps its rows
                                a.out.write_text("\n".join(lines) + "\n")
            torch.set_num_threads(all_threads)
            spec_m.to("cpu"); ref_m.to("cpu")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    lines += ["", f"load average at end {load}"]
    print(lines[-1])
    if a.out:
        a.out.write_text("\n".join(lines) + "\n")
    return 0


def cell(name, device, variant, nthreads, batch, mode, spec_m, ref_m, base_args, kind, a) -> str:
    """One row: both modules under one variant, outputs compared, then timed in alternating rounds."""
    head = f"| {name} | {device} | {variant} | {nthreads} | {batch} | {mode} | "
    why = variant_problem(variant, device, kind, mode)
    if why:
        return head + f"- | - | not run: {why} | |"
    for m in (spec_m, ref_m):
        m.train(mode != "fwd")
        if mode != "fwd":
            m.zero_grad(set_to_none=True)
    sm, args = prepare(spec_m, variant, base_args, mode)
    rm, _ = prepare(ref_m, variant, base_args, mode)
    if mode == "fwd" and variant != "bf16":
        with torch.no_grad():
            diff = float((sm(*args) - rm(*args)).abs().max())
        assert diff <= 1e-3, f"{name} {variant}: the two modules compute different things (max difference {diff})"
    fs, fr = step_fn(sm, args, mode, variant, device), step_fn(rm, args, mode, variant, device)
    fs(); fr(); fs(); fr()     # warm-up (and compilation)
    cpu_r, wall_r, cs, cr = [], [], [], []
    for r in range(a.rounds):
        order = (fs, fr) if r % 2 == 0 else (fr, fs)
        res = {f: timed(f, a.reps, device) for f in order}
        cs.append(res[fs][0]); cr.append(res[fr][0])
        cpu_r.append(res[fr][0] / res[fs][0])      # throughput ratio = time_ref / time_spec
        wall_r.append(res[fr][1] / res[fs][1])
    return (head + f"{statistics.median(cr)*1e3:.2f} | {statistics.median(cs)*1e3:.2f} | "
            f"{statistics.median(cpu_r):.3f} ({min(cpu_r):.3f}..{max(cpu_r):.3f}) | "
            f"{statistics.median(wall_r):.3f} ({min(wall_r):.3f}..{max(wall_r):.3f}) |")


if __name__ == "__main__":
    sys.exit(main())
