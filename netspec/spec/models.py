"""The spec language as Pydantic models.

A layer is a mapping discriminated on ``op``: a built-in op (its parameters come from the op's ``Params``),
``seq`` (an inline group with its own ``layers``), or the name of a block (its arguments are the block's params).
Values may be written as expressions (strings) wherever a number or boolean is expected; they are parsed here
and evaluated during expansion.
"""
from __future__ import annotations

import functools
import types
import typing
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, create_model, field_validator, model_validator)

from .expr import ExprError, parse as parse_expr
from .names import LAYER_NAME_PATTERN, MAX_NAME_CHARS, MAX_REF_STEPS, NAME_PATTERN, REF_PATTERN, TEMPLATE_PATTERN

FORMAT_VERSION = 1

# keys every layer may carry, whatever its op ('shape' and 'out_shape': see assertion_key)
LAYER_KEYS = ("op", "name", "from", "if", "repeat", "index", "share", "flat", "doc", "shape", "out_shape")

# a shape assertion: dims as in input declarations, or expressions of symbols and parameters (H/2, ceil(H/4))
ShapeDims = list[Union[int, str]]


def owns_shape(raw: dict, blocks=None) -> bool:
    """Whether the layer's op (reshape, param, layernorm, ...) or block has a parameter named 'shape': then 'shape'
    is that parameter, and the layer's shape assertion is written 'out_shape'."""
    op_name = raw.get("op")
    if not isinstance(op_name, str):
        return False
    from ..ops.base import lookup
    op = lookup(op_name)
    if op is not None:
        return "shape" in op.Params.model_fields
    b = (blocks or {}).get(op_name)
    decls = (b.raw.get("params") if b is not None else None) or {}
    return isinstance(decls, dict) and "shape" in decls


def assertion_key(raw: dict, blocks=None) -> str:
    """The key of a layer's shape assertion: 'shape', or 'out_shape' where 'shape' is a parameter."""
    return "out_shape" if owns_shape(raw, blocks) else "shape"


def op_owns_index(raw: dict) -> bool:
    """Whether the layer's op has a parameter named 'index' (select): then 'index' is that parameter, and a repeat's
    loop variable is 'i'."""
    name = raw.get("op")
    op = _lookup(name) if isinstance(name, str) else None
    return op is not None and "index" in op.Params.model_fields


def _lookup(name: str):
    """ops.base.lookup, imported on first use (the registry imports this module); asked once per layer."""
    global _lookup
    from ..ops.base import lookup
    _lookup = lookup
    return lookup(name)


def loop_index(raw: dict) -> str:
    """The name of a repeated layer's loop variable: its 'index' key, or 'i'."""
    return "i" if op_owns_index(raw) else raw.get("index", "i")


def _check_expr(s: str) -> str:
    try:
        parse_expr(s)
    except ExprError as e:
        raise ValueError(f"invalid expression: {e.message}") from None
    return s


Expr = Annotated[str, AfterValidator(_check_expr), Field(json_schema_extra={"description": "an expression"})]
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=MAX_NAME_CHARS)]
LayerName = Annotated[str, Field(pattern=LAYER_NAME_PATTERN, max_length=MAX_NAME_CHARS,
                                 description="a layer's name: letters, digits, '_' and '-' (not first): 'block1-0'")]
LayerNumber = Annotated[int, Field(ge=0, le=2**31, description="a position-style name (classifier.1)")]
NameTemplate = Annotated[str, Field(pattern=TEMPLATE_PATTERN, max_length=MAX_NAME_CHARS,
                                    description="a repeated layer's copies named by expressions: 'denselayer{i+1}'")]
Ref = Annotated[str, Field(pattern=REF_PATTERN, max_length=MAX_REF_STEPS * (MAX_NAME_CHARS + 1),
                           description="a layer name in the same scope, optionally with an output or a group's "
                                       "children: 'lstm.h', 'body.0'")]
From = Union[Ref, list[Ref], dict[Name, Ref]]



