"""Which names a layer, block, input or output may have.

A layer's name becomes a torch module attribute and a Python identifier in generated code, so it may not be a
Python keyword, ``self``, or the name of an ``nn.Module`` attribute (``forward``, ``state_dict``, ...).
"""
from __future__ import annotations

import keyword

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


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a layer (or input, output, block), or None if it can."""
    # a layer is an attribute (self.torch), never a free name in generated code: only the parameters' and
    # symbols' rule about the code's own names does not apply
    prob = identifier_problem(name) if name not in {"torch", "nn", "F", "math"} else None
    if prob is None and name in MODULE_ATTRS:
        return f"'{name}' is an attribute of torch.nn.Module (a layer with this name would replace it)"
    return prob


def identifier_problem(name: str) -> str | None:
    """Why ``name`` cannot name a parameter, loop index, symbol or network, or None if it can.

    These become Python identifiers in generated code and variables in expressions, but no module attribute.
    """
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) and name in ("match", "case", "type", "_"):
        return f"'{name}' is a Python keyword"
    if name in CODEGEN_NAMES:
        return f"'{name}' is reserved in generated code"
    if name in EXPR_CONSTANTS:
        return f"'{name}' is a constant in expressions ({name} means {name.capitalize() if name != 'null' else 'None'})"
    if name.startswith("_"):
        return f"'{name}' starts with '_' (reserved for internals)"
    return None
