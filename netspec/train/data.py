"""Data that works offline: bundled and generated datasets, the user's files, and seeded batching.

A dataset is a handful of in-memory tensors with the example index first (``Data.arrays``), the name of the target
array, and index tensors for the train/val/test splits. Batches are drawn in an order that depends only on
(seed, epoch), so a resumed run sees exactly the batches an uninterrupted one would: the data-order state of a
checkpoint is just (epoch, batch index). Under DDP each process takes its share of every global batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..errors import Loc, SpecError


@dataclass
class Data:
    arrays: dict[str, torch.Tensor]
    target: str | None
    splits: dict[str, torch.Tensor]                  # split -> example indices
    info: dict = field(default_factory=dict)         # num_classes, vocab, unigram_entropy, ...
    objects: dict[str, torch.Tensor] = field(default_factory=dict)  # detection: per-object arrays, see detection_data

    def size(self, split: str) -> int:
        return len(self.splits.get(split, ()))


def load_data(cfg, loc: Loc) -> Data:
    """The dataset a ``data:`` config describes (no downloads, ever)."""
    loaders = {"digits": _digits, "shapes": _shapes, "text": _text, "npz": _npz, "csv": _csv,
               "images": _images}
    data = loaders[cfg.source](cfg, loc)
    if cfg.limit is not None:
        data.splits = {k: v[:cfg.limit] for k, v in data.splits.items()}
    return data


def _split(n: int, cfg, loc: Loc) -> dict[str, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.split.seed))
    n_test, n_val = int(round(n * cfg.split.test)), int(round(n * cfg.split.val))
    if n - n_test - n_val < 1:
        raise SpecError(f"the split leaves no training examples ({n} in all)", loc, "lower split.val / split.test")
    return {"test": perm[:n_test], "val": perm[n_test:n_test + n_val], "train": perm[n_test + n_val:]}


def _digits(cfg, loc: Loc) -> Data:
    x, y = read_digits(loc)
    x = x / 16.0                                                              # [n, 64] in [0, 1]
    if cfg.image_size is not None:
        x = x.view(-1, 1, 8, 8)
        if cfg.image_size != 8:
            x = torch.nn.functional.interpolate(x, size=(cfg.image_size,) * 2, mode="bilinear", align_corners=False)
    return Data({"x": x, "y": y}, "y", _split(len(y), cfg, loc), {"num_classes": 10})


def read_digits(loc: Loc) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled digits (x [1797, 64] float 0..16, y [1797]), read from its file: importing
    scikit-learn itself takes seconds, and only its data file is needed."""
    import gzip
    import importlib.util
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise SpecError("the digits dataset ships with scikit-learn, which is not installed", loc,
                        "pip install scikit-learn")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return torch.from_numpy(table[:, :-1].copy()), torch.from_numpy(table[:, -1].astype(np.int64))


_NPZ_HINT = "write it with numpy.savez(path, name=array, ...) of numeric arrays (no Python objects)"


