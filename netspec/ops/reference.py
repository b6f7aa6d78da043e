"""The op reference, read from the registry: every op's parameters (types, defaults), inputs and outputs, shape rule,
torch class, aliases and an example layer. ``netspec ops NAME`` prints one op; ``netspec ops --format markdown``
writes docs/ops.md (a test keeps the committed file up to date)."""
from __future__ import annotations

from dataclasses import dataclass
import re
import types
import typing
from typing import Any, Literal, Union

from pydantic_core import PydanticUndefined

from .base import Op, all_ops, case_types, lookup

REQUIRED = "required"


@dataclass
class ParamInfo:
    name: str
    type: str
    default: str            # the default as written in a spec, or REQUIRED
    doc: str


def type_text(tp) -> str:
    """A parameter's type as a reader writes it: ``int | list[int]``, ``'zeros' | 'reflect'``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in (Union, types.UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        text = " | ".join(dict.fromkeys(parts))
        return text + " | null" if type(None) in args else text
    if origin is Literal:
        return " | ".join(f"'{a}'" if isinstance(a, str) else yaml_value(a) for a in args)
    if origin in (list, tuple):
        inner = [a for a in args if a is not Ellipsis]
        return f"list[{type_text(inner[0])}]" if inner else "list"
    if origin is dict:
        return "mapping"
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def yaml_value(v) -> str:
    """A value as it would be written in a YAML flow mapping."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(x)}" for k, x in v.items()) + "}"
    s = str(v)
    return s if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", s) and s not in ("true", "false", "null") else repr(s)


def params_of(op: type[Op]) -> list[ParamInfo]:
    out = []
    for fname, f in op.Params.model_fields.items():
        name = f.alias or fname
        if f.is_required():
            default = REQUIRED
        elif f.default is PydanticUndefined:
            default = "(computed)"
        else:
            default = yaml_value(f.default)
        out.append(ParamInfo(name, type_text(f.annotation), default, (f.description or "").strip()))
    return out


def _plain_dim(d) -> bool:
    return isinstance(d, int) or (not isinstance(d, str) and str(d).isidentifier())


def example(op: type[Op]) -> tuple[str, list, list] | None:
    """The op's first shape case that a spec can state directly (its inputs' dims are numbers or symbols):
    (layer line, input types, output types), or None when the op has no such case."""
    for params, ins, outs in op.cases:
        types_in = case_types(ins)
        if not all(t is None or all(_plain_dim(d) for d in t.shape) for t in types_in):
            continue
        line = "{" + ", ".join([f"op: {op.name}"] + [f"{k}: {yaml_value(v)}" for k, v in params.items()]) + "}"
        return line, types_in, case_types(outs)
    return None


def _inputs_text(op: type[Op]) -> str:
    if not op.inputs:
        return "none"
    parts = []
    for i in op.inputs:
        s = i.name + (" (optional)" if i.optional else "") + (f" (one or more: a list in 'from', at least "
                                                             f"{max(i.min_count, 1)})" if i.variadic else "")
        parts.append(s)
    return ", ".join(parts)


def _outputs_text(op: type[Op]) -> str:
    outs = list(op.outputs)
    if len(outs) > 4 and all(re.fullmatch(r"out\d+", o) for o in outs):
        return f"{outs[0]}, {outs[1]}, ... (one per piece, up to {len(outs)})"
    return ", ".join(outs) + ("" if len(outs) == 1 else f" (refer to one as 'layer.{outs[1]}')")


def _shapes(types_: list) -> str:
    return ", ".join(str(list(t.shape)).replace("'", "") + ("" if t.dtype == "float32" else f" {t.dtype}")
                     for t in types_ if t is not None) or "nothing"


def _doc(op: type[Op]) -> str:
    return (op.__doc__ or op.doc or "").strip().split("\n")[0]


def text(op: type[Op]) -> str:
    """One op, for ``netspec ops NAME``."""
    lines = [f"{op.name}: {_doc(op)}"]
    if op.aliases:
        lines.append(f"  aliases:    {', '.join(op.aliases)}")
    lines.append(f"  family:     {op.family}")
    lines.append(f"  torch:      {op.torch_ref or '-'}")
    lines.append(f"  inputs:     {_inputs_text(op)}")
    lines.append(f"  outputs:    {_outputs_text(op)}")
    lines.append(f"  shape rule: {op.shape_rule or '-'}")
    ps = params_of(op)
    lines.append("  parameters:" + ("" if ps else " none"))
    width = max((len(p.name) for p in ps), default=0)
    for p in ps:
        default = "(required)" if p.default == REQUIRED else f"= {p.default}"
        lines.append(f"    {p.name:<{width}}  {p.type}  {default}" + (f"  -- {p.doc}" if p.doc else ""))
    ex = example(op)
    if ex:
        line, ins, outs = ex
        lines.append(f"  example:    - {line}")
        lines.append(f"              {_shapes(ins)} -> {_shapes(outs)}")
    return "\n".join(lines)


def markdown() -> str:
    """The whole op reference as Markdown (docs/ops.md)."""
    ops = all_ops()
    fams: dict[str, list] = {}
    for op in ops.values():
        fams.setdefault(op.family, []).append(op)
    out = ["# Op reference", "",
           "Generated from the op registry by `netspec ops --format markdown` (do not edit by hand: "
           "`tests/test_ops_doc.py` fails when this file is out of date). `netspec ops NAME` prints one op.",
           "", "Every layer also takes the keys `name`, `from`, `if`, `repeat`, `index`, `share`, `flat` and `doc` "
           "(see [spec-language.md](spec-language.md)); channel and feature sizes of the input are inferred and "
           "never written.", ""]
    for fam in sorted(fams):
        names = ", ".join(f"[{o.name}](#{o.name})" for o in sorted(fams[fam], key=lambda o: o.name))
        out.append(f"- **{fam}**: {names}")
    for fam in sorted(fams):
        out += ["", f"## {fam}"]
        for op in sorted(fams[fam], key=lambda o: o.name):
            out += ["", f"### {op.name}", "", _doc(op), ""]
            if op.aliases:
                out.append(f"- aliases: {', '.join(f'`{a}`' for a in op.aliases)}")
            out.append(f"- torch: `{op.torch_ref or '-'}`")
            out.append(f"- inputs: {_inputs_text(op)}; outputs: {_outputs_text(op)}")
            out.append(f"- shape rule: {_md(op.shape_rule or '-')}")
            ex = example(op)
            if ex:
                line, ins, outs = ex
                out.append(f"- example: `- {line}`: {_md(_shapes(ins))} -> {_md(_shapes(outs))}")
            ps = params_of(op)
            if ps:
                out += ["", "| parameter | type | default | meaning |", "|---|---|---|---|"]
                for p in ps:
                    default = "**required**" if p.default == REQUIRED else f"`{p.default}`"
                    out.append(f"| `{p.name}` | `{p.type}` | {default} | {_md(p.doc)} |")
    return "\n".join(out) + "\n"


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def find(name: str) -> type[Op] | None:
    return lookup(name)
