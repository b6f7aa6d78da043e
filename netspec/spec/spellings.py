"""Parameter names as PyTorch and Keras spell them, and what a netspec layer says instead.

An unknown field that is one of these gets a hint that names the netspec field (``out_channels`` -> ``out``), or
says why there is none (``in_channels`` is inferred from the input; ``activation`` is a layer of its own).
"""
from __future__ import annotations

# foreign name -> the netspec fields it may mean, in order of preference (the first one the op has is offered)
RENAMED: dict[str, tuple[str, ...]] = {
    "out_channels": ("out",), "filters": ("out",), "units": ("out",), "out_features": ("out",),
    "output_dim": ("out",), "embedding_dim": ("out",), "features": ("out",), "output_size": ("out", "size"),
    "kernel_size": ("kernel",), "pool_size": ("kernel",), "strides": ("stride",), "dilation_rate": ("dilation",),
    "use_bias": ("bias",), "num_embeddings": ("num",), "input_dim_embeddings": ("num",),
    "hidden_size": ("hidden",), "num_layers": ("layers",), "proj_size": ("proj",),
    "num_heads": ("heads",), "nhead": ("heads",), "n_heads": ("heads",), "dim_feedforward": ("ffn",),
    "layer_norm_eps": ("eps",), "epsilon": ("eps",), "normalized_shape": ("shape",), "num_groups": ("groups",),
    "rate": ("p",), "dropout_rate": ("p",), "axis": ("dim",), "scale_factor": ("scale",),
    "upscale_factor": ("factor",), "downscale_factor": ("factor",), "start_dim": ("start",), "end_dim": ("end",),
    "target_shape": ("shape",), "keepdims": ("keepdim",),
}

# foreign names netspec has no field for, and why
INFERRED = "inferred from the input's shape in netspec: remove it"
REASONS: dict[str, str] = {
    "in_channels": INFERRED, "in_features": INFERRED, "num_features": INFERRED, "input_dim": INFERRED,
    "input_size": INFERRED, "input_shape": INFERRED, "d_model": INFERRED, "embed_dim": INFERRED,
    "kdim": INFERRED, "vdim": INFERRED, "num_channels": INFERRED,
    "activation": "netspec has no fused activation here: add an activation layer after this one, "
                  "e.g. '- {op: relu}'",
    "kernel_initializer": "initialisation is not part of the layer: train with the defaults of PyTorch, or load "
                          "weights",
    "bias_initializer": "initialisation is not part of the layer: train with the defaults of PyTorch, or load "
                        "weights",
    "kernel_regularizer": "regularisation belongs to training: set weight_decay in the 'train:' section",
    "return_sequences": "recurrent ops return every step as 'out' and the final state as 'h': refer to the one "
                        "you need (e.g. 'from: lstm.h', or a 'select' of the last step)",
    "device": "the device is chosen when the network is built or trained, not in the spec",
    "dtype": "a layer's dtype follows its input; convert with '- {op: to_dtype, dtype: ...}'",
}


def foreign_hint(key: str, fields: list[str], op: str | None) -> str | None:
    """A hint for the unknown field ``key`` of an op with these ``fields``, when it is a PyTorch or Keras spelling."""
    if key in fields:
        return None
    for target in RENAMED.get(key, ()):
        if target in fields:
            return f"'{key}' is the PyTorch/Keras spelling: netspec's {op or 'layer'} calls it '{target}'"
    reason = REASONS.get(key)
    if reason is not None:
        return f"'{key}': {reason}"
    return None


def same_padding_hint(op: str | None, word: str = "same") -> str:
    """For ``padding: same`` (or ``valid``) on an op that does not take the word."""
    if word == "valid":
        return f"{op or 'this op'} takes no padding 'valid': Keras' 'valid' is padding 0 (the default): remove it"
    return (f"{op or 'this op'} takes no padding 'same': write the padding per side as a number, (kernel - 1) // 2 "
            "for an odd kernel with stride 1 (kernel 3: padding 1)")
