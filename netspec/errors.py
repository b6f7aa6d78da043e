"""One exception hierarchy for everything a user can get wrong.

Every error carries a location (file:line:col, 1-based) and, where we can say how to fix it, hints.
The CLI prints them as ``file:line:col: error: message`` followed by ``  hint: ...`` lines and exits 1.
"""
from __future__ import annotations

import difflib
import re
from typing import Iterable, NamedTuple

# C0 and C1 control characters (ESC, BEL, CR, backspace, ...), DEL, and the Unicode controls that reorder or hide
# text (bidi overrides and isolates, zero-width characters, line and paragraph separators)
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def visible(s: str) -> str:
    """``s`` with every control character written out (ESC as \\x1b, a newline as \\n), so that text from a file
    can neither drive the terminal (clear it, retitle it, move the cursor) nor fake a line of output."""
    s = str(s)
    if not _INVISIBLE.search(s):
        return s
    return _INVISIBLE.sub(lambda m: ascii(m.group())[1:-1], s)


class Loc(NamedTuple):
    """A position in a spec file; line and col are 1-based. Immutable and hashable; a named tuple because a big spec
    makes one for every key and value it holds (``tuple.__new__(Loc, (file, line, col))`` is the fast way)."""

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def shifted(self, cols: int) -> "Loc":
        return Loc(self.file, self.line, self.col + cols)


class NetspecError(Exception):
    """Base class: a message, where it happened, and how to fix it."""

    kind = "error"

    def __init__(self, message: str, loc: Loc | None = None, hints: Iterable[str] | str | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc
        if isinstance(hints, str):
            hints = [hints]
        self.hints = [h for h in (hints or []) if h]

    def format(self) -> str:
        """``file:line:col: error: message`` and ``  hint: ...`` lines; control characters from the file made visible."""
        where = f"{visible(str(self.loc))}: " if self.loc else ""
        lines = [f"{where}{self.kind}: {visible(self.message)}"]
        lines += [f"  hint: {visible(h)}" for h in self.hints]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


class SpecError(NetspecError):
    """The text or structure of a spec is wrong (syntax, types, unknown fields, bad expressions)."""


class GraphError(NetspecError):
    """The network the spec describes is wrong (cycles, unresolved references, recursion)."""


class ShapeError(NetspecError):
    """Tensor shapes do not fit together."""


class LimitError(NetspecError):
    """A configured limit (file size, node count, parameter bytes, ...) was exceeded."""


class WeightsError(NetspecError):
    """A weight file does not match the module, or is unsafe to load."""


class OutputError(NetspecError):
    """An output (source, diagram, weights) could not be written."""


class Warning_(NetspecError):
    kind = "warning"


class ErrorList(NetspecError):
    """Several errors found in one pass; ``errors`` holds them in file order."""

    def __init__(self, errors: list[NetspecError]):
        self.errors = sorted(errors, key=_order)
        first = self.errors[0]
        super().__init__(first.message, first.loc, first.hints)

    def format(self) -> str:
        return "\n".join(e.format() for e in self.errors)


def _order(e: NetspecError):
    if e.loc is None:
        return ("", 0, 0)
    return (e.loc.file, e.loc.line, e.loc.col)


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str | None:
    """A 'did you mean ...?' hint, or None."""
    choices = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(str(word), choices, n=n, cutoff=0.6)
    if not close:
        low = {c.lower(): c for c in choices}
        if str(word).lower() in low:
            close = [low[str(word).lower()]]
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def choices_hint(choices: Iterable[str], what: str = "choices", limit: int = 12) -> str:
    choices = sorted(choices)
    shown = ", ".join(choices[:limit])
    more = f", ... ({len(choices)} in all)" if len(choices) > limit else ""
    return f"{what}: {shown}{more}"