def read_npz(path: Path, shown: str, loc: Loc) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, every one numeric and at least 1-D; never unpickles. The arrays' declared sizes
    are read from their headers and refused past ``max_alloc_bytes`` before any is read (a small compressed file can
    declare gigabytes); a file that is not an .npz, or holds objects, is a located error."""
    import zipfile
    from ..limits import LIMITS
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                total += int(np.prod(shape, dtype=object)) * dtype.itemsize
        if total > LIMITS.max_alloc_bytes:
            raise SpecError(f"'{shown}' declares {total:,} bytes of arrays, over max_alloc_bytes "
                            f"({LIMITS.max_alloc_bytes:,})", loc, "use a smaller file, or raise the limit with "
                            "--limit max_alloc_bytes=N if this machine has the memory")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except SpecError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, NotImplementedError) as e:
        reason = str(e).split(". If you trust")[0][:200]
        raise SpecError(f"cannot read '{shown}' as .npz arrays: {type(e).__name__}: {reason}", loc,
                        _NPZ_HINT) from None
    for k, v in arrays.items():
        if not isinstance(v, np.ndarray):           # a member that is not an .npy array (np.load gives its bytes)
            raise SpecError(f"'{shown}': '{k}' is not a numpy array", loc, _NPZ_HINT)
        if v.dtype.kind not in "biuf":
            raise SpecError(f"'{shown}': array '{k}' holds {v.dtype} values; netspec reads numbers only", loc,
                            _NPZ_HINT)
        if v.ndim == 0:
            raise SpecError(f"'{shown}': array '{k}' is a single value, not one entry per example", loc, _NPZ_HINT)
    return arrays


def make_shapes(n: int, size: int, max_shapes: int = 3, noise: float = 0.1, seed: int = 0, channels: int = 1,
                classes: bool = False, instances: bool = False):
    """Generated images of rectangles, ellipses and triangles: (images [n,C,S,S], masks [n,S,S], boxes).

    boxes[i] is a list of (kind, x0, y0, x1, y1) in pixels, kind 1 rectangle, 2 ellipse, 3 triangle. The mask holds
    the kind (``classes``) or 1 for every shape pixel; later shapes cover earlier ones. ``instances`` adds a fourth
    result: per image, the visible pixels of each shape as a [k, S, S] bool array (in the order of boxes[i]).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    images = np.zeros((n, channels, size, size), np.float32)
    masks = np.zeros((n, size, size), np.int64)
    boxes, shapes = [], []
    for i in range(n):
        img = np.zeros((channels, size, size), np.float32)
        mask = np.zeros((size, size), np.int64)
        bs, ms = [], []
        for _ in range(rng.integers(1, max_shapes + 1)):
            kind = int(rng.integers(1, 4))
            w, h = rng.uniform(0.2, 0.5, 2) * size
            x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
            if kind == 1:
                m = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
            elif kind == 2:
                cx, cy = x0 + w / 2, y0 + h / 2
                m = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1
            else:   # triangle with its apex at the top middle
                t = (yy - y0) / h
                m = (t >= 0) & (t <= 1) & (np.abs(xx - (x0 + w / 2)) <= t * w / 2)
            colour = rng.uniform(0.4, 1.0, (channels, 1, 1)).astype(np.float32)
            img = np.where(m[None], colour, img)
            mask[m] = kind if classes else 1
            bs.append((kind, float(x0), float(y0), float(x0 + w), float(y0 + h)))
            ms = [v & ~m for v in ms] + [m]
        images[i] = img + rng.normal(0, noise, img.shape).astype(np.float32)
        masks[i] = mask
        boxes.append(bs)
        shapes.append(np.stack(ms))
    return (images, masks, boxes, shapes) if instances else (images, masks, boxes)


def _shapes(cfg, loc: Loc) -> Data:
    images, masks, _ = make_shapes(cfg.n, cfg.size, cfg.max_shapes, cfg.noise, cfg.seed, cfg.channels, cfg.classes)
    return Data({"x": torch.from_numpy(images), "mask": torch.from_numpy(masks)}, "mask",
                _split(cfg.n, cfg, loc), {"num_classes": 4 if cfg.classes else 2})


# -- detection: images with a variable number of objects each -----------------------------------------------------

def detection_data(cfg, loc: Loc) -> Data:
    """Images and their objects for ``method: detection``.

    Per image (batched like any array): ``images`` [n, C, H, W] float, ``first`` [n] (index of its first object) and
    ``count`` [n]. Per object, in ``Data.objects``, grouped by image: ``boxes`` [B, 4] float (x1, y1, x2, y2 in
    pixels), ``labels`` [B] int64 (1..classes-1; 0 is background) and, when present, ``masks`` [B, H, W] uint8.
    From ``shapes`` (labels: 1 rectangle, 2 ellipse, 3 triangle; masks: each shape's visible pixels) or an .npz with
    ``images``, ``boxes``, ``labels``, ``owner`` [B] (the image of each object) and optionally ``masks``.
    """
    if cfg.source == "shapes":
        images, _, boxes, shapes = make_shapes(cfg.n, cfg.size, cfg.max_shapes, cfg.noise, cfg.seed, cfg.channels,
                                               instances=True)
        owner = np.concatenate([np.full(len(b), i) for i, b in enumerate(boxes)])
        flat = np.array([b for bs in boxes for b in bs], np.float32)
        arrays = {"images": images, "boxes": flat[:, 1:], "labels": flat[:, 0].astype(np.int64), "owner": owner,
                  "masks": np.concatenate(shapes).astype(np.uint8)}
    elif cfg.source == "npz":
        p = Path(cfg.path)
        if not p.is_file():
            raise SpecError(f"no .npz file '{cfg.path}'", loc)
        arrays = read_npz(p, cfg.path, loc)
    else:   # the config's validator keeps other sources out
        raise ValueError(cfg.source)
    images, objects, owner = _detection_arrays(arrays, str(getattr(cfg, "path", "shapes")), loc)
    order = torch.argsort(owner, stable=True)
    objects = {k: v[order] for k, v in objects.items()}
    count = torch.bincount(owner, minlength=len(images))
    first = torch.cumsum(count, 0) - count
    return Data({"images": images, "first": first, "count": count}, None, _split(len(images), cfg, loc),
                {"num_classes": int(objects["labels"].max()) + 1 if len(objects["labels"]) else 1}, objects)


