"""Detection: the steps of torchvision's two-stage detectors (Faster / Mask R-CNN) that are not layers.

Each op is one step of ``torchvision.models.detection`` with torchvision's own code underneath (its transform, FPN,
RPN head, anchor generator, box coder, proposal filter, multi-scale RoIAlign, box and mask post-processing), so
the spec shows the architecture (backbone, FPN, RPN, RoI heads, mask head) and none of it is hard-coded here.

How boxes travel. A batch is one tensor ``[N, 3, H, W]`` (images of one size). Boxes of all images are one tensor
``[K, 4]`` (x1, y1, x2, y2) with an ``image`` index ``[K]`` int64 beside it (the image each box belongs to), as
``torchvision.ops.batched_nms`` takes them; the ops return them grouped by image, in torchvision's order.

Data-dependent sizes are symbols that an op introduces (``shapes_dim.data_dim``) and nobody binds: ``Hb``, ``Wb``
(the resized, padded batch, multiples of ``size_divisible``), ``R`` (proposals, all images together), ``P`` (the
proposals the RoI heads see: ``R``, or those sampled in training) and ``K`` (detections). ``check`` prints them;
at run time they take whatever size the data gives.

Feature maps that several levels share come in as a list: ops that read "levels" take their inputs as one list
(``from: [a, b, p2, p3, ...]``), the fixed inputs first, as each op's docstring says.

Training. The graph takes no targets: ``detection_targets(module, targets)`` attaches one ``DetectionTargets`` to
every detection step of a built network for one forward. In training mode each step then also does what
torchvision's detector does in training (resize the targets, RPN and Fast R-CNN losses, proposal sampling, mask
loss) and writes its losses into ``context.losses``, with the same keys as torchvision. Without a context, or in
eval mode, every op behaves exactly as before. The generated classes only read the attribute
``detection_context`` (class default ``None``), so a standalone model.py trains the same way.
"""
from __future__ import annotations

import contextlib

from pydantic import Field, model_validator

from .base import In, OpError, Params, given, need_float, need_int, need_rank, register, same_dim, WeightlessOp
from ..codegen.ir import Operand, P, call, lit, module_call
from ..shapes import Dim, TensorType, data_dim, mul_all, norm
from ..shapes_dim import ceildiv

N, C, H, W, T = (Dim.sym(s) for s in "NCHWT")

class DetectionTargets:
    """What the detection steps share during one training forward.

    ``targets``: one dict per image (``boxes`` [k, 4] float x1, y1, x2, y2 in input pixels, ``labels`` [k] int64 in
    1..classes-1, ``masks`` [k, H, W] uint8 for Mask R-CNN), resized by the transform; ``losses``: name -> scalar, as
    torchvision's detector returns them; the rest are values one step records for a later one.
    """

    def __init__(self, targets):
        self.targets = [dict(t) for t in targets]
        self.losses: dict = {}
        self.rpn = None            # box_decode: (RPN deltas [N, A, 4], anchors [A, 4], its BoxCoder)
        self.sample = None         # roi_sample: (proposals, matched target index, labels, matched boxes) per image
        self.positives = None      # box_postprocess: (positive proposals, their matched index) per image, for masks


@contextlib.contextmanager
def detection_targets(module, targets):
    """Attach a ``DetectionTargets`` for ``targets`` to every detection step of ``module`` while the block runs.

    The steps are the modules whose class declares ``detection_context`` (generated from this file's helpers, so
    each build has its own classes and ``isinstance`` cannot find them); detached afterwards, also on exceptions.
    """
    steps = [m for m in module.modules() if hasattr(type(m), "detection_context")]
    if not steps:
        raise ValueError("the network has no detection steps (rcnn_transform, rpn_proposals, roi_sample, ...)")
    ctx = DetectionTargets(targets)
    for m in steps:
        m.detection_context = ctx
    try:
        yield ctx
    finally:
        for m in steps:
            m.__dict__.pop("detection_context", None)


class _DetectionOp(WeightlessOp):
    family = "detection"
    backward_needs_output = True

    @classmethod
    def forward(cls, ins, p):
        """The module applied to every input, in order (each detection op's module takes them all)."""
        return module_call(*[Operand(k) for k in range(len(ins))])


def _boxes(t: TensorType, what: str, op: str) -> None:
    need_float(t, op)
    if t.rank != 2 or t.shape[1] != 4:
        raise OpError(f"{op} needs {what} as [K, 4] boxes (x1, y1, x2, y2), got {t}")


def _index(t: TensorType, count, what: str, op: str, ctx) -> None:
    if t.rank != 1 or not t.dtype.startswith("int"):
        raise OpError(f"{op} needs {what} as a [K] integer tensor, got {t}")
    same_dim(t.shape[0], count, ctx, f"{op}: {what} needs one entry per box")


def _sizes(t: TensorType, n, op: str, ctx) -> None:
    if t.rank != 2 or t.shape[1] != 2 or not t.dtype.startswith("int"):
        raise OpError(f"{op} needs the image sizes as an [N, 2] integer tensor (height, width after resizing), "
                      f"got {t}", "take them from the transform: 'from: [..., transform.sizes, ...]'")
    same_dim(t.shape[0], n, ctx, f"{op}: one image size per image of the batch")


def _levels(ins: list, start: int, op: str, ctx) -> list:
    """The feature maps from input ``start`` on: [N, C, h, w] each, one batch and one channel count."""
    feats = ins[start:]
    if not feats:
        raise OpError(f"{op} needs at least one feature map after its first {start} inputs")
    for f in feats:
        need_float(f, op)
        need_rank(f, (4,), op, "(N, C, H, W) feature maps", "feature map")
        same_dim(f.shape[0], feats[0].shape[0], ctx, f"{op}: every level needs the same batch")
        same_dim(f.shape[1], feats[0].shape[1], ctx, f"{op}: every level needs the same channels")
    return feats


def _cells(feats) -> object:
    return norm(sum((norm(f.shape[2] * f.shape[3]) for f in feats), 0))


# -- the input transform ------------------------------------------------------------------------------------------

_CAT_PER_IMAGE = '''\
def cat_per_image(boxes):
    """Boxes per image (a list of (k, 4)) -> all boxes (K, 4) and the image of each (K,)."""
    image = [torch.full((len(b),), i, dtype=torch.int64, device=b.device) for i, b in enumerate(boxes)]
    return torch.cat(boxes), torch.cat(image)
'''


