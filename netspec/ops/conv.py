"""Convolutions: conv1d/2d/3d (groups, dilation, depthwise) and transposed convolutions."""
from __future__ import annotations

from typing import Literal, Union

from pydantic import Field, model_validator

from .base import Op, OpError, Params, register, need_float, need_int, need_rank, tup, given
from ..codegen.ir import P, call, lit
from ..shapes import Dim, mul_all
from ..shapes_dim import conv_out, convT_out

N, L, D, H, W = (Dim.sym(s) for s in "NLDHW")

IntOrList = Union[int, list[int]]


class ConvParams(Params):
    out: int = Field(gt=0, description="output channels")
    kernel: IntOrList = Field(description="kernel size: an int or one per spatial dim")
    stride: IntOrList = Field(1, description="stride")
    padding: Union[IntOrList, Literal["same", "valid"]] = Field(0, description="zero padding per side, or 'same'/'valid'")
    dilation: IntOrList = Field(1, description="spacing between kernel taps")
    groups: int = Field(1, ge=1, description="channel groups (groups = in channels: depthwise)")
    depthwise: bool = Field(False, description="shortcut for groups = in channels")
    bias: bool = Field(True, description="add a learned bias")
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"

    @model_validator(mode="after")
    def _check(self):
        for name in ("kernel", "stride", "dilation"):
            v = getattr(self, name)
            vals = v if isinstance(v, list) else [v]
            if any(x < 1 for x in vals):
                raise ValueError(f"{name} must be positive, got {v}")
        pad = self.padding
        if not isinstance(pad, str):
            vals = pad if isinstance(pad, list) else [pad]
            if any(x < 0 for x in vals):
                raise ValueError(f"padding must be >= 0, got {pad}")
        if self.padding == "same" and (self.stride if isinstance(self.stride, int) else max(self.stride)) != 1:
            raise ValueError("padding 'same' needs stride 1 (as in PyTorch)")
        return self