def _new_dict() -> dict:
    """A field's empty default. (A function rather than ``dict``: pydantic reads a default factory's signature, and a
    builtin's signature is parsed from its text by ``tokenize``, whose patterns cost 2 ms to compile at start-up.)"""
    return {}


def _new_list() -> list:
    """A field's empty default (see ``_new_dict``)."""
    return []

class Model(BaseModel):
    # strict: a boolean is not a number (netspec: true), a number is not a boolean (bias: 0.0), text is not either
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class LayerBase(Model):
    name: Optional[Union[LayerName, LayerNumber, NameTemplate]] = Field(
        None, description="structural name (module attribute), or a number of 0 or more; default: index in the "
                          "list. With 'repeat', a template names each copy: 'denselayer{i+1}'")
    from_: Optional[From] = Field(None, alias="from", description="inputs: a name, a list, or {input: name}; default: the previous layer")
    if_: Optional[Union[bool, Expr]] = Field(None, alias="if", description="keep the layer only when true; when dropped, references to it pass its input through")
    repeat: Optional[Union[int, Expr]] = Field(None, description="instantiate n times in a chain, named name.0 .. name.{n-1}")
    index: Name = Field("i", description="the loop variable of 'repeat'")
    share: Optional[LayerName] = Field(None, description="reuse the module (weights) of another layer in this scope")
    flat: Union[bool, Literal["copies"]] = Field(
        False, description="add no level to the module tree (torchvision's features.N): true numbers a block's or "
                           "seq's layers, and a repeat's copies, in the enclosing list; 'copies' numbers only a "
                           "repeat's copies there, each staying one module")
    doc: Optional[str] = None
    shape: Optional[ShapeDims] = Field(
        None, description="assert the layer's output shape: [N, 64, H/2, W/2] (numbers, symbols, parameters, + - * / "
                          "// ceil() floor()); check proves it or reports both shapes. Where the op or block has a "
                          "parameter 'shape', write the assertion as 'out_shape'")


def _lift(tp):
    """Allow expressions in place of numbers/booleans, also inside lists."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return Union[tuple(_lift(a) for a in args) + (Expr,)]  # type: ignore
    if origin in (list, tuple) and args:
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return list[_lift(args[0])]
        if origin is tuple:
            return Union[tuple[tuple(_lift(a) for a in args)], Expr]  # type: ignore
        return Union[list[_lift(args[0])], Expr]
    if tp in (int, float, bool):
        return Union[tp, Expr]
    if origin is Literal:
        return Union[tp, Expr]
    return tp


@functools.lru_cache(maxsize=None)
def op_layer_model(op_name: str) -> type[LayerBase]:
    """The spec-level model of a layer using a built-in op."""
    from ..ops.base import lookup
    op = lookup(op_name)
    fields: dict[str, Any] = {"op": (Literal[op_name] if op.name == op_name else Literal[op_name], ...)}  # noqa
    for fname, f in op.Params.model_fields.items():
        default = ... if f.is_required() else f.default
        desc = f.description
        fields[fname] = (_lift(f.annotation), Field(default, description=desc, alias=f.alias))
    if "shape" in op.Params.model_fields:      # 'shape' is the op's parameter: the assertion is 'out_shape'
        fields["out_shape"] = (Optional[ShapeDims], Field(None, description="assert the layer's output shape"))
    model = create_model(f"Layer_{op_name}", __base__=LayerBase, __doc__=(op.doc or op_name), **fields)
    return model


class SeqLayer(LayerBase):
    """An inline group of layers, chained; a submodule named after the layer (like nn.Sequential)."""

    op: Literal["seq"]
    layers: list["Layer"]


class SeqLayerShallow(LayerBase):
    """SeqLayer with its inner layers left to be validated one by one."""

    op: Literal["seq"]
    layers: list[Any]


def layer_model_for(layer: dict) -> type[BaseModel]:
    """The model that validates one layer mapping (inner layers of a 'seq' are not descended into)."""
    tag = _discriminate(layer)
    if tag == "seq":
        return SeqLayerShallow
    if tag == "block":
        return BlockLayer
    return op_layer_model(tag)


def _block_layer_schema(schema: dict) -> None:
    """In the JSON Schema, a block instance's op is any name that is not a built-in op (so oneOf stays exact)."""
    from ..ops.base import all_names
    schema["properties"]["op"] = {"type": "string", "description": "the name of a block",
                                  "not": {"enum": sorted(all_names()) + ["seq"]}}


