"""Spec expressions -> Python source, for generated constructors (``planes * expansion``, ``math.sqrt(d_model)``).

The spec's expression language is a whitelisted subset of Python's expression syntax with the same semantics for
the operators it allows, so a parsed (and already validated) expression can be written back as Python after its
names are mapped. ``to_python`` refuses (returns None) anything it cannot map: a name that is not a constructor
parameter, a shape query on anything but a class input, or a function it does not know. The caller checks the
result's value against the expanded graph before using it, so a written expression never changes a number.
"""
from __future__ import annotations

import ast

from ..spec.expr import ExprError, parse

# spec function -> (Python callable text, module it needs)
FUNCS = {"min": ("min", None), "max": ("max", None), "abs": ("abs", None), "int": ("int", None),
         "float": ("float", None), "round": ("round", None), "bool": ("bool", None), "len": ("len", None),
         "sum": ("sum", None), "all": ("all", None), "any": ("any", None),
         "ceil": ("math.ceil", "math"), "floor": ("math.floor", "math"), "sqrt": ("math.sqrt", "math"),
         "log2": ("math.log2", "math"), "gcd": ("math.gcd", "math"), "lcm": ("math.lcm", "math"),
         "make_divisible": ("make_divisible", "make_divisible")}
_CONST = {"true": True, "false": False, "null": None, "none": None}
SHAPE_FUNCS = ("channels", "features", "dim", "shape", "rank")


class _Fail(Exception):
    pass


def names_of(text: str) -> frozenset | None:
    try:
        return parse(text).names
    except ExprError:
        return None


def to_python(text: str, rename, shape) -> tuple[str, set] | None:
    """Python source for a spec expression, or None.

    Args:
        rename: spec name -> Python text (``planes`` -> ``planes`` or ``self.planes``); None for an unknown name.
        shape: (function, input name, extra args) -> Python text for a shape query on a class input, or None.
    Returns:
        (source, the helper names it needs: 'math', 'make_divisible')
    """
    try:
        body = parse(text)._body
    except ExprError:
        return None
    needs: set = set()

    class T(ast.NodeTransformer):
        def visit_List(self, node):         # a spec's list is a tuple in generated code (as literals are)
            return ast.copy_location(ast.Tuple([self.visit(e) for e in node.elts], ast.Load()), node)

        def visit_Name(self, node):
            if node.id in _CONST:
                return ast.copy_location(ast.Constant(_CONST[node.id]), node)
            new = rename(node.id)
            if new is None:
                raise _Fail()
            return ast.copy_location(ast.parse(new, mode="eval").body, node)

        def visit_Call(self, node):
            fn = node.func.id if isinstance(node.func, ast.Name) else None
            if fn in SHAPE_FUNCS:
                if not node.args or not isinstance(node.args[0], ast.Name) or node.keywords:
                    raise _Fail()
                extra = []
                for a in node.args[1:]:
                    if not isinstance(a, ast.Constant) or not isinstance(a.value, int):
                        raise _Fail()
                    extra.append(a.value)
                new = shape(fn, node.args[0].id, tuple(extra))
                if new is None:
                    raise _Fail()
                return ast.copy_location(ast.parse(new, mode="eval").body, node)
            if fn not in FUNCS or node.keywords:
                raise _Fail()
            py, need = FUNCS[fn]
            if need:
                needs.add(need)
            node.args = [self.visit(a) for a in node.args]
            node.func = ast.parse(py, mode="eval").body
            return node

    try:
        tree = T().visit(ast.Expression(body=_copy(body)))
    except _Fail:
        return None
    return ast.unparse(tree.body), needs


def _copy(node):
    return ast.parse(ast.unparse(node), mode="eval").body
