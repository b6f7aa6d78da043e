"""The one name rule: which names a network, block, layer, input, output, parameter, loop index or symbol may have.

A name is an ASCII identifier (``^[A-Za-z_][A-Za-z0-9_]*$``, at most 128 characters) that is not a Python keyword,
not ``self`` or a name generated code uses (``torch``, ``nn``, ``F``, ...; layers may take those four, being
attributes), not an expression constant (``true``, ``null``, ...) and does not start with ``_``. Layer and input
names become torch module attributes, so they may also not be an ``nn.Module`` attribute (``forward``, ...).

A layer's name (a module attribute, never a Python variable) may also start with a digit and contain '-'
(``block1-0``, ``"2"``, ``1x1``): PyTorch takes any module name but the empty one and one with '.', and generated
code reaches such a layer with ``getattr(self, "block1-0")``. Other punctuation, whitespace, control characters and
non-ASCII letters stay refused (they would be unreadable in references, diagrams and error messages), as does a
leading '-' (``-1`` reads as a negative number). A layer's ``name`` may also be a non-negative integer, written as a
number (``name: 1``): the position-style names ``nn.Sequential`` gives (``classifier.1``). Negative numbers,
booleans and floats are refused: ``name: -1`` would make the state_dict key ``-1.weight``.

The pydantic models take NAME_PATTERN from here; the loader and the expansion call the functions below. Nothing
else decides what a name is.
"""
from __future__ import annotations

import functools
import keyword
import re
import unicodedata

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
LAYER_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"     # a layer's name: also digits first and '-'
# a reference: a layer, then '.output' or '.child' steps (body.0, stage2.block1-0.out1)
REF_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*$"
MAX_NAME_CHARS = 128
MAX_REF_STEPS = 8
NAME_HINT = "names are ASCII letters, digits and '_', not starting with a digit"
LAYER_NAME_HINT = "layer names are ASCII letters, digits, '_' and '-' (not first), e.g. 'block1-0' or '2'"

MODULE_ATTRS = frozenset("""
T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval
extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict modules
mtia named_buffers named_children named_modules named_parameters parameters register_backward_hook register_buffer
register_forward_hook register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook
register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule
share_memory state_dict to to_empty train training type xpu zero_grad
""".split())

CODEGEN_NAMES = frozenset({"self", "torch", "nn", "F", "math", "super", "None", "True", "False"})


EXPR_CONSTANTS = frozenset({"true", "false", "null", "none"})   # the constants of spec expressions


_ASCII_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def syntax_problem(name, offset: int = 0) -> str | None:
    """What keeps ``name`` from being an ASCII identifier, said plainly (look-alike letters named), or None."""
    if type(name) is str and len(name) + offset <= MAX_NAME_CHARS and _ASCII_IDENT.fullmatch(name):
        return None                 # the common case, without the character-by-character walk
    if not isinstance(name, str):
        return f"a name must be text, not {_type_name(name)}"
    if not name:
        return "a name cannot be empty"
    if len(name) + offset > MAX_NAME_CHARS:
        return f"a name of {len(name) + offset:,} characters is longer than {MAX_NAME_CHARS}"
    if name[0].isdigit():
        return "a name cannot start with a digit"
    for i, ch in enumerate(name):
        if ch.isascii() and (ch.isalnum() or ch == "_"):
            continue
        if not ch.isascii():
            return (f"character {i + 1 + offset}, '{ch}', is U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED')}, "
                    "not an ASCII letter or digit")
        if ch == " ":
            return "a space is not allowed in a name"
        if not ch.isprintable():
            return f"the control character {ascii(ch)[1:-1]} is not allowed in a name"
        return f"'{ch}' is not allowed in a name"
    return None


def layer_syntax_problem(name) -> str | None:
    """What keeps ``name`` from being a layer's name (letters, digits, '_' and '-', '-' not first), or None."""
    if isinstance(name, str) and name.startswith("-"):
        return "a name cannot start with '-' (it would read as a negative number)"
    if isinstance(name, str) and name:
        # the same rule as for identifiers, with '-' allowed anywhere but first and a digit allowed first
        return syntax_problem("_" + name.replace("-", "_"), offset=-1)
    return syntax_problem(name)


