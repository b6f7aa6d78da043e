"""Import every op family so that its ops register themselves. Add new family modules here."""
from . import (activation, attention, conv, detection, dropout, embedding, linear, merge, norm,  # noqa: F401
               pool, random, recurrent, shape, tensors)
