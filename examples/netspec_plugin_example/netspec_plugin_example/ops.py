"""The plugin's ops, written against netspec's public op API (``netspec.ops``; docs/plugins.md)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from netspec.ops import (Dim, Op, OpError, P, Params, Requirement, call, conv_out, given, is_sym, lit, mul_all,
                         need_float, need_int, need_rank)

N, T, H, W = Dim.sym("N"), Dim.sym("T"), Dim.sym("H"), Dim.sym("W")

# the module written into model.py for blur_pool2d (a helper class: model.py then needs no import but torch)
BLUR_POOL_SOURCE = '''
class BlurPool2d(nn.Module):
    """Anti-aliased downsampling (Zhang 2019): a fixed binomial blur, then a stride (a depthwise conv)."""

    def __init__(self, channels, filt_size=3, stride=2, pad_mode="reflect"):
        super().__init__()
        self.channels = channels
        self.stride = stride
        self.pad_mode = pad_mode
        pad = ((stride - 1) + (filt_size - 1)) // 2
        self.padding = (pad, pad, pad, pad)
        coeffs = torch.tensor([math.comb(filt_size - 1, k) for k in range(filt_size)], dtype=torch.float32)
        coeffs = coeffs / coeffs.sum()
        filt = (coeffs[:, None] * coeffs[None, :]).expand(channels, 1, filt_size, filt_size).clone()
        # fixed: not learned, and not in the state_dict
        self.register_buffer("filt", filt, persistent=False)

    def forward(self, x):
        x = F.pad(x, self.padding, mode=self.pad_mode)
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)
'''


class BlurPool2d(Op):
    """Anti-aliased downsampling: a fixed binomial blur, then a stride (Zhang 2019; timm's BlurPool2d)."""

    name = "blur_pool2d"
    family = "pool"
    aliases = ("blurpool",)
    torch_ref = "timm.layers.BlurPool2d (same state_dict and outputs)"
    cases = [({}, [(N, 16, H, W)], [(N, 16, "ceil(H/2)", "ceil(W/2)")]),
             ({"kernel": 5, "stride": 2}, [(N, 8, H, W)], [(N, 8, "ceil(H/2)", "ceil(W/2)")]),
             ({"kernel": 4, "stride": 1, "pad_mode": "zeros"}, [(N, 3, H, W)], [(N, 3, H - 1, W - 1)]),
             ({"kernel": 3, "stride": 2}, [(2, 4, 7, 9)], [(2, 4, 4, 5)])]

    class Params(Params):
        kernel: int = Field(3, ge=2, le=7, description="size of the binomial blur filter (timm's filt_size)")
        stride: int = Field(2, ge=1, le=8, description="downsampling factor")
        pad_mode: Literal["reflect", "replicate", "zeros"] = Field("reflect", description="how the input is padded")

    @classmethod
    def _pad(cls, p) -> int:
        return ((p.stride - 1) + (p.kernel - 1)) // 2

    @classmethod
    def keeps(cls, p, rank):
        return 2          # N and C are the input's

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        need_rank(x, (4,), cls.name, "[N, C, H, W]")
        need_int(x.shape[1], "number of channels", cls.name)
        pad = cls._pad(p)
        spatial = []
        for size in x.shape[2:]:
            if p.pad_mode == "reflect" and pad > 0:       # torch's reflection padding needs pad < size
                if is_sym(size):
                    ctx.requirements.append(Requirement(f"{size} >= {pad + 1}", None, None, ctx.node))
                elif size <= pad:
                    raise OpError(f"reflection padding of {pad} needs spatial sizes above {pad}, got {x}",
                                  "use pad_mode 'replicate' or 'zeros', or a larger input", param="pad_mode")
            o = conv_out(size, p.kernel, p.stride, pad, 1, ctx.sym)
            if isinstance(o, int) and o < 1:
                raise OpError(f"the blur filter ({p.kernel}) is larger than the padded input {x}", param="kernel")
            spatial.append(o)
        return [x.with_shape(x.shape[:2] + tuple(spatial))]

    @classmethod
    def weights(cls, ins, p):
        return {}         # the filter is a non-persistent buffer: fixed, and not in the state_dict (as in timm)

    @classmethod
    def macs(cls, ins, outs, p):
        return mul_all(outs[0].shape) * p.kernel * p.kernel

    @classmethod
    def constructor(cls, ins, p):
        x = ins[0]
        kw = {}
        if given(p, "kernel"):
            kw["filt_size"] = P(p, "kernel")
        if given(p, "stride"):
            kw["stride"] = P(p, "stride")
        if given(p, "pad_mode"):
            kw["pad_mode"] = lit("constant" if p.pad_mode == "zeros" else p.pad_mode, "pad_mode")
        return call("BlurPool2d", lit(x.shape[1], ("in", 0, 1)), **kw)

    @classmethod
    def helpers(cls):
        return {"BlurPool2d": BLUR_POOL_SOURCE}

    @classmethod
    def label(cls, p):
        return f"blur pool {p.kernel}x{p.kernel}, /{p.stride}"


class SwiGLU(Op):
    """SwiGLU feed-forward: w3(silu(x W1) * (x W2)) over the last dimension (Shazeer 2020)."""

    name = "swiglu"
    family = "linear"
    torch_ref = "netspec_plugin_example.modules.SwiGLU"
    imports = ("netspec_plugin_example.modules",)     # model.py imports it: the constructor calls its class
    backward_needs_output = False
    cases = [({"hidden": 32}, [(N, T, 16)], [(N, T, 16)]),
             ({"hidden": 24, "out": 8, "bias": True}, [(N, 12)], [(N, 8)]),
             ({"hidden": 4}, [(3, 5)], [(3, 5)])]

    class Params(Params):
        hidden: int = Field(gt=0, description="hidden features (each of the two gate branches)")
        out: Optional[int] = Field(None, gt=0, description="output features (default: the input's)")
        bias: bool = Field(False, description="biases in both linear maps")

    @classmethod
    def keeps(cls, p, rank):
        return rank - 1

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        if x.rank < 1:
            raise OpError("swiglu needs an input with at least one dimension")
        d = need_int(x.shape[-1], "number of input features (last dim)", cls.name)
        return [x.with_shape(x.shape[:-1] + (p.out or d,))]

    @classmethod
    def weights(cls, ins, p):
        d = ins[0].shape[-1]
        out = p.out or d
        w = {}
        for layer, shape in (("w12", (2 * p.hidden, d)), ("w3", (out, p.hidden))):
            w[f"{layer}.weight"] = (shape, "param")
            if p.bias:
                w[f"{layer}.bias"] = (shape[:1], "param")
        return w

    @classmethod
    def macs(cls, ins, outs, p):
        d = ins[0].shape[-1]
        return mul_all(ins[0].shape[:-1]) * (d * 2 * p.hidden + p.hidden * (p.out or d))

    @classmethod
    def constructor(cls, ins, p):
        x = ins[0]
        kw = {}
        if p.out is not None:
            kw["out_features"] = P(p, "out")
        if given(p, "bias"):
            kw["bias"] = P(p, "bias")
        return call("netspec_plugin_example.modules.SwiGLU", lit(x.shape[-1], ("in", 0, x.rank - 1)),
                    P(p, "hidden"), **kw)

    @classmethod
    def label(cls, p):
        return f"swiglu {p.hidden}"
