"""Import every op family so that its ops register themselves. Add new family modules here."""
from . import (activation, attention, compare, conv, create, detection, dropout, einsum, embedding,  # noqa: F401
               index, linear, merge, norm, pool, random, recurrent, shape, tensors)
