"""Import every op family so that its ops register themselves. Add new family modules here."""
from . import (activation, attention, compare, conv, create, dropout, einsum, embedding, index,  # noqa: F401
               linear, merge, norm, pool, random, recurrent, shape, tensors)
