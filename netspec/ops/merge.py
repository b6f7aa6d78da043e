"""Merges: add (residual), multiply (gates, squeeze-excite), concat (dense, U-Net skips), and matmul."""
from __future__ import annotations

from pydantic import Field

from .base import Op, OpError, Params, In, register, same_dim, WeightlessOp
from ..codegen.ir import Attr, Index, List, Lit, Operand, Operands, P, binop, call, lit, method
from ..shapes import Dim, TensorType, mul_all, norm

N, C, T, S, E, H, W = (Dim.sym(s) for s in "NCTSEHW")


def broadcast(a: TensorType, b: TensorType, ctx, op: str) -> tuple:
    """NumPy broadcasting of two shapes, with symbolic dims unified (or a requirement recorded)."""
    ra, rb = a.rank, b.rank
    n = max(ra, rb)
    sa = (1,) * (n - ra) + tuple(a.shape)
    sb = (1,) * (n - rb) + tuple(b.shape)
    out = []
    for j, (x, y) in enumerate(zip(sa, sb)):
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        else:
            out.append(same_dim(x, y, ctx, f"the inputs differ in dim {j}: {a} vs {b}",
                                _merge_hint(op, j, x, y, n)))
    return tuple(out)


def _merge_hint(op, j, x, y, n):
    if j == 1 and n >= 3 and isinstance(x, int) and isinstance(y, int):
        return (f"one input has {x} channels and the other {y}: add a 1x1 projection (conv2d with out: "
                f"{max(x, y)}) on the narrower path")
    return "the shapes must be equal, or 1 where one side broadcasts"


class _Elementwise(WeightlessOp):
    family = "merge"
    shape_rule = "inputs broadcast together (PyTorch broadcasting); output has the broadcast shape"
    backward_needs_output = False      # gradients of a sum or product never read the result

    @classmethod
    def keeps(cls, p, rank):
        return rank          # where the output has the first input's shape (no broadcasting into it)
    inputs = (In("x", variadic=True, min_count=2),)
    symbol = "+"

    @classmethod
    def infer(cls, ins, p, ctx):
        out = ins[0]
        for t in ins[1:]:
            if t.dtype != out.dtype:
                raise OpError(f"{cls.name} of different dtypes: {out.dtype} and {t.dtype}")
            out = TensorType(broadcast(out, t, ctx, cls.name), out.dtype)
        return [out]

    cases = [({}, [(N, 64, H, W), (N, 64, H, W)], [(N, 64, H, W)]),
             ({}, [(N, 64, H, W), (N, 64, 1, 1)], [(N, 64, H, W)]),
             ({}, [(N, T, 16), (16,), (N, 1, 16)], [(N, T, 16)]),
             ({}, [((N, 4), "int64"), ((N, 4), "int64")], [((N, 4), "int64")])]

    @classmethod
    def forward(cls, ins, p):
        """``x0 + x1 + ...``"""
        e = Operand(0)
        for k in range(1, len(ins)):
            e = binop(cls.symbol, e, Operand(k))
        return e

    @classmethod
    def label(cls, p):
        return cls.symbol


@register
class Add(_Elementwise):
    """Elementwise sum of 2+ tensors (broadcasting): residual connections."""
    name = "add"
    symbol = "+"
    torch_ref = "a + b"


@register
class Multiply(_Elementwise):
    """Elementwise product of 2+ tensors (broadcasting): gates, squeeze-and-excitation."""
    name = "multiply"
    aliases = ("mul",)
    symbol = "*"
    torch_ref = "a * b"


