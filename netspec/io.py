"""Atomic writes and safe loads, shared by every command that writes outputs (and by training checkpoints).

Outputs are regular files and nothing else: a target that is a folder, a device (``/dev/null``), a named pipe or a
socket -- or a symbolic link to one -- is refused before anything is written, so ``netspec compile net.yaml -o
/dev/null`` run as root leaves ``/dev/null`` in place. A link to a regular file writes that file. ``-`` means
standard output, for text formats. No file but the named output is ever written, replaced or deleted (the temporary
file of an atomic write lives next to the output and is gone when the call returns).
"""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from .errors import Loc, NetspecError, OutputError  # noqa: F401  (OutputError re-exported)


_INPUTS: set[str] = set()     # real paths of the spec files this process has read
STDOUT = "-"                  # the output path that means standard output

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFSOCK: "a socket"}
_ONLY_FILES = "netspec writes only regular files: name a file (or '-' for standard output, for text formats)"


def mark_input(path: str | os.PathLike) -> None:
    """Record that ``path`` is an input (a spec or an import): no output of this process may replace it."""
    _INPUTS.add(os.path.realpath(path))


def inputs_read() -> set[str]:
    """Real paths of the spec files (and imports) this process has read: what ``netspec serve`` watches."""
    return set(_INPUTS)


def is_stdout(path) -> bool:
    return str(path) == STDOUT


def output_target(path: str | os.PathLike) -> Path:
    """The regular file a write to ``path`` would replace (``path`` itself, or where its link leads).

    Raises OutputError, before anything is written, when the target is not a regular file (a folder, device, FIFO
    or socket, or a link to one), a link that leads nowhere, a spec file this process reads, or in a missing folder.
    """
    p = Path(path)
    loc = Loc(str(p), 1, 1)
    target = p
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"cannot write '{p}': {e.strerror or e}", loc) from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        real = os.path.realpath(p)
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise OutputError(f"cannot write '{p}': it is a symbolic link to '{real}', which does not exist", loc,
                              "remove the link or point it at a file") from None
        except OSError as e:
            raise OutputError(f"cannot write '{p}': {e.strerror or e}", loc) from None
        if not stat.S_ISREG(st.st_mode):
            kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
            raise OutputError(f"cannot write '{p}': it is a symbolic link to {kind} ('{real}')", loc, _ONLY_FILES)
        target = Path(real)
    elif st is not None and not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        raise OutputError(f"cannot write '{p}': it is {kind}", loc, _ONLY_FILES)
    if os.path.realpath(target) in _INPUTS:
        raise OutputError(f"cannot write '{p}': it is a spec file this command reads", loc,
                          "choose another output path, e.g. with the suffix the output needs (.py, .svg, ...)")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"cannot write '{p}': the folder '{folder}' does not exist", loc, "create the folder first")
    return target


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    A full disk or a kill mid-write leaves the previous file intact. Only regular files are written (see
    ``output_target``); a spec file read by this process is never replaced (``netspec compile net.yaml -o
    net.yaml`` would lose the spec).
    """
    p = Path(path)
    target = output_target(p)
    folder = target.parent if str(target.parent) else Path(".")
    fd = None
    tmp = None
    import tempfile      # (only a command that writes a file needs it: 3 ms of imports)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        try:
            mode = os.stat(target).st_mode & 0o7777          # keep the mode of the file we replace
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
        if os.path.lexists(target) and not stat.S_ISREG(os.lstat(target).st_mode):   # swapped while we wrote
            raise OutputError(f"cannot write '{p}': it is no longer a regular file", Loc(str(p), 1, 1), _ONLY_FILES)
        os.replace(tmp, target)
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


def write_output(path: str | os.PathLike, data: str | bytes, *, what: str = "the output") -> None:
    """Write a command's output: ``-`` is standard output (text only), anything else an atomic regular-file write."""
    if is_stdout(path):
        if isinstance(data, bytes):
            raise OutputError(f"cannot write {what} to standard output: it is binary", Loc(STDOUT, 1, 1),
                              "name a file with -o FILE")
        sys.stdout.write(data)
        sys.stdout.flush()
        return
    atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


def write_new_text(preferred: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``preferred`` if no file of that name exists, else to a fresh name beside it; never replaces
    anything. Returns the path written."""
    p = Path(preferred)
    folder = p.parent if str(p.parent) else Path(".")
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        out = p
    except FileExistsError:
        import tempfile
        fd, name = tempfile.mkstemp(prefix=f"{p.stem}-", suffix=p.suffix, dir=folder)
        out = p.parent / Path(name).name
    except OSError as e:
        raise OutputError(f"cannot write '{p}': {e.strerror or e}", Loc(str(p), 1, 1)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise OutputError(f"cannot write '{out}': {e.strerror or e}", Loc(str(out), 1, 1)) from None
    return out
