"""The bundled specs as a library: ``netspec check resnet18`` and ``netspec.build("resnet18")`` find them by name.

They live in the checkout's ``specs/``, and ship inside the installed package as ``netspec/specs`` (setup.py).
A name is looked up only when no such file exists: a file always wins.
"""
from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path

SUFFIXES = (".yaml", ".yml", ".json")


def zoo_dir() -> Path:
    """The folder of the bundled specs: inside the installed package, or the checkout's specs/."""
    here = Path(__file__).resolve().parent
    for cand in (here / "specs", here.parent / "specs"):
        if cand.is_dir():
            return cand
    return here / "specs"


def names() -> list[str]:
    """The bundled specs' names (file stems), sorted."""
    d = zoo_dir()
    return sorted({p.stem for p in d.iterdir() if p.suffix in SUFFIXES and p.is_file()}) if d.is_dir() else []


def bundled(name: str) -> Path | None:
    """The file of the bundled spec ``name``, or None."""
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        return None
    for suffix in SUFFIXES:
        p = zoo_dir() / f"{name}{suffix}"
        if _is_file(p):
            return p
    return None


def _exists(p) -> bool:
    """Whether a path exists; False for one the file system cannot even look up (a NUL byte, a name too long)."""
    try:
        return Path(p).exists()
    except (OSError, ValueError):
        return False


def _is_file(p) -> bool:
    try:
        return Path(p).is_file()
    except (OSError, ValueError):
        return False


@dataclass
class Resolved:
    path: str | os.PathLike      # what to read
    note: str | None = None      # said when a name could mean two things


def resolve(arg: str | os.PathLike) -> Resolved:
    """The file a command-line spec argument means: the file itself when it exists (a file always wins), else the
    bundled spec of that name; with a note when both a file and a bundled spec could be meant."""
    text = os.fspath(arg)
    found = bundled(text) if text and os.sep not in text and "/" not in text else None
    if _exists(text):
        if found is not None:
            return Resolved(arg, f"'{text}' is the file {text}; the bundled spec of that name is {found}")
        return Resolved(arg)
    if found is None:
        return Resolved(arg)
    local = [text + s for s in SUFFIXES if _is_file(text + s)]
    note = (f"'{text}' is the bundled spec {found}; the local file {local[0]} was not read (name it with its "
            f"suffix to use it)") if local else None
    return Resolved(found, note)


def missing_hint(arg: str) -> str | None:
    """For a spec argument that is neither a file nor a bundled name: the bundled names it may mean."""
    from .errors import did_you_mean
    stem = Path(str(arg)).stem
    dym = did_you_mean(stem, names())
    return f"{dym[:-1]} (a bundled spec: 'netspec zoo' lists them)" if dym else None


# sizes at which `netspec zoo` counts MACs, for the symbols an input leaves free (raised to their multiple_of)
EXAMPLE_SIZES = {"N": 1, "H": 224, "W": 224, "D": 16, "T": 128, "S": 128, "L": 128}


@dataclass
class Entry:
    """One bundled spec, as `netspec zoo` shows it."""

    name: str
    path: Path
    reproduces: str                      # the file's header comment, joined into one paragraph
    params: int | None = None            # parameters of all its networks
    macs: int | None = None              # MACs of one forward pass of all its networks, at ``sizes``
    sizes: dict | None = None
    error: str | None = None
    macs_data: list | None = None        # data-dependent sizes some MACs depend on (a detector's K): macs is a floor


def header(path: Path) -> str:
    """The comment lines a spec file starts with, joined: what it reproduces and which reference it matches."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(x for x in lines if x)


def entry(path: Path) -> Entry:
    """A bundled spec's name, header, parameter count and MACs (at EXAMPLE_SIZES; no weights are made)."""
    from .errors import NetspecError
    from .pipeline import graphs, input_symbols, load_spec
    from .shapes import is_sym
    e = Entry(path.stem, path, header(path))
    try:
        spec = load_spec(path)
        params = macs = 0
        sizes: dict = {}
        data: set = set()
        for name in spec.networks:
            free = graphs(spec, name)[0]
            bind = {}
            for s in input_symbols(spec, name):
                m = free.sym.multiple_of.get(s, 1)
                v = EXAMPLE_SIZES.get(s, 64)
                bind[s] = -(-v // m) * m
            g = graphs(spec, name, bind=bind)[0] if bind else free
            params += g.num_params()
            for n in g.nodes.values():
                m = n.meta.get("macs") or 0
                if is_sym(m):           # only sizes the data decides are left free after binding the inputs'
                    data.update(str(x) for x in m.free_symbols())
                else:
                    macs += int(m)
            sizes.update(bind)
        e.params, e.macs, e.sizes = params, macs, sizes
        e.macs_data = sorted(data) or None
    except NetspecError as err:
        e.error = err.message
    return e


def entries() -> list[Entry]:
    d = zoo_dir()
    return [entry(d / f"{n}.yaml") if (d / f"{n}.yaml").is_file() else entry(bundled(n)) for n in names()]


def _shown(p: Path) -> str:
    try:
        rel = os.path.relpath(p)
    except ValueError:
        return str(p)
    return rel if not rel.startswith("..") else str(p)


def text(e: Entry) -> str:
    """An entry as lines of text."""
    if e.error:
        head = f"{e.name}: does not check: {e.error}"
    else:
        at = ", ".join(f"{k}={v}" for k, v in (e.sizes or {}).items())
        macs = _human(e.macs) + (f"+ (more per {', '.join(e.macs_data)})" if e.macs_data else "")
        head = f"{e.name}: {e.params:,} parameters, {macs} MACs" + (f" at {at}" if at else "")
    return "\n".join([head, f"  file: {_shown(e.path)}", f"  reproduces: {e.reproduces or '-'}"])


def _human(n: int) -> str:
    for unit, k in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= k:
            return f"{n / k:.2f}{unit}"
    return str(n)