class _ConvNd(Op):
    family = "conv"
    shape_rule = "[N, C, *S] -> [N, out, *S']; each S' = floor((S + 2*padding - dilation*(kernel-1) - 1)/stride) + 1 ('same': S' = S); C divisible by groups"
    backward_needs_output = False
    dims = 2
    Params = ConvParams
    layout = "(N, C, H, W)"

    @classmethod
    def _norm(cls, p):
        d = cls.dims
        k = tup(p.kernel, d, "kernel")
        s = tup(p.stride, d, "stride")
        dil = tup(p.dilation, d, "dilation")
        if p.padding == "valid":
            pad = (0,) * d
        elif p.padding == "same":
            pad = None
        else:
            pad = tup(p.padding, d, "padding")
        return k, s, pad, dil

    @classmethod
    def _groups(cls, cin, p):
        return cin if p.depthwise else p.groups

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        need_rank(x, (cls.dims + 2,), cls.name, cls.layout)
        cin = need_int(x.shape[1], "number of input channels", cls.name)
        g = cls._groups(cin, p)
        if cin % g:
            raise OpError(f"input channels ({cin}) are not divisible by groups ({g})", param="groups")
        if p.out % g:
            raise OpError(f"output channels ({p.out}) are not divisible by groups ({g})", param="groups",
                          hint="for a depthwise conv, 'out' must be a multiple of the input channels")
        k, s, pad, dil = cls._norm(p)
        spatial = []
        for j, size in enumerate(x.shape[2:]):
            if pad is None:
                spatial.append(size)
                continue
            o = conv_out(size, k[j], s[j], pad[j], dil[j], ctx.sym)
            if isinstance(o, int) and o < 1:
                eff = dil[j] * (k[j] - 1) + 1
                raise OpError(f"the kernel ({eff} with dilation) is larger than the padded input ({size} + 2*{pad[j]})",
                              "use a smaller kernel, more padding, or a larger input", param="kernel")
            spatial.append(o)
        return [x.with_shape((x.shape[0], p.out) + tuple(spatial))]

    @classmethod
    def weights(cls, ins, p):
        cin = ins[0].shape[1]
        g = cls._groups(cin, p)
        k, *_ = cls._norm(p)
        w = {"weight": ((p.out, cin // g) + tuple(k), "param")}
        if p.bias:
            w["bias"] = ((p.out,), "param")
        return w

    @classmethod
    def macs(cls, ins, outs, p):
        cin = ins[0].shape[1]
        g = cls._groups(cin, p)
        k, *_ = cls._norm(p)
        return mul_all(outs[0].shape) * (cin // g) * mul_all(k)

    @classmethod
    def constructor(cls, ins, p):
        """``nn.ConvNd(cin, out, kernel_size=.., stride=.., padding=..)``: kernel, stride, padding as written."""
        cin = ins[0].shape[1]
        _, _, _, dil = cls._norm(p)
        kw = {"kernel_size": P(p, "kernel")}
        for f in ("stride", "padding"):
            if given(p, f):
                kw[f] = P(p, f)
        if given(p, "dilation"):
            kw["dilation"] = P(p, "dilation")
        if p.depthwise:
            kw["groups"] = lit(cin, ("in", 0, 1))
        elif given(p, "groups"):
            kw["groups"] = P(p, "groups")
        if given(p, "bias"):
            kw["bias"] = P(p, "bias")
        if given(p, "padding_mode"):
            kw["padding_mode"] = P(p, "padding_mode")
        return call(f"nn.Conv{cls.dims}d", lit(cin, ("in", 0, 1)), P(p, "out"), **kw)

    @classmethod
    def label(cls, p):
        k, s, pad, dil = cls._norm(p)
        ks = "x".join(map(str, k))
        extra = f", /{s[0]}" if any(x != 1 for x in s) else ""
        dw = ", dw" if p.depthwise else (f", g{p.groups}" if p.groups != 1 else "")
        return f"conv {ks}, {p.out}{extra}{dw}"


@register
class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L)."""
    name = "conv1d"
    dims = 1
    layout = "(N, C, L)"
    torch_ref = "torch.nn.Conv1d"
    cases = [({"out": 32, "kernel": 3, "padding": 1}, [(N, 16, L)], [(N, 32, L)]),
             ({"out": 32, "kernel": 5, "stride": 2, "dilation": 2, "bias": False}, [(N, 16, 40)], [(N, 32, 16)]),
             ({"out": 16, "kernel": 3, "padding": "same", "depthwise": True, "padding_mode": "reflect"},
              [(N, 16, L)], [(N, 16, L)])]


@register
class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W); out channels given, in channels inferred."""
    name = "conv2d"
    aliases = ("conv",)
    dims = 2
    torch_ref = "torch.nn.Conv2d"
    cases = [({"out": 64, "kernel": 3, "padding": 1}, [(N, 3, H, W)], [(N, 64, H, W)]),
             ({"out": 64, "kernel": 7, "stride": 2, "padding": 3, "bias": False}, [(N, 3, 224, 224)],
              [(N, 64, 112, 112)]),
             ({"out": 64, "kernel": 3, "stride": 2, "padding": 1}, [(N, 32, H, W)],
              [(N, 64, "ceil(H/2)", "ceil(W/2)")]),
             ({"out": 32, "kernel": [3, 1], "padding": [1, 0], "groups": 4}, [(N, 16, H, W)], [(N, 32, H, W)]),
             ({"out": 32, "kernel": 3, "padding": "same", "dilation": 2, "depthwise": True}, [(2, 16, 9, 9)],
              [(2, 32, 9, 9)]),
             ({"out": 8, "kernel": 3, "padding": "valid", "padding_mode": "circular"}, [(N, 4, 10, 12)],
              [(N, 8, 8, 10)])]


@register
class Conv3d(_ConvNd):
    """3-D convolution over (N, C, D, H, W)."""
    name = "conv3d"
    dims = 3
    layout = "(N, C, D, H, W)"
    torch_ref = "torch.nn.Conv3d"
    cases = [({"out": 8, "kernel": 3, "padding": 1}, [(N, 4, D, H, W)], [(N, 8, D, H, W)]),
             ({"out": 8, "kernel": [1, 3, 3], "stride": [1, 2, 2], "padding": [0, 1, 1]}, [(N, 4, 5, 12, 12)],
              [(N, 8, 5, 6, 6)])]


class ConvTParams(Params):
    out: int = Field(gt=0, description="output channels")
    kernel: IntOrList = Field(description="kernel size")
    stride: IntOrList = Field(1, description="stride (the upsampling factor)")
    padding: IntOrList = Field(0, description="implicit padding removed from each side of the output")
    output_padding: IntOrList = Field(0, description="extra size added to one side of the output")
    dilation: IntOrList = 1
    groups: int = Field(1, ge=1)
    bias: bool = True


class _ConvTNd(_ConvNd):
    Params = ConvTParams
    shape_rule = "[N, C, *S] -> [N, out, *S']; each S' = (S-1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1"

    @classmethod
    def _norm(cls, p):
        d = cls.dims
        return (tup(p.kernel, d, "kernel"), tup(p.stride, d, "stride"), tup(p.padding, d, "padding"),
                tup(p.dilation, d, "dilation"))

    @classmethod
    def _groups(cls, cin, p):
        return p.groups

    @classmethod
    def infer(cls, ins, p, ctx):
        x = ins[0]
        need_float(x, cls.name)
        need_rank(x, (cls.dims + 2,), cls.name, cls.layout)
        cin = need_int(x.shape[1], "number of input channels", cls.name)
        if cin % p.groups or p.out % p.groups:
            raise OpError(f"channels ({cin} in, {p.out} out) are not divisible by groups ({p.groups})", param="groups")
        k, s, pad, dil = cls._norm(p)
        op = tup(p.output_padding, cls.dims, "output_padding")
        for j in range(cls.dims):
            if op[j] >= max(s[j], dil[j]):
                raise OpError(f"output_padding ({op[j]}) must be smaller than stride or dilation", param="output_padding")
        spatial = []
        for j, size in enumerate(x.shape[2:]):
            spatial.append(convT_out(size, k[j], s[j], pad[j], op[j], dil[j]))
        return [x.with_shape((x.shape[0], p.out) + tuple(spatial))]

    @classmethod
    def weights(cls, ins, p):
        cin = ins[0].shape[1]
        k, *_ = cls._norm(p)
        w = {"weight": ((cin, p.out // p.groups) + tuple(k), "param")}
        if p.bias:
            w["bias"] = ((p.out,), "param")
        return w

    @classmethod
    def macs(cls, ins, outs, p):
        k, *_ = cls._norm(p)
        return mul_all(ins[0].shape) * (p.out // p.groups) * mul_all(k)

    @classmethod
    def constructor(cls, ins, p):
        cin = ins[0].shape[1]
        _, _, _, dil = cls._norm(p)
        kw = {"kernel_size": P(p, "kernel")}
        for f in ("stride", "padding"):
            if given(p, f):
                kw[f] = P(p, f)
        if given(p, "output_padding"):
            kw["output_padding"] = P(p, "output_padding")
        if given(p, "groups"):
            kw["groups"] = P(p, "groups")
        if given(p, "bias"):
            kw["bias"] = P(p, "bias")
        if given(p, "dilation"):
            kw["dilation"] = P(p, "dilation")
        return call(f"nn.ConvTranspose{cls.dims}d", lit(cin, ("in", 0, 1)), P(p, "out"), **kw)

    @classmethod
    def label(cls, p):
        k, s, *_ = cls._norm(p)
        return f"convT {'x'.join(map(str, k))}, {p.out}, x{s[0]}"


@register
class ConvTranspose1d(_ConvTNd):
    """Transposed 1-D convolution."""
    name = "conv_transpose1d"
    dims = 1
    layout = "(N, C, L)"
    torch_ref = "torch.nn.ConvTranspose1d"
    cases = [({"out": 8, "kernel": 4, "stride": 2, "padding": 1}, [(N, 16, L)], [(N, 8, 2 * L)]),
             ({"out": 8, "kernel": 3, "stride": 2, "output_padding": 1, "groups": 2, "bias": False}, [(N, 4, 10)],
              [(N, 8, 22)])]


@register
class ConvTranspose2d(_ConvTNd):
    """Transposed 2-D convolution (learned upsampling)."""
    name = "conv_transpose2d"
    aliases = ("deconv2d", "convtranspose2d")
    dims = 2
    torch_ref = "torch.nn.ConvTranspose2d"
    cases = [({"out": 64, "kernel": 2, "stride": 2}, [(N, 128, H, W)], [(N, 64, 2 * H, 2 * W)]),
             ({"out": 16, "kernel": [3, 3], "stride": 2, "padding": 1, "output_padding": 1, "dilation": 1},
              [(N, 32, H, W)], [(N, 16, 2 * H, 2 * W)]),
             ({"out": 4, "kernel": 3, "dilation": 2}, [(1, 4, 5, 6)], [(1, 4, 9, 10)])]


@register
class ConvTranspose3d(_ConvTNd):
    """Transposed 3-D convolution."""
    name = "conv_transpose3d"
    dims = 3
    layout = "(N, C, D, H, W)"
    torch_ref = "torch.nn.ConvTranspose3d"
    cases = [({"out": 4, "kernel": 2, "stride": 2}, [(N, 8, D, H, W)], [(N, 4, 2 * D, 2 * H, 2 * W)])]
