"""Normalisation: batch, layer, group, instance, RMS and local response normalisation."""
from __future__ import annotations

from typing import Optional, Union

from pydantic import Field, field_validator

from .base import Op, OpError, Params, register, need_float, need_int, need_rank
from ..codegen.ir import P, Tuple, call, lit
from ..shapes import Dim, mul_all

N, C, T, L, D, H, W = (Dim.sym(s) for s in "NCTLDHW")

LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _channels(x, op: str) -> int:
    return need_int(x.shape[1], "number of channels (dim 1)", op)


def _stats(c: int, affine: bool, track: bool) -> dict:
    """The state of torch's _NormBase: weight/bias when affine, running statistics when tracked."""
    w = {}
    if affine:
        w["weight"] = ((c,), "param")
        w["bias"] = ((c,), "param")
    if track:
        w["running_mean"] = ((c,), "buffer")
        w["running_var"] = ((c,), "buffer")
        w["num_batches_tracked"] = ((), "buffer")
    return w


def _kwargs(p, defaults: dict) -> dict:
    """{name: value} for each field of p that differs from torch's default (fields named as in torch)."""
    return {k: P(p, k) for k, d in defaults.items() if getattr(p, k) != d}


def _channels_lit(x):
    """The channel count (dim 1) of input 0, as a literal that remembers where it came from."""
    return lit(x.shape[1], ("in", 0, 1))


class _NormOp(Op):
    family = "norm"
    shape_rule = "same shape as the input; statistics over the normalised dims"

    @classmethod
    def keeps(cls, p, rank):
        return rank

    @classmethod
    def macs(cls, ins, outs, p):
        return 0

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__doc__ and "doc" not in cls.__dict__:
            cls.doc = cls.__doc__.strip().split("\n")[0]


# -- batch norm and instance norm ------------------------------------------------------------------

class BatchNormParams(Params):
    eps: float = Field(1e-5, gt=0, description="added to the variance for numerical stability")
    momentum: Optional[float] = Field(0.1, ge=0, le=1,
                                      description="weight of the newest batch in the running statistics "
                                                  "(null: a cumulative average)")
    affine: bool = Field(True, description="learn a per-channel scale (weight) and shift (bias)")
    track_running_stats: bool = Field(True, description="keep running mean/var for evaluation")


class InstanceNormParams(BatchNormParams):
    affine: bool = Field(False, description="learn a per-channel scale (weight) and shift (bias)")
    track_running_stats: bool = Field(False, description="keep running mean/var for evaluation "
                                                         "(default: use each instance's statistics)")