def _detection_arrays(arrays: dict, where: str, loc: Loc):
    """(images, objects, owner) as tensors, every shape, dtype and value checked (before the first step)."""
    need = ["images", "boxes", "labels", "owner"]
    missing = [k for k in need if k not in arrays]
    if missing:
        raise SpecError(f"'{where}' lacks the detection array(s) {', '.join(missing)}; it has {', '.join(arrays)}",
                        loc, "a detection .npz holds images [n, C, H, W], boxes [B, 4], labels [B], owner [B] (the "
                             "image of each box) and optionally masks [B, H, W]")
    a = {k: np.asarray(v) for k, v in arrays.items() if k in need + ["masks"]}
    img = a["images"]
    if img.ndim != 4 or not np.issubdtype(img.dtype, np.floating):
        raise SpecError(f"'{where}': images must be a float array [n, C, H, W], got {img.dtype} {list(img.shape)}",
                        loc)
    n, h, w = img.shape[0], img.shape[2], img.shape[3]
    b, lab, own = a["boxes"], a["labels"], a["owner"]
    if b.ndim != 2 or b.shape[1] != 4 or not np.issubdtype(b.dtype, np.floating):
        raise SpecError(f"'{where}': boxes must be a float array [B, 4] (x1, y1, x2, y2), got {b.dtype} "
                        f"{list(b.shape)}", loc)
    for k, v in (("labels", lab), ("owner", own)):
        if v.shape != (len(b),) or not np.issubdtype(v.dtype, np.integer):
            raise SpecError(f"'{where}': {k} must be an integer array [{len(b)}] (one per box), got {v.dtype} "
                            f"{list(v.shape)}", loc)
    bad = np.flatnonzero(~np.isfinite(b).all(1) | (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1]))
    if len(bad):
        raise SpecError(f"'{where}': box {bad[0]} is {b[bad[0]].tolist()}: boxes need x2 > x1 and y2 > y1 "
                        f"({len(bad)} such boxes)", loc, "boxes are (x1, y1, x2, y2) in pixels, corners ordered")
    bad = np.flatnonzero((own < 0) | (own >= n))
    if len(bad):
        raise SpecError(f"'{where}': owner of box {bad[0]} is {own[bad[0]]}, but there are {n} images", loc,
                        f"owner holds the image index (0..{n - 1}) of each box")
    bad = np.flatnonzero(lab < 1)
    if len(bad):
        raise SpecError(f"'{where}': label of box {bad[0]} is {lab[bad[0]]}; labels start at 1 (0 is the "
                        f"background)", loc, "add 1 to every label")
    objects = {"boxes": torch.from_numpy(b.astype(np.float32)), "labels": torch.from_numpy(lab.astype(np.int64))}
    if "masks" in a:
        m = a["masks"]
        if m.shape != (len(b), h, w):
            raise SpecError(f"'{where}': masks must be [B, H, W] = {[len(b), h, w]} (one per box, the images' "
                            f"size), got {list(m.shape)}", loc)
        objects["masks"] = torch.from_numpy((m != 0).astype(np.uint8))
    return torch.from_numpy(img.astype(np.float32)), objects, torch.from_numpy(own.astype(np.int64))


def batch_targets(data: Data, batch: dict, device) -> list[dict]:
    """The targets of a batch's images: one dict per image of boxes, labels (and masks) from ``data.objects``."""
    out = []
    for s, c in zip(batch["first"].tolist(), batch["count"].tolist()):
        out.append({k: v[s:s + c].to(device) for k, v in data.objects.items()})
    return out


def read_corpus(path: str | None, loc: Loc) -> bytes:
    if path is None:
        from pydoc_data.topics import topics
        return "\n\n".join(topics[k] for k in sorted(topics)).encode("utf-8")
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"no text file '{path}'", loc, "data.path is relative to the working folder")
    return p.read_bytes()


