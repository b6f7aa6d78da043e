"""Activations: elementwise non-linearities and (log-)softmax."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import OpError, Params, register, need_float, given, WeightlessOp
from ..codegen.ir import Operand, P, call
from ..shapes import Dim

N, T, H, W = (Dim.sym(s) for s in "NTHW")


class _Act(WeightlessOp):
    """An elementwise function of one float tensor: same shape, no weights, no MACs counted."""

    family = "activation"
    shape_rule = "same shape and dtype as the input, elementwise"
    torch_cls = ""
    inplace_ok = False

    @classmethod
    def keeps(cls, p, rank):
        return rank

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        return [ins[0]]

    cases = [({}, [(N, 64, H, W)], [(N, 64, H, W)]), ({}, [(N, T, 16)], [(N, T, 16)]), ({}, [(3, 5)], [(3, 5)])]

    @classmethod
    def constructor(cls, ins, p):
        """``nn.<Act>(...)`` with the parameters that differ from torch's defaults (fields named as in torch)."""
        kwargs = {}
        for fname, field in cls.Params.model_fields.items():
            if given(p, fname):
                kwargs[fname] = P(p, fname)
        return call(f"nn.{cls.torch_cls}", **kwargs)

    @classmethod
    def label(cls, p):
        return cls.name


def _act(name: str, torch_cls: str, doc: str, params: type | None = None, aliases=(), cases=()):
    attrs = {"name": name, "torch_cls": torch_cls, "doc": doc, "aliases": tuple(aliases),
             "torch_ref": f"torch.nn.{torch_cls}", "__doc__": doc}
    if params is not None:
        attrs["Params"] = params
    if cases:
        attrs["cases"] = _Act.cases + list(cases)
    # torch's backward of these reads the input, not the result: what follows may overwrite the result in place
    attrs["backward_needs_output"] = name not in _READS_INPUT_ONLY
    cls = type(torch_cls, (_Act,), attrs)
    return register(cls)


_READS_INPUT_ONLY = frozenset({"relu6", "leaky_relu", "gelu", "silu", "mish", "hardswish", "hardsigmoid", "hardtanh",
                               "softplus", "softsign", "tanhshrink", "logsigmoid"})


class Inplace(Params):
    inplace: bool = Field(False, description="overwrite the input (saves memory)")


class LeakyParams(Params):
    negative_slope: float = Field(0.01, description="slope for x < 0")
    inplace: bool = False


class EluParams(Params):
    alpha: float = 1.0
    inplace: bool = False


class GeluParams(Params):
    approximate: Literal["none", "tanh"] = Field("none", description="'none' (exact) or 'tanh'")


class PReluParams(Params):
    num_parameters: int = Field(1, ge=1, description="1 (shared) or the number of channels")
    init: float = 0.25


class SoftmaxParams(Params):
    dim: int = Field(-1, description="the axis that sums to one")


class HardtanhParams(Params):
    min_val: float = -1.0
    max_val: float = 1.0
    inplace: bool = False


class SoftplusParams(Params):
    beta: float = 1.0
    threshold: float = 20.0


_act("sigmoid", "Sigmoid", "Logistic sigmoid 1/(1+exp(-x)).")
_act("tanh", "Tanh", "Hyperbolic tangent.")
_act("relu", "ReLU", "max(0, x).", Inplace, cases=[({"inplace": True}, [(N, 8, H, W)], [(N, 8, H, W)])])
_act("relu6", "ReLU6", "min(max(0, x), 6) (MobileNet).", Inplace,
     cases=[({"inplace": True}, [(N, 8, H, W)], [(N, 8, H, W)])])
_act("leaky_relu", "LeakyReLU", "x if x > 0 else negative_slope * x.", LeakyParams,
     cases=[({"negative_slope": 0.2}, [(N, 8, H, W)], [(N, 8, H, W)]),
            ({"negative_slope": 0.1, "inplace": True}, [(N, 8, H, W)], [(N, 8, H, W)])])
