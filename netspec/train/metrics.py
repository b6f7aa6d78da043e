"""Evaluation metrics, the metrics.jsonl log, and the curve plot."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch


# -- metrics: each takes summed statistics so that they add up over batches -------------------------------------

class Meter:
    """Accumulates sums over batches; ``result()`` gives the metrics."""

    def __init__(self, names: list[str], num_classes: int | None = None):
        self.names = names
        self.k = num_classes
        self.sums: dict[str, float] = {}
        self.inter = self.union = None

    def add(self, key: str, value: float, count: float = 1.0) -> None:
        s, c = self.sums.get(key, (0.0, 0.0))
        self.sums[key] = (s + float(value), c + count)

    def classify(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Class scores (N, C, ...) against class indices (N, ...)."""
        pred = logits.argmax(1)
        n = target.numel()
        self.add("accuracy", (pred == target).sum().item(), n)
        if "top5" in self.names and logits.shape[1] >= 5:
            top = logits.topk(5, dim=1).indices
            self.add("top5", (top == target.unsqueeze(1)).any(1).sum().item(), n)
        if "mean_iou" in self.names or "pixel_accuracy" in self.names:
            k = logits.shape[1]
            if self.inter is None:
                self.inter, self.union = torch.zeros(k, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
            for c in range(k):
                p, t = pred == c, target == c
                self.inter[c] += (p & t).sum().item()
                self.union[c] += (p | t).sum().item()
            self.add("pixel_accuracy", (pred == target).sum().item(), n)

    def regress(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        d = (pred.float() - target.float())
        self.add("mse", (d * d).sum().item(), d.numel())
        self.add("mae", d.abs().sum().item(), d.numel())

    def result(self) -> dict[str, float]:
        out = {k: s / max(c, 1e-12) for k, (s, c) in self.sums.items()}
        for k in ("accuracy", "top5", "pixel_accuracy", "mse", "mae"):
            if k not in self.names:
                out.pop(k, None)
        if self.inter is not None and "mean_iou" in self.names:
            present = self.union > 0
            out["mean_iou"] = float((self.inter[present] / self.union[present]).mean())
        if "loss" in out and "perplexity" in self.names:
            out["perplexity"] = math.exp(min(out["loss"], 50))
        return out


# -- metrics.jsonl ------------------------------------------------------------------------------------------------

class MetricsLog:
    """Appends one JSON object per log step and per evaluation; a resumed run first drops records past its step."""

    def __init__(self, path: Path, enabled: bool = True, resume_step: int | None = None):
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        if resume_step is None:
            path.write_text("")
        elif path.exists():
            keep = [line for line in path.read_text().splitlines() if line.strip()
                    and json.loads(line).get("step", 0) <= resume_step]
            path.write_text("".join(line + "\n" for line in keep))

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=False) + "\n")


def layer_grad_norms(networks: dict, prefixed: bool | None = None) -> dict[str, float]:
    """The L2 norm of each layer's gradients (a layer: a module that owns parameters, by its structural name).

    Read at log steps only, before clipping: one fused norm over all gradients and one transfer to the host.
    With several networks (a GAN), or ``prefixed``, the names start with the network's: ``generator/fc``.
    Under FSDP every rank calls it (the shards are gathered); only rank 0 writes the result.
    """
    names: list[str] = []
    grads = []
    prefixed = len(networks) > 1 if prefixed is None else prefixed
    for net_name, module in networks.items():
        prefix = f"{net_name}/" if prefixed else ""
        for pname, p in module.named_parameters():
            if p.grad is not None:
                names.append(prefix + (pname.rsplit(".", 1)[0] if "." in pname else pname))
                g = p.grad.detach()
                if hasattr(g, "full_tensor"):       # an FSDP shard (DTensor): every rank gathers it together
                    g = g.full_tensor()
                grads.append(g)
    if not grads:
        return {}
    layers = list(dict.fromkeys(names))
    index = torch.tensor([layers.index(n) for n in names], device=grads[0].device)
    squares = torch.stack([n.float() ** 2 for n in torch._foreach_norm(grads)])
    norms = torch.zeros(len(layers), device=squares.device).index_add_(0, index, squares).sqrt()
    return {n: round(v, 6) for n, v in zip(layers, norms.tolist())}


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_curves(metrics_path: Path, png: Path, title: str) -> None:
    """Training loss (and every other logged number) against steps, one panel per quantity, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    series: dict[str, dict[str, tuple[list, list]]] = {}
    for r in records:
        split = r.get("split", "train")
        for k, v in r.items():
            if k in ("step", "epoch", "split", "time", "lr", "samples_per_s") or not isinstance(v, (int, float)):
                continue
            xs, ys = series.setdefault(k, {}).setdefault(split, ([], []))
            xs.append(r["step"])
            ys.append(v)
    names = sorted(series, key=lambda k: (k != "loss", k))[:6]
    if not names:
        return
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for split, (xs, ys) in sorted(series[name].items()):
            ax.plot(xs, ys, label=split, marker="o" if split != "train" else None, markersize=3,
                    color={"train": "C0", "val": "C1", "test": "C3"}.get(split))
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
        if name == "loss" and all(y > 0 for _, ys in series[name].values() for y in ys):
            ax.set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    tmp = png.with_name("." + png.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png)


def save_image_grid(images: torch.Tensor, png: Path, nrow: int = 8) -> None:
    """Save (N, C, H, W) images in [0, 1] as a PNG grid (generative models' samples)."""
    import torchvision.utils as vutils
    images = images.detach().float().cpu().clamp(0, 1)
    if images.shape[-1] < 32:                                   # tiny images (8x8 digits): enlarge to be seen
        k = -(-32 // images.shape[-1])
        images = images.repeat_interleave(k, -1).repeat_interleave(k, -2)
    grid = vutils.make_grid(images, nrow=nrow, padding=2)
    tmp = png.with_name("." + png.name + ".tmp.png")
    vutils.save_image(grid, str(tmp))
    tmp.replace(png)
