"""build's runtime options (netspec/codegen/runtime.py): compile, channels_last and cuda_graph change how a module
runs, never what it computes or its state_dict."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec
from netspec.codegen.runtime import RuntimeOptionError

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()


def test_channels_last_same_outputs_and_keys():
    torch.manual_seed(0)
    plain = netspec.build(ROOT / "specs" / "resnet18.yaml").eval()
    cl = netspec.build(ROOT / "specs" / "resnet18.yaml", channels_last=True).eval()
    assert list(cl.state_dict()) == list(plain.state_dict())
    cl.load_state_dict(plain.state_dict(), strict=True)
    assert cl.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a = plain(x)
        b = cl(x.to(memory_format=torch.channels_last))
    assert (a - b).abs().max() <= 1e-5


def test_compile_in_place_keeps_class_and_keys():
    torch.manual_seed(0)
    plain = netspec.build(ROOT / "specs" / "mlp.yaml").eval()
    comp = netspec.build(ROOT / "specs" / "mlp.yaml", compile=True).eval()
    assert type(comp) is not torch._dynamo.eval_frame.OptimizedModule and type(comp).__name__ == type(plain).__name__
    assert list(comp.state_dict()) == list(plain.state_dict())
    assert comp._compiled_call_impl is not None                  # nn.Module.compile() was applied
    comp.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(4, 64)
    with torch.no_grad():
        assert (comp(x) - plain(x)).abs().max() <= 1e-5


@pytest.mark.skipif(CUDA, reason="checks the error on a machine without CUDA")
def test_cuda_graph_without_cuda_is_a_clear_error():
    with pytest.raises(RuntimeOptionError) as e:
        netspec.build(ROOT / "specs" / "mlp.yaml", cuda_graph=True, example_inputs=torch.randn(4, 64))
    assert "needs a CUDA device" in e.value.message and e.value.hints


@pytest.mark.parametrize("kw,words", [
    ({"cuda_graph": True}, "needs example_inputs"),
    ({"cuda_graph": True, "example_inputs": [1, 2]}, "needs example_inputs"),
    ({"example_inputs": torch.zeros(1, 64)}, "only used with cuda_graph=True"),
    ({"cuda_graph": True, "compile": True, "example_inputs": torch.zeros(1, 64)}, "cannot be combined"),
])
def test_wrong_option_combinations(kw, words):
    with pytest.raises(RuntimeOptionError) as e:
        netspec.build(ROOT / "specs" / "mlp.yaml", **kw)
    assert words in e.value.message and e.value.hints


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cuda_graph_replays_the_forward_pass():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 64, 64, device="cuda")
    eager = netspec.build(ROOT / "specs" / "resnet18.yaml", device="cuda").eval()
    graphed = netspec.build(ROOT / "specs" / "resnet18.yaml", device="cuda", cuda_graph=True, example_inputs=x)
    graphed.module.load_state_dict(eager.state_dict(), strict=True)
    graphed = type(graphed)(graphed.module, x)          # captured again with the loaded weights
    with torch.no_grad():
        for _ in range(2):
            y = torch.randn_like(x)
            assert (graphed(y) - eager(y)).abs().max() <= 1e-4
    first = graphed(x)
    graphed(torch.randn_like(x))
    assert (first - eager(x)).abs().max() <= 1e-4       # an earlier result is not overwritten by a replay
    with pytest.raises(RuntimeOptionError):
        graphed(torch.randn(4, 3, 64, 64, device="cuda"))