_act("elu", "ELU", "Exponential linear unit.", EluParams, cases=[({"alpha": 0.5}, [(N, 8, H, W)], [(N, 8, H, W)])])
_act("selu", "SELU", "Scaled ELU (self-normalising networks).", Inplace)
_act("celu", "CELU", "Continuously differentiable ELU.", EluParams,
     cases=[({"alpha": 2.0, "inplace": True}, [(N, 8, H, W)], [(N, 8, H, W)])])
_act("gelu", "GELU", "Gaussian error linear unit (Transformers).", GeluParams,
     cases=[({"approximate": "tanh"}, [(N, T, 16)], [(N, T, 16)])])
_act("silu", "SiLU", "x * sigmoid(x) (swish; EfficientNet).", Inplace, aliases=("swish",),
     cases=[({"inplace": True}, [(N, 8, H, W)], [(N, 8, H, W)])])
_act("mish", "Mish", "x * tanh(softplus(x)).", Inplace)
_act("hardswish", "Hardswish", "x * relu6(x + 3) / 6 (MobileNetV3).", Inplace, aliases=("hard_swish",),
     cases=[({"inplace": True}, [(N, 8, H, W)], [(N, 8, H, W)])])
_act("hardsigmoid", "Hardsigmoid", "relu6(x + 3) / 6 (MobileNetV3).", Inplace, aliases=("hard_sigmoid",))
_act("hardtanh", "Hardtanh", "clamp(x, min_val, max_val).", HardtanhParams,
     cases=[({"min_val": 0.0, "max_val": 6.0}, [(N, 8, H, W)], [(N, 8, H, W)])])
_act("softplus", "Softplus", "log(1 + exp(beta x)) / beta.", SoftplusParams,
     cases=[({"beta": 2.0, "threshold": 10.0}, [(N, 8, H, W)], [(N, 8, H, W)])])
_act("softsign", "Softsign", "x / (1 + |x|).")
_act("tanhshrink", "Tanhshrink", "x - tanh(x).")
_act("logsigmoid", "LogSigmoid", "log(sigmoid(x)).")


@register
class PReLU(_Act):
    """Leaky ReLU with a learned slope (one, or one per channel)."""

    name = "prelu"
    torch_cls = "PReLU"
    torch_ref = "torch.nn.PReLU"
    Params = PReluParams
    cases = _Act.cases + [({"num_parameters": 8, "init": 0.1}, [(N, 8, H, W)], [(N, 8, H, W)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        x = ins[0]
        if p.num_parameters != 1:
            if x.rank < 2 or x.shape[1] != p.num_parameters:
                raise OpError(f"num_parameters ({p.num_parameters}) must equal the channels (dim 1) of {x}",
                              param="num_parameters")
        return [x]

    @classmethod
    def weights(cls, ins, p):
        return {"weight": ((p.num_parameters,), "param")}


class _Softmax(_Act):
    Params = SoftmaxParams
    shape_rule = "same shape as the input; normalised along dim"
    cases = [({}, [(N, T, 16)], [(N, T, 16)]), ({"dim": 1}, [(N, 10)], [(N, 10)]),
             ({"dim": -3}, [(N, 4, T, 16)], [(N, 4, T, 16)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        r = ins[0].rank
        if not -r <= p.dim < r:
            raise OpError(f"dim {p.dim} is out of range for a rank-{r} input {ins[0]}", param="dim")
        return [ins[0]]

    @classmethod
    def constructor(cls, ins, p):
        return call(f"nn.{cls.torch_cls}", dim=P(p, "dim"))


@register
class Softmax(_Softmax):
    """Softmax along 'dim'."""
    name = "softmax"
    torch_cls = "Softmax"
    torch_ref = "torch.nn.Softmax"


@register
class LogSoftmax(_Softmax):
    """log(softmax(x)) along 'dim', computed stably."""
    name = "log_softmax"
    torch_cls = "LogSoftmax"
    torch_ref = "torch.nn.LogSoftmax"


@register
class Exp(_Act):
    """e ** x, elementwise (a VAE's standard deviation: exp(0.5 * logvar))."""

    name = "exp"
    torch_ref = "torch.exp"
    cases = [({}, [(N, T, 16)], [(N, T, 16)])]

    @classmethod
    def constructor(cls, ins, p):
        return None

    @classmethod
    def forward(cls, ins, p):
        return call("torch.exp", Operand(0))