def _text(cfg, loc: Loc) -> Data:
    """Byte tokens (vocabulary 256) cut into windows of context+1; val and test are the corpus' last stretches."""
    raw = np.frombuffer(read_corpus(cfg.path, loc), dtype=np.uint8)
    c = cfg.context
    n = (len(raw) - 1) // c
    if n < 3:
        raise SpecError(f"the text has {len(raw)} bytes: too short for windows of {c}", loc, "lower data.context")
    starts = np.arange(n) * c
    windows = torch.from_numpy(np.stack([raw[s:s + c + 1] for s in starts]).astype(np.int64))
    n_test, n_val = max(1, int(n * cfg.split.test)), max(1, int(n * cfg.split.val))
    idx = torch.arange(n)
    splits = {"train": idx[:n - n_val - n_test], "val": idx[n - n_val - n_test:n - n_test], "test": idx[n - n_test:]}
    counts = np.bincount(raw[: starts[n - n_val - n_test]], minlength=256).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return Data({"tokens": windows[:, :-1], "next": windows[:, 1:]}, "next", splits,
                {"vocab": 256, "unigram_entropy": float(-(p * np.log(p)).sum())})


def _npz(cfg, loc: Loc) -> Data:
    p = Path(cfg.path)
    if not p.is_file():
        raise SpecError(f"no .npz file '{cfg.path}'", loc)
    arrays = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in read_npz(p, cfg.path, loc).items()}
    arrays = {k: v.float() if v.dtype == torch.float64 else v for k, v in arrays.items()}
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1:
        raise SpecError(f"the arrays in '{cfg.path}' have different lengths: "
                        + ", ".join(f"{k} {len(v)}" for k, v in arrays.items()), loc)
    if cfg.target is not None and cfg.target not in arrays:
        from ..errors import did_you_mean
        raise SpecError(f"'{cfg.path}' has no array '{cfg.target}' (it has {', '.join(arrays)})", loc,
                        did_you_mean(cfg.target, list(arrays)))
    return Data(arrays, cfg.target, _split(sizes.pop(), cfg, loc), _classes(arrays.get(cfg.target)))


def _classes(y) -> dict:
    if y is not None and not torch.is_floating_point(y):
        return {"num_classes": int(y.max()) + 1}
    return {}


