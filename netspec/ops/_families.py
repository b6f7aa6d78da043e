"""Import every op family so that its ops register themselves. Add new family modules here, and run
tools/gen_ops_index.py after adding or renaming a built-in op: ``lookup`` finds an op's family through that index
(_index.py) without importing the others, and tests/test_ops_index.py fails until the index is written again."""
from . import (activation, attention, compare, conv, create, detection, dropout, einsum, embedding,  # noqa: F401
               index, linear, merge, norm, pool, random, recurrent, shape, tensors)
