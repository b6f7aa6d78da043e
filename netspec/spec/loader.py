"""Text -> plain data + a table of locations.

Safe YAML only: we compose the node tree with PyYAML's SafeLoader (no constructors run), then convert it
ourselves, so that every key and value keeps its file:line:col, duplicate keys are errors, only the
standard scalar tags are accepted, and aliases cannot expand without bound.  JSON files are first checked
by the json module (so trailing commas and other non-JSON are refused) and then read the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import json
import os
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor, ConstructorError

from ..errors import Loc, SpecError, LimitError
from ..limits import LIMITS

Path_ = tuple  # a path into the data: ('layers', 3, 'kernel')

_STD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}


@dataclass
class Source:
    """A loaded file: its data (plain dicts/lists/scalars) and where every path in it came from."""

    file: str                      # as shown in messages
    path: Path | None              # resolved path on disk, None for text
    data: Any
    locs: dict[Path_, Loc] = field(default_factory=dict)       # path -> location of the value
    key_locs: dict[Path_, Loc] = field(default_factory=dict)   # path -> location of the key naming it
    text: str = ""

    def loc(self, path: Path_, key: bool = False) -> Loc:
        """The location of ``path`` or of the nearest enclosing value that has one."""
        table = self.key_locs if key else self.locs
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if not key and p in self.key_locs:
                return self.key_locs[p]
            p = p[:-1]
        return self.locs.get((), Loc(self.file, 1, 1))


def _loc(file: str, mark) -> Loc:
    return Loc(file, mark.line + 1, mark.column + 1)


def read_text(path: Path, shown: str) -> str:
    """Read a spec file as UTF-8 text, refusing binary data, bad encodings and oversized files."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise SpecError(f"cannot read '{shown}': {e.strerror or e}", Loc(shown, 1, 1)) from None
    if not path.is_file():
        raise SpecError(f"'{shown}' is not a file", Loc(shown, 1, 1))
    if size > LIMITS.max_file_bytes:
        raise LimitError(
            f"the file is {size:,} bytes, over the limit of {LIMITS.max_file_bytes:,}",
            Loc(shown, 1, 1),
            "spec files are small; raise the limit with --max-file-bytes if this one is really meant to be this large",
        )
    try:
        with open(path, "rb") as f:
            raw = f.read(LIMITS.max_file_bytes + 1)
    except OSError as e:
        raise SpecError(f"cannot read '{shown}': {e.strerror or e}", Loc(shown, 1, 1)) from None
    return decode(raw, shown)


