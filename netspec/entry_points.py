"""A quick look at the installed distributions' entry points, without importing importlib.metadata.

Importing importlib.metadata and asking it for a group costs every command about 20 ms of CPU (it imports the email
package, then reads every distribution's metadata); reading the entry_points.txt files on sys.path takes about one.
The look answers only "no distribution can declare this group"; anything else, or anything unusual on sys.path (a zip,
an unreadable file), answers "maybe", and importlib.metadata decides as before.
"""
from __future__ import annotations

import os
import sys
import types


def may_declare(group: str) -> bool:
    """False only when none of the entry_points.txt files of the distributions on sys.path mentions ``group``."""
    needle = group.encode()
    for entry in sys.path:
        try:
            listing = os.scandir(entry or ".")
        except NotADirectoryError:
            return True
        except OSError:
            continue
        with listing:
            for d in listing:
                if not d.name.endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(d.path, "entry_points.txt"), "rb") as f:
                        if needle in f.read():
                            return True
                except FileNotFoundError:
                    continue
                except OSError:
                    return True
    return False


def no_pydantic_plugins() -> None:
    """Give pydantic the answer its plugin loader would find when no distribution declares a 'pydantic' entry point:
    none. pydantic asks when it builds its first model, and its loader imports importlib.metadata to do it. Nothing
    changes when a plugin may exist, when plugins are switched off or chosen by PYDANTIC_DISABLE_PLUGINS, or when the
    loader is already imported."""
    name = "pydantic.plugin._loader"
    if name in sys.modules or os.environ.get("PYDANTIC_DISABLE_PLUGINS") is not None or may_declare("pydantic"):
        return
    loader = types.ModuleType(name, "pydantic's plugin loader, answered by netspec.entry_points: no plugins")
    loader.PYDANTIC_ENTRY_POINT_GROUP = "pydantic"
    loader._plugins = {}
    loader._loading_plugins = False
    loader.get_plugins = lambda: ()
    sys.modules[name] = loader
