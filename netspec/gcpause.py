"""The cyclic garbage collector paused while a big structure is built.

A spec becomes millions of small objects and almost no reference cycles: the collector only rescans them as they
grow (10-25% of expanding or generating code for a 100k-node network). Expansion, code generation and the tooling
commands run under ``paused()``; the state before is restored after, whatever happens.
"""
from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def paused():
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
        else:
            gc.disable()