def decode(raw: bytes, shown: str) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\x00" in raw:
        off = raw.index(b"\x00")
        raise SpecError("the file contains NUL bytes: this is binary data, not a spec", _offset_loc(raw, off, shown),
                        "a spec is a YAML or JSON text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"the file is not valid UTF-8 (byte 0x{raw[e.start]:02x})", _offset_loc(raw, e.start, shown),
                        "save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _offset_loc(raw: bytes, off: int, shown: str) -> Loc:
    before = raw[:off]
    line = before.count(b"\n") + 1
    col = off - (before.rfind(b"\n") + 1) + 1
    return Loc(shown, line, col)


def parse_text(text: str, file: str, *, json_mode: bool = False, path: Path | None = None) -> Source:
    """Parse YAML (or JSON) text into a Source. Raises SpecError with a location."""
    if len(text.encode("utf-8", "surrogatepass")) > LIMITS.max_file_bytes:
        raise LimitError(f"the text is over the limit of {LIMITS.max_file_bytes:,} bytes", Loc(file, 1, 1))
    if json_mode:
        try:
            json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            raise SpecError(f"invalid JSON: {e.msg}", Loc(file, e.lineno, e.colno),
                            "JSON allows no trailing commas, comments or single quotes") from None
        except ValueError as e:
            raise SpecError(f"invalid JSON: {e}", Loc(file, 1, 1)) from None
        except RecursionError:
            raise LimitError("the JSON is nested too deeply", Loc(file, 1, 1)) from None
    if "\t" in text and not json_mode:
        # YAML forbids tabs in indentation; PyYAML's message for that is obscure, so say it plainly.
        for i, line in enumerate(text.split("\n")):
            stripped = line.lstrip(" ")
            if stripped.startswith("\t"):
                raise SpecError("a tab character is used for indentation; YAML allows only spaces",
                                Loc(file, i + 1, len(line) - len(stripped) + 1), "replace the tab with spaces")
    _check_depth(text, file)
    try:
        docs = yaml.compose_all(text, Loader=yaml.SafeLoader)
        root = next(docs, None)
        if root is not None:
            second = next(docs, None)
            if second is not None:
                raise SpecError("the file holds several YAML documents; a spec is one document",
                                _loc(file, second.start_mark), "remove the '---' separator, or split the file")
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = (e.problem or e.context or "invalid YAML").strip()
        if e.context and e.problem:
            msg = f"{e.problem} ({e.context})"
        hint = _yaml_hint(msg)
        raise SpecError(f"invalid YAML: {msg}", _loc(file, mark) if mark else Loc(file, 1, 1), hint) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {e}", Loc(file, 1, 1)) from None
    except RecursionError:
        raise LimitError("the YAML is nested too deeply", Loc(file, 1, 1),
                         f"the limit is {LIMITS.max_depth} levels") from None
    if root is None:
        raise SpecError("the file is empty", Loc(file, 1, 1),
                        "a spec needs at least 'netspec: 1', 'inputs' and 'layers' (see docs/spec-language.md)")
    src = Source(file=file, path=path, data=None, text=text)
    conv = _Converter(src)
    src.data = conv.convert(root, (), 0)
    if not isinstance(src.data, dict):
        kind = "a list" if isinstance(src.data, list) else "a single value"
        raise SpecError(f"the top level of a spec must be a mapping, not {kind}", src.locs[()],
                        "start with 'netspec: 1' followed by 'inputs:' and 'layers:'")
    return src


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _yaml_hint(msg: str) -> str | None:
    if "mapping values are not allowed" in msg:
        return "a value that contains ': ' must be quoted, and nested mappings need to be indented"
    if "found character '\\t'" in msg or "tab" in msg:
        return "YAML allows only spaces for indentation"
    if "could not find expected ':'" in msg:
        return "every entry of a mapping needs 'key: value'"
    if "found undefined alias" in msg:
        return "define the anchor (&name) before using the alias (*name)"
    return None


def _check_depth(text: str, file: str) -> None:
    """Refuse pathologically nested flow collections before PyYAML recurses into them."""
    depth = 0
    limit = LIMITS.max_depth
    line, col = 1, 0
    in_quote = None
    for ch in text:
        col += 1
        if ch == "\n":
            line += 1
            col = 0
            in_quote = None if in_quote == "#" else in_quote
            continue
        if in_quote:
            if ch == in_quote and in_quote != "#":
                in_quote = None
            continue
        if ch in "\"'":
            in_quote = ch
        elif ch == "#" and (col == 1 or True):
            in_quote = "#"
        elif ch in "[{":
            depth += 1
            if depth > limit:
                raise LimitError(f"the text is nested more than {limit} levels deep", Loc(file, line, col),
                                 "a spec never needs this; raise --max-depth if it really does")
        elif ch in "]}":
            depth = max(0, depth - 1)


class _Converter:
    def __init__(self, src: Source):
        self.src = src
        self.file = src.file
        self.constructor = SafeConstructor()
        self.alias_budget = LIMITS.max_alias_nodes
        self.active: set[int] = set()   # node ids on the current path (recursive aliases)
        self.seen: dict[int, int] = {}  # node id -> times converted (aliases convert again)
        self.nodes = 0

    def convert(self, node, path: tuple, depth: int):
        if depth > LIMITS.max_depth:
            raise LimitError(f"the spec is nested more than {LIMITS.max_depth} levels deep", _loc(self.file, node.start_mark))
        self.nodes += 1
        if self.nodes > LIMITS.max_yaml_nodes:
            raise LimitError(f"the spec has more than {LIMITS.max_yaml_nodes:,} YAML values",
                             _loc(self.file, node.start_mark), "raise --max-yaml-nodes if this is intended")
        nid = id(node)
        if nid in self.active:
            raise SpecError("a YAML alias refers to itself (recursive anchor)", _loc(self.file, node.start_mark),
                            "aliases cannot contain themselves")
        if nid in self.seen:
            # an alias: the same node once more; count it against the expansion budget
            self.alias_budget -= _size(node)
            if self.alias_budget < 0:
                raise LimitError(f"YAML aliases expand to more than {LIMITS.max_alias_nodes:,} values",
                                 _loc(self.file, node.start_mark),
                                 "this looks like a 'billion laughs' document; write the values out or use a block")
        self.seen[nid] = self.seen.get(nid, 0) + 1
        loc = _loc(self.file, node.start_mark)
        self.src.locs.setdefault(path, loc)
        tag = node.tag
        if tag not in _STD_TAGS:
            raise SpecError(f"the YAML tag '{_tag(tag)}' is not allowed", loc,
                            "netspec reads plain YAML only: strings, numbers, booleans, null, lists and mappings")
        if isinstance(node, yaml.MappingNode):
            self.active.add(nid)
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                kloc = _loc(self.file, knode.start_mark)
                if knode.tag == "tag:yaml.org,2002:merge":
                    raise SpecError("YAML merge keys ('<<') are not supported", kloc,
                                    "write the keys out, or put the shared layers in a block")
                if not isinstance(knode, yaml.ScalarNode):
                    raise SpecError("a mapping key must be a plain name, not a list or mapping", kloc)
                if knode.tag not in _STD_TAGS:
                    raise SpecError(f"the YAML tag '{_tag(knode.tag)}' is not allowed", kloc)
                key = knode.value
                if knode.tag != "tag:yaml.org,2002:str":
                    val = self._scalar(knode, kloc)
                    if isinstance(val, bool) or val is None:
                        key = knode.value
                    else:
                        key = str(val)
                if len(key) > LIMITS.max_key_chars:
                    raise LimitError(f"a key of {len(key):,} characters is over the limit of {LIMITS.max_key_chars}", kloc)
                if key in out:
                    first = self.src.key_locs[path + (key,)]
                    raise SpecError(f"duplicate key '{key}' (first defined at line {first.line})", kloc,
                                    "YAML would silently keep only the last one; rename or remove one of them")
                self.src.key_locs[path + (key,)] = kloc
                out[key] = self.convert(vnode, path + (key,), depth + 1)
            self.active.discard(nid)
            return out
        if isinstance(node, yaml.SequenceNode):
            self.active.add(nid)
            items = [self.convert(v, path + (i,), depth + 1) for i, v in enumerate(node.value)]
            self.active.discard(nid)
            return items
        return self._scalar(node, loc)

    def _scalar(self, node, loc):
        if node.tag == "tag:yaml.org,2002:str":
            if len(node.value) > LIMITS.max_string_chars:
                raise LimitError(f"a string of {len(node.value):,} characters is over the limit of "
                                 f"{LIMITS.max_string_chars:,}", loc)
            return node.value
        try:
            val = self.constructor.construct_object(node, deep=True)
        except (ConstructorError, ValueError, OverflowError) as e:
            raise SpecError(f"invalid value '{node.value[:40]}': {e}", loc) from None
        if isinstance(val, int) and not isinstance(val, bool) and abs(val) > 2**62:
            raise LimitError(f"the number {node.value[:30]} is too large", loc, "numbers are limited to 2**62")
        if isinstance(val, float) and (val != val or val in (float("inf"), float("-inf"))):
            raise SpecError(f"'{node.value}' is not a finite number", loc)
        return val


def _tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag[:80]


def _size(node, _limit=10**7) -> int:
    """Number of YAML nodes reachable from ``node`` (counting shared nodes each time, bounded)."""
    total = 0
    stack = [node]
    while stack and total < _limit:
        n = stack.pop()
        total += 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return total


def load_file(path: str | os.PathLike, shown: str | None = None) -> Source:
    p = Path(path)
    shown = shown or str(path)
    text = read_text(p, shown)
    return parse_text(text, shown, json_mode=p.suffix.lower() == ".json", path=p.resolve())
