"""The op vocabulary: one registered class per op, grouped by family (one file per family)."""
from .base import Op, OpError, Params, In, register, lookup, all_ops, all_names  # noqa: F401
