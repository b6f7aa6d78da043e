"""A content-keyed cache of expanded graphs, for repeated calls on the same spec (editors, pre-commit hooks, CI).

An entry is found by a key over everything the result depends on: netspec's version and the size and time of each
of its source files, the command's arguments (network, parameters, bindings, search path), the limits that bound
loading and expansion, and the path of the spec. It is used only if every file that loading read (the spec and each
import) still has the content it had, byte for byte (SHA-256): editing an imported block file is seen by the next
call. A failed load is never stored.

Safety against hostile cache files: entries are pickles, and a pickle can run code, so an entry is unpickled only if
it carries a valid HMAC-SHA256 under a random key that only this user can read. The folder (``$NETSPEC_CACHE_DIR``,
else ``$XDG_CACHE_HOME/netspec``, else ``~/.cache/netspec``) is created with mode 0700 and used only if it is a real
folder owned by this user that nobody else can open; the key file likewise (0600). A corrupt, truncated, tampered
or unreadable entry is ignored (and replaced by the next store).

The command line uses it (``netspec check``, ``summary``, ``draw``, ``compile``, ...); disable it with
``NETSPEC_NO_CACHE=1`` or ``netspec --no-cache``. From Python it is off unless ``netspec.cache.ENABLED = True``
(a program that changes netspec's behaviour at run time, such as a test, should not get an earlier result).
Delete the folder to empty it.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import pickle
import stat
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

MAGIC = b"NSCACHE1"
MAX_ENTRY_BYTES = 512 * 1024**2            # a larger result is not stored
# limits that only later stages spend (memory estimate, drawing): they do not change a loaded, expanded graph
NOT_KEYED_LIMITS = frozenset({"max_alloc_bytes", "max_layout_cost", "max_drawn_nodes"})

ENABLED = False                             # the CLI turns it on (netspec --no-cache leaves it off); so may an API user
READS: list | None = None                   # while computing an entry: (path, SHA-256) of each file read
_code_fingerprint: str | None = None


def enabled() -> bool:
    return ENABLED and not os.environ.get("NETSPEC_NO_CACHE")


def record_read(path, raw: bytes) -> None:
    """Called by the spec reader for every file it reads (``spec.parse.read_text``)."""
    if READS is not None:
        READS.append((os.path.abspath(path), hashlib.sha256(raw).hexdigest()))


def cache_dir() -> Path:
    base = os.environ.get("NETSPEC_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "netspec"


def _private_dir() -> Path | None:
    """The cache folder, created 0700; None unless it is a real folder of this user that nobody else can open."""
    d = cache_dir()
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(d)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return d


def _key(d: Path) -> bytes | None:
    """This user's random HMAC key (created on first use, 0600); None if it is not private or cannot be read."""
    p = d / "key"
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            return None
        key = f.read(64)
    return key if len(key) == 32 else None


def code_fingerprint() -> str:
    """netspec's version and the size and modification time of each of its source files."""
    global _code_fingerprint
    if _code_fingerprint is None:
        from . import __version__
        root = Path(__file__).resolve().parent
        h = hashlib.sha256(__version__.encode())
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(x for x in dirnames if x != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(dirpath, name))
                    h.update(f"{os.path.relpath(os.path.join(dirpath, name), root)}:{st.st_size}:"
                             f"{st.st_mtime_ns}\n".encode())
        _code_fingerprint = h.hexdigest()
    return _code_fingerprint


