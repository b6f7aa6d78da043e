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
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor, ConstructorError
from yaml.resolver import Resolver

from .. import cache as _cache
from ..errors import Loc, NetspecError, SpecError, LimitError
from ..io import mark_input
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

# libyaml parses about 20x faster than the pure-Python parser; the pure-Python one is the fallback, and it
# re-reads small files that fail, because its messages name the offending character.
_FAST_PARSER = getattr(yaml, "CSafeLoader", None)
_PY_MESSAGES_MAX_CHARS = 64 * 1024


class _Resolver(Resolver):
    """YAML 1.1's implicit types without dates and '=': those stay strings, as in JSON and YAML 1.2."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in rules
            if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")]
    for first, rules in Resolver.yaml_implicit_resolvers.items()
}


@dataclass
class Source:
    """A loaded file: its data (plain dicts/lists/scalars) and where every path in it came from."""

    file: str                      # as shown in messages
    path: Path | None              # resolved path on disk, None for text
    data: Any
    # path -> location of the value there: only the top-level value's (path ()); every other location is kept by
    # the mapping or list that holds it, in ``within``. A location is a Loc, or (from the one-pass reader) the line
    # and column packed in one int (line << 32 | column), a Loc only when asked for: read them through loc()
    locs: dict[Path_, Loc | int] = field(default_factory=dict)
    text: str = ""
    # the path of each mapping or list -> (the locations of its values: a dict by key, or a list by position; of its
    # keys: a dict by key, None for a list). One entry per collection instead of two per key (a file written out
    # layer by layer has hundreds of thousands)
    within: dict[Path_, tuple] = field(default_factory=dict)

    def loc(self, path: Path_, key: bool = False) -> Loc:
        """The location of ``path`` or of the nearest enclosing value that has one."""
        if type(path) is tuple:
            hit = self._get(path, key)
            if hit is not None:
                return self._unpack(hit)
        p = tuple(path)
        while p:
            hit = self._get(p, key)
            if hit is None and not key:
                hit = self._get(p, True)
            if hit is not None:
                return self._unpack(hit)
            p = p[:-1]
        return self._unpack(self.locs.get((), Loc(self.file, 1, 1)))

    def _get(self, path: tuple, key: bool) -> Loc | int | None:
        """The location recorded for exactly ``path`` (its value's, or its key's), or None."""
        if not path:
            return None if key else self.locs.get(())
        held = self.within.get(path[:-1])
        if held is None:
            return None
        at = path[-1]
        table = held[1] if key else held[0]
        if type(table) is dict:
            return table.get(at)
        if table is not None and type(at) is int and 0 <= at < len(table):
            return table[at]
        return None

    def has(self, path: tuple) -> bool:
        """Whether the file gives a value at ``path``."""
        return self._get(path, False) is not None

    def paths(self, key: bool = False):
        """Every path with a recorded location (of its value, or of its key)."""
        if not key:
            yield from self.locs
        for where, (values, keys) in self.within.items():
            table = keys if key else values
            if type(table) is dict:
                yield from (where + (k,) for k in table)
            elif table is not None:
                yield from (where + (k,) for k in range(len(table)))

    def _unpack(self, hit: Loc | int) -> Loc:
        return hit if type(hit) is not int else tuple.__new__(Loc, (self.file, hit >> 32, hit & _COLUMN))


_COLUMN = (1 << 32) - 1


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
            "spec files are small; raise the limit with --limit max_file_bytes=N if this one is really meant to be this large",
        )
    try:
        with open(path, "rb") as f:
            raw = f.read(LIMITS.max_file_bytes + 1)
    except OSError as e:
        raise SpecError(f"cannot read '{shown}': {e.strerror or e}", Loc(shown, 1, 1)) from None
    if _cache.READS is not None:         # a cached result is used only while every file read is unchanged
        _cache.record_read(path, raw)
    return decode(raw, shown)


def decode(raw: bytes, shown: str) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for bom, encoding in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                          (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if raw.startswith(bom):
            raise SpecError(f"the file is {encoding} text (it starts with a {encoding} byte order mark)",
                            Loc(shown, 1, 1), "save the file as UTF-8")
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
    """The line and column (in characters, as editors count) of byte offset ``off``."""
    before = raw[:off]
    line_start = before.rfind(b"\n") + 1
    return Loc(shown, before.count(b"\n") + 1, len(before[line_start:].decode("utf-8", "replace")) + 1)


def parse_text(text: str, file: str, *, json_mode: bool = False, path: Path | None = None) -> Source:
    """Parse YAML (or JSON) text into a Source. Raises SpecError with a location."""
    if len(text.encode("utf-8", "surrogatepass")) > LIMITS.max_file_bytes:
        raise LimitError(f"the text is over the limit of {LIMITS.max_file_bytes:,} bytes", Loc(file, 1, 1),
                         "raise the limit with --limit max_file_bytes=N if it is really meant to be this large")
    if json_mode:
        try:
            json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            raise SpecError(f"invalid JSON: {e.msg}", Loc(file, e.lineno, e.colno),
                            "JSON allows no trailing commas, comments or single quotes") from None
        except ValueError as e:     # NaN or Infinity, which the json module reads but JSON does not allow
            raise SpecError(f"invalid JSON: {e}", _json_constant_loc(text, file)) from None
        except RecursionError:
            pass   # nested too deeply for the json module: the YAML reader below says where
        # JSON writes a character beyond U+FFFF as a pair of escapes ("\ud83d\ude00"), which YAML does not read:
        # give YAML its 8-digit escape instead (later columns on that line move 2 to the left)
        text = _JSON_SURROGATES.sub(_yaml_escape, text)
    if "\t" in text and not json_mode:
        # YAML forbids tabs in indentation; PyYAML's message for that is obscure, so say it plainly.
        for i, line in enumerate(text.split("\n")):
            stripped = line.lstrip(" ")
            if stripped.startswith("\t"):
                raise SpecError("a tab character is used for indentation; YAML allows only spaces",
                                Loc(file, i + 1, len(line) - len(stripped) + 1), "replace the tab with spaces")
    src = Source(file=file, path=path, data=None, text=text)
    if _FAST_PARSER is not None and _read_fast(text, file, src):
        return _top_level(src)
    src = Source(file=file, path=path, data=None, text=text)
    root = _compose(text, file)
    if root is None:
        what = "the file is empty" if not text.strip() else "the file holds no YAML value (only comments)"
        raise SpecError(what, Loc(file, 1, 1),
                        "a spec needs at least 'netspec: 1', 'inputs' and 'layers' (see docs/spec-language.md)")
    conv = _Converter(src)
    try:
        src.data = conv.convert(root, (), 0)
    except RecursionError:      # a max_depth raised beyond what Python's stack holds
        raise LimitError(f"the spec is nested too deeply for netspec to read (max_depth is {LIMITS.max_depth:,}, "
                         "more than Python's stack allows)", Loc(file, 1, 1),
                         "lower the limit, e.g. --limit max_depth=200, and flatten the file") from None
    return _top_level(src)


def _top_level(src: Source) -> Source:
    if not isinstance(src.data, dict):
        kind = "a list" if isinstance(src.data, list) else "a single value"
        raise SpecError(f"the top level of a spec must be a mapping, not {kind}", src.loc(()),
                        "start with 'netspec: 1' followed by 'inputs:' and 'layers:'")
    return src


_JSON_SURROGATES = re.compile(r"\\\\|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE)


def _yaml_escape(m: re.Match) -> str:
    if m.group(1) is None:          # an escaped backslash, kept as it is
        return m.group(0)
    hi, lo = int(m.group(1), 16), int(m.group(2), 16)
    return f"\\U{0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00):08x}"


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _json_constant_loc(text: str, file: str) -> Loc:
    """Where the first NaN/Infinity outside a string is (the json module does not say)."""
    blanked = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: " " * len(m.group()), text)
    m = re.search(r"NaN|-?Infinity", blanked)
    off = m.start() if m else 0
    return Loc(file, text.count("\n", 0, off) + 1, off - (text.rfind("\n", 0, off) + 1) + 1)


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


def _compose(text: str, file: str):
    """The node tree of the one YAML document in ``text`` (None when there is none).

    Built from the parser's events without recursion, so the nesting depth and the number of values are checked
    as they are read: a hostile file stops after at most ``max_yaml_nodes`` values and ``max_depth`` levels.
    """
    parser = (_FAST_PARSER or yaml.SafeLoader)(text)
    try:
        return _compose_events(parser, file)
    except yaml.MarkedYAMLError as e:
        err = e
    except yaml.reader.ReaderError as e:
        # libyaml counts the offset in UTF-8 bytes, the pure-Python reader in characters
        before = text.encode("utf-8")[:e.position] if _FAST_PARSER else text[:e.position].encode("utf-8")
        raise SpecError(f"the file contains the control character U+{e.character:04X}, which YAML does not allow",
                        _offset_loc(before, len(before), file),
                        "remove it, or write it as an escape inside a double-quoted string") from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {e}", Loc(file, 1, 1)) from None
    finally:
        parser.dispose()
    if _FAST_PARSER is not None and len(text) <= _PY_MESSAGES_MAX_CHARS:
        try:
            slow = yaml.SafeLoader(text)
            while slow.check_event():
                slow.get_event()
        except yaml.MarkedYAMLError as e:
            err = e
    raise _yaml_error(err, file)


def _yaml_error(e: yaml.MarkedYAMLError, file: str) -> SpecError:
    mark = e.problem_mark or e.context_mark
    msg = (e.problem or e.context or "invalid YAML").strip()
    if e.context and e.problem:
        msg = f"{e.problem} ({e.context})"
    if "exceeded maximum nesting depth" in msg:      # libyaml's own bound (1000) met before ours was seen
        return LimitError(f"the spec is nested more than {LIMITS.max_depth} levels deep", _loc(file, mark),
                          "a spec never needs this; raise it with --limit max_depth=N if it really does")
    start = e.context_mark
    if ("could not find expected ':'" in msg and start is not None and mark is not None and mark.line == start.line
            and mark.column - start.column > 1000):
        return LimitError("a key is longer than 1024 characters, which YAML does not allow", _loc(file, start),
                          "keys name fields and layers; a key this long is not a spec")
    return SpecError(f"invalid YAML: {msg}", _loc(file, mark) if mark else Loc(file, 1, 1), _yaml_hint(msg))


def _compose_events(parser, file: str):
    resolver = _Resolver()
    max_depth, max_values = LIMITS.max_depth, LIMITS.max_yaml_nodes
    parser.get_event()                                   # stream start
    if parser.check_event(yaml.StreamEndEvent):
        return None
    parser.get_event()                                   # document start
    anchors: dict = {}
    stack: list = []        # open collections, each [node, key waiting for its value (mappings)]
    values = 0
    while True:
        ev = parser.get_event()
        if isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            node = stack.pop()[0]
            node.end_mark = ev.end_mark
        else:
            values += 1
            if values > max_values:
                raise LimitError(f"the spec has more than {max_values:,} YAML values", _loc(file, ev.start_mark),
                                 "raise it with --limit max_yaml_nodes=N if this is intended")
            if isinstance(ev, yaml.AliasEvent):
                node = anchors.get(ev.anchor)
                if node is None:
                    raise SpecError(f"the alias '*{ev.anchor}' refers to no anchor", _loc(file, ev.start_mark),
                                    "define the anchor (&name) before using the alias (*name)")
                if any(open_[0] is node for open_ in stack):
                    raise SpecError("a YAML alias refers to itself (recursive anchor)", _loc(file, ev.start_mark),
                                    "aliases cannot contain themselves")
            else:
                if isinstance(ev, yaml.ScalarEvent):
                    kind, value = yaml.ScalarNode, ev.value
                elif isinstance(ev, yaml.SequenceStartEvent):
                    kind, value = yaml.SequenceNode, None
                else:
                    kind, value = yaml.MappingNode, None
                tag = ev.tag
                if tag is None or tag == "!":
                    tag = resolver.resolve(kind, value, ev.implicit)
                if kind is yaml.ScalarNode:
                    node = yaml.ScalarNode(tag, value, ev.start_mark, ev.end_mark, style=ev.style)
                else:
                    node = kind(tag, [], ev.start_mark, None, flow_style=ev.flow_style)
                if ev.anchor is not None:
                    if ev.anchor in anchors:
                        first = anchors[ev.anchor].start_mark.line + 1
                        raise SpecError(f"the anchor '&{ev.anchor}' is defined twice (first at line {first})",
                                        _loc(file, ev.start_mark), "give each anchor its own name")
                    anchors[ev.anchor] = node
                if kind is not yaml.ScalarNode:
                    if len(stack) >= max_depth:
                        raise LimitError(f"the spec is nested more than {max_depth} levels deep",
                                         _loc(file, ev.start_mark),
                                         "a spec never needs this; raise it with --limit max_depth=N if it really does")
                    stack.append([node, None])
                    continue
        if not stack:
            break
        parent = stack[-1]
        if isinstance(parent[0], yaml.SequenceNode):
            parent[0].value.append(node)
        elif parent[1] is None:
            parent[1] = node
        else:
            parent[0].value.append((parent[1], node))
            parent[1] = None
    parser.get_event()                                   # document end
    if not parser.check_event(yaml.StreamEndEvent):
        raise SpecError("the file holds several YAML documents; a spec is one document",
                        _loc(file, parser.peek_event().start_mark), "remove the '---' separator, or split the file")
    return node


class _Fallback(Exception):
    """The one-pass reader met something it leaves to the composing reader (an anchor, an error, a limit)."""


_NOKEY = object()
# printable ASCII first characters that no implicit resolver claims: a plain scalar starting with one is a string (the
# resolver's own answer, without asking it; any other first character asks the resolver); empty when a resolver
# matches any first character. (ASCII only: a set of every character up to U+3000 took 2 ms to make at start-up)
_PLAIN_FIRST = frozenset() if None in _Resolver.yaml_implicit_resolvers or _Resolver.yaml_path_resolvers else \
    frozenset(map(chr, range(32, 127))).difference(_Resolver.yaml_implicit_resolvers)
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# deeper files go to the recursive converter, whose limit is Python's stack (and whose message says so)
_FAST_MAX_DEPTH = 100


def _read_fast(text: str, file: str, src: Source) -> bool:
    """Read ``text`` into ``src`` (data and locations) in one pass over libyaml's events, without building YAML
    nodes. It covers the common file: no anchors or aliases and nothing wrong. Anything else returns False, and
    the composing reader (``_compose`` + ``_Converter``), which has every check and message, reads the file again:
    so a result here is what that reader would give, and every error still comes from it.

    A layer written on a line of its own as a flow mapping of plain words (``  - {name: fc1, op: linear, out: 8}``,
    ``_FLOW_ITEM``) is read from the line by ``_flow_items``, and libyaml is given the word ``0`` in its place (one
    for a run of such lines, the others left empty): one event for the run instead of one per key and value; a layer
    in block style as yaml.dump writes it likewise (``_block_items``). Such lines are read so only where the word
    comes back as a plain scalar at the very place of the first ``{`` (or key), an item of a block list (not text
    inside a string or a block scalar, where the whole file is read again by libyaml as written)."""
    words = _Words(file, src)
    try:
        flows: dict = {}
        # (layers on one line first: they are most of a big file, and what they leave is short to scan for the others)
        text = _flow_items(text, words, flows)
        text = _block_items(text, words, flows)
        parser = _FAST_PARSER(text)
    except (_Fallback, NetspecError, ValueError, TypeError, OverflowError):
        return False
    try:
        _read_events(parser, src, flows, words)
        return True
    except (_Fallback, yaml.YAMLError, NetspecError, ValueError, TypeError, OverflowError):
        return False                # the caller reads the file again into a new Source
    finally:
        parser.dispose()


# A word of a flow item: a plain scalar of letters, digits and '_.+-' that does not start with an indicator ('-'
# only before a letter, digit, '_' or '.'). No quote, space, ':', '#', ',', bracket, brace, '&', '*', '!', '|', '>',
# '%', '@' or '`': so it ends where the regular expression says, and it is one YAML scalar whatever its text
_WORD = r"(?:[A-Za-z0-9_.+]|-[A-Za-z0-9_.])[A-Za-z0-9_.+-]*"
# An item of a block list, on one line: '- {key: word, key: [word, word], ...}', a comment after it or not
_FLOW_ITEM = re.compile(r"^( *)- +(\{ *(?:" + _WORD + r" *: +(?:" + _WORD + r"|\[ *(?:" + _WORD + r" *(?:, *" + _WORD +
                        r" *)*)?\]) *, *)*" + _WORD + r" *: +(?:" + _WORD + r"|\[ *(?:" + _WORD + r" *(?:, *" +
                        _WORD + r" *)*)?\]) *\})(?: +#[^\n]*)? *$", re.MULTILINE)
# (a line _FLOW_ITEM has matched: each key and its word or list, in order)
_FLOW_PAIR = re.compile(r"([^ :,{}\[\]]+) *: +([^ ,{}\[\]]+|\[[^\]]*\])")
_FLOW_WORD = re.compile(_WORD)
# line breaks that libyaml counts and str.split("\n") does not (decode() has made '\r' and '\r\n' into '\n'), and a
# byte order mark inside the text: with any of them, every line is left to libyaml
_OTHER_BREAKS = re.compile("[\x85\u2028\u2029\ufeff]")


# A layer of a block list written in block style, as yaml.dump writes it: '- key: word' (or a list of words in
# brackets), then, one per line at the column of the first key, 'key: word', 'key: [words]', or 'key:' with its
# list's words one per line below it ('- word', at the key's column or two further). No comment, no blank line.
_LIST = r"\[ *(?:" + _WORD + r" *(?:, *" + _WORD + r" *)*)?\]"
_BLOCK_HEAD = re.compile(r"^( *)- (" + _WORD + r"): +(" + _WORD + "|" + _LIST + r")$", re.MULTILINE)
_BLOCK_PAIR = re.compile(r"(" + _WORD + r"):(?: +(" + _WORD + "|" + _LIST + r"))?$", re.MULTILINE)
_BLOCK_ENTRY = re.compile(r"- (" + _WORD + r")$", re.MULTILINE)
_INDENT = re.compile(r" *")


class _Words:
    """How the one-pass reader types a scalar (as the composing reader does), with what it has worked out so far."""

    def __init__(self, file: str, src: Source):
        self.file = file
        self.resolved: dict = {}     # (plain scalar text, implicit) -> tag: the resolver's regexes once per text
        self.scalars: dict = {}      # (tag, text) -> value of a non-string scalar
        self.resolver = _Resolver()
        self.conv = _Converter(src)
        self.keys: dict = {}         # a flow item's key -> the key it makes
        self.words: dict = {}        # a short plain word of a flow item -> its value

    def typed(self, tag: str, value: str, mark, line: int, column: int):
        """The value of a scalar that is not a string (line and column from 1)."""
        skey = (tag, value)
        v = self.scalars.get(skey, _NOKEY)
        if v is _NOKEY:
            if tag not in _STD_TAGS:
                raise _Fallback()
            v = self.scalars[skey] = self.conv._scalar(yaml.ScalarNode(tag, value, mark, mark),
                                                       tuple.__new__(Loc, (self.file, line, column)))
        return v

    def tag(self, value: str, implicit) -> str:
        """The tag the resolver gives a scalar without one."""
        if value[:1] in _PLAIN_FIRST:       # no implicit type starts with this character: a string
            return _STR_TAG
        rkey = (value, implicit)
        tag = self.resolved.get(rkey)
        if tag is None:
            tag = self.resolved[rkey] = self.resolver.resolve(yaml.ScalarNode, value, implicit)
        return tag

    def word(self, w: str, line: int, column: int):
        """The value of a plain word of a flow item (``_flow_items``)."""
        tag = self.tag(w, _PLAIN)
        if tag == _STR_TAG:
            if len(w) > LIMITS.max_string_chars:
                raise _Fallback()
            v = sys.intern(w) if len(w) <= 24 else w
        else:
            v = self.typed(tag, w, None, line, column)
        if len(w) <= 24:
            self.words[w] = v
        return v

    def key(self, w: str, line: int, column: int) -> str:
        """The key a plain word of a flow item makes, as the event loop makes it."""
        k = self.keys.get(w)
        if k is None:
            tag = self.tag(w, _PLAIN)
            k = w if tag == _STR_TAG else self.typed(tag, w, None, line, column)
            if tag != _STR_TAG:
                k = w if isinstance(k, bool) or k is None else str(k)
            if len(k) > LIMITS.max_key_chars:
                raise _Fallback()
            k = self.keys[w] = sys.intern(k)
        return k


_PLAIN = (True, False)      # a plain scalar's 'implicit'


def _flow_items(text: str, words: _Words, flows: dict) -> str:
    """The flow items of ``text`` (``_FLOW_ITEM``), read, and the text libyaml is to read.

    Items on consecutive lines at the same indent are the items of one list, one after the other (each line holds a
    whole item): libyaml reads one stand-in for them, ``0`` in place of the first one's ``{...}`` and the rest of its
    line, and the lines of the others empty. Adds to ``flows`` {(line, column) of the first one's '{', both from 0:
    a list with, for each item, (its mapping, its values' locations, its keys', [(key, the locations of a list's
    words)] or None, the number of YAML values in it, its location)}, and returns the text."""
    if "- {" not in text and "-  {" not in text or _OTHER_BREAKS.search(text):
        return text
    parts: list = []
    found = False
    line, last, end = 0, 0, -2
    run: list = []
    run_indent = -1
    pairs = _FLOW_PAIR.findall
    plain_first, intern, key_of, word = _PLAIN_FIRST, sys.intern, words.key, words.word
    keys, known = words.keys, words.words
    max_str, budget = LIMITS.max_string_chars, LIMITS.max_yaml_nodes
    for m in _FLOW_ITEM.finditer(text):
        start = m.start()
        line += text.count("\n", last, start)
        last = start
        item = m.group()                # the line: a position in it is a column
        at = brace = m.start(2) - start
        close = m.end(2) - start        # (a comment after it is no part of it)
        ln = (line + 1) << 32           # locations as the event loop packs them: line << 32 | column, from 1
        out: dict = {}
        vlocs: dict = {}
        klocs: dict = {}
        lists = None
        count = 1
        # each key and word is found from where the one before it ends: only spaces, ':' and ',' lie between
        for k, v in pairs(item, brace, close):
            at = item.index(k, at)
            key = keys.get(k) or key_of(k, line + 1, at + 1)
            if key in out:
                raise _Fallback()
            klocs[key] = ln + at + 1
            at = item.index(v, at + len(k))
            vlocs[key] = ln + at + 1
            if v[0] != "[":
                if v[:1] in plain_first and len(v) <= max_str:        # a string
                    out[key] = intern(v) if len(v) <= 24 else v
                else:
                    x = known.get(v, _NOKEY)
                    out[key] = x if x is not _NOKEY else word(v, line + 1, at + 1)
                count += 2
            else:
                out[key], locs = _list_value(_listed(item, v, at, 0, line), word)
                lists = (lists or []) + [(key, locs)]
                count += 2 + len(locs)
            at += len(v)
        budget -= count
        if budget < 0:      # more values than the file may hold: the reader that stops at the limit says where
            raise _Fallback()
        indent = m.end(1) - start
        if start == end + 1 and indent == run_indent:     # the next line, the same indent: the next item
            parts.append("\n")
        else:
            run = flows[(line, brace)] = []
            found = True
            run_indent = indent
            parts.append(text[max(end, 0):start + brace])
            parts.append("0")
        run.append((out, vlocs, klocs, lists, count, ln + brace + 1))
        end = m.end()
    if not found:
        return text
    parts.append(text[end:])
    return "".join(parts)


def _block_items(text: str, words: _Words, flows: dict) -> str:
    """The layers of ``text`` written in block style (``_BLOCK_HEAD``), read as ``_flow_items`` reads a layer on one
    line: added to ``flows`` under (line, column) of the first key (where the mapping starts), a run of them on
    consecutive lines at one indent under one stand-in ``0`` in place of the first key, the run's other lines left
    empty. An item is taken only where the line after it starts the next item or leaves the list (its first
    character at the dash's column or before) or the text ends: nothing else can belong to it."""
    if "- " not in text or _OTHER_BREAKS.search(text):
        return text
    parts: list = []
    line, last, end = 0, 0, -2
    run: list = []
    run_indent = -1
    found = False
    n = len(text)
    pair_at, entry_at, indent_at = _BLOCK_PAIR.match, _BLOCK_ENTRY.match, _INDENT.match
    plain_first, intern, key_of, word = _PLAIN_FIRST, sys.intern, words.key, words.word
    keys, known = words.keys, words.words
    max_str, budget = LIMITS.max_string_chars, LIMITS.max_yaml_nodes
    for m in _BLOCK_HEAD.finditer(text):
        start = m.start()
        line += text.count("\n", last, start)
        last = start
        ind = m.end(1) - start
        kcol = ind + 2
        prefix = " " * kcol
        # (key, its line, the value's line and column, the word or [(word, line, column)] of a list)
        pairs = [(m.group(2), line, line, m.start(3) - start, _listed(text, m.group(3), m.start(3), start, line))]
        at, no = m.end() + 1, line          # the next line's start, and the line number of the item's last line
        while at < n and text.startswith(prefix, at) and text[at + kcol] not in " -\n":
            p = pair_at(text, at + kcol)
            if p is None:
                break
            no += 1
            k, v = p.group(1, 2)
            if v is not None:
                pairs.append((k, no, no, p.start(2) - at, _listed(text, v, p.start(2), at, no)))
                at = p.end() + 1
                continue
            at, kline = p.end() + 1, no     # 'key:' and its list below it, a word a line
            entries: list = []
            dash = None
            while at < n:
                c = kcol if text.startswith(prefix + "- ", at) else kcol + 2 if text.startswith(prefix + "  - ", at) \
                    else None
                if c is None or (dash is not None and c != dash):
                    break
                e = entry_at(text, at + c)
                if e is None:
                    break
                dash = c
                no += 1
                entries.append((e.group(1), no, c + 2))
                at = e.end() + 1
            if not entries:             # 'key:' with nothing below it (null), or something else: not taken
                pairs = None
                break
            pairs.append((k, kline, entries[0][1], dash, entries))
        if pairs is None:
            continue
        if at < n:                      # the line after the item: the next item, or out of the list
            first = indent_at(text, at).end()
            if first >= n or text[first] in "\n#" or first - at > ind:
                continue
        out: dict = {}
        vlocs: dict = {}
        klocs: dict = {}
        lists = None
        count = 1
        for k, kline, vline, vcol, v in pairs:
            key = keys.get(k) or key_of(k, kline + 1, kcol + 1)
            if key in out:
                raise _Fallback()
            klocs[key] = ((kline + 1) << 32) + kcol + 1
            vlocs[key] = ((vline + 1) << 32) + vcol + 1
            if type(v) is str:
                if v[:1] in plain_first and len(v) <= max_str:        # a string
                    out[key] = intern(v) if len(v) <= 24 else v
                else:
                    x = known.get(v, _NOKEY)
                    out[key] = x if x is not _NOKEY else word(v, vline + 1, vcol + 1)
                count += 2
                continue
            out[key], locs = _list_value(v, word)
            lists = (lists or []) + [(key, locs)]
            count += 2 + len(locs)
        budget -= count
        if budget < 0:
            raise _Fallback()
        lines = no - line               # the item's lines after its first
        if start == end + 1 and ind == run_indent:
            parts.append("\n" * (lines + 1))
        else:
            run = flows[(line, kcol)] = []
            found = True
            run_indent = ind
            parts.append(text[max(end, 0):start + kcol])
            parts.append("0" + "\n" * lines)
        run.append((out, vlocs, klocs, lists, count, ((line + 1) << 32) + kcol + 1))
        end = min(at - 1, n)
    if not found:
        return text
    parts.append(text[end:])
    return "".join(parts)


def _listed(text: str, value: str, at: int, line_start: int, line: int):
    """A value of a layer read from its lines (at ``at`` in ``text``, on the line that starts at ``line_start``): the
    word, or for '[words]' [(word, line, column)], both from 0."""
    if value[0] != "[":
        return value
    out = []
    col = at - line_start + 1
    for w in _FLOW_WORD.findall(value):
        col = text.index(w, line_start + col) - line_start
        out.append((w, line, col))
        col += len(w)
    return out


def _list_value(entries: list, word) -> tuple[list, list]:
    """The values of a list's words [(word, line, column)] and their locations, packed as the event loop packs them."""
    return [word(w, wl + 1, wc + 1) for w, wl, wc in entries], [((wl + 1) << 32) + wc + 1 for _, wl, wc in entries]


def _read_events(parser, src: Source, flows: dict, words: _Words) -> None:
    ScalarEvent, MappingStartEvent, SequenceStartEvent = yaml.ScalarEvent, yaml.MappingStartEvent, \
        yaml.SequenceStartEvent
    MappingEndEvent, SequenceEndEvent, AliasEvent = yaml.MappingEndEvent, yaml.SequenceEndEvent, yaml.AliasEvent
    max_depth, max_values = min(LIMITS.max_depth, _FAST_MAX_DEPTH), LIMITS.max_yaml_nodes
    max_key, max_str = LIMITS.max_key_chars, LIMITS.max_string_chars
    within = src.within
    plain_first, tag_of, typed = _PLAIN_FIRST, words.tag, words.typed
    get = parser.get_event
    intern = sys.intern
    if type(get()) is not yaml.StreamStartEvent or type(get()) is not yaml.DocumentStartEvent:
        raise _Fallback()
    # open collections: [dict, its path, the key waiting for its value, its values' locations, its keys'] or
    # [list, its path, its values' locations]
    stack: list = []
    values = 0
    last_line = line = -1
    while True:
        ev = get()
        t = type(ev)
        if t is MappingEndEvent or t is SequenceEndEvent:
            stack.pop()
            if not stack:
                break
            continue
        values += 1
        if values > max_values or ev.anchor is not None or t is AliasEvent:
            raise _Fallback()
        mark = ev.start_mark
        if mark.line != last_line:
            last_line = mark.line
            line = (last_line + 1) << 32
        loc = line + mark.column + 1          # line and column in one int: a Loc only when asked for
        tag = ev.tag
        if t is ScalarEvent:
            value = ev.value
            if value == "0" and flows and tag is None and ev.implicit == _PLAIN and \
                    (last_line, mark.column) in flows and stack and type(stack[-1][0]) is list:
                # the stand-in of flow items (_flow_items): their mappings, as if their events had been read here
                frame = stack[-1]
                items, base, item_locs = frame[0], frame[1], frame[2]
                for v, vlocs, klocs, lists, count, at_loc in flows.pop((last_line, mark.column)):
                    values += count
                    path = base + (len(items),)
                    items.append(v)
                    item_locs.append(at_loc)
                    within[path] = (vlocs, klocs)
                    if lists is not None:
                        if len(stack) + 1 >= max_depth:
                            raise _Fallback()
                        for key, locs in lists:
                            within[path + (key,)] = (locs, None)
                values -= 1             # (the stand-in, counted above)
                if values > max_values or len(stack) >= max_depth:
                    raise _Fallback()
                continue
            if tag is None or tag == "!":
                # no implicit type starts with this character: a string (the resolver's answer, without asking it)
                tag = _STR_TAG if value[:1] in plain_first else tag_of(value, ev.implicit)
            if tag == _STR_TAG:
                v = intern(value) if len(value) <= 24 else value    # the same op names and words, one string each
            else:
                v = typed(tag, value, mark, mark.line + 1, mark.column + 1)
            container = None
        elif t is MappingStartEvent or t is SequenceStartEvent:
            if tag is not None and tag != "!" and tag not in _STD_TAGS:
                raise _Fallback()
            if len(stack) >= max_depth:
                raise _Fallback()
            v = container = {} if t is MappingStartEvent else []
        else:
            raise _Fallback()
        if stack:
            frame = stack[-1]
            parent = frame[0]
            if type(parent) is list:
                at = len(parent)
                parent.append(v)
                frame[2].append(loc)
            elif frame[2] is _NOKEY:                # a key
                if container is not None or tag == _MERGE_TAG:
                    raise _Fallback()
                key = v if tag == _STR_TAG else value if isinstance(v, bool) or v is None else str(v)
                if len(key) > max_key or key in parent:
                    raise _Fallback()
                key = intern(key)           # thousands of layers share a few keys: one string each
                frame[4][key] = loc
                frame[2] = key
                continue
            else:
                at = frame[2]
                parent[at] = v
                frame[3][at] = loc
                frame[2] = _NOKEY
        else:
            src.data = v
            src.locs[()] = loc
        if container is None:
            if tag == _STR_TAG and len(v) > max_str:
                raise _Fallback()
            if not stack:
                break
        else:
            path = frame[1] + (at,) if stack else ()
            if t is MappingStartEvent:
                vlocs, klocs = {}, {}
                stack.append([container, path, _NOKEY, vlocs, klocs])
            else:
                vlocs, klocs = [], None
                stack.append([container, path, vlocs])
            within[path] = (vlocs, klocs)
    if type(get()) is not yaml.DocumentEndEvent or not parser.check_event(yaml.StreamEndEvent):
        raise _Fallback()
    if flows:           # a stand-in that did not come back where its item was (inside a string, say)
        raise _Fallback()


class _Converter:
    def __init__(self, src: Source):
        self.src = src
        self.file = src.file
        self.constructor = SafeConstructor()
        self.alias_budget = LIMITS.max_alias_nodes
        self.seen: dict[int, int] = {}  # node id -> times converted (aliases convert again)

    def convert(self, node, path: tuple, depth: int):
        if depth > LIMITS.max_depth:
            raise LimitError(f"the spec is nested more than {LIMITS.max_depth} levels deep", _loc(self.file, node.start_mark),
                             "a spec never needs this; raise it with --limit max_depth=N if it really does")
        nid = id(node)
        if nid in self.seen:
            # an alias: the same node once more; count it against the expansion budget
            self.alias_budget -= _size(node, self.alias_budget + 1)   # walks no further than the budget
            if self.alias_budget < 0:
                raise LimitError(f"YAML aliases expand to more than {LIMITS.max_alias_nodes:,} values",
                                 _loc(self.file, node.start_mark),
                                 ["this looks like a 'billion laughs' document; write the values out or use a block",
                                  "raise the limit with --limit max_alias_nodes=N if you mean it"])
        self.seen[nid] = self.seen.get(nid, 0) + 1
        loc = _loc(self.file, node.start_mark)
        if path:                    # in the table of the mapping or list that holds it (Source.within)
            values = self.src.within[path[:-1]][0]
            if type(values) is list:
                values.append(loc)
            else:
                values[path[-1]] = loc
        else:
            self.src.locs[()] = loc
        tag = node.tag
        if tag not in _STD_TAGS:
            raise SpecError(f"the YAML tag '{_tag(tag)}' is not allowed", loc,
                            "netspec reads plain YAML only: strings, numbers, booleans, null, lists and mappings")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            key_locs: dict = {}
            self.src.within[path] = ({}, key_locs)
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
                    raise LimitError(f"a key of {len(key):,} characters is over the limit of {LIMITS.max_key_chars}", kloc,
                                     "raise the limit with --limit max_key_chars=N if you mean it")
                if key in out:
                    first = key_locs[key]
                    where = f"column {first.col}" if first.line == kloc.line else f"line {first.line}"
                    raise SpecError(f"duplicate key '{key}' (first defined at {where})", kloc,
                                    "YAML would silently keep only the last one; rename or remove one of them")
                key_locs[key] = kloc
                out[key] = self.convert(vnode, path + (key,), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            self.src.within[path] = ([], None)
            return [self.convert(v, path + (i,), depth + 1) for i, v in enumerate(node.value)]
        return self._scalar(node, loc)

    def _scalar(self, node, loc):
        if node.tag == "tag:yaml.org,2002:str":
            if len(node.value) > LIMITS.max_string_chars:
                raise LimitError(f"a string of {len(node.value):,} characters is over the limit of "
                                 f"{LIMITS.max_string_chars:,}", loc,
                                 "raise the limit with --limit max_string_chars=N if you mean it")
            return node.value
        text = node.value.replace("_", "")
        if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and ":" in text:
            raise SpecError(f"'{node.value[:40]}' is a base-60 number in YAML 1.1 (1:30 is 90)", loc,
                            "quote it if it is text, or write the number in decimal")
        if node.tag == "tag:yaml.org,2002:int" and len(text.lstrip("+-")) > 1 and text.lstrip("+-").startswith("0") \
                and text.lstrip("+-")[1:].isdigit():
            raise SpecError(f"'{node.value[:40]}' has a leading zero: YAML 1.1 reads it as octal, YAML 1.2 as decimal",
                            loc, "write it without the leading zero")
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
    mark_input(p)             # outputs of this process may not replace it
    return parse_text(text, shown, json_mode=p.suffix.lower() == ".json", path=p.resolve())
