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


def plot_curves(metrics_path: Path, png: Path, title: str) -> list[str]:
    """Training loss (and every other logged number) against steps, one panel per quantity, as a PNG; returns the
    quantities drawn, in panel order."""
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
    # every logged quantity gets a panel: the loss, then what evaluations measure, then the other training numbers
    names = sorted(series, key=lambda k: (k != "loss", set(series[k]) == {"train"}, k))
    if not names:
        return []
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
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
    return names


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


# -- detection ---------------------------------------------------------------------------------------------------

def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every pair of binary masks: a [k, H, W], b [m, H, W] -> [k, m]."""
    a = a.reshape(len(a), -1).float()
    b = b.reshape(len(b), -1).float()
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return inter / union.clamp(min=1)


def average_precision(detections: list[dict], targets: list[dict], iou: float = 0.5,
                      masks: bool = False) -> dict[str, float]:
    """VOC-style average precision per class at an IoU threshold, and their mean ``map50`` (at iou 0.5).

    ``detections``/``targets``: one dict per image (boxes [k, 4], labels [k], and scores [k] for detections).
    Detections of a class, best score first, each match the unmatched target of that class and image with which
    they overlap most, if the IoU is at least ``iou`` (true positive), else count as false positives; AP is the
    area under the precision-recall curve with precision made non-increasing (all-point interpolation, VOC 2010+).
    Classes without targets are left out of the mean. ``masks``: the overlap is that of the instance masks
    (detections' ``masks`` [k, H, W] probabilities, taken at 0.5 as torchvision's examples and COCO do; targets'
    ``masks`` [k, H, W] binary), and the keys are ``mask_ap50_class{c}`` and ``mask_map50``.
    """
    from torchvision.ops import box_iou
    field, overlap, prefix = ("masks", mask_iou, "mask_") if masks else ("boxes", box_iou, "")
    classes = sorted({int(c) for t in targets for c in t["labels"].tolist()})
    out = {}
    for c in classes:
        hits, scores, total = [], [], 0
        for d, t in zip(detections, targets):
            gt = t[field][t["labels"] == c].float().cpu()
            total += len(gt)
            keep = d["labels"] == c
            boxes, sc = d[field][keep].float().cpu(), d["scores"][keep].float().cpu()
            if masks:
                boxes = boxes.reshape(len(boxes), *gt.shape[1:]) > 0.5 if len(gt) else boxes
                gt = gt > 0.5
            order = torch.argsort(sc, descending=True, stable=True)
            boxes, sc = boxes[order], sc[order]
            taken = torch.zeros(len(gt), dtype=torch.bool)
            overlaps = overlap(boxes, gt) if len(gt) and len(boxes) else torch.zeros(len(boxes), len(gt))
            for k in range(len(boxes)):
                j = int(overlaps[k].argmax()) if len(gt) else -1
                ok = j >= 0 and bool(overlaps[k, j] >= iou) and not bool(taken[j])
                if ok:
                    taken[j] = True
                hits.append(ok)
            scores.append(sc)
        sc = torch.cat(scores) if scores else torch.zeros(0)
        hit = torch.tensor(hits, dtype=torch.float64)[torch.argsort(sc, descending=True, stable=True)]
        tp, fp = torch.cumsum(hit, 0), torch.cumsum(1 - hit, 0)
        recall = torch.cat([torch.zeros(1, dtype=torch.float64), tp / total])
        precision = torch.cat([torch.ones(1, dtype=torch.float64), tp / (tp + fp).clamp(min=1e-12)])
        precision = torch.flip(torch.cummax(torch.flip(precision, [0]), 0).values, [0])   # the envelope
        name = f"{prefix}ap50_class{c}" if iou == 0.5 else f"{prefix}ap_class{c}"
        out[name] = float(((recall[1:] - recall[:-1]) * precision[1:]).sum())
    key = prefix + ("map50" if iou == 0.5 else "map")
    out[key] = sum(out.values()) / len(out) if out else 0.0
    return out