def _csv(cfg, loc: Loc) -> Data:
    import csv
    p = Path(cfg.path)
    if not p.is_file():
        raise SpecError(f"no CSV file '{cfg.path}'", loc)
    try:
        with open(p, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise SpecError(f"cannot read '{cfg.path}' as CSV: {e}", loc, "a UTF-8 text file, a header row, then one "
                        "row of numbers per example") from None
    if len(rows) < 2:
        raise SpecError(f"'{cfg.path}' needs a header row and at least one data row", loc)
    header, body = rows[0], rows[1:]
    target = cfg.target if cfg.target is not None else header[-1]
    if target not in header:
        from ..errors import did_you_mean
        raise SpecError(f"'{cfg.path}' has no column '{target}'", loc, did_you_mean(target, header))
    t = header.index(target)
    try:
        feats = np.array([[float(v) for j, v in enumerate(r) if j != t] for r in body], np.float32)
        ycol = [r[t] for r in body]
    except ValueError as e:
        raise SpecError(f"'{cfg.path}': a feature is not a number ({e})", loc) from None
    try:
        yv = np.array([float(v) for v in ycol])
        y = torch.from_numpy(yv.astype(np.int64)) if np.all(yv == np.round(yv)) else torch.from_numpy(
            yv.astype(np.float32))
    except ValueError:                                     # class names
        names = sorted(set(ycol))
        y = torch.tensor([names.index(v) for v in ycol])
    return Data({"x": torch.from_numpy(feats), "y": y}, "y", _split(len(body), cfg, loc), _classes(y))


def _images(cfg, loc: Loc) -> Data:
    from PIL import Image
    root = Path(cfg.path)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    if not classes:
        raise SpecError(f"'{cfg.path}' is not a folder with one sub-folder per class", loc)
    xs, ys = [], []
    for k, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"):
                continue
            try:
                with Image.open(f) as im:
                    img = im.convert("L" if cfg.grayscale else "RGB").resize(tuple(cfg.size[::-1]))
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                raise SpecError(f"cannot read the image '{f}': {type(e).__name__}: {str(e)[:200]}", loc,
                                "remove or replace the file (PNG, JPEG, BMP, GIF or WebP)") from None
            a = np.asarray(img, np.float32) / 255.0
            xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            ys.append(k)
    if not xs:
        raise SpecError(f"no images under '{cfg.path}'", loc)
    return Data({"x": torch.from_numpy(np.stack(xs)), "y": torch.tensor(ys)}, "y", _split(len(ys), cfg, loc),
                {"num_classes": len(classes), "classes": classes})


# -- batching ---------------------------------------------------------------------------------------------------

def batch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """The order of examples in an epoch: a function of (seed, epoch) alone."""
    if not shuffle:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def num_batches(data: Data, split: str, batch_size: int, drop_last: bool) -> int:
    n = data.size(split)
    return n // batch_size if drop_last else -(-n // batch_size)


def batches(data: Data, split: str, batch_size: int, *, seed: int = 0, epoch: int = 0, shuffle: bool = True,
            drop_last: bool = True, start: int = 0, rank: int = 0, world: int = 1) -> Iterator[dict]:
    """Batches of ``split`` from batch number ``start`` on; with world > 1 each rank gets its share of each batch."""
    idx = data.splits[split]
    idx = idx[batch_order(len(idx), seed, epoch, shuffle)]
    for b in range(start, num_batches(data, split, batch_size, drop_last)):
        sel = idx[b * batch_size:(b + 1) * batch_size]
        if world > 1:
            sel = sel[rank::world]
        yield {k: v[sel] for k, v in data.arrays.items()}


def augment(batch: dict, cfg, keys) -> dict:
    """Shift and mirror the 4-D float arrays ``keys`` of a training batch (and 3-D masks with them)."""
    if not (cfg.shift or cfg.hflip):
        return batch
    n = len(next(iter(batch.values())))
    dx = torch.randint(-cfg.shift, cfg.shift + 1, (n,)) if cfg.shift else torch.zeros(n, dtype=torch.int64)
    dy = torch.randint(-cfg.shift, cfg.shift + 1, (n,)) if cfg.shift else torch.zeros(n, dtype=torch.int64)
    flip = torch.rand(n) < 0.5 if cfg.hflip else torch.zeros(n, dtype=torch.bool)
    out = dict(batch)
    for k, v in batch.items():
        spatial = (v.dim() == 4 and v.is_floating_point() and k in keys) or (v.dim() == 3 and not v.is_floating_point())
        if not spatial:
            continue
        v = v.clone()
        s = cfg.shift
        for i in range(n):
            img = v[i]
            if flip[i]:
                img = img.flip(-1)
            if s:
                pad = torch.nn.functional.pad(img.unsqueeze(0) if img.dim() == 2 else img, (s, s, s, s))
                h, w = img.shape[-2:]
                y0, x0 = s + int(dy[i]), s + int(dx[i])
                img = pad[..., y0:y0 + h, x0:x0 + w]
                img = img.squeeze(0) if v.dim() == 3 else img
            v[i] = img
        out[k] = v
    return out


def to_device(batch: dict, device, channels_last: bool = False) -> dict:
    out = {}
    for k, v in batch.items():
        if device.type == "cuda":
            v = v.pin_memory().to(device, non_blocking=True)
        if channels_last and v.dim() == 4 and v.is_floating_point():
            v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


# -- matching the data to the spec's inputs ---------------------------------------------------------------------

def bind_inputs(graph, data: Data, mapping: dict[str, str], loc: Loc, skip: tuple = ()) -> dict[str, str]:
    """spec input -> data array, with every declared dim and dtype checked against the data (before any step)."""
    from ..errors import did_you_mean
    types = graph.input_types()
    feats = [k for k in data.arrays if k != data.target]
    out: dict[str, str] = {}
    for name, t in types.items():
        if name in skip:
            continue
        key = mapping.get(name) or (name if name in data.arrays else None)
        if key is None and len(types) - len(skip) == 1 and len(feats) == 1:
            key = feats[0]
        if key is None or key not in data.arrays:
            raise SpecError(f"the spec's input '{name}' {t} has no data: the data has {', '.join(data.arrays)}",
                            loc, [did_you_mean(key or name, list(data.arrays)) or "",
                                  f"map it with data.inputs: {{{name}: ARRAY}}"])
        arr = data.arrays[key]
        got = [len(data.splits['train'])] + list(arr.shape[1:])
        want = list(t.shape)
        bad = len(got) != len(want) or any(isinstance(w, int) and w != g for w, g in zip(want[1:], got[1:]))
        if bad:
            raise SpecError(f"input '{name}' is declared {t} but the data's '{key}' examples are "
                            f"{list(arr.shape[1:])} (shape [n, {', '.join(map(str, arr.shape[1:]))}])", loc,
                            "change the data (e.g. digits' image_size) or the spec's parameters (train.params)")
        dt = str(arr.dtype).replace("torch.", "")
        if (t.dtype.startswith("float")) != arr.is_floating_point():
            raise SpecError(f"input '{name}' is declared {t.dtype} but the data's '{key}' is {dt}", loc)
        out[name] = key
    return out
