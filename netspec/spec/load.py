"""Text -> Spec: read, validate with the Pydantic models, resolve imports.

Validation reports every error in the file at once, each at the location of the offending key or value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import os
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ErrorList, GraphError, Loc, NetspecError, SpecError, did_you_mean, LimitError
from ..limits import LIMITS
from .parse import Source, load_file, parse_text
from . import models
from .spellings import RENAMED, foreign_hint, same_padding_hint
from .names import (LAYER_NAME_HINT, LAYER_NAME_PATTERN, MAX_NAME_CHARS, MAX_REF_STEPS, NAME_HINT,
                    REF_PATTERN, identifier_problem, layer_name_problem, layer_syntax_problem, syntax_problem)


@dataclass
class BlockRef:
    """A block definition and where it was written."""

    name: str
    raw: dict
    src: Source
    path: tuple           # path of the block's mapping inside src.data

    def loc(self, *sub) -> Loc:
        return self.src.loc(self.path + tuple(sub))


@dataclass
class NetworkRef:
    name: str
    raw: dict             # has params, inputs, layers, outputs
    src: Source
    path: tuple

    def loc(self, *sub) -> Loc:
        return self.src.loc(self.path + tuple(sub))


@dataclass
class Spec:
    """A loaded, validated spec: the typed model, its source, its blocks (own and imported) and networks."""

    file: str
    source: Source
    model: Any                                  # models.SpecFile (typed)
    blocks: dict[str, BlockRef] = field(default_factory=dict)
    networks: dict[str, NetworkRef] = field(default_factory=dict)
    symbols: dict[str, int] = field(default_factory=dict)   # symbol -> multiple_of

    @property
    def name(self) -> str:
        return self.model.name or Path(self.file).stem


def load(path_or_text: str | os.PathLike, *, search_path: list[str] | None = None, name: str | None = None) -> Spec:
    """Load and validate a spec from a path, or from YAML/JSON text (anything containing a newline or '{').

    Args:
        path_or_text: a file path, or the spec's text.
        search_path: extra folders from which imports may be read (besides the spec's own folder).
    Returns:
        the validated Spec. Raises NetspecError (SpecError/ErrorList) with locations.
    """
    if isinstance(path_or_text, str) and ("\n" in path_or_text or path_or_text.lstrip().startswith("{")):
        src = parse_text(path_or_text, name or "<text>", json_mode=path_or_text.lstrip().startswith("{"))
        root = Path.cwd()
    else:
        from ..zoo import _exists, missing_hint, resolve
        shown = str(path_or_text)
        r = resolve(path_or_text)
        if r.path is not path_or_text:          # a bundled spec, found by its name
            shown = _shown(Path(r.path))
        p = Path(r.path)
        try:
            src = load_file(p, shown)
        except SpecError as e:
            if not _exists(p) and missing_hint(shown):
                e.hints.append(missing_hint(shown))
            raise
        root = p.resolve().parent
    roots = [root] + [Path(s).resolve() for s in (search_path or [])]
    return _build(src, roots, stack=[src.path] if src.path else [], counter=[0], memo={})


def _build(src: Source, roots: list[Path], stack: list[Path], counter: list[int], memo: dict | None = None) -> Spec:
    """The Spec of ``src`` with its imports. ``memo`` holds the imported files already built in this load (each file
    is read and parsed once, however many paths of imports reach it); ``counter`` counts distinct files."""
    memo = {} if memo is None else memo
    from ..ops.base import lookup
    blocks = src.data.get("blocks") if isinstance(src.data, dict) else None
    for bname in (blocks if isinstance(blocks, dict) else {}):
        if lookup(bname) is not None or bname == "seq":
            raise SpecError(f"block name '{bname}' is the name of a built-in op", src.loc(("blocks", bname), key=True),
                            "choose another name for the block")
    try:
        model = validate(src)
    except ErrorList as e:
        # report unknown ops together with the validation errors (when all blocks are local, we know them all)
        if not src.data.get("imports"):
            local = Spec(file=src.file, source=src, model=None)
            local.blocks = {b: None for b in _mapping(src.data.get("blocks"))}
            extra = list(_check_op_names(local))
            if extra:
                raise ErrorList(e.errors + extra) from None
        raise
    name_errors = list(_check_names(src))
    if name_errors:
        raise ErrorList(name_errors)
    spec = Spec(file=src.file, source=src, model=model)
    data = src.data
    # imports first, so that local blocks may shadow nothing and clashes are reported
    for i, imp in enumerate(data.get("imports", []) or []):
        loc = src.loc(("imports", i))
        target = _resolve_import(imp, src, roots, loc)
        if target in stack:     # stack: the files being read, from the one given on the command line to this one
            chain = " -> ".join(p.name for p in stack + [target])
            raise GraphError(f"import loop: {chain}", loc, "two files may not import each other")
        sub = memo.get(target)
        if sub is None:               # a file reached by a second path of imports is not read again
            counter[0] += 1
            if counter[0] > LIMITS.max_imports:
                raise LimitError(f"more than {LIMITS.max_imports} imported files", loc,
                                 "raise the limit with --limit max_imports=N if you mean it")
            sub_src = load_file(target, _shown(target))
            sub = _build(sub_src, roots, stack + [target], counter, memo)
            memo[target] = sub
        for bname, bref in sub.blocks.items():
            have = spec.blocks.get(bname)
            if have is not None and (have.src.path, have.path) == (bref.src.path, bref.path):
                continue        # the same block reached by two imports (a imports b and c, both import d)
            if have is not None:
                raise SpecError(f"block '{bname}' is imported twice (from {have.src.file} and {bref.src.file})",
                                loc, "rename one of the blocks")
            spec.blocks[bname] = bref
    for bname in (data.get("blocks") or {}):
        path = ("blocks", bname)
        if bname in spec.blocks:
            raise SpecError(f"block '{bname}' is already imported from {spec.blocks[bname].src.file}",
                            src.loc(path, key=True), "rename the local block")
        from ..ops.base import lookup
        if lookup(bname) is not None or bname == "seq":
            raise SpecError(f"block name '{bname}' is the name of a built-in op", src.loc(path, key=True),
                            "choose another name for the block")
        spec.blocks[bname] = BlockRef(bname, data["blocks"][bname], src, path)
    errors = list(_check_op_names(spec)) + list(_check_defaults(src))
    if errors:
        raise ErrorList(errors)
    for sname, sdecl in (data.get("symbols") or {}).items():
        spec.symbols[sname] = int(sdecl.get("multiple_of", 1)) if isinstance(sdecl, dict) else 1
    if data.get("networks"):
        shared = data.get("params") or {}
        for nname, ndata in data["networks"].items():
            if shared:   # file-level params are defaults shared by every network; a network's own win
                ndata = dict(ndata, params={**shared, **(ndata.get("params") or {})})
            if data.get("let"):             # so are file-level let values (a network's own come after them)
                ndata = dict(ndata, let={**data["let"], **(ndata.get("let") or {})})
            if data.get("defaults"):        # and scoped defaults, op by op and field by field
                mine = ndata.get("defaults") or {}
                ndata = dict(ndata, defaults={op: {**data["defaults"].get(op, {}), **mine.get(op, {})}
                                              for op in {**data["defaults"], **mine}})
            spec.networks[nname] = NetworkRef(nname, ndata, src, ("networks", nname))
    elif data.get("layers") is not None:
        nname = data.get("name") or (Path(src.file).stem if src.file != "<text>" else "net")
        spec.networks[str(nname)] = NetworkRef(str(nname), data, src, ())
    return spec


def _shown(p: Path) -> str:
    try:
        return os.path.relpath(p)
    except ValueError:
        return str(p)


def _resolve_import(imp: str, src: Source, roots: list[Path], loc: Loc) -> Path:
    if not isinstance(imp, str) or not imp.strip():
        raise SpecError("an import must be a file path", loc)
    if "\x00" in imp:
        raise SpecError(f"import '{imp}' contains a NUL character, which no file path can hold", loc)
    try:
        return _resolve_import_path(imp, src, roots, loc)
    except (OSError, ValueError) as e:       # a name too long for the file system, or a path it cannot take
        why = getattr(e, "strerror", None) or str(e)
        raise SpecError(f"import '{_clip(imp)}' cannot be read: {why}", loc,
                        "imports are relative paths of spec files in the spec's folder") from None


def _clip(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def _resolve_import_path(imp: str, src: Source, roots: list[Path], loc: Loc) -> Path:
    base = src.path.parent if src.path else roots[0]
    p = Path(imp)
    try:
        real = (base / p).resolve()
    except (OSError, RuntimeError):          # a loop of symbolic links
        raise SpecError(f"import '{imp}' cannot be resolved (a loop of symbolic links?)", loc) from None
    # where a path leads is checked before whether it exists: nothing is said about files outside the allowed folders
    if not any(_inside(real, r) for r in roots):
        what = "is an absolute path outside" if p.is_absolute() else "leaves"
        raise SpecError(f"import '{imp}' {what} the spec's folder ({real})", loc,
                        "imports are relative to the importing file and stay in its folder; "
                        "allow another folder with --search-path")
    if not real.exists():
        hint = None
        if real.parent.is_dir():
            cands = [q.name for q in real.parent.iterdir() if q.suffix in (".yaml", ".yml", ".json")]
            hint = did_you_mean(p.name, cands)
        raise SpecError(f"imported file '{imp}' does not exist", loc, hint)
    if not real.is_file():
        raise SpecError(f"import '{imp}' is not a file", loc)
    return real


def _inside(p: Path, root: Path) -> bool:
    try:
        p.relative_to(root)
        return True
    except ValueError:
        return False


# -- validation --------------------------------------------------------------------------------------

def validate(src: Source):
    """Validate src.data against the spec models; raise ErrorList with every error located.

    The file's structure is validated first, then each layer with the model of its own op, so that only the
    models of the ops a spec uses are ever built (the full union is built for ``netspec schema``).
    """
    errors: list[NetspecError] = []
    model = None
    try:
        model = models.SpecFile.model_validate(src.data)
    except ValidationError as e:
        errors += _errors(e, src)
    except RecursionError:
        raise LimitError("the spec is nested too deeply to validate", src.loc(())) from None
    data = src.data if isinstance(src.data, dict) else {}
    if isinstance(data.get("train"), dict):
        from ..train.config import TrainConfig
        try:
            train = TrainConfig.model_validate(data["train"])
            if model is not None:
                model.train = train
        except ValidationError as e:
            errors += _errors(e, src, prefix=("train",))
    lists = [(("layers",), data.get("layers"))]
    for bname, b in (data.get("blocks") or {}).items() if isinstance(data.get("blocks"), dict) else []:
        if isinstance(b, dict):
            lists.append((("blocks", bname, "layers"), b.get("layers")))
    for nname, n in (data.get("networks") or {}).items() if isinstance(data.get("networks"), dict) else []:
        if isinstance(n, dict):
            lists.append((("networks", nname, "layers"), n.get("layers")))
    defaulted = _defaulted_fields(data)
    passed: set = set()
    while lists:
        path, layers = lists.pop(0)
        if not isinstance(layers, list):
            continue
        for i, layer in enumerate(layers):
            lp = path + (i,)
            if not isinstance(layer, dict):
                errors.append(SpecError(f"a layer must be a mapping with an 'op', got {_short(layer)}", src.loc(lp),
                                        "write it as {op: conv2d, out: 64, kernel: 3} or in block style"))
                continue
            if layer.get("padding") in ("same", "valid") and not _takes_padding_word(layer.get("op")):
                errors.append(SpecError(f"layer '{layer.get('name', i)}' ({layer.get('op')}): invalid value "
                                        f"'{layer['padding']}' for padding", src.loc(lp + ("padding",)),
                                        same_padding_hint(layer.get("op"), layer["padding"])))
            key = _passing_key(layer)
            if key is not None and key in passed:
                continue                # the same layer up to its (plain) name has passed: it passes again
            try:
                models.layer_model_for(layer).model_validate(layer)
                if key is not None:
                    passed.add(key)
            except ValidationError as e:
                errors += [x for x in _errors(e, src, prefix=lp) if not _defaulted(x, layer, defaulted)]
            except RecursionError:
                raise LimitError("the spec is nested too deeply to validate", src.loc(lp)) from None
            if layer.get("op") == "seq" and isinstance(layer.get("layers"), list):
                lists.append((lp + ("layers",), layer["layers"]))
    if errors:
        raise ErrorList(errors)
    return model


_PLAIN_LAYER_NAME = re.compile(LAYER_NAME_PATTERN)     # a layer's name that is no template and no number


def _passing_key(layer: dict):
    """What a layer's validation depends on, exact to the type, with a name that is certainly valid left out (a file
    written out layer by layer has thousands that differ only by name); None where that cannot be said (a 'seq',
    mappings as values, another kind of name)."""
    name = layer.get("name")
    if name is not None and not (type(name) is str and len(name) <= models.MAX_NAME_CHARS
                                 and _PLAIN_LAYER_NAME.fullmatch(name)):
        return None
    if layer.get("op") == "seq":
        return None
    try:
        return ("name" in layer,) + tuple((k, _plain_from(v)) if k == "from" else
                                          (k, v) if type(v) is str or type(v) is int else (k, exact_value(v))
                                          for k, v in layer.items() if k != "name")
    except TypeError:
        return None


_PLAIN_REF = re.compile(REF_PATTERN)
_MAX_REF_CHARS = MAX_REF_STEPS * (MAX_NAME_CHARS + 1)


def _plain_ref(v) -> bool:
    return type(v) is str and len(v) <= _MAX_REF_CHARS and _PLAIN_REF.fullmatch(v) is not None


def _plain_from(v):
    """The part of a layer's passing key that its 'from' gives: a reference that is certainly valid, or a list of
    them, whatever the names (a network written out flat reads a different layer in every 'from'), else the value."""
    if _plain_ref(v):
        return ("ref",)
    if type(v) is list and all(_plain_ref(x) for x in v):
        return ("refs",)
    return exact_value(v)


def exact_value(v):
    """A hashable value that tells apart what validation tells apart (1, 1.0 and true; 0.0 and -0.0); TypeError for
    anything but plain scalars and lists (or tuples) of them. Keys of the memos of validation here and of expansion."""
    t = type(v)
    if t is str or t is int or v is None:
        return v
    if t is bool:
        return ("bool", v)
    if t is float:
        return ("float", repr(v))
    if t is list or t is tuple:
        return (t.__name__,) + tuple(exact_value(x) for x in v)
    raise TypeError(t.__name__)


def _defaulted_fields(data: dict) -> set:
    """(op, field) pairs that some ``defaults:`` of the file gives: a layer may leave those out (whether a default is
    in force where the layer is used is known in expansion, which reports a field still missing there)."""
    from ..ops.base import lookup
    out = set()
    bodies = [data] + [b for key in ("blocks", "networks") for b in _mapping(data.get(key)).values()]
    for body in bodies:
        for opname, fields in _mapping(_mapping(body).get("defaults")).items():
            op = lookup(opname) if isinstance(opname, str) else None
            if op is not None:
                out |= {(op.name, f) for f in _mapping(fields)}
    return out


def _defaulted(err: NetspecError, layer: dict, defaulted: set) -> bool:
    """Whether ``err`` is a missing required field that a scoped default of the file may give."""
    from ..ops.base import lookup
    m = re.search(r"is missing the required field '(\w+)'", err.message)
    op = lookup(layer.get("op")) if isinstance(layer.get("op"), str) else None
    return bool(m and op is not None and (op.name, m.group(1)) in defaulted)


def _takes_padding_word(op) -> bool:
    """Whether a layer's op (a built-in op with a 'padding' parameter) accepts 'same'/'valid'; True for anything
    else (blocks, unknown ops: their own checks speak)."""
    from ..ops.base import lookup
    o = lookup(op) if isinstance(op, str) else None
    if o is None or "padding" not in o.Params.model_fields:
        return True
    from ..ops.reference import type_text
    return "'same'" in type_text(o.Params.model_fields["padding"].annotation)


def _data_path(data: Any, loc: tuple) -> tuple[tuple, list]:
    """Split a pydantic error loc into the path that exists in the data and the extra segments (tags, types)."""
    path: list = []
    extra: list = []
    cur = data
    for seg in loc:
        if isinstance(cur, dict) and seg in cur:
            path.append(seg)
            cur = cur[seg]
        elif isinstance(cur, list) and isinstance(seg, int) and 0 <= seg < len(cur):
            path.append(seg)
            cur = cur[seg]
        else:
            extra.append(seg)
    return tuple(path), extra


def _errors(e: ValidationError, src: Source, prefix: tuple = ()) -> list[NetspecError]:
    by_path: dict[tuple, list] = {}
    for err in e.errors(include_url=False):
        loc = tuple(prefix) + tuple(err["loc"])
        path, extra = _data_path(src.data, loc)
        if err["type"] == "missing":
            path = path + (("__missing__", str(loc[-1])),)
        elif err["type"] == "extra_forbidden":
            path = path + (("__extra__", str(loc[-1])),)
        elif "[key]" in extra and path:
            path = path + (("__key__", path[-1]),)
        by_path.setdefault(path, []).append((err, extra))
    out: list[NetspecError] = []
    plain = [k for k in by_path if not (k and isinstance(k[-1], tuple))]
    above = {k[:i] for k in plain for i in range(len(k))}     # paths with a more specific error below them
    # a misspelt required field ('layer' for 'layers') is one mistake: report the unknown field with its hint only
    unknown: dict[tuple, list] = {}
    for k in by_path:
        if k and isinstance(k[-1], tuple) and k[-1][0] == "__extra__":
            unknown.setdefault(k[:-2] if len(k) > 1 and k[-2] == k[-1][1] else k[:-1], []).append(k[-1][1])
    for key, errs in by_path.items():
        # a union reports one error per member: where a more specific path also failed, that one says more
        if key in above and not (key and isinstance(key[-1], tuple)):
            continue
        if key and isinstance(key[-1], tuple) and key[-1][0] == "__missing__" and any(
                did_you_mean(name, [key[-1][1]]) or key[-1][1] in RENAMED.get(name, ())
                for name in unknown.get(key[:-1], ())):
            continue
        out.append(_one_error(key, errs, src))
    # an error on a container hides nothing; but drop exact duplicates
    seen = set()
    uniq = []
    for x in out:
        k = (str(x.loc), x.message)
        if k not in seen:
            seen.add(k)
            uniq.append(x)
    return uniq


def _layer_op(src: Source, path: tuple) -> str | None:
    """The op of the innermost layer mapping containing path."""
    cur = src.data
    op = None
    for seg in path:
        try:
            cur = cur[seg]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(cur, dict) and isinstance(cur.get("op"), str):
            op = cur["op"]
    return op


def _fields_for(src: Source, path: tuple) -> list[str]:
    if path and path[0] == "train":
        from ..train.config import fields_at
        return fields_at(src.data, path)
    op = _layer_op(src, path)
    from ..ops.base import lookup
    if op and lookup(op) is not None:
        m = models.op_layer_model(op)
        return [f.alias or n for n, f in m.model_fields.items()]
    # containers: look at the data to find the right model
    names = {
        0: list(models.SpecFile.model_fields),
    }
    if len(path) >= 2 and path[0] == "blocks":
        return [f.alias or n for n, f in models.BlockDef.model_fields.items()]
    if len(path) >= 2 and path[0] == "networks":
        return [f.alias or n for n, f in models.NetworkDef.model_fields.items()]
    if op == "seq":
        return [f.alias or n for n, f in models.SeqLayer.model_fields.items()]
    return names[0]


def _one_error(key: tuple, errs: list, src: Source) -> NetspecError:
    if key and isinstance(key[-1], tuple) and key[-1][0] == "__missing__":
        path = key[:-1]
        field_name = key[-1][1]
        where = _what(src, path)
        return SpecError(f"{where} is missing the required field '{field_name}'", src.loc(path),
                         _missing_hint(field_name))
    if key and isinstance(key[-1], tuple) and key[-1][0] == "__key__":
        path, name = key[:-1], key[-1][1]
        container = _what(src, path[:-1])
        return SpecError(f"{container}: invalid name {_short(name)}: {_name_trouble(str(name))}",
                         src.loc(path, key=True), "names are ASCII letters, digits and '_', not starting with a digit")
    if key and isinstance(key[-1], tuple) and key[-1][0] == "__extra__":
        path = key[:-1]
        field_name = key[-1][1]
        container = path[:-1] if path and path[-1] == field_name else path
        fields = _fields_for(src, container)
        where = _what(src, container)
        hints = []
        op = _layer_op(src, path)
        foreign = foreign_hint(field_name, fields, op) if op else None
        dym = foreign or did_you_mean(field_name, fields)
        if dym:
            hints.append(dym)
        if op:
            hints.append(f"fields of '{op}': " + ", ".join(f for f in fields if f not in ("op",)))
        return SpecError(f"unknown field '{field_name}' in {where}", src.loc(path, key=True), hints)
    path = key
    value = _get(src.data, path)
    # prefer the expression error when the value is a string, else the first error
    chosen = errs[0][0]
    for err, extra in errs:
        if isinstance(value, str) and "invalid expression" in str(err.get("msg", "")):
            chosen = err
            break
    msg = chosen["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    ctx = _what(src, path)
    shown = _short(value)
    hints = []
    if path == ("netspec",):
        return SpecError(f"unsupported format version {shown}", src.loc(path),
                         f"this netspec reads format {models.FORMAT_VERSION}: write 'netspec: {models.FORMAT_VERSION}'")
    if not path:
        return SpecError(msg, src.loc(path), hints)
    if path[-1] == "name" and not isinstance(value, str) and isinstance(_get(src.data, path[:-1]), dict) \
            and "op" in _get(src.data, path[:-1]) and layer_name_problem(value):
        return SpecError(f"{ctx}: {layer_name_problem(value)}", src.loc(path),
                         NAME_HINT + "; or a number of 0 or more (classifier.1)")
    if isinstance(value, bool) and any(err["type"] in ("int_type", "float_type") for err, _ in errs) and not any(
            err["type"] == "bool_type" for err, _ in errs):
        return SpecError(f"{ctx} must be a number, not {value}", src.loc(path),
                         "true and false (and comparisons like 'a < b') are not numbers")
    if chosen["type"] == "list_type" and path[-1] == "layers" and isinstance(value, dict):
        return SpecError("'layers' must be a list, one '- ' entry per layer; got a mapping", src.loc(path),
                         "start each layer on its own line with '- ', e.g. '  - {op: linear, out: 10}'")
    if len(path) >= 2 and path[-2] == "layers" and isinstance(path[-1], int) and not isinstance(value, dict):
        return SpecError(f"a layer must be a mapping with an 'op', got {shown}", src.loc(path),
                         "write it as {op: conv2d, out: 64, kernel: 3} or in block style")
    if chosen["type"] == "literal_error" and "expected" in chosen.get("ctx", {}):
        hints.append(f"expected {chosen['ctx']['expected']}")
        msg = f"invalid value {shown}"
    elif chosen["type"] == "string_pattern_mismatch":
        pattern = str(chosen.get("ctx", {}).get("pattern", ""))
        ref = "\\." in pattern                        # a reference: name, name.output, group.child
        layerish = ref or "-]" in pattern           # a layer's name (or a reference to one): '-' and digits allowed
        trouble = layer_syntax_problem if layerish else _name_trouble
        parts = str(value).split(".") if ref else [str(value)]
        why = next((trouble(part) for part in parts if trouble(part)), None) if isinstance(value, str) else None
        if why is None and ref and isinstance(value, str) and "" in parts:
            why = "a reference has a name on each side of '.'"
        msg = f"invalid name {shown}" + (f": {why}" if why else "")
        if layerish and not ref and why and why.startswith("'.'"):
            hints.append("'.' separates the steps of a module path: write 'layer1-0', or put the layer in a seq "
                         "named 'layer1'")
        hints.append((LAYER_NAME_HINT if layerish else NAME_HINT)
                     + (" (references may add '.output' or '.child': 'lstm.h', 'body.0')" if ref else ""))
    elif chosen["type"].endswith("_type") or chosen["type"].endswith("_parsing"):
        msg = re.sub(r" or instance of \w+", "", msg)     # pydantic's class names mean nothing to a user
        msg = f"{msg.lower().rstrip('.')}, got {shown}"
        if chosen["type"] == "string_type" and isinstance(value, bool):
            hints.append("YAML reads unquoted yes, no, on, off, true and false as booleans: put the text in quotes")
        if len(path) == 2 and path[0] in ("blocks", "networks") and not isinstance(value, dict):
            hints.append(f"under '{path[0]}:' each entry is a name with its definition indented below it, "
                         f"as in '{path[0]}: {{unit: {{layers: [...]}}}}'")
    return SpecError(f"{ctx}: {msg}", src.loc(path), hints)


def _name_trouble(name: str) -> str | None:
    """What keeps ``name`` from being a name, said plainly (see ``names.syntax_problem``), or None."""
    return syntax_problem(name)


def _missing_hint(field_name: str) -> str | None:
    return {
        "netspec": "start the file with 'netspec: 1' (the format version)",
        "layers": "list the layers under 'layers:'",
        "inputs": "declare the inputs, e.g. inputs: {x: [N, 3, H, W]}",
    }.get(field_name)


def _get(data, path):
    cur = data
    for seg in path:
        try:
            cur = cur[seg]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _what(src: Source, path: tuple) -> str:
    """A readable name for the thing at path: "layer 'conv1' (conv2d)", "block 'basic'", "'kernel'"."""
    if not path:
        return "the spec"
    cur = _get(src.data, path)
    if isinstance(cur, dict) and "op" in cur:
        nm = cur.get("name", path[-1])
        return f"layer '{nm}' ({cur.get('op')})"
    # walk up to the layer
    for k in range(len(path) - 1, 0, -1):
        parent = _get(src.data, path[:k])
        if isinstance(parent, dict) and "op" in parent:
            nm = parent.get("name", path[k - 1])
            rest = ".".join(str(s) for s in path[k:])
            return f"'{rest}' of layer '{nm}' ({parent.get('op')})"
    return "'" + ".".join(str(s) for s in path) + "'"


def _check_names(src: Source):
    """Declared names that generated code or expressions could not use, each located.

    They become Python identifiers in generated code (classes, arguments, variables) and variables in expressions,
    but no module attribute. Layer and network input names, which do, are checked in expansion (``name_problem``).
    """
    data = src.data

    def bad(name, path, what, key=True):
        prob = identifier_problem(name) if isinstance(name, str) else None
        if prob:
            yield SpecError(f"{prob}: it cannot name {what}", src.loc(path, key=key), f"rename the {what.split()[-1]}")

    def scope(path, d):
        for pname in d.get("params") or {}:
            yield from bad(pname, path + ("params", pname), "a parameter")
        for lname in d.get("let") or {}:
            yield from bad(lname, path + ("let", lname), "a let value")
        outs = d.get("outputs")
        for oname in outs if isinstance(outs, dict) else ():
            yield from bad(oname, path + ("outputs", oname), "an output")
        yield from layers(path + ("layers",), d.get("layers"))

    def layers(path, items):
        for i, layer in enumerate(items if isinstance(items, list) else ()):
            if isinstance(layer, dict):
                if isinstance(layer.get("index"), str) and not models.op_owns_index(layer):
                    yield from bad(layer["index"], path + (i, "index"), "a loop index", key=False)
                if layer.get("op") == "seq":
                    yield from layers(path + (i, "layers"), layer.get("layers"))

    if data.get("name") is not None:      # the network's name, when the file holds one network
        yield from bad(data["name"], ("name",), "a network", key=False)
    for sname in data.get("symbols") or {}:
        yield from bad(sname, ("symbols", sname), "a symbol")
    yield from scope((), data)
    for bname, b in (data.get("blocks") or {}).items():
        yield from bad(bname, ("blocks", bname), "a block")
        ins = b.get("inputs")
        for j, iname in enumerate(ins or ()):
            path = ("blocks", bname, "inputs") + ((iname,) if isinstance(ins, dict) else (j,))
            yield from bad(iname, path, "a block input", key=isinstance(ins, dict))
            if isinstance(ins, list) and iname in ins[:j]:
                yield SpecError(f"block '{bname}' lists the input '{iname}' twice", src.loc(path),
                                "each input of a block needs its own name")
        yield from scope(("blocks", bname), b)
    for nname, n in (data.get("networks") or {}).items():
        yield from bad(nname, ("networks", nname), "a network")
        yield from scope(("networks", nname), n)


def _check_defaults(src: Source):
    """Every scoped default names a built-in op (or an alias) and one of its parameters, each error at its key."""
    from ..ops.base import all_names, lookup
    data = src.data
    scopes = [((), data)] + [((key, name), body) for key in ("blocks", "networks")
                             for name, body in _mapping(data.get(key)).items()]
    for path, body in scopes:
        for opname, fields in _mapping(_mapping(body).get("defaults")).items():
            op = lookup(opname)
            loc = src.loc(path + ("defaults", opname), key=True)
            if op is None:
                hint = did_you_mean(opname, all_names())
                yield SpecError(f"defaults for an unknown op '{opname}'", loc,
                                [h for h in [hint] if h] + ["scoped defaults are for built-in ops ('netspec ops' "
                                                            "lists them); a block's parameters have their own "
                                                            "defaults"])
                continue
            names = [f.alias or n for n, f in op.Params.model_fields.items()]
            for fname in _mapping(fields):
                if fname in names:
                    continue
                floc = src.loc(path + ("defaults", opname, fname), key=True)
                hint = foreign_hint(fname, names, op.name) or did_you_mean(fname, names)
                yield SpecError(f"'{op.name}' has no parameter '{fname}' to default", floc,
                                [h for h in [hint] if h] + [f"parameters of '{op.name}': {', '.join(names) or '(none)'}"])


def _check_op_names(spec: Spec):
    """Every 'op' names a built-in op, 'seq', or a block defined or imported here."""
    from ..ops.base import lookup, unknown_op_error
    src = spec.source
    data = src.data

    known: set = set()          # op names found already

    def walk(layers, path):
        for i, layer in enumerate(layers if isinstance(layers, list) else []):
            if not isinstance(layer, dict):
                continue
            op = layer.get("op")
            if op == "seq":
                yield from walk(layer.get("layers"), path + (i, "layers"))
            elif isinstance(op, str) and op not in known:
                if lookup(op) is None and op not in spec.blocks:
                    yield unknown_op_error(op, src.loc(path + (i, "op")), list(spec.blocks))
                else:
                    known.add(op)

    # this also runs on data that failed validation (to report unknown ops with the other errors): trust no type
    yield from walk(data.get("layers"), ("layers",))
    for key in ("blocks", "networks"):
        for name, body in _mapping(data.get(key)).items():
            yield from walk(_mapping(body).get("layers"), (key, name, "layers"))


def _mapping(x) -> dict:
    return x if isinstance(x, dict) else {}
