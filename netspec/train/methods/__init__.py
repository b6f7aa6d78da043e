"""One file per training method; ``METHODS`` maps the config's ``method`` to its class."""
from __future__ import annotations


def method_class(name: str):
    if name == "classify":
        from .supervised import Classify as cls
    elif name == "regress":
        from .supervised import Regress as cls
    elif name == "segment":
        from .segment import Segment as cls
    elif name in ("autoencoder", "vae"):
        from .autoencoder import Autoencoder as cls
    elif name == "gan":
        from .gan import Gan as cls
    elif name == "lm":
        from .lm import LanguageModel as cls
    elif name == "dqn":
        from .dqn import Dqn as cls
    elif name == "detection":
        from .detection import Detection as cls
    else:  # the config's Literal keeps other names out
        raise ValueError(name)
    return cls