def identifier_problem(name) -> str | None:
    """Why ``name`` cannot name a parameter, loop index, symbol, block, output or network, or None if it can.

    These become Python identifiers in generated code and variables in expressions, but no module attribute.
    """
    prob = syntax_problem(name)
    if prob:
        return prob
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) and name in ("match", "case", "type", "_"):
        return f"'{name}' is a Python keyword"
    if name in CODEGEN_NAMES:
        return f"'{name}' is reserved in generated code"
    if name in EXPR_CONSTANTS:
        return f"'{name}' is a constant in expressions ({name} means {name.capitalize() if name != 'null' else 'None'})"
    if name.startswith("_"):
        return f"'{name}' starts with '_' (reserved for internals)"
    return None


def name_problem(name) -> str | None:
    """Why ``name`` cannot name a layer or a network input (a module attribute), or None if it can."""
    if type(name) is not str:
        return _name_problem(name)
    if len(name) <= MAX_NAME_CHARS and _PLAIN_NAME.fullmatch(name) and name not in _NOT_PLAIN:
        return None             # an ASCII identifier that is no keyword or reserved name: the usual layer name
    return _name_problem_cached(name)


_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=4096)
def _name_problem_cached(name: str) -> str | None:
    return _name_problem(name)


def _name_problem(name) -> str | None:
    """Why ``name`` cannot name a layer or a network input (a module attribute), or None if it can.

    A layer is an attribute (``self.torch``), never a free name in generated code, so the names the code itself
    uses (torch, nn, F, math) may name layers; only parameters and symbols, which become variables, may not."""
    prob = layer_syntax_problem(name)
    if prob is None and name not in {"torch", "nn", "F", "math"}:
        prob = identifier_problem(name) if name.isidentifier() else (
            "starts with '_' (reserved for internals)" if name.startswith("_") else None)
        prob = f"'{name}' {prob}" if prob and not prob.startswith("'") else prob
    if prob is None and name in MODULE_ATTRS:
        return f"'{name}' is an attribute of torch.nn.Module (a layer with this name would replace it)"
    return prob


TEMPLATE_PATTERN = r"^[A-Za-z0-9_-]*(\{[^{}]+\}[A-Za-z0-9_-]*)+$"


def is_template(name) -> bool:
    """A repeated layer's name with expressions in braces: each copy is named by them ('denselayer{i+1}')."""
    import re
    return isinstance(name, str) and "{" in name and re.fullmatch(TEMPLATE_PATTERN, name) is not None


def template_parts(name: str) -> list:
    """'denselayer{i+1}' -> ['denselayer', ('i+1',), '']: text, and 1-tuples holding the expressions."""
    import re
    out: list = []
    for k, part in enumerate(re.split(r"\{([^{}]+)\}", name)):
        out.append((part,) if k % 2 else part)
    return out


def input_name_problem(name) -> str | None:
    """Why ``name`` cannot name a network input: it becomes an argument of ``forward`` (a variable) too, so the
    names the generated code uses (torch, nn, F, math) are refused as for parameters."""
    prob = identifier_problem(name)
    if prob is None and name in MODULE_ATTRS:
        return f"'{name}' is an attribute of torch.nn.Module (an input with this name would replace it)"
    return prob


def layer_name_problem(name) -> str | None:
    """Why ``name`` (as written in the file) cannot be a layer's ``name``: a name, or a non-negative integer."""
    if type(name) is int:
        return None if name >= 0 else (f"{name} is negative: a layer's number must be 0 or more (it becomes the "
                                       f"state_dict key '{name}.weight', which no attribute can reach)")
    if isinstance(name, (bool, float)) or not isinstance(name, str):
        return f"a layer's name must be a name or a number of 0 or more, not {_type_name(name)} {name!r}"
    if is_template(name):
        return None          # each copy's name is checked when the repeat is expanded
    return name_problem(name)


def _type_name(v) -> str:
    return {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "a mapping",
            type(None): "null"}.get(type(v), type(v).__name__)


# names the fast path of name_problem leaves to the full rules
_NOT_PLAIN = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | CODEGEN_NAMES | EXPR_CONSTANTS | MODULE_ATTRS
