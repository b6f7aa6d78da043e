"""The op vocabulary: one registered class per op, grouped by family (one file per family).

The public, stable API for writing ops (built-in or from a plugin package; see docs/plugins.md):

- ``Op``, ``Params``, ``In``, ``OpError``: the op base class, its parameters' base model, an input slot, the error a
  shape rule raises; ``WeightlessOp``: an ``Op`` whose ``weights()`` is ``{}`` and ``macs()`` 0;
- shape-rule helpers: ``TensorType``, ``Dim``, ``InferCtx``, ``Requirement``, ``is_sym``, ``mul_all``, ``conv_out``,
  ``floordiv``, ``ceildiv``, ``need_rank``, ``need_float``, ``need_int``, ``same_dim``, ``given``, ``tup``;
- code IR builders (``netspec.codegen.ir``): ``call``, ``method``, ``binop``, ``lit``, ``P``, ``module_call``,
  ``Operand``, ``Operands``, ``Module``, ``Name``, ``Attr``, ``Index``, ``Slice``, ``Tuple``, ``List``, ``Neg``, ``Cond``;
- the registry: ``lookup``, ``all_ops``, ``all_names``, ``plugin_problems``.
"""
from .base import (Op, WeightlessOp, OpError, Params, In, register, lookup, all_ops, all_names, plugin_problems,  # noqa: F401
                   given, tup, need_rank, need_float, need_int, same_dim, case_types)
from ..codegen.ir import (call, method, binop, lit, P, module_call, Operand, Operands, Module, Name,  # noqa: F401
                          Attr, Index, Slice, Tuple, List, Neg, Cond)
from ..shapes import TensorType, Dim, InferCtx, Requirement, is_sym, mul_all  # noqa: F401
from ..shapes_dim import conv_out, floordiv, ceildiv  # noqa: F401
