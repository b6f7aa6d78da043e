"""Import every op family so that its ops register themselves. Add new family modules here."""
from . import (activation, attention, conv, dropout, embedding, linear, merge, norm, pool,  # noqa: F401
               random, recurrent, shape, tensors)