@register
class Subtract(_Elementwise):
    """a - b (broadcasting)."""
    name = "subtract"
    aliases = ("sub",)
    symbol = "-"
    inputs = (In("x", variadic=True, min_count=2),)
    torch_ref = "a - b"
    cases = _Elementwise.cases[:2] + [({}, [(N, T, 16), (16,)], [(N, T, 16)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        if len(ins) != 2:
            raise OpError(f"subtract takes exactly 2 inputs, got {len(ins)}")
        return super().infer(ins, p, ctx)


class ConcatParams(Params):
    dim: int = Field(1, description="the axis to join along (1: channels)")
    broadcast: bool = Field(False, description="expand size-1 dims of an input to the others' sizes (every dim but "
                            "'dim'): a [1, 1, D] class token joins [N, T, D] tokens")


@register
class Concat(WeightlessOp):
    """Join 2+ tensors along 'dim'; every other dim must match (dense blocks, U-Net skips)."""

    backward_needs_output = False

    name = "concat"
    shape_rule = "inputs agree in every dim but dim; output's dim is the sum of theirs"
    aliases = ("cat",)
    family = "merge"
    inputs = (In("x", variadic=True, min_count=2),)
    Params = ConcatParams
    torch_ref = "torch.cat"
    cases = [({}, [(N, 64, H, W), (N, 32, H, W)], [(N, 96, H, W)]),
             ({}, [(N, C, H, W), (N, C, H, W), (N, 16, H, W)], [(N, 2 * C + 16, H, W)]),
             ({"dim": -1}, [(N, T, 8), (N, T, 24)], [(N, T, 32)]),
             ({"dim": 0}, [(2, 5), (3, 5)], [(5, 5)]),
             ({"dim": 1, "broadcast": True}, [(1, 1, E), (N, T, E)], [(N, T + 1, E)]),
             ({"dim": -1, "broadcast": True}, [(N, T, 4), (1, T, 2), (N, 1, 3)], [(N, T, 9)])]

    @classmethod
    def infer(cls, ins, p, ctx):
        first = ins[0]
        r = first.rank
        if not -r <= p.dim < r:
            raise OpError(f"dim {p.dim} is out of range for rank-{r} inputs", param="dim")
        d = p.dim % r
        total = 0
        out = list(first.shape)
        for k, t in enumerate(ins):
            if t.rank != r:
                raise OpError(f"concat of tensors with different ranks: {first} and {t}")
            if t.dtype != first.dtype:
                raise OpError(f"concat of different dtypes: {first.dtype} and {t.dtype}")
            for j in range(r):
                if j == d:
                    continue
                hint = None
                if j >= 2 and r >= 3:
                    hint = ("the spatial sizes differ: crop or pad one input, or constrain the input size "
                            "(U-Net needs H and W divisible by 2**depth)")
                if p.broadcast and t.shape[j] == 1:
                    continue
                if p.broadcast and out[j] == 1:
                    out[j] = t.shape[j]
                    continue
                if not p.broadcast and (out[j] == 1) != (t.shape[j] == 1):
                    hint = "one input has size 1 there: 'broadcast: true' expands it to the other's size"
                out[j] = same_dim(out[j], t.shape[j], ctx,
                                  f"concat along dim {d}: input {k} differs in dim {j} ({first} vs {t})", hint)
            total = total + t.shape[d]
        out[d] = norm(total)
        return [TensorType(tuple(out), first.dtype)]

    @classmethod
    def forward(cls, ins, p):
        """``torch.cat([a, b], dim=1)``; broadcasting: ``torch.cat([tok.expand(x.shape[0], -1, -1), x], dim=1)``."""
        if not p.broadcast:
            return call("torch.cat", Operands(), dim=P(p, "dim"))
        r = ins[0].rank
        d = p.dim % r
        items = []
        for k, t in enumerate(ins):
            sizes = []
            for j in range(r):
                src = next((m for m, u in enumerate(ins) if u.shape[j] != 1), None) if j != d else None
                sizes.append(Index(Attr(Operand(src), "shape"), (lit(j),))
                             if src is not None and t.shape[j] == 1 else lit(-1))
            grows = any(not (isinstance(e, Lit) and e.value == -1) for e in sizes)
            items.append(method(Operand(k), "expand", *sizes) if grows else Operand(k))
        return call("torch.cat", List(tuple(items)), dim=P(p, "dim"))

    @classmethod
    def label(cls, p):
        return ("concat" if p.dim == 1 else f"concat dim {p.dim}") + (" bcast" if p.broadcast else "")


@register
class Matmul(Op):
    """Matrix product a @ b with batch broadcasting (torch.matmul)."""

    name = "matmul"
    shape_rule = "a [..., T, K] @ b [..., K, M] -> [..., T, M] (batch dims broadcast, as torch.matmul)"
    family = "merge"
    inputs = (In("a"), In("b"))
    torch_ref = "torch.matmul"
    cases = [({}, [(N, T, 64), (64, 32)], [(N, T, 32)]),
             ({}, [(N, 8, T, 16), (N, 8, 16, S)], [(N, 8, T, S)]),
             ({}, [(N, T, E), (E,)], [(N, T)]),
             ({}, [(8,), (8,)], [()]),
             ({}, [(4,), (2, 4, 3)], [(2, 3)])]

    @classmethod
    def weights(cls, ins, p):
        return {}

    @classmethod
    def infer(cls, ins, p, ctx):
        a, b = ins
        if a.rank < 1 or b.rank < 1:
            raise OpError("matmul needs inputs of rank >= 1")
        if a.rank == 1 and b.rank == 1:
            same_dim(a.shape[0], b.shape[0], ctx, f"matmul: the vectors differ in length ({a} vs {b})")
            return [TensorType((), a.dtype)]
        sa = tuple(a.shape) if a.rank > 1 else (1,) + tuple(a.shape)
        sb = tuple(b.shape) if b.rank > 1 else tuple(b.shape) + (1,)
        same_dim(sa[-1], sb[-2], ctx, f"matmul: inner dims differ ({a} @ {b})",
                 "the last dim of a must equal the second-to-last of b; transpose one input?")
        batch = broadcast(TensorType(sa[:-2]), TensorType(sb[:-2]), ctx, "matmul") if (len(sa) > 2 or len(sb) > 2) else ()
        out = batch + (sa[-2], sb[-1])
        if a.rank == 1:
            out = out[:-2] + out[-1:]
        if b.rank == 1:
            out = out[:-1]
        return [TensorType(tuple(out), a.dtype)]

    @classmethod
    def macs(cls, ins, outs, p):
        k = ins[0].shape[-1]
        return mul_all(outs[0].shape) * k

    @classmethod
    def forward(cls, ins, p):
        return call("torch.matmul", Operand(0), Operand(1))

    @classmethod
    def label(cls, p):
        return "matmul"
