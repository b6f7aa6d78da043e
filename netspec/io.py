"""Atomic writes and safe loads, shared by every command that writes outputs (and by training checkpoints)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import Loc, NetspecError, OutputError  # noqa: F401  (OutputError re-exported)


_INPUTS: set[str] = set()     # real paths of the spec files this process has read


def mark_input(path: str | os.PathLike) -> None:
    """Record that ``path`` is an input (a spec or an import): no output of this process may replace it."""
    _INPUTS.add(os.path.realpath(path))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    A full disk or a kill mid-write leaves the previous file intact. A spec file read by this process is never
    replaced (``netspec compile net.yaml -o net.yaml`` would lose the spec).
    """
    p = Path(path)
    if os.path.realpath(p) in _INPUTS:
        raise OutputError(f"cannot write '{p}': it is a spec file this command reads", Loc(str(p), 1, 1),
                          "choose another output path, e.g. with the suffix the output needs (.py, .svg, ...)")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"cannot write '{p}': the folder '{folder}' does not exist", Loc(str(p), 1, 1),
                          "create the folder first")
    fd = None
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=folder)
        try:
            mode = os.stat(p).st_mode & 0o7777          # keep the mode of the file we replace
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask                       # a new file: as open() would create it
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            fd = None
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        tmp = None
    except OSError as e:
        raise OutputError(f"cannot write '{p}': {e.strerror or e}", Loc(str(p), 1, 1)) from None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