class BlockLayer(LayerBase):
    """An instance of a block; its arguments are the block's params (extra keys)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, json_schema_extra=_block_layer_schema)
    op: str
    shape: Any = Field(None, description="assert the block's (first) output shape; a block parameter if the block "
                                         "declares one named 'shape' (then the assertion is 'out_shape')")
    out_shape: Optional[ShapeDims] = Field(None, description="the shape assertion of a block with a 'shape' parameter")


def _discriminate(v: Any) -> str:
    op = v.get("op") if isinstance(v, dict) else getattr(v, "op", None)
    if not isinstance(op, str):
        return "block"
    if op == "seq":
        return "seq"
    o = _lookup(op)
    if o is not None and o.name == op:
        return op
    if o is not None:  # an alias
        return op
    return "block"


@functools.lru_cache(maxsize=None)
def layer_union():
    from ..ops.base import all_names
    members = [Annotated[op_layer_model(n), Tag(n)] for n in all_names()]
    members.append(Annotated[SeqLayer, Tag("seq")])
    members.append(Annotated[BlockLayer, Tag("block")])
    return Annotated[Union[tuple(members)], Discriminator(_discriminate)]  # type: ignore


ParamType = Literal["int", "float", "bool", "str", "list", "any", "int_or_list"]


class ParamDecl(Model):
    """A declared parameter of a block or network."""

    type: ParamType = "any"
    default: Any = None
    required: bool = False
    doc: Optional[str] = None
    choices: Optional[list[Any]] = None


class InputDecl(Model):
    shape: list[Union[int, str]]
    dtype: Literal["float32", "float16", "bfloat16", "float64", "int64", "int32", "uint8", "bool"] = "float32"
    multiple_of: dict[Name, Annotated[int, Field(ge=1, le=2**20)]] = Field(
        default_factory=_new_dict, description="symbols of the shape that only take multiples of a number "
                                          "({H: 32, W: 32}): shapes read H/4, not ceil(H/4); shown as a requirement")
    doc: Optional[str] = None


class SymbolDecl(Model):
    multiple_of: int = Field(1, ge=1, le=2**20, description="the symbol only takes multiples of this")
    doc: Optional[str] = None


ParamsField = dict[Name, Union[ParamDecl, int, float, bool, str, list, None]]
LetField = Annotated[dict[Name, Union[int, float, bool, Expr, list]], Field(
    default_factory=_new_dict, description="derived values, in order: name -> expression over the parameters, earlier "
                                      "let values and the inputs' shapes; visible to the layers like parameters")]
DefaultsField = Annotated[dict[Name, dict[Name, Any]], Field(
    default_factory=_new_dict, description="scoped defaults: op -> {parameter: value}, for every layer of that op here "
                                      "and in the blocks used here (a layer's own value wins, an inner scope's "
                                      "defaults win over an outer's)")]
InputsField = Union[dict[Name, Union[list[Union[int, str]], InputDecl]], list[Name]]


class OutputDecl(Model):
    """A named output with its stated shape: {from: fc, shape: [N, 10]}."""

    from_: Ref = Field(alias="from", description="the layer (or layer.output) this output is")
    shape: Optional[ShapeDims] = Field(None, description="assert the output's shape (checked like a layer's)")
    doc: Optional[str] = None


OutputsField = Union[Ref, list[Ref], dict[Name, Union[Ref, OutputDecl]]]


class BlockDef(Model):
    """A reusable group of layers with typed, defaulted parameters."""

    doc: Optional[str] = None
    params: ParamsField = Field(default_factory=_new_dict)
    let: LetField
    defaults: DefaultsField
    inputs: InputsField = Field(default_factory=lambda: ["x"])
    layers: list[Any]
    outputs: Optional[OutputsField] = None


class NetworkDef(Model):
    """One network: its parameters, named inputs with shapes, layers and outputs."""

    doc: Optional[str] = None
    params: ParamsField = Field(default_factory=_new_dict)
    let: LetField
    defaults: DefaultsField
    inputs: dict[Name, Union[list[Union[int, str]], InputDecl]]
    layers: list[Any]
    outputs: Optional[OutputsField] = None


class SpecFile(Model):
    """A netspec file: one network at the top level, or several under 'networks'."""

    netspec: Literal[1] = Field(description="format version of the spec language")
    name: Optional[Name] = Field(None, description="the network's name (default: the file's name)")
    doc: Optional[str] = None
    imports: list[str] = Field(default_factory=_new_list, description="files (relative to this one) whose blocks are imported")
    symbols: dict[Name, SymbolDecl] = Field(default_factory=_new_dict)
    params: ParamsField = Field(default_factory=_new_dict)
    let: LetField
    defaults: DefaultsField
    blocks: dict[Name, BlockDef] = Field(default_factory=_new_dict)
    inputs: Optional[dict[Name, Union[list[Union[int, str]], InputDecl]]] = None
    layers: Optional[list[Any]] = None
    outputs: Optional[OutputsField] = None
    networks: Optional[dict[Name, NetworkDef]] = None
    # validated on its own (spec/load.py validate) so that `check` never builds the training models; typed in the schema
    train: Optional[dict[str, Any]] = Field(None, description="how `netspec train` trains this spec")

    @field_validator("netspec", mode="before")
    @classmethod
    def _version_is_a_number(cls, v):
        if type(v) is not int:          # true == 1 in Python; in a spec it is not a version
            raise ValueError(f"the format version must be the number {FORMAT_VERSION}")
        return v

    @model_validator(mode="after")
    def _one_kind(self):
        if self.networks is None and self.layers is None and not self.blocks:
            raise ValueError("a spec needs 'layers' (one network), 'networks' (several), or at least 'blocks' (a library)")
        if self.networks is not None and (self.layers is not None or self.inputs is not None):
            raise ValueError("write either 'inputs'+'layers' (one network) or 'networks' (several), not both")
        if self.layers is not None and self.inputs is None:
            raise ValueError("the network has 'layers' but no 'inputs': declare them, e.g. inputs: {x: [N, 3, H, W]}")
        return self


@functools.lru_cache(maxsize=None)
def typed_spec_model() -> type[SpecFile]:
    """SpecFile with every 'layers' list typed by the layer union (used to validate and for the schema)."""
    from ..train.config import TrainConfig
    LayerT = layer_union()
    SeqLayer.model_rebuild(_types_namespace={"Layer": LayerT})

    BlockDef_ = create_model("BlockDef", __base__=BlockDef, __doc__=BlockDef.__doc__,
                             layers=(list[LayerT], ...))  # type: ignore
    NetworkDef_ = create_model("NetworkDef", __base__=NetworkDef, __doc__=NetworkDef.__doc__,
                               layers=(list[LayerT], ...))  # type: ignore
    SpecFile_ = create_model("SpecFile", __base__=SpecFile, __doc__=SpecFile.__doc__,
                             blocks=(dict[Name, BlockDef_], Field(default_factory=_new_dict)),
                             layers=(Optional[list[LayerT]], None),
                             networks=(Optional[dict[Name, NetworkDef_]], None),
                             train=(Optional[TrainConfig], SpecFile.model_fields["train"]))  # type: ignore
    return SpecFile_


def json_schema() -> dict:
    """JSON Schema (draft 2020-12) of the spec language, with every op's parameters."""
    schema = typed_spec_model().model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "netspec spec file"
    return schema
