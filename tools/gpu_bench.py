"""GPU training benchmarks for tools/gpu_check.sh: netspec-built networks against their references, one process.

Rows: resnet50 training (bf16 autocast, channels-last) built by netspec and by torchvision, eager and compiled, in
images/s with the netspec/torchvision ratio; a GPT-style language model (examples/char_lm.yaml at a larger size) in
tokens/s with model FLOPs utilisation; the U-Net (specs/unet.yaml) in images/s. ``--dry-run`` runs every row on the
CPU at toy sizes for two steps (compiled rows skipped) so that the script itself is tested without a GPU.
Prints a markdown table (and writes it to ``--output``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import netspec  # noqa: E402

# dense bf16 peak FLOP/s by card name (for MFU); override with --peak-tflops
PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "4090": 165e12}


def timed(step, warmup: int, iters: int, sync) -> float:
    """Seconds per call of ``step`` after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    return (time.perf_counter() - t) / iters


def train_step_fn(model, make_batch, loss_fn, device, bf16: bool):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x, y = make_batch()

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
            out = next(iter(out.values())) if isinstance(out, dict) else out
            loss = loss_fn(out, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true", help="CPU, toy sizes, two steps per row")
    ap.add_argument("--output", type=Path, default=None)
    ap.add_argument("--peak-tflops", type=float, default=None)
    a = ap.parse_args(argv)
    dry = a.dry_run
    device = torch.device("cpu" if dry or not torch.cuda.is_available() else "cuda")
    if not dry and device.type != "cuda":
        print("gpu_bench: no CUDA GPU visible (use --dry-run to test the script on a CPU)", file=sys.stderr)
        return 1
    bf16 = device.type == "cuda"
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    card = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU (dry run)"
    warmup, iters = (1, 2) if dry else (5, 20)
    rows = []

    # -- resnet50: netspec vs torchvision, eager and compiled --------------------------------------------------
    import torchvision
    n, hw = (2, 32) if dry else (128, 224)

    def images():
        x = torch.randn(n, 3, hw, hw, device=device).contiguous(memory_format=torch.channels_last)
        return x, torch.randint(0, 1000, (n,), device=device)

    rates = {}
    for mode in ("eager",) if dry else ("eager", "compiled"):
        for who in ("netspec", "torchvision"):
            torch.manual_seed(0)
            m = (netspec.build(ROOT / "specs" / "resnet50.yaml") if who == "netspec"
                 else torchvision.models.resnet50()).to(device).to(memory_format=torch.channels_last)
            if mode == "compiled":
                m = torch.compile(m)
            s = timed(train_step_fn(m, images, F.cross_entropy, device, bf16), warmup, iters, sync)
            rates[(mode, who)] = n / s
            rows.append((f"resnet50 train {mode}", who, f"{n / s:,.1f} img/s", ""))
            del m
        ratio = rates[(mode, "netspec")] / rates[(mode, "torchvision")]
        rows.append((f"resnet50 train {mode}", "ratio", f"{ratio:.3f}", "netspec / torchvision"))

    # -- GPT-style language model: tokens/s and MFU ------------------------------------------------------------
    size = dict(d_model=64, heads=2, layers=1, ffn=128, context=32) if dry else \
        dict(d_model=768, heads=12, layers=12, ffn=3072, context=1024)
    b = 2 if dry else 16
    torch.manual_seed(0)
    lm = netspec.build(ROOT / "examples" / "char_lm.yaml", **size).to(device)
    params = sum(p.numel() for p in lm.parameters())
    t_len = size["context"]

    def tokens():
        x = torch.randint(0, 256, (b, t_len), device=device)
        return x, x

    def lm_loss(logits, y):
        return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())

    s = timed(train_step_fn(lm, tokens, lm_loss, device, bf16), warmup, iters, sync)
    tok_s = b * t_len / s
    flops_per_token = 6 * params + 12 * size["layers"] * size["d_model"] * t_len     # PaLM's appendix B estimate
    peak = a.peak_tflops * 1e12 if a.peak_tflops else next((v for k, v in PEAKS.items() if k in card), None)
    mfu = f"MFU {tok_s * flops_per_token / peak:.1%}" if peak and not dry else "MFU n/a"
    rows.append(("transformer LM train", f"{params / 1e6:.1f}M params, T={t_len}", f"{tok_s:,.0f} tokens/s", mfu))
    del lm

    # -- U-Net ----------------------------------------------------------------------------------------------------
    un, uhw = (2, 32) if dry else (16, 256)
    torch.manual_seed(0)
    unet = netspec.build(ROOT / "specs" / "unet.yaml", width=8 if dry else 64).to(device)
    if device.type == "cuda":
        unet = unet.to(memory_format=torch.channels_last)

    def masks():
        x = torch.randn(un, 1, uhw, uhw, device=device)
        return x, torch.randint(0, 2, (un, uhw, uhw), device=device)

    s = timed(train_step_fn(unet, masks, F.cross_entropy, device, bf16), warmup, iters, sync)
    rows.append(("unet train", f"{uhw}x{uhw}", f"{un / s:,.1f} img/s", ""))

    lines = [f"GPU check on {card} (torch {torch.__version__}, bf16 autocast: {bf16})", "",
             "| benchmark | what | result | note |", "|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.output:
        a.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
