"""Runtime options of a built module: ``torch.compile``, channels-last memory format, CUDA-graph capture.

``netspec.build(..., compile=True, channels_last=True, cuda_graph=True, example_inputs=...)`` applies them after the
module is constructed. Each is what torch offers, applied the way one would apply it to a torchvision model, so that
the benchmark (tools/bench_overhead.py) compares like with like:

* ``compile``: ``module.compile()`` (in place: the module keeps its class and its ``state_dict`` keys, unlike the
  ``OptimizedModule`` that ``torch.compile(module)`` returns, whose keys gain an ``_orig_mod.`` prefix);
* ``channels_last``: ``module.to(memory_format=torch.channels_last)``; feed it channels-last inputs
  (``x.to(memory_format=torch.channels_last)``) as one does for torchvision models;
* ``cuda_graph``: the forward pass is captured once, in eval mode without autograd, on static input buffers shaped
  like ``example_inputs``; each call copies its inputs into those buffers and replays the graph. For static-shape
  inference only: another shape, dtype or device is refused with a clear error.
"""
from __future__ import annotations

from ..errors import NetspecError


class RuntimeOptionError(NetspecError):
    """A runtime option of ``build`` cannot be applied (no CUDA device, no example inputs, a wrong input)."""


def apply_options(model, *, compile: bool = False, channels_last: bool = False, cuda_graph: bool = False,
                  example_inputs=None, warmup: int = 3):
    """The module with the options applied (the same module, or a ``CUDAGraphed`` around it)."""
    import torch
    if cuda_graph and compile:
        raise RuntimeOptionError("cuda_graph=True and compile=True cannot be combined", None,
                                 "choose one: torch.compile(mode='reduce-overhead') captures CUDA graphs itself")
    if not cuda_graph and example_inputs is not None:
        raise RuntimeOptionError("example_inputs is only used with cuda_graph=True", None,
                                 "pass cuda_graph=True, or leave example_inputs out")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model.compile()
    if cuda_graph:
        return CUDAGraphed(model, example_inputs, warmup=warmup)
    return model


def _as_tuple(inputs) -> tuple:
    import torch
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(t, torch.Tensor) for t in inputs):
        return tuple(inputs)
    raise RuntimeOptionError("cuda_graph=True needs example_inputs: a tensor or a tuple of tensors on the GPU", None,
                             "e.g. build(spec, device='cuda', cuda_graph=True, "
                             "example_inputs=torch.randn(8, 3, 224, 224, device='cuda'))")


class CUDAGraphed:
    """A module's forward pass captured as a CUDA graph for one input signature (inference: eval, no autograd).

    Call it like the module (positional tensors). ``.module`` is the module itself (its weights are the ones the
    graph reads: load weights into it before building, or rebuild the graph after loading). Outputs are copied out
    of the graph's static buffers, so a later call never changes a tensor returned before.
    """

    def __init__(self, module, example_inputs, warmup: int = 3):
        import torch
        inputs = _as_tuple(example_inputs)
        if not torch.cuda.is_available():
            raise RuntimeOptionError("cuda_graph=True needs a CUDA device, and torch sees none", None,
                                     "build without cuda_graph on this machine (CUDA graphs exist only on NVIDIA "
                                     "GPUs), or run on a machine with one")
        devices = {t.device for t in inputs} | {p.device for p in module.parameters()} | \
            {b.device for b in module.buffers()}
        if any(d.type != "cuda" for d in devices) or len(devices) != 1:
            raise RuntimeOptionError(f"cuda_graph=True needs the module and example_inputs on one CUDA device, "
                                     f"got {', '.join(sorted(str(d) for d in devices))}", None,
                                     "build with device='cuda' and make the example inputs on the same device")
        self.module = module.eval()
        self.signature = [(tuple(t.shape), t.dtype, t.device) for t in inputs]
        self.static_inputs = [t.detach().clone() for t in inputs]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(warmup):        # lazy initialisation (cuDNN autotuning, allocator) happens outside capture
                module(*self.static_inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.static_outputs = module(*self.static_inputs)

    def __call__(self, *inputs):
        import torch
        got = [(tuple(t.shape), t.dtype, t.device) if isinstance(t, torch.Tensor) else type(t).__name__
               for t in inputs]
        if got != self.signature:
            raise RuntimeOptionError(f"this CUDA graph was captured for inputs {self._text(self.signature)}, "
                                     f"got {self._text(got)}", None,
                                     "a CUDA graph replays one static shape: build another for this shape, or "
                                     "call .module(...) for the plain module")
        for buf, t in zip(self.static_inputs, inputs):
            buf.copy_(t)
        self.graph.replay()
        out = self.static_outputs
        return out.clone() if isinstance(out, torch.Tensor) else type(out)(o.clone() for o in out)

    @staticmethod
    def _text(sig) -> str:
        return ", ".join(f"{list(s[0])} {str(s[1]).replace('torch.', '')} on {s[2]}" if isinstance(s, tuple) else s
                         for s in sig)