def entry_key(kind: str, path, args: dict) -> str:
    from .limits import LIMITS
    limits = {k: v for k, v in asdict(LIMITS).items() if k not in NOT_KEYED_LIMITS}
    text = json.dumps({"kind": kind, "code": code_fingerprint(), "path": str(path),
                       "abs": os.path.abspath(path), "args": args, "limits": limits},
                      sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Pickler(pickle.Pickler):
    """Ops are classes made by factories: they are stored by their registered name. With ``keep_spec`` False (the
    entries of ``check``, which reads nothing but the graphs) the loaded ``Spec`` a graph keeps (``Graph.spec``) is
    not stored: such a graph comes back with ``spec = None``, so that a cached check needs neither the spec models
    nor pydantic. Code generation reads the spec (it expands again at other parameter values), so the entries of
    every other command keep it."""

    keep_spec = True

    # both hooks run for every object pickled (about 20k for a 1,000-node graph): the cheap test first
    def reducer_override(self, obj):
        if not isinstance(obj, type):
            return NotImplemented
        from .ops.base import Op, lookup
        if issubclass(obj, Op):
            import sys
            if getattr(sys.modules.get(obj.__module__), obj.__qualname__, None) is obj:
                return NotImplemented                  # an ordinary class: pickled by reference
            if lookup(getattr(obj, "name", "")) is not obj:
                raise pickle.PicklingError(f"op class {obj!r} cannot be found again")
            return (_op_named, (obj.name,))
        return NotImplemented


class _NoSpecPickler(_Pickler):
    """_Pickler that leaves the graphs' Spec out (``keep_spec`` False); a separate class so that the per-object
    persistent_id hook runs only where it is needed."""

    keep_spec = False

    def persistent_id(self, obj):
        if type(obj).__name__ == "Spec" and type(obj).__module__ == "netspec.spec.load":
            return "spec"
        return None


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        if pid == "spec":
            return None
        raise pickle.UnpicklingError(f"unknown reference {pid!r}")


def _op_named(name: str):
    from .ops.base import lookup
    op = lookup(name)
    if op is None:
        raise LookupError(name)
    return op


def _files_unchanged(deps: list) -> bool:
    for path, digest in deps:
        try:
            with open(path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != digest:
                    return False
        except OSError:
            return False
    return True


def load_entry(d: Path, name: str, key: bytes) -> Any:
    """The value of an entry, or None where there is none or it is stale, corrupt or tampered with."""
    try:
        fd = os.open(d / name, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_size > MAX_ENTRY_BYTES + 4096:
            return None
        blob = f.read()
    if len(blob) < len(MAGIC) + 32 + 4 or not blob.startswith(MAGIC):
        return None
    mac, body = blob[len(MAGIC):len(MAGIC) + 32], blob[len(MAGIC) + 32:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        return None                                    # not written by this user's netspec: never unpickled
    try:
        n = int.from_bytes(body[:4], "big")
        deps = json.loads(body[4:4 + n])
        if not _files_unchanged([(str(p), str(h)) for p, h in deps]):
            return None
        value = _Unpickler(io.BytesIO(body[4 + n:])).load()
    except Exception:                                  # corrupt, or made by an incompatible netspec: rebuilt
        return None
    from .io import mark_input
    for p, _ in deps:
        mark_input(p)                                  # outputs of this process may not replace the spec's files
    return value


def store_entry(d: Path, name: str, key: bytes, deps: list, value, keep_spec: bool = True) -> None:
    try:
        buf = io.BytesIO()
        pickler = (_Pickler if keep_spec else _NoSpecPickler)(buf, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dump(value)
    except Exception:                                  # something in the result does not pickle: not cached
        return
    payload = buf.getvalue()
    if len(payload) > MAX_ENTRY_BYTES:
        return
    import tempfile
    head = json.dumps(deps).encode("utf-8")
    body = len(head).to_bytes(4, "big") + head + payload
    blob = MAGIC + hmac.new(key, body, hashlib.sha256).digest() + body
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, d / name)
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass


def cached(kind: str, path, args: dict, compute: Callable[[], Any], storable: Callable[[Any], bool] = bool,
           keep_spec: bool = True):
    """``compute()``, or its stored result for the same key and the same content of every file it read
    (``keep_spec=False``: graphs come back without their ``spec``)."""
    global READS
    if not enabled() or READS is not None:
        return compute()
    d = _private_dir()
    key = _key(d) if d is not None else None
    if key is None:
        return compute()
    name = entry_key(kind, path, args) + ".pkl"
    value = load_entry(d, name, key)
    if value is not None:
        return value
    READS = []
    try:
        value = compute()
        deps = READS
    finally:
        READS = None
    if deps and storable(value):
        store_entry(d, name, key, sorted(set(deps)), value, keep_spec)
    return value
