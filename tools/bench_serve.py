"""How long `netspec serve` takes from a save to the new page state, and how much the gradient norms cost training.

1. Redraw latency: serves a copy of each spec (with specs/blocks/ for its imports) in this process over HTTP, then
   repeatedly saves a changed copy of the file and measures the time until /api/version has moved and /api/state
   answered with the new content: the file poll (every POLL_S) + check + Graphviz layout + JSON. The page adds at
   most one poll interval of its own (250 ms) to what is measured here.
2. Gradient-norm cost: `layer_grad_norms` on resnet18 gradients vs one forward+backward step, CPU (and CUDA when
   present), median of several runs.

    .venv/bin/python tools/bench_serve.py [--rounds 5] [--specs mlp,resnet18,densenet121]
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.loads(r.read())


def redraw(spec: str, rounds: int) -> list[float]:
    from netspec.serve import serve
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        shutil.copytree(ROOT / "specs" / "blocks", d / "blocks")
        path = d / f"{spec}.yaml"
        text = (ROOT / "specs" / f"{spec}.yaml").read_text()
        path.write_text(text)
        srv = serve(str(path), port=0)
        try:
            first = _get(srv.url + "api/state")
            assert first["ok"], first["errors"]
            times = []
            for k in range(rounds):
                v0 = _get(srv.url + "api/version")["version"]
                time.sleep(0.3)                                 # let the previous save settle (not measured)
                t0 = time.perf_counter()
                path.write_text(text + f"\n# edit {k}\n")
                while _get(srv.url + "api/version")["version"] == v0:
                    time.sleep(0.01)
                state = _get(srv.url + "api/state")
                times.append(time.perf_counter() - t0)
                assert state["ok"] and state["svg"]
            return times
        finally:
            srv.stop()


def grad_norm_cost(device: str, reps: int = 7) -> tuple[float, float]:
    import torch
    import torchvision
    from netspec.train.metrics import layer_grad_norms
    net = torchvision.models.resnet18().to(device)
    x = torch.randn(8, 3, 128, 128, device=device)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    steps, norms = [], []
    for _ in range(reps):
        net.zero_grad(set_to_none=True)
        sync()
        t0 = time.perf_counter()
        net(x).sum().backward()
        sync()
        steps.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        layer_grad_norms({"net": net})
        norms.append(time.perf_counter() - t0)
    return statistics.median(steps), statistics.median(norms)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--specs", default="mlp,resnet18,densenet121")
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print("\n| spec | save -> new state, median (min..max) |\n|---|---|")
    for spec in a.specs.split(","):
        t = redraw(spec, a.rounds)
        print(f"| {spec} | {statistics.median(t) * 1000:.0f} ms ({min(t) * 1000:.0f}..{max(t) * 1000:.0f}) |")
    import torch
    print("\n| device | resnet18 fwd+bwd, batch 8, 128x128 | layer_grad_norms | share |\n|---|---:|---:|---:|")
    for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        step, norm = grad_norm_cost(dev)
        print(f"| {dev} | {step * 1000:.1f} ms | {norm * 1000:.2f} ms | {norm / step:.1%} |")


if __name__ == "__main__":
    main()