_TRANSFORM = '''\
class RCNNTransform(torchvision.models.detection.transform.GeneralizedRCNNTransform):
    """torchvision's detector transform on a batch: normalise, resize, pad to a multiple.

    Training with a detection context: the context's targets are resized with the images.
    """

    detection_context = None

    def forward(self, x):  # (N, 3, H, W) -> (N, 3, Hb, Wb) and the resized sizes (N, 2)
        ctx = self.detection_context
        if self.training and ctx is not None:
            images, ctx.targets = super().forward(list(x), ctx.targets)
        else:
            images, _ = super().forward(list(x))
        return images.tensors, torch.tensor(images.image_sizes, dtype=torch.int64, device=x.device)
'''


class TransformParams(Params):
    min_size: int = Field(800, ge=1, le=65536, description="resize so the shorter side is this long ...")
    max_size: int = Field(1333, ge=1, le=65536, description="... unless the longer side would pass this")
    mean: list[float] = Field([0.485, 0.456, 0.406], description="per-channel mean subtracted first")
    std: list[float] = Field([0.229, 0.224, 0.225], description="per-channel standard deviation divided by")
    size_divisible: int = Field(32, ge=1, le=1024, description="pad the batch to a multiple of this")

    @model_validator(mode="after")
    def _check(self):
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"mean and std need one value per channel each, got {len(self.mean)} and "
                             f"{len(self.std)}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        return self


def _resized_batch(h: int, w: int, p) -> tuple[int, int]:
    """The transform's batch size for (h, w) images, as torchvision computes it: the scale that brings the shorter
    side to min_size unless the longer would pass max_size (Python floats), interpolate's floor(size * scale), then
    each side rounded up to a multiple of size_divisible."""
    import math
    scale = min(p.min_size / min(h, w), p.max_size / max(h, w))
    hr, wr = math.floor(float(h) * scale), math.floor(float(w) * scale)
    d = p.size_divisible
    return int(math.ceil(float(hr) / d) * d), int(math.ceil(float(wr) / d) * d)


