"""Import every op family so that its ops register themselves. Add new family modules here."""
from . import io, linear, conv, activation, merge  # noqa: F401
import importlib

for _m in ("pool", "norm", "dropout", "shape", "embedding", "attention", "recurrent"):
    try:
        importlib.import_module(f"{__package__}.{_m}")
    except ModuleNotFoundError as e:  # a family still being written
        if e.name != f"{__package__}.{_m}":
            raise
