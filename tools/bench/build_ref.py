#!/usr/bin/env python
"""Build cost against the reference constructors: ``netspec.build`` of a zoo spec vs ``torchvision.models.NAME()``,
on the meta device (no allocation: the cost of making the modules) and for real (weights allocated and initialised).

Both sides start from an expanded graph / an imported torchvision, after importing torch, in alternating rounds
(median of process CPU time). Initialisation differs by design: torchvision's constructors re-initialise every conv
with ``kaiming_normal_`` (and norms with constants) after torch's default init, which netspec's modules keep (weights
are meant to be trained or loaded). So the real build is timed twice: netspec as built, and netspec followed by the
same re-initialisation loop as torchvision's ResNet (``same init``), which is the like-for-like comparison.

    python tools/bench/run.py ... ; python tools/bench/build_ref.py --models resnet18,resnet50,resnet152 --rounds 5
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))


def tv_init(model):
    """torchvision ResNet's re-initialisation (resnet.py, ResNet.__init__)."""
    import torch.nn as nn
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return model


def cpu(fn) -> float:
    gc.collect()
    c = time.process_time()
    out = fn()
    t = time.process_time() - c
    del out
    return t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet18,resnet50,resnet152")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    import torch
    import torchvision
    from netspec.codegen.build import build
    from netspec.pipeline import graph
    torch.set_num_threads(a.threads)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"torch {torch.__version__}, {a.threads} thread(s); load average {load}\n")
    print("| model | what | torchvision CPU s | netspec CPU s | ratio netspec/torchvision (median, spread) |")
    print("|---|---|---:|---:|---|")
    for name in a.models.split(","):
        g = graph(ROOT / "specs" / f"{name}.yaml")
        ctor = getattr(torchvision.models, name)

        def tv_meta(ctor=ctor):
            with torch.device("meta"):
                return ctor()
        cases = [("meta device", tv_meta, lambda g=g: build(g, device="meta")),
                 ("real, as built", ctor, lambda g=g: build(g))]
        if name.startswith("resnet"):
            cases.append(("real, same init", ctor, lambda g=g: tv_init(build(g))))
        for what, ref, ours in cases:
            ref(); ours()                      # warm-up
            r, s, ratio = [], [], []
            for k in range(a.rounds):
                pair = (ref, ours) if k % 2 == 0 else (ours, ref)
                t = {f: cpu(f) for f in pair}
                r.append(t[ref]); s.append(t[ours]); ratio.append(t[ours] / t[ref])
            print(f"| {name} | {what} | {statistics.median(r):.3f} | {statistics.median(s):.3f} | "
                  f"{statistics.median(ratio):.3f} ({min(ratio):.3f}..{max(ratio):.3f}) |", flush=True)
    print(f"\nload average at end {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
