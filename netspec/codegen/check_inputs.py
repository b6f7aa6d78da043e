"""``build(..., check_inputs=True)``: the built module checks each call's inputs against the spec's declared inputs
(rank, fixed sizes, one value per symbol across all inputs, dtype, divisibility and the printed requirements) and
names the spec's input, with its declaration's location, when they do not fit (ValueError)."""
from __future__ import annotations

from ..spec.expr import ExprError, parse as parse_expr


class InputCheck:
    """A forward pre-hook (``with_kwargs=True``); plain data, so the module still pickles."""

    def __init__(self, g, dtype=None):
        self.network = g.name
        self.inputs = []                # (name, shape as ints/symbol names, dtype, where)
        for name, t in g.input_types().items():
            node = g.nodes.get(g.inputs[name])
            where = str(node.loc) if node is not None else g.file
            dims = [d if isinstance(d, int) else str(d) for d in t.shape]
            self.inputs.append((name, dims, t.dtype, where))
        self.float_dtype = str(dtype).removeprefix("torch.") if dtype is not None else None
        self.multiples = {s: m for s, m in (g.sym.multiple_of.items() if g.sym is not None else ()) if m > 1}
        self.requirements = [r.text for r in g.requirements if not r.symbol]

    def __call__(self, module, args, kwargs):
        given = dict(zip([i[0] for i in self.inputs], args))
        given.update({k: v for k, v in kwargs.items() if k in {i[0] for i in self.inputs}})
        bound: dict[str, tuple[int, str]] = {}      # symbol -> (value, the input that fixed it)
        for name, dims, dtype, where in self.inputs:
            if name not in given:
                continue                             # forward itself reports a missing argument
            x = given[name]
            decl = f"[{', '.join(map(str, dims))}] {dtype}"
            shape = tuple(getattr(x, "shape", ()))
            if not hasattr(x, "shape") or not hasattr(x, "dtype"):
                self._fail(name, where, decl, f"got {type(x).__name__}, not a tensor")
            got = f"shape {tuple(shape)} {str(x.dtype).removeprefix('torch.')}"
            want = self.float_dtype if self.float_dtype and dtype.startswith(("float", "bfloat")) else dtype
            if str(x.dtype).removeprefix("torch.") != want:
                self._fail(name, where, decl, f"got {got}: the dtype should be {want}")
            if len(shape) != len(dims):
                self._fail(name, where, decl, f"got {got}: {len(shape)} dims, not {len(dims)}")
            for axis, (d, n) in enumerate(zip(dims, shape)):
                if isinstance(d, int):
                    if n != d:
                        self._fail(name, where, decl, f"got {got}: dim {axis} is {n}, not {d}")
                elif d in bound and bound[d][0] != n:
                    v, other = bound[d]
                    self._fail(name, where, decl, f"got {got}: {d} is {n} here but {v} in input '{other}'")
                else:
                    bound.setdefault(d, (n, name))
        values = {s: v for s, (v, _) in bound.items()}
        for s, m in self.multiples.items():
            if s in values and values[s] % m:
                name, dims, dtype, where = self._declaring(s)
                self._fail(name, where, f"[{', '.join(map(str, dims))}] {dtype}",
                           f"{s} = {values[s]} breaks the requirement {s} % {m} == 0")
        for text in self.requirements:
            try:
                e = parse_expr(text)
                if not e.names <= set(values):
                    continue
                ok = e.eval(values) is True
            except ExprError:
                continue
            if not ok:
                s = sorted(e.names)[0]
                name, dims, dtype, where = self._declaring(s)
                shown = ", ".join(f"{k} = {values[k]}" for k in sorted(e.names))
                self._fail(name, where, f"[{', '.join(map(str, dims))}] {dtype}",
                           f"{shown} breaks the requirement {text}")

    def _declaring(self, symbol: str):
        return next(i for i in self.inputs if symbol in i[1])

    def _fail(self, name, where, decl, why):
        raise ValueError(f"input '{name}' of network '{self.network}' does not fit its declaration {decl} "
                         f"({where}): {why}")


def attach(model, g, dtype=None):
    """Make ``model`` check its inputs against ``g``'s declared inputs on every call."""
    model.register_forward_pre_hook(InputCheck(g, dtype), with_kwargs=True)
    return model