@register
class RCNNTransformOp(_DetectionOp):
    """Detector input transform: normalise, resize to min_size/max_size, pad the batch to a multiple (Hb, Wb).

    Training with a detection context: resizes the targets' boxes and masks with the images."""
    shape_rule = ("[N, C, H, W] -> images [N, C, Hb, Wb] (resized, padded to size_divisible; known "
                  "numbers at known H, W), sizes [N, 2] int64")

    name = "rcnn_transform"
    Params = TransformParams
    outputs = ("images", "sizes")
    torch_ref = "torchvision.models.detection.transform.GeneralizedRCNNTransform"
    cases = [({}, [(N, 3, H, W)], [(N, 3, "Hb", "Wb"), ((N, 2), "int64")]),
             ({"min_size": 16, "max_size": 24, "mean": [0.5], "std": [0.25], "size_divisible": 8},
              [(2, 1, 9, 14)], [(2, 1, 16, 24), ((2, 2), "int64")]),
             ({"min_size": 20, "max_size": 33, "size_divisible": 8}, [(1, 3, 7, 13)], [(1, 3, 24, 40), ((1, 2), "int64")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        need_rank(x, (4,), cls.name, "(N, C, H, W) images")
        c = need_int(x.shape[1], "number of channels", cls.name)
        if c != len(p.mean):
            raise OpError(f"{cls.name} has {len(p.mean)} mean/std values for {c} channels",
                          f"give one mean and one std per channel ({c} each)", param="mean")
        h, w = x.shape[2], x.shape[3]
        if isinstance(h, int) and isinstance(w, int):       # known sizes: the batch's size is known too
            hb, wb = _resized_batch(h, w, p)
        else:
            hb = data_dim(ctx.sym, "Hb", p.size_divisible)
            wb = data_dim(ctx.sym, "Wb", p.size_divisible)
        return [x.with_shape((x.shape[0], c, hb, wb)), TensorType((x.shape[0], 2), "int64")]

    @classmethod
    def constructor(cls, ins, p):
        kw = {"size_divisible": P(p, "size_divisible")} if given(p, "size_divisible") else {}
        return call("RCNNTransform", P(p, "min_size"), P(p, "max_size"), P(p, "mean"), P(p, "std"), **kw)

    @classmethod
    def helpers(cls):
        return {"RCNNTransform": _TRANSFORM}

    @classmethod
    def label(cls, p):
        return f"transform {p.min_size}-{p.max_size}"


# -- feature pyramid ------------------------------------------------------------------------------------------------

_FPN = '''\
class FeaturePyramid(torchvision.ops.FeaturePyramidNetwork):
    """torchvision's FPN on feature maps given finest first; pool=True adds a max-pooled level."""

    def __init__(self, in_channels, out_channels, pool=False):
        extra = torchvision.ops.feature_pyramid_network.LastLevelMaxPool() if pool else None
        super().__init__(list(in_channels), out_channels, extra_blocks=extra)

    def forward(self, *xs):  # (N, C_i, H_i, W_i) each -> (N, out, H_i, W_i) each
        return tuple(super().forward({str(k): x for k, x in enumerate(xs)}).values())
'''


class FPNParams(Params):
    out: int = Field(256, ge=1, description="channels of every output level")
    pool: bool = Field(False, description="add a level max-pooled (kernel 1, stride 2) from the coarsest output")


@register
class FeaturePyramidOp(_DetectionOp):
    """Feature pyramid (Lin et al. 2017) over levels given finest first: outputs out0, out1, ... (+ a pooled one)."""
    shape_rule = ("levels [N, C_i, H_i, W_i] (finest first) -> out_i [N, out, H_i, W_i], plus pool "
                  "[N, out, ceil(H_last/2), ceil(W_last/2)] when asked")

    name = "feature_pyramid"
    Params = FPNParams
    inputs = (In("levels", variadic=True),)
    outputs = tuple(f"out{k}" for k in range(9))
    torch_ref = "torchvision.ops.FeaturePyramidNetwork"
    cases = [({"out": 8}, [(N, 4, 2 * H, 2 * W), (N, 6, H, W)], [(N, 8, 2 * H, 2 * W), (N, 8, H, W)]),
             ({"out": 8, "pool": True}, [(N, 4, H, W), (N, 6, H, W)],
              [(N, 8, H, W), (N, 8, H, W), (N, 8, "ceil(H/2)", "ceil(W/2)")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        if len(ins) > 8:
            raise OpError(f"{cls.name} takes at most 8 levels, got {len(ins)}")
        for f in ins:
            need_float(f, cls.name)
            need_rank(f, (4,), cls.name, "(N, C, H, W) feature maps", "level")
            need_int(f.shape[1], "number of channels", cls.name)
            same_dim(f.shape[0], ins[0].shape[0], ctx, f"{cls.name}: every level needs the same batch")
        # each level adds the one above, upsampled to its own size: any sizes fit
        outs = [f.with_shape((f.shape[0], p.out) + f.shape[2:]) for f in ins]
        if p.pool:          # max pool, kernel 1, stride 2
            last = outs[-1]
            outs.append(last.with_shape(last.shape[:2] + tuple(ceildiv(d, 2, ctx.sym) for d in last.shape[2:])))
        return outs

    @classmethod
    def weights(cls, ins, p):
        w = {}
        for k, f in enumerate(ins):
            w[f"inner_blocks.{k}.0.weight"] = ((p.out, f.shape[1], 1, 1), "param")
            w[f"inner_blocks.{k}.0.bias"] = ((p.out,), "param")
        for k in range(len(ins)):
            w[f"layer_blocks.{k}.0.weight"] = ((p.out, p.out, 3, 3), "param")
            w[f"layer_blocks.{k}.0.bias"] = ((p.out,), "param")
        return w

    @classmethod
    def macs(cls, ins, outs, p):
        return norm(sum((norm(mul_all((f.shape[0],) + f.shape[2:]) * (f.shape[1] * p.out + 9 * p.out * p.out))
                         for f in ins), 0))

    @classmethod
    def constructor(cls, ins, p):
        kw = {"pool": P(p, "pool")} if given(p, "pool") else {}
        return call("FeaturePyramid", lit([f.shape[1] for f in ins]), P(p, "out"), **kw)

    @classmethod
    def helpers(cls):
        return {"FeaturePyramid": _FPN}

    @classmethod
    def label(cls, p):
        return f"FPN {p.out}" + (" +pool" if p.pool else "")


# -- the region proposal network ------------------------------------------------------------------------------------

_RPN_HEAD = '''\
class RPNHead(torchvision.models.detection.rpn.RPNHead):
    """torchvision's RPNHead on every level, flattened in anchor order: (N, A), (N, A, 4)."""

    def forward(self, *xs):  # levels (N, C, H_i, W_i)
        logits, deltas = super().forward(list(xs))
        objectness, boxes = torchvision.models.detection.rpn.concat_box_prediction_layers(logits, deltas)
        return objectness.reshape(xs[0].shape[0], -1), boxes.reshape(xs[0].shape[0], -1, 4)
'''


class RPNHeadParams(Params):
    anchors: int = Field(3, ge=1, le=64, description="anchors per location (sizes x aspect ratios of one level)")
    convs: int = Field(1, ge=1, le=8, description="3x3 conv + relu layers before the two predictors")


@register
class RPNHeadOp(_DetectionOp):
    """RPN head shared by every level (3x3 conv, relu, 1x1 objectness and box deltas), flattened: [N, A], [N, A, 4]."""
    shape_rule = ("levels [N, C, H_i, W_i] -> objectness [N, A], deltas [N, A, 4]; A = anchors per "
                  "cell x sum(H_i * W_i)")

    name = "rpn_head"
    Params = RPNHeadParams
    inputs = (In("levels", variadic=True),)
    outputs = ("objectness", "deltas")
    torch_ref = "torchvision.models.detection.rpn.RPNHead"
    cases = [({}, [(N, 8, H, W), (N, 8, 2, 3)], [(N, "3*H*W+18"), (N, "3*H*W+18", 4)]),
             ({"anchors": 2, "convs": 2}, [(N, 4, H, W)], [(N, 2 * H * W), (N, 2 * H * W, 4)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        feats = _levels(ins, 0, cls.name, ctx)
        need_int(feats[0].shape[1], "number of channels", cls.name)
        a = norm(p.anchors * _cells(feats))
        n = feats[0].shape[0]
        return [TensorType((n, a)), TensorType((n, a, 4))]

    @classmethod
    def weights(cls, ins, p):
        c = ins[0].shape[1]
        w = {}
        for k in range(p.convs):
            w[f"conv.{k}.0.weight"] = ((c, c, 3, 3), "param")
            w[f"conv.{k}.0.bias"] = ((c,), "param")
        w.update({"cls_logits.weight": ((p.anchors, c, 1, 1), "param"), "cls_logits.bias": ((p.anchors,), "param"),
                  "bbox_pred.weight": ((4 * p.anchors, c, 1, 1), "param"),
                  "bbox_pred.bias": ((4 * p.anchors,), "param")})
        return w

    @classmethod
    def macs(cls, ins, outs, p):
        c = ins[0].shape[1]
        return norm(ins[0].shape[0] * _cells(ins) * (p.convs * 9 * c * c + 5 * p.anchors * c))

    @classmethod
    def constructor(cls, ins, p):
        kw = {"conv_depth": P(p, "convs")} if given(p, "convs") else {}
        return call("RPNHead", lit(ins[0].shape[1], ("in", 0, 1)), P(p, "anchors"), **kw)

    @classmethod
    def helpers(cls):
        return {"RPNHead": _RPN_HEAD}

    @classmethod
    def label(cls, p):
        return f"RPN head x{p.anchors}"


_ANCHORS = '''\
class Anchors(torchvision.models.detection.anchor_utils.AnchorGenerator):
    """torchvision's AnchorGenerator: the anchors of one image, every level in order (A, 4)."""

    def forward(self, images, *levels):  # (N, 3, Hb, Wb), feature maps (N, C, H_i, W_i)
        one = torchvision.models.detection.image_list.ImageList(images[:1], [tuple(images.shape[-2:])])
        return super().forward(one, list(levels))[0]
'''


class AnchorParams(Params):
    sizes: list[list[float]] = Field(description="anchor sizes (pixels) of each level, e.g. [[32], [64], [128]]")
    aspect_ratios: list[list[float]] = Field(description="height/width ratios of each level, e.g. [[0.5, 1, 2]]*3")

    @model_validator(mode="after")
    def _check(self):
        if not self.sizes or len(self.sizes) != len(self.aspect_ratios):
            raise ValueError(f"sizes and aspect_ratios need one list per level each, got {len(self.sizes)} and "
                             f"{len(self.aspect_ratios)}")
        per = {len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios)}
        if 0 in per or len(per) != 1 or len(self.sizes) > 16 or max(per) > 64:
            raise ValueError("every level needs the same number (1 to 64) of anchors: sizes x aspect ratios")
        if any(v <= 0 for lv in self.sizes + self.aspect_ratios for v in lv):
            raise ValueError("sizes and aspect ratios must be positive")
        return self


@register
class AnchorsOp(_DetectionOp):
    """Anchor boxes of every level (sizes x aspect ratios at each cell), in the RPN head's order: [A, 4]."""
    shape_rule = ("images, levels [N, C, H_i, W_i] -> anchors [A, 4]; A = len(sizes_i) x "
                  "len(aspect_ratios) x sum(H_i * W_i)")

    name = "anchors"
    Params = AnchorParams
    inputs = (In("x", variadic=True, min_count=2),)
    torch_ref = "torchvision.models.detection.anchor_utils.AnchorGenerator"
    cases = [({"sizes": [[32], [64]], "aspect_ratios": [[0.5, 1.0, 2.0]] * 2},
              [(N, 3, 4 * H, 4 * W), (N, 8, 2 * H, 2 * W), (N, 8, H, W)], [("15*H*W", 4)]),
             ({"sizes": [[16, 32]], "aspect_ratios": [[1.0]]}, [(2, 3, 16, 16), (2, 4, 4, 4)], [(32, 4)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        img = ins[0]
        need_rank(img, (4,), cls.name, "the batched images (N, 3, Hb, Wb) first, then the levels", "input")
        feats = _levels(ins, 1, cls.name, ctx)
        if len(feats) != len(p.sizes):
            raise OpError(f"{cls.name} has sizes for {len(p.sizes)} levels but gets {len(feats)} feature maps",
                          "give one list of sizes and of aspect ratios per level, and the levels after the images",
                          param="sizes")
        per = len(p.sizes[0]) * len(p.aspect_ratios[0])
        return [TensorType((norm(per * _cells(feats)), 4))]

    @classmethod
    def constructor(cls, ins, p):
        return call("Anchors", P(p, "sizes"), P(p, "aspect_ratios"))

    @classmethod
    def helpers(cls):
        return {"Anchors": _ANCHORS}

    @classmethod
    def label(cls, p):
        return f"anchors x{len(p.sizes[0]) * len(p.aspect_ratios[0])}"


_DECODE = '''\
class BoxDecode(nn.Module):
    """torchvision's BoxCoder.decode: deltas (N, A, 4) on reference boxes (A, 4) -> (N, A, 4).

    Training with a detection context: records the deltas, the anchors and the coder for the
    RPN's loss.
    """

    detection_context = None

    def __init__(self, weights):
        super().__init__()
        self.coder = torchvision.models.detection._utils.BoxCoder(weights)

    def forward(self, deltas, boxes):
        if self.training and self.detection_context is not None:
            self.detection_context.rpn = (deltas, boxes, self.coder)
        n = deltas.shape[0]
        return self.coder.decode_single(deltas.reshape(-1, 4), boxes.repeat(n, 1)).reshape(n, -1, 4)
'''


class DecodeParams(Params):
    weights: list[float] = Field([1.0, 1.0, 1.0, 1.0], description="BoxCoder weights (wx, wy, ww, wh)")

    @model_validator(mode="after")
    def _check(self):
        if len(self.weights) != 4 or any(v <= 0 for v in self.weights):
            raise ValueError(f"weights needs 4 positive values (wx, wy, ww, wh), got {self.weights}")
        return self


@register
class BoxDecodeOp(_DetectionOp):
    """Apply box deltas [N, A, 4] to reference boxes [A, 4] (anchors): boxes [N, A, 4] (torchvision's BoxCoder).

    Training with a detection context: records the deltas and anchors, which rpn_proposals' loss reads."""
    shape_rule = "deltas [N, A, 4], boxes [A, 4] -> boxes [N, A, 4]"

    name = "box_decode"
    Params = DecodeParams
    inputs = (In("deltas"), In("boxes"))
    torch_ref = "torchvision.models.detection._utils.BoxCoder"
    cases = [({}, [(N, T, 4), (T, 4)], [(N, T, 4)]), ({"weights": [10, 10, 5, 5]}, [(2, 7, 4), (7, 4)], [(2, 7, 4)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        d, b = ins
        need_float(d, cls.name)
        if d.rank != 3 or d.shape[2] != 4:
            raise OpError(f"{cls.name} needs deltas as [N, A, 4], got {d}")
        _boxes(b, "the reference boxes", cls.name)
        same_dim(d.shape[1], b.shape[0], ctx, f"{cls.name}: one reference box per delta",
                 "the anchors and the RPN head need the same levels, and the head's 'anchors' must be the anchors "
                 "per cell (sizes x aspect ratios of a level)")
        return [d]

    @classmethod
    def constructor(cls, ins, p):
        return call("BoxDecode", P(p, "weights"))

    @classmethod
    def helpers(cls):
        return {"BoxDecode": _DECODE}

    @classmethod
    def label(cls, p):
        return "decode boxes"


_PROPOSALS = '''\
class RPNProposals(torchvision.models.detection.rpn.RegionProposalNetwork):
    """torchvision's RPN proposal selection: top-n per level, clip, drop small/low boxes, NMS.

    Returns the boxes of all images (R, 4) and the image of each (R,); no gradient flows back.
    Training with a detection context: also the RPN losses (loss_objectness, loss_rpn_box_reg)
    from the deltas and anchors that box_decode recorded, anchors sampled as torchvision does.
    """

    detection_context = None

    def __init__(self, pre_nms_top_n, post_nms_top_n, nms_thresh=0.7, score_thresh=0.0, min_size=1e-3,
                 fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256, positive_fraction=0.5):
        pre = {"training": pre_nms_top_n[0], "testing": pre_nms_top_n[1]}
        post = {"training": post_nms_top_n[0], "testing": post_nms_top_n[1]}
        super().__init__(None, None, fg_iou_thresh, bg_iou_thresh, batch_size_per_image, positive_fraction, pre,
                         post, nms_thresh, score_thresh)
        self.min_size = min_size

    def forward(self, boxes, objectness, sizes, *levels):  # (N, A, 4), (N, A), (N, 2), levels
        cells = [level.shape[-2] * level.shape[-1] for level in levels]
        per_cell = objectness.shape[1] // sum(cells)
        image_sizes = [tuple(s) for s in sizes.clamp(min=1).tolist()]
        counts = [c * per_cell for c in cells]
        kept, _ = self.filter_proposals(boxes.detach(), objectness, image_sizes, counts)
        ctx = self.detection_context
        if self.training and ctx is not None:
            if ctx.rpn is None:
                raise ValueError("rpn_proposals trains on the deltas and anchors that a box_decode step records")
            deltas, anchors, coder = ctx.rpn
            anchors = [anchors] * len(kept)
            labels, matched = self.assign_targets_to_anchors(anchors, ctx.targets)
            ctx.losses["loss_objectness"], ctx.losses["loss_rpn_box_reg"] = self.compute_loss(
                objectness.reshape(-1, 1), deltas.reshape(-1, 4), labels, coder.encode(matched, anchors))
        return cat_per_image(kept)
'''


def _iou_order(p) -> None:
    """A sampler's thresholds: background below bg_iou_thresh, foreground from fg_iou_thresh, so bg <= fg."""
    if p.bg_iou_thresh > p.fg_iou_thresh:
        raise ValueError(f"bg_iou_thresh ({p.bg_iou_thresh}) must not exceed fg_iou_thresh ({p.fg_iou_thresh})")


class ProposalParams(Params):
    pre_nms_top_n: list[int] = Field([2000, 1000], description="best boxes kept per level before NMS "
                                                               "(training, evaluation)")
    post_nms_top_n: list[int] = Field([2000, 1000], description="boxes kept per image after NMS (training, "
                                                                "evaluation)")
    nms_thresh: float = Field(0.7, ge=0, le=1, description="IoU above which NMS removes the lower box")
    score_thresh: float = Field(0.0, ge=0, le=1, description="drop boxes with a lower objectness probability")
    min_size: float = Field(1e-3, ge=0, description="drop boxes narrower or lower than this (pixels)")
    fg_iou_thresh: float = Field(0.7, ge=0, le=1, description="training: anchors with this IoU to a target are "
                                                               "positive")
    bg_iou_thresh: float = Field(0.3, ge=0, le=1, description="training: anchors below this IoU are negative")
    batch_size_per_image: int = Field(256, ge=1, le=100000, description="training: anchors sampled per image")
    positive_fraction: float = Field(0.5, gt=0, le=1, description="training: at most this share of them positive")

    @model_validator(mode="after")
    def _check(self):
        _iou_order(self)
        for f in ("pre_nms_top_n", "post_nms_top_n"):
            v = getattr(self, f)
            if len(v) != 2 or any(k < 1 for k in v):
                raise ValueError(f"{f} needs two positive counts (training, evaluation), got {v}")
        return self


@register
class RPNProposalsOp(_DetectionOp):
    """RPN proposals from decoded boxes, objectness, image sizes and the levels: boxes [R, 4], image [R].

    Training with a detection context: also the RPN losses (loss_objectness, loss_rpn_box_reg), anchors matched
    at fg/bg_iou_thresh and sampled batch_size_per_image per image, as torchvision's RegionProposalNetwork."""
    shape_rule = ("boxes [N, A, 4], objectness [N, A], sizes [N, 2], levels -> boxes [R, 4], image "
                  "[R] int64 (R known when it runs)")

    name = "rpn_proposals"
    Params = ProposalParams
    inputs = (In("x", variadic=True, min_count=4),)
    outputs = ("boxes", "image")
    torch_ref = "torchvision.models.detection.rpn.RegionProposalNetwork"
    cases = [({"pre_nms_top_n": [20, 10], "post_nms_top_n": [8, 6]},
              [(N, 60, 4), (N, 60), ((N, 2), "int64"), (N, 8, 4, 4), (N, 8, 2, 2)],
              [("R", 4), (("R",), "int64")]),
             ({"pre_nms_top_n": [5, 5], "post_nms_top_n": [4, 4], "nms_thresh": 0.5, "score_thresh": 0.1},
              [(2, 24, 4), (2, 24), ((2, 2), "int64"), (2, 4, 3, 4)], [("R", 4), (("R",), "int64")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        b, o, s = ins[:3]
        need_float(b, cls.name)
        if b.rank != 3 or b.shape[2] != 4:
            raise OpError(f"{cls.name} needs the decoded boxes first, as [N, A, 4], got {b}")
        need_float(o, cls.name)
        if o.rank != 2:
            raise OpError(f"{cls.name} needs the objectness second, as [N, A], got {o}")
        same_dim(o.shape[0], b.shape[0], ctx, f"{cls.name}: boxes and objectness need the same batch")
        same_dim(o.shape[1], b.shape[1], ctx, f"{cls.name}: one objectness score per box")
        _sizes(s, b.shape[0], cls.name, ctx)
        feats = _levels(ins, 3, cls.name, ctx)
        cells = _cells(feats)
        for per in range(1, 65):
            if norm(per * cells) == norm(b.shape[1]):
                break
        else:
            raise OpError(f"{cls.name}: {b.shape[1]} boxes are not a whole number of anchors per cell of the "
                          f"levels ({cells} cells)", "give the same levels as the anchors and the RPN head")
        r = data_dim(ctx.sym, "R")
        return [TensorType((r, 4)), TensorType((r,), "int64")]

    @classmethod
    def constructor(cls, ins, p):
        kw = {k: P(p, k) for k in ("nms_thresh", "score_thresh", "min_size", "fg_iou_thresh", "bg_iou_thresh",
                                   "batch_size_per_image", "positive_fraction") if given(p, k)}
        return call("RPNProposals", P(p, "pre_nms_top_n"), P(p, "post_nms_top_n"), **kw)

    @classmethod
    def helpers(cls):
        return {"cat_per_image": _CAT_PER_IMAGE, "RPNProposals": _PROPOSALS}

    @classmethod
    def label(cls, p):
        return f"proposals nms {p.nms_thresh}"


# -- RoI heads ------------------------------------------------------------------------------------------------------

_ROI_ALIGN = '''\
class RoIAlignLevels(torchvision.ops.MultiScaleRoIAlign):
    """torchvision's MultiScaleRoIAlign: each box pooled from the level its size maps to."""

    def __init__(self, levels, output_size, sampling_ratio):
        super().__init__([str(k) for k in range(levels)], output_size, sampling_ratio)

    def forward(self, boxes, image, sizes, *levels):  # (K, 4), (K,), (N, 2), maps (N, C, H_i, W_i)
        n = levels[0].shape[0]
        if len(image) and (image.min() < 0 or image.max() >= n):
            raise ValueError(f"box image indices must lie in [0, {n}), got {image.min()} to {image.max()}")
        order = torch.argsort(image, stable=True)
        per_image = [boxes[order][image[order] == i] for i in range(n)]
        self.scales = None  # the level scales follow this batch's sizes
        maps = {str(k): level for k, level in enumerate(levels)}
        pooled = super().forward(maps, per_image, [tuple(s) for s in sizes.clamp(min=1).tolist()])
        return pooled[torch.argsort(order)]  # (K, C, output_size, output_size)
'''


class RoIAlignParams(Params):
    output_size: int = Field(7, ge=1, le=256, description="pooled height and width")
    sampling_ratio: int = Field(2, ge=-1, le=64, description="sampling points per bin side (-1: adaptive)")


@register
class MultiScaleRoIAlignOp(_DetectionOp):
    """RoIAlign from several levels: boxes [K, 4], image [K], sizes [N, 2], then the levels -> [K, C, s, s]."""
    shape_rule = ("boxes [K, 4], image [K], sizes [N, 2], levels [N, C, H_i, W_i] -> [K, C, "
                  "output_size, output_size]")

    name = "multiscale_roi_align"
    Params = RoIAlignParams
    inputs = (In("x", variadic=True, min_count=4),)
    torch_ref = "torchvision.ops.MultiScaleRoIAlign"
    cases = [({}, [(T, 4), ((T,), "int64"), ((4, 2), "int64"), (4, C, H, W), (4, C, 4, 3)], [(T, C, 7, 7)]),
             ({"output_size": 14, "sampling_ratio": 0}, [(5, 4), ((5,), "int64"), ((4, 2), "int64"),
                                                         (4, 8, H, W)], [(5, 8, 14, 14)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        b, i, s = ins[:3]
        _boxes(b, "the boxes first", cls.name)
        _index(i, b.shape[0], "the image index (second)", cls.name, ctx)
        feats = _levels(ins, 3, cls.name, ctx)
        _sizes(s, feats[0].shape[0], cls.name, ctx)
        return [TensorType((b.shape[0], feats[0].shape[1], p.output_size, p.output_size), feats[0].dtype)]

    @classmethod
    def constructor(cls, ins, p):
        return call("RoIAlignLevels", lit(len(ins) - 3), P(p, "output_size"), P(p, "sampling_ratio"))

    @classmethod
    def helpers(cls):
        return {"RoIAlignLevels": _ROI_ALIGN}

    @classmethod
    def label(cls, p):
        return f"RoIAlign {p.output_size}x{p.output_size}"


_SAMPLE = '''\
class RoISample(torchvision.models.detection.roi_heads.RoIHeads):
    """The proposals as they are; in training with a detection context, torchvision's
    select_training_samples: the targets' boxes added, proposals matched and sampled, labels and
    matched targets recorded."""

    detection_context = None

    def __init__(self, fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=512, positive_fraction=0.25):
        super().__init__(None, None, None, fg_iou_thresh, bg_iou_thresh, batch_size_per_image, positive_fraction,
                         None, 0.05, 0.5, 100)

    def forward(self, boxes, image):  # (R, 4), (R,) -> (P, 4), (P,)
        ctx = self.detection_context
        if not self.training or ctx is None:
            return boxes, image
        proposals = [boxes[image == i] for i in range(len(ctx.targets))]
        proposals, matched, labels, _ = self.select_training_samples(proposals, ctx.targets)
        gt = [t["boxes"] if t["boxes"].numel() else boxes.new_zeros((1, 4)) for t in ctx.targets]
        ctx.sample = (proposals, matched, labels, [g[m] for g, m in zip(gt, matched)])
        return cat_per_image(proposals)
'''


class SampleParams(Params):
    fg_iou_thresh: float = Field(0.5, ge=0, le=1, description="training: proposals with this IoU to a target are "
                                                               "positive")
    bg_iou_thresh: float = Field(0.5, ge=0, le=1, description="training: proposals below this IoU are background")
    batch_size_per_image: int = Field(512, ge=1, le=100000, description="training: proposals sampled per image")
    positive_fraction: float = Field(0.25, gt=0, le=1, description="training: at most this share of them positive")

    @model_validator(mode="after")
    def _check(self):
        _iou_order(self)
        return self


@register
class RoISampleOp(_DetectionOp):
    """Proposals for the RoI heads: boxes [R, 4], image [R] as they are (eval, or no detection context).

    Training with a detection context: the targets' boxes added, then proposals sampled (batch_size_per_image per
    image, at most positive_fraction positive, fg/bg_iou_thresh), as torchvision's select_training_samples; the
    labels and matched targets are kept for box_postprocess's loss."""
    shape_rule = "boxes [R, 4], image [R] -> boxes [P, 4], image [P] int64 (P = R, or the sampled count in training)"

    name = "roi_sample"
    Params = SampleParams
    inputs = (In("boxes"), In("image"))
    outputs = ("boxes", "image")
    torch_ref = "torchvision.models.detection.roi_heads.RoIHeads.select_training_samples"
    cases = [({}, [(T, 4), ((T,), "int64")], [("P", 4), (("P",), "int64")]),
             ({"batch_size_per_image": 64, "positive_fraction": 0.5}, [(9, 4), ((9,), "int64")],
              [("P", 4), (("P",), "int64")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        b, i = ins
        _boxes(b, "the proposals first", cls.name)
        _index(i, b.shape[0], "the image index (second)", cls.name, ctx)
        s = data_dim(ctx.sym, "P")
        return [b.with_shape((s, 4)), TensorType((s,), "int64")]

    @classmethod
    def constructor(cls, ins, p):
        keys = ("fg_iou_thresh", "bg_iou_thresh", "batch_size_per_image", "positive_fraction")
        return call("RoISample", **{k: P(p, k) for k in keys if given(p, k)})

    @classmethod
    def helpers(cls):
        return {"cat_per_image": _CAT_PER_IMAGE, "RoISample": _SAMPLE}

    @classmethod
    def label(cls, p):
        return "sample RoIs"


_DETECTIONS = '''\
class BoxPostprocess(torchvision.models.detection.roi_heads.RoIHeads):
    """torchvision's postprocess_detections: decode, softmax, clip, threshold, NMS per class.

    Training with a detection context: fastrcnn_loss against roi_sample's labels and matched
    targets; the outputs are then the positive sampled proposals with their targets' labels (what
    Mask R-CNN's mask branch trains on).
    """

    detection_context = None

    def __init__(self, weights, score_thresh=0.05, nms_thresh=0.5, detections=100):
        super().__init__(None, None, None, 0.5, 0.5, 512, 0.25, weights, score_thresh, nms_thresh, detections)

    def forward(self, logits, deltas, boxes, image, sizes):  # (R, C), (R, 4C), (R, 4), (R,), (N, 2)
        n = sizes.shape[0]
        if len(image) and (image.min() < 0 or image.max() >= n):
            raise ValueError(f"box image indices must lie in [0, {n}), got {image.min()} to {image.max()}")
        order = torch.argsort(image, stable=True)
        logits, deltas, boxes, image = logits[order], deltas[order], boxes[order], image[order]
        ctx = self.detection_context
        if self.training and ctx is not None:
            return self.train_forward(logits, deltas, boxes, image, ctx)
        proposals = [boxes[image == i] for i in range(n)]
        image_sizes = [tuple(s) for s in sizes.clamp(min=1).tolist()]
        boxes, scores, labels = self.postprocess_detections(logits, deltas, proposals, image_sizes)
        boxes, image = cat_per_image(boxes)
        return boxes, torch.cat(scores), torch.cat(labels), image

    def train_forward(self, logits, deltas, boxes, image, ctx):
        if ctx.sample is None:
            raise ValueError("box_postprocess trains on the labels that a roi_sample step records")
        proposals, matched, labels, matched_boxes = ctx.sample
        targets = self.box_coder.encode(matched_boxes, proposals)
        ctx.losses["loss_classifier"], ctx.losses["loss_box_reg"] = \
            torchvision.models.detection.roi_heads.fastrcnn_loss(logits, deltas, labels, targets)
        ctx.positives = ([p[k > 0] for p, k in zip(proposals, labels)], [m[k > 0] for m, k in zip(matched, labels)])
        labels = torch.cat(labels)
        pos = labels > 0
        scores = logits.detach().softmax(-1).gather(1, labels[:, None])[:, 0]
        return boxes[pos], scores[pos], labels[pos], image[pos]
'''


class DetectionParams(Params):
    weights: list[float] = Field([10.0, 10.0, 5.0, 5.0], description="BoxCoder weights (wx, wy, ww, wh)")
    score_thresh: float = Field(0.05, ge=0, le=1, description="drop detections scoring this or less")
    nms_thresh: float = Field(0.5, ge=0, le=1, description="IoU above which NMS (per class) drops a box")
    detections: int = Field(100, ge=1, le=100000, description="detections kept per image")

    @model_validator(mode="after")
    def _check(self):
        if len(self.weights) != 4 or any(v <= 0 for v in self.weights):
            raise ValueError(f"weights needs 4 positive values (wx, wy, ww, wh), got {self.weights}")
        return self


@register
class BoxPostprocessOp(_DetectionOp):
    """Detections from class logits, per-class deltas, proposals, their image and the sizes: [K, 4], [K], [K], [K].

    Training with a detection context: fastrcnn_loss (loss_classifier, loss_box_reg) against roi_sample's labels
    and matched targets, encoded with this op's weights; the outputs are then the positive sampled proposals, their
    targets' labels and the probability of that label (what Mask R-CNN's mask branch trains on)."""
    shape_rule = ("logits [R, classes], deltas [R, 4 * classes], boxes [R, 4], image [R], sizes [N, "
                  "2] -> boxes [K, 4], scores [K], labels [K] int64, image [K] int64")

    name = "box_postprocess"
    Params = DetectionParams
    inputs = (In("logits"), In("deltas"), In("boxes"), In("image"), In("sizes"))
    outputs = ("boxes", "scores", "labels", "image")
    torch_ref = "torchvision.models.detection.roi_heads.RoIHeads.postprocess_detections"
    cases = [({}, [(T, 5), (T, 20), (T, 4), ((T,), "int64"), ((4, 2), "int64")],
              [("K", 4), ("K",), (("K",), "int64"), (("K",), "int64")]),
             ({"score_thresh": 0.0, "nms_thresh": 0.3, "detections": 3, "weights": [1, 1, 1, 1]},
              [(6, 3), (6, 12), (6, 4), ((6,), "int64"), ((4, 2), "int64")],
              [("K", 4), ("K",), (("K",), "int64"), (("K",), "int64")])]

    @classmethod
    def infer(cls, ins, p, ctx):
        lg, d, b, i, s = ins
        need_float(lg, cls.name)
        if lg.rank != 2:
            raise OpError(f"{cls.name} needs class logits as [R, classes], got {lg}")
        classes = need_int(lg.shape[1], "number of classes", cls.name)
        if classes < 2:
            raise OpError(f"{cls.name} needs at least 2 classes (background is class 0), got {classes}")
        need_float(d, cls.name)
        if d.rank != 2:
            raise OpError(f"{cls.name} needs box deltas as [R, 4 * classes], got {d}")
        same_dim(d.shape[1], 4 * classes, ctx, f"{cls.name}: 4 box deltas per class")
        _boxes(b, "the proposals", cls.name)
        for t in (d, b):
            same_dim(t.shape[0], lg.shape[0], ctx, f"{cls.name}: one row per proposal")
        _index(i, lg.shape[0], "the image index", cls.name, ctx)
        if s.rank != 2 or s.shape[1] != 2 or not s.dtype.startswith("int"):
            raise OpError(f"{cls.name} needs the image sizes as an [N, 2] integer tensor, got {s}")
        k = data_dim(ctx.sym, "K")
        return [TensorType((k, 4), lg.dtype), TensorType((k,), lg.dtype), TensorType((k,), "int64"),
                TensorType((k,), "int64")]

    @classmethod
    def constructor(cls, ins, p):
        kw = {k: P(p, k) for k in ("score_thresh", "nms_thresh", "detections") if given(p, k)}
        return call("BoxPostprocess", P(p, "weights"), **kw)

    @classmethod
    def forward(cls, ins, p):
        return module_call(*[Operand(k) for k in range(5)])

    @classmethod
    def helpers(cls):
        return {"cat_per_image": _CAT_PER_IMAGE, "BoxPostprocess": _DETECTIONS}

    @classmethod
    def label(cls, p):
        return f"detections top {p.detections}"


def _rescale_types(b, i, s, x, op, ctx):
    _boxes(b, "the boxes first", op)
    _index(i, b.shape[0], "the image index (second)", op, ctx)
    need_rank(x, (4,), op, "the original images (N, C, H, W) last", "input")
    _sizes(s, x.shape[0], op, ctx)


@register
class RescaleBoxesOp(_DetectionOp):
    """Boxes [K, 4] from the resized batch back to the original images (boxes, image, sizes, original images)."""
    shape_rule = ("boxes [K, 4], image [K], sizes [N, 2], original [N, C, H, W] -> boxes [K, 4] in "
                  "the original images' pixels")

    name = "rescale_boxes"
    inputs = (In("boxes"), In("image"), In("sizes"), In("original"))
    torch_ref = "torchvision.models.detection.transform.resize_boxes"
    cases = [({}, [(T, 4), ((T,), "int64"), ((4, 2), "int64"), (4, 3, H, W)], [(T, 4)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        _rescale_types(*ins, cls.name, ctx)
        return [ins[0]]

    @classmethod
    def forward(cls, ins, p):
        return call("rescale_boxes", Operand(0), Operand(1), Operand(2), Operand(3))

    @classmethod
    def helpers(cls):
        return {"rescale_boxes": '''\
def rescale_boxes(boxes, image, sizes, original):
    """Boxes (K, 4) on the resized batch -> on the original images (torchvision's resize_boxes)."""
    if len(image) and (image.min() < 0 or image.max() >= len(sizes)):
        raise ValueError(f"box image indices must lie in [0, {len(sizes)}), got {image.min()} to {image.max()}")
    s = sizes.clamp(min=1)[image].to(boxes.dtype)  # (K, 2): each box's resized image size
    h, w = (torch.tensor(v, dtype=boxes.dtype, device=boxes.device) for v in original.shape[-2:])
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack((x1 * (w / s[:, 1]), y1 * (h / s[:, 0]), x2 * (w / s[:, 1]), y2 * (h / s[:, 0])), dim=1)
'''}

    @classmethod
    def label(cls, p):
        return "rescale boxes"


_MASKS = '''\
class PasteMasks(nn.Module):
    """Mask R-CNN's masks: each box's own class (sigmoid), pasted into the image (K, 1, H, W).

    Training with a detection context: also maskrcnn_loss against the targets' masks of the
    positive proposals that box_postprocess recorded.
    """

    detection_context = None

    def forward(self, logits, labels, boxes, original):
        ctx = self.detection_context
        if self.training and ctx is not None:
            if ctx.positives is None:
                raise ValueError("paste_masks trains on the positive proposals that box_postprocess records")
            proposals, matched = ctx.positives
            ctx.losses["loss_mask"] = torchvision.models.detection.roi_heads.maskrcnn_loss(
                logits, proposals, [t["masks"] for t in ctx.targets], [t["labels"] for t in ctx.targets], matched)
        return paste_masks(logits, labels, boxes, original)


def paste_masks(logits, labels, boxes, original):
    """Each box's mask of its own class (sigmoid), pasted into the image (K, 1, H, W)."""
    if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got {labels.min()} to {labels.max()}")
    h, w = original.shape[-2:]
    x1, y1, x2, y2 = boxes.unbind(1)  # ordered corners inside the image (a detector's boxes already are)
    boxes = torch.stack((torch.minimum(x1, x2).clamp(0, w), torch.minimum(y1, y2).clamp(0, h),
                         torch.maximum(x1, x2).clamp(0, w), torch.maximum(y1, y2).clamp(0, h)), dim=1)
    probs = torchvision.models.detection.roi_heads.maskrcnn_inference(logits, [labels])[0]
    return torchvision.models.detection.roi_heads.paste_masks_in_image(probs, boxes, (h, w))
'''


@register
class PasteMasksOp(_DetectionOp):
    """Mask probabilities of each box's class, pasted into the original image: [K, classes, s, s] -> [K, 1, H, W].

    Training with a detection context: also maskrcnn_loss (loss_mask) of these logits against the targets' masks
    of the positive proposals that box_postprocess recorded."""
    shape_rule = ("logits [K, classes, s, s], labels [K], boxes [K, 4], original [N, C, H, W] -> "
                  "masks [K, 1, H, W]")

    name = "paste_masks"
    inputs = (In("logits"), In("labels"), In("boxes"), In("original"))
    torch_ref = "torchvision.models.detection.roi_heads.paste_masks_in_image"
    cases = [({}, [(T, 4, 6, 6), ((T,), "int64"), (T, 4), (N, 3, H, W)], [(T, 1, H, W)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        lg, lb, b, x = ins
        need_float(lg, cls.name)
        need_rank(lg, (4,), cls.name, "mask logits (K, classes, s, s)", "input")
        _index(lb, lg.shape[0], "the labels", cls.name, ctx)
        _boxes(b, "the boxes (on the original images)", cls.name)
        same_dim(b.shape[0], lg.shape[0], ctx, f"{cls.name}: one box per mask")
        need_rank(x, (4,), cls.name, "the original images (N, C, H, W) last", "input")
        return [lg.with_shape((lg.shape[0], 1) + x.shape[2:])]

    @classmethod
    def constructor(cls, ins, p):
        return call("PasteMasks")

    @classmethod
    def helpers(cls):
        return {"PasteMasks": _MASKS}

    @classmethod
    def label(cls, p):
        return "paste masks"