class _StatNorm(_NormOp):
    """Per-channel normalisation with optional running statistics (BatchNorm/InstanceNorm)."""
    dims = 2
    ranks: tuple = (4,)
    torch_cls = "BatchNorm2d"
    defaults = {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        need_rank(x, cls.ranks, cls.name, "(N, C) or (N, C, L)" if cls.ranks == (2, 3) else LAYOUTS[cls.dims])
        _channels(x, cls.name)
        return [x]

    @classmethod
    def weights(cls, ins, p):
        return _stats(ins[0].shape[1], p.affine, p.track_running_stats)

    @classmethod
    def constructor(cls, ins, p):
        return call(f"nn.{cls.torch_cls}", _channels_lit(ins[0]), **_kwargs(p, cls.defaults))


class _BatchNorm(_StatNorm):
    backward_needs_output = False
    Params = BatchNormParams
    shape_rule = "same shape as the input [N, C, *]; C must be a fixed number (one mean/variance per channel)"

    @classmethod
    def label(cls, p):
        return "bn"


@register
class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features or (N, C, L) sequences."""
    name = "batchnorm1d"
    dims = 1
    ranks = (2, 3)
    torch_cls = "BatchNorm1d"
    torch_ref = "torch.nn.BatchNorm1d"
    cases = [({}, [(N, 64)], [(N, 64)]), ({"eps": 1e-3, "momentum": None, "affine": False}, [(N, 64, L)], [(N, 64, L)])]


@register
class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W): per-channel statistics over N, H, W."""
    name = "batchnorm2d"
    aliases = ("batchnorm",)
    dims = 2
    ranks = (4,)
    torch_cls = "BatchNorm2d"
    torch_ref = "torch.nn.BatchNorm2d"
    cases = [({}, [(N, 64, H, W)], [(N, 64, H, W)]),
             ({"momentum": 0.01, "track_running_stats": False}, [(N, 8, H, W)], [(N, 8, H, W)])]


@register
class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W)."""
    name = "batchnorm3d"
    dims = 3
    ranks = (5,)
    torch_cls = "BatchNorm3d"
    torch_ref = "torch.nn.BatchNorm3d"
    cases = [({}, [(N, 16, D, H, W)], [(N, 16, D, H, W)]), ({"affine": False}, [(N, 4, 3, 5, 5)], [(N, 4, 3, 5, 5)])]


class FrozenBatchNormParams(Params):
    eps: float = Field(1e-5, gt=0, description="added to the variance for numerical stability")


@register
class FrozenBatchNorm2d(_NormOp):
    """Batch normalisation with fixed statistics and affine parameters, all buffers (detectors' backbones)."""
    name = "frozen_batchnorm2d"
    Params = FrozenBatchNormParams
    torch_ref = "torchvision.ops.FrozenBatchNorm2d"
    backward_needs_output = False
    cases = [({}, [(N, 64, H, W)], [(N, 64, H, W)]), ({"eps": 1e-3}, [(N, 8, 5, 5)], [(N, 8, 5, 5)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        need_rank(x, (4,), cls.name, LAYOUTS[2])
        _channels(x, cls.name)
        return [x]

    @classmethod
    def weights(cls, ins, p):
        c = ins[0].shape[1]
        return {k: ((c,), "buffer") for k in ("weight", "bias", "running_mean", "running_var")}

    @classmethod
    def constructor(cls, ins, p):
        kw = {"eps": P(p, "eps")} if p.eps != 1e-5 else {}
        return call("torchvision.ops.FrozenBatchNorm2d", _channels_lit(ins[0]), **kw)

    @classmethod
    def label(cls, p):
        return "frozen bn"


class _InstanceNorm(_StatNorm):
    Params = InstanceNormParams
    shape_rule = "same shape as the input [N, C, *]; normalised per sample and channel"
    defaults = {"eps": 1e-5, "momentum": 0.1, "affine": False, "track_running_stats": False}

    @classmethod
    def infer(cls, ins, p, ctx):
        x = super().infer(ins, p, ctx)[0]
        n = mul_all(x.shape[2:])
        if isinstance(n, int) and n == 1:
            raise OpError(f"{cls.name} of {x}: each instance has one value per channel, so its variance is 0",
                          "apply it before the spatial size is reduced to 1, or use batch/layer norm")
        return [x]

    @classmethod
    def label(cls, p):
        return "instnorm"


@register
class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L): statistics per sample and channel."""
    name = "instancenorm1d"
    dims = 1
    ranks = (3,)
    torch_cls = "InstanceNorm1d"
    torch_ref = "torch.nn.InstanceNorm1d"
    cases = [({}, [(N, 16, L)], [(N, 16, L)]),
             ({"affine": True, "track_running_stats": True}, [(N, 8, L)], [(N, 8, L)])]


@register
class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W): statistics per sample and channel (style transfer)."""
    name = "instancenorm2d"
    aliases = ("instancenorm",)
    dims = 2
    ranks = (4,)
    torch_cls = "InstanceNorm2d"
    torch_ref = "torch.nn.InstanceNorm2d"
    cases = [({}, [(N, 64, H, W)], [(N, 64, H, W)]), ({"affine": True, "eps": 1e-3}, [(N, 64, H, W)], [(N, 64, H, W)])]


@register
class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W)."""
    name = "instancenorm3d"
    dims = 3
    ranks = (5,)
    torch_cls = "InstanceNorm3d"
    torch_ref = "torch.nn.InstanceNorm3d"
    cases = [({"affine": True}, [(N, 4, D, H, W)], [(N, 4, D, H, W)])]


# -- layer norm and RMS norm: over trailing dims ---------------------------------------------------

SHAPE_DOC = ("what to normalise: the number of trailing dims (1: the last), or their sizes as a list "
             "(checked against the input)")


def _trailing(x, p, op: str) -> tuple:
    """The normalized_shape: the input's last dims, which must be fixed sizes."""
    if isinstance(p.shape, list):
        k = len(p.shape)
        if k > x.rank:
            raise OpError(f"shape {p.shape} has more dims than the input {x}", param="shape")
        got = tuple(need_int(d, f"size of dim {x.rank - k + j}", op, "shape") for j, d in enumerate(x.shape[-k:]))
        if got != tuple(p.shape):
            raise OpError(f"shape {p.shape} does not match the last {k} dims of the input {x}",
                          f"use shape: {list(got)}, or shape: {k} to take them from the input", param="shape")
        return got
    if p.shape > x.rank:
        raise OpError(f"cannot normalise the last {p.shape} dims of a rank-{x.rank} input {x}", param="shape")
    k = p.shape
    return tuple(need_int(d, f"size of dim {x.rank - k + j} (normalised)", op, "shape")
                 for j, d in enumerate(x.shape[-k:]))


def _check_shape(cls, v):
    vals = v if isinstance(v, list) else [v]
    if not vals or any(d < 1 for d in vals):
        raise ValueError(f"shape must be a positive number of dims or a list of positive sizes, got {v}")
    return v


def _shape_lit(x, p, op: str):
    """normalized_shape: the 'shape' parameter as written, or the sizes of the input's last dims (one: an int)."""
    s = _trailing(x, p, op)
    if isinstance(p.shape, list):
        return P(p, "shape")
    lits = [lit(v, ("in", 0, x.rank - len(s) + j)) for j, v in enumerate(s)]
    return lits[0] if len(lits) == 1 else Tuple(tuple(lits))


class LayerNormParams(Params):
    shape: Union[int, list[int]] = Field(1, description=SHAPE_DOC)
    dim: Optional[int] = Field(None, description="normalise over this one dim instead of the last ones (1: the "
                               "channels of (N, C, H, W), ConvNeXt's channels-first LayerNorm2d)")
    eps: float = Field(1e-5, gt=0, description="added to the variance for numerical stability")
    elementwise_affine: bool = Field(True, description="learn a scale (weight) per normalised element")
    bias: bool = Field(True, description="learn a shift too (with elementwise_affine)")

    _shape = field_validator("shape")(_check_shape)


class RMSNormParams(Params):
    shape: Union[int, list[int]] = Field(1, description=SHAPE_DOC)
    eps: Optional[float] = Field(None, gt=0, description="added to the mean square (null: the dtype's eps)")
    elementwise_affine: bool = Field(True, description="learn a scale (weight) per normalised element")

    _shape = field_validator("shape")(_check_shape)


_LAYERNORM_DIM = '''\
class LayerNormDim(nn.LayerNorm):
    """nn.LayerNorm over one dim that is not the last (channels-first: ConvNeXt's LayerNorm2d)."""

    def __init__(self, normalized_shape, dim, **kwargs):
        super().__init__(normalized_shape, **kwargs)
        self.dim = dim

    def forward(self, x):
        return super().forward(x.movedim(self.dim, -1)).movedim(-1, self.dim)
'''


def _ln_dim(x, p) -> int | None:
    """The one dim a channels-first layer norm normalises (None: the trailing dims, as nn.LayerNorm)."""
    if p.dim is None:
        return None
    if not -x.rank <= p.dim < x.rank:
        raise OpError(f"dim {p.dim} is out of range for the rank-{x.rank} input {x}",
                      f"valid values: {-x.rank}..{x.rank - 1}", param="dim")
    if p.shape != 1 and not (isinstance(p.shape, list) and len(p.shape) == 1):
        raise OpError(f"'dim' normalises one dim, so 'shape' must be 1 or one size, got {p.shape}", param="shape")
    d = p.dim % x.rank
    size = need_int(x.shape[d], f"size of dim {d} (normalised)", "layernorm", "dim")
    if isinstance(p.shape, list) and p.shape[0] != size:
        raise OpError(f"shape {p.shape} does not match dim {d} of the input {x} ({size})",
                      f"use shape: [{size}], or leave it out", param="shape")
    return d


@register
class LayerNorm(_NormOp):
    """Normalise over the last dims of each sample (Transformers), or over one chosen 'dim' (channels-first)."""

    name = "layernorm"
    shape_rule = "same shape as the input; normalised over the last dims (shape, default: the last one)"
    aliases = ("layer_norm",)
    Params = LayerNormParams
    torch_ref = "torch.nn.LayerNorm"
    cases = [({}, [(N, T, 512)], [(N, T, 512)]), ({"shape": 2, "eps": 1e-6}, [(N, 7, 512)], [(N, 7, 512)]),
             ({"shape": [8, 16], "elementwise_affine": True, "bias": False}, [(N, 8, 16)], [(N, 8, 16)]),
             ({"elementwise_affine": False}, [(N, 32)], [(N, 32)]),
             ({"shape": [7, 7]}, [(N, 64, 7, 7)], [(N, 64, 7, 7)]),
             ({"dim": 1, "eps": 1e-6}, [(N, 96, H, W)], [(N, 96, H, W)]),
             ({"dim": -2, "shape": [8], "bias": False}, [(N, 8, T)], [(N, 8, T)]),
             ({"dim": -1}, [(N, T, 16)], [(N, T, 16)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        cls._shape(ins[0], p)
        return [ins[0]]

    @classmethod
    def _shape(cls, x, p) -> tuple:
        d = _ln_dim(x, p)
        return _trailing(x, p, cls.name) if d is None else (x.shape[d],)

    @classmethod
    def weights(cls, ins, p):
        s = cls._shape(ins[0], p)
        w = {}
        if p.elementwise_affine:
            w["weight"] = (s, "param")
            if p.bias:
                w["bias"] = (s, "param")
        return w

    @classmethod
    def constructor(cls, ins, p):
        x = ins[0]
        kw = _kwargs(p, {"eps": 1e-5, "elementwise_affine": True, "bias": True})
        d = _ln_dim(x, p)
        if d is None or d == x.rank - 1:
            shape = _shape_lit(x, p, cls.name) if d is None else lit(x.shape[d], ("in", 0, d))
            return call("nn.LayerNorm", shape, **kw)
        return call("LayerNormDim", lit(x.shape[d], ("in", 0, d)), P(p, "dim"), **kw)

    @classmethod
    def helpers(cls):
        return {"LayerNormDim": _LAYERNORM_DIM}

    @classmethod
    def helpers_used(cls, ins, p):
        d = _ln_dim(ins[0], p)
        return {} if d is None or d == ins[0].rank - 1 else cls.helpers()

    @classmethod
    def label(cls, p):
        return "ln" if p.dim is None else f"ln dim {p.dim}"


@register
class RMSNorm(_NormOp):
    """Root-mean-square normalisation over the last dims (LLaMA); no mean subtraction, no bias."""

    name = "rmsnorm"
    shape_rule = "same shape as the input; normalised over the last dims (shape, default: the last one)"
    aliases = ("rms_norm",)
    Params = RMSNormParams
    torch_ref = "torch.nn.RMSNorm"
    cases = [({}, [(N, T, 512)], [(N, T, 512)]), ({"shape": 2, "eps": 1e-6}, [(N, 4, 8)], [(N, 4, 8)]),
             ({"shape": [8], "elementwise_affine": False}, [(N, T, 8)], [(N, T, 8)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        _trailing(ins[0], p, cls.name)
        return [ins[0]]

    @classmethod
    def weights(cls, ins, p):
        s = _trailing(ins[0], p, cls.name)
        return {"weight": (s, "param")} if p.elementwise_affine else {}

    @classmethod
    def constructor(cls, ins, p):
        kw = _kwargs(p, {"eps": None, "elementwise_affine": True})
        return call("nn.RMSNorm", _shape_lit(ins[0], p, cls.name), **kw)

    @classmethod
    def label(cls, p):
        return "rmsnorm"


# -- group norm ------------------------------------------------------------------------------------

@register
class GroupNorm(_NormOp):
    """Normalise (N, C, ...) over groups of channels per sample (batch-size independent)."""

    backward_needs_output = False
    name = "groupnorm"
    shape_rule = "same shape as the input [N, C, *]; C divisible by groups"
    aliases = ("group_norm",)
    torch_ref = "torch.nn.GroupNorm"
    cases = [({"groups": 32}, [(N, 64, H, W)], [(N, 64, H, W)]),
             ({"groups": 2, "eps": 1e-6, "affine": False}, [(N, 8, L)], [(N, 8, L)]),
             ({"groups": 4}, [(N, 8)], [(N, 8)])]

    class Params(Params):
        groups: int = Field(gt=0, description="number of channel groups (must divide the channels)")
        eps: float = Field(1e-5, gt=0, description="added to the variance for numerical stability")
        affine: bool = Field(True, description="learn a per-channel scale (weight) and shift (bias)")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        if x.rank < 2:
            raise OpError(f"groupnorm needs an input (N, C, ...) of rank >= 2, got {x}")
        c = _channels(x, cls.name)
        if c % p.groups:
            divisors = [g for g in range(1, c + 1) if c % g == 0]
            near = min(divisors, key=lambda g: (abs(g - p.groups), -g))
            raise OpError(f"the channels ({c}) of {x} are not divisible by groups ({p.groups})",
                          f"use groups: {near} (a divisor of {c})", param="groups")
        return [x]

    @classmethod
    def weights(cls, ins, p):
        return _stats(ins[0].shape[1], p.affine, False)

    @classmethod
    def constructor(cls, ins, p):
        return call("nn.GroupNorm", P(p, "groups"), _channels_lit(ins[0]), **_kwargs(p, {"eps": 1e-5, "affine": True}))

    @classmethod
    def label(cls, p):
        return f"gn {p.groups}"


# -- local response norm ---------------------------------------------------------------------------

@register
class LocalResponseNorm(_NormOp):
    """Normalise each value by the activity of its neighbouring channels (AlexNet, GoogLeNet)."""

    name = "local_response_norm"
    shape_rule = "same shape as the input [N, C, *]; normalised across size neighbouring channels"
    aliases = ("lrn",)
    torch_ref = "torch.nn.LocalResponseNorm"
    cases = [({"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}, [(N, 96, H, W)], [(N, 96, H, W)]),
             ({"size": 3}, [(N, 16, L)], [(N, 16, L)])]

    class Params(Params):
        size: int = Field(gt=0, description="number of neighbouring channels summed over")
        alpha: float = Field(1e-4, description="scale of the sum of squares")
        beta: float = Field(0.75, description="exponent")
        k: float = Field(1.0, description="additive constant (AlexNet uses 2)")

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        if x.rank < 3:
            raise OpError(f"local_response_norm needs an input (N, C, ...) of rank >= 3, got {x}",
                          "it normalises across channels at each position: (N, C, L), (N, C, H, W), ...")
        return [x]

    @classmethod
    def weights(cls, ins, p):
        return {}

    @classmethod
    def constructor(cls, ins, p):
        return call("nn.LocalResponseNorm", P(p, "size"), **_kwargs(p, {"alpha": 1e-4, "beta": 0.75, "k": 1.0}))

    @classmethod
    def label(cls, p):
        return f"lrn {p.size}"
