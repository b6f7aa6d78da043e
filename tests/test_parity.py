"""Reference parity: the spec-built modules are the torchvision networks, weight for weight and output for output;
and every bundled spec builds, runs forward and backward, and gives every parameter a gradient.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from netspec import build, expand, load
from netspec.errors import NetspecError

from codegen_helpers import SPECS, bundled, case_id, make_inputs, outputs, small_bindings, small_params
from references import HANDWRITTEN

torchvision = pytest.importorskip("torchvision")

# spec -> (torchvision constructor, input size[, constructor arguments]): small inputs keep the file fast; every layer
# still runs
REFERENCES = {
    "alexnet": ("alexnet", 64),          # 64x64 -> 1x1 after the features; the adaptive pool repeats it to 6x6
    "densenet121": ("densenet121", 32),  # 32x32 -> 1x1 after the third transition; every dense layer still runs
    "efficientnet_b0": ("efficientnet_b0", 64),
    "googlenet": ("googlenet", 64, {"init_weights": False}),
    "inception_v3": ("inception_v3", 299, {"aux_logits": True, "init_weights": False}),   # the aux head needs 299
    "resnet18": ("resnet18", 64),
    "resnet34": ("resnet34", 64),
    "resnet50": ("resnet50", 64),
    "resnet101": ("resnet101", 32),
    "resnet152": ("resnet152", 32),
    "squeezenet1_0": ("squeezenet1_0", 64),
    "squeezenet1_1": ("squeezenet1_1", 64),
    "vgg16": ("vgg16", 32),              # 32x32 -> 1x1 after the features; the adaptive pool repeats it to 7x7
    "vgg16_bn": ("vgg16_bn", 32),
    "mobilenet_v2": ("mobilenet_v2", 64),
    "mobilenet_v3_large": ("mobilenet_v3_large", 64),
}

# auxiliary classifiers, which torchvision runs only in training mode: spec output -> (the reference module whose
# output feeds the classifier, the reference's classifier module), compared in eval mode on that module's output
AUX = {
    "googlenet": {"aux_logits1": ("inception4a", "aux1"), "aux_logits2": ("inception4d", "aux2")},
    "inception_v3": {"aux_logits": ("Mixed_6e", "AuxLogits")},
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_torchvision_parity(name):
    tv_name, size, *kwargs = REFERENCES[name]
    ref = getattr(torchvision.models, tv_name)(weights=None, **(kwargs[0] if kwargs else {})).eval()
    # built on the meta device, then given the reference's tensors: a strict load, without a second initialisation
    model = build(SPECS / f"{name}.yaml", device="meta")
    model.load_state_dict(ref.state_dict(), strict=True, assign=True)
    model.eval()
    assert not any(t.is_meta for t in list(model.parameters()) + list(model.buffers()))
    assert list(model.state_dict()) == list(ref.state_dict())          # the same keys, in the same order
    aux = AUX.get(name, {})
    taps = {}
    for src, _ in aux.values():
        ref.get_submodule(src).register_forward_hook(lambda m, i, o, src=src: taps.__setitem__(src, o))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        a, b = model(x), ref(x)
        want = {out: ref.get_submodule(mod)(taps[src]) for out, (src, mod) in aux.items()}
    if aux:
        assert set(a) == {"logits", *aux}
        for out, w in want.items():
            assert a[out].shape == w.shape == (2, 1000)
            assert (a[out] - w).abs().max().item() <= 1e-5, out
        a = a["logits"]
    assert a.shape == b.shape == (2, 1000)
    assert (a - b).abs().max().item() <= 1e-5


def test_efficientnet_stochastic_depth_is_torchvisions():
    """Eval-mode parity cannot see stochastic depth: its probabilities (growing with the block index) and mode are
    compared with torchvision's modules, on the residual blocks (the only ones whose forward uses it)."""
    ref = torchvision.models.efficientnet_b0(weights=None)
    model = build(SPECS / "efficientnet_b0.yaml", device="meta")
    mine = {n: (m.p, m.mode) for n, m in model.named_modules() if isinstance(m, torchvision.ops.StochasticDepth)}
    theirs = {n: (m.p, m.mode) for n, m in ref.named_modules() if isinstance(m, torchvision.ops.StochasticDepth)
              and ref.get_submodule(n.rsplit(".", 1)[0]).use_res_connect}
    assert len(mine) == 9 and mine.keys() == theirs.keys()
    for n, (p, mode) in mine.items():
        assert p == pytest.approx(theirs[n][0]) and mode == theirs[n][1] == "row", n


# spec -> (timm model name, input size): timm is a test dependency (requirements-test.lock)
TIMM = {"xception": ("legacy_xception", 64)}


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_parity(name):
    timm = pytest.importorskip("timm")
    model_name, size = TIMM[name]
    ref = timm.create_model(model_name, pretrained=False).eval()
    model = build(SPECS / f"{name}.yaml", device="meta")
    model.load_state_dict(ref.state_dict(), strict=True, assign=True)
    model.eval()
    assert list(model.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        a, b = model(x), ref(x)
    assert a.shape == b.shape == (2, 1000)
    assert (a - b).abs().max().item() <= 1e-5


@pytest.mark.parametrize("stem, network", sorted(HANDWRITTEN), ids=lambda v: v)
def test_handwritten_parity(stem, network):
    """Specs without a torchvision model against a hand-written one (tests/references.py): the same tensors, the same
    outputs. Random draws inside the network (the VAE's noise) come from the same seed."""
    make, make_input, same_keys = HANDWRITTEN[stem, network]
    ref = make().eval()
    model = build(SPECS / f"{stem}.yaml", network=network).eval()
    mine, theirs = model.state_dict(), ref.state_dict()
    if same_keys:
        assert list(mine) == list(theirs)
    assert [tuple(v.shape) for v in mine.values()] == [tuple(v.shape) for v in theirs.values()]
    model.load_state_dict(dict(zip(mine, theirs.values())), strict=True)
    x = make_input()
    with torch.no_grad():
        torch.manual_seed(1)
        a = outputs(model(x))
        torch.manual_seed(1)
        b = outputs(ref(x))
    assert len(a) == len(b)
    for y, w in zip(a, b):
        assert y.shape == w.shape
        assert (y - w).abs().max().item() <= 1e-5


def test_resnet18_loads_torchvision_weights_into_a_fresh_build():
    """The ordinary path (an initialised module, then a strict load) agrees too."""
    ref = torchvision.models.resnet18(weights=None).eval()
    model = build(SPECS / "resnet18.yaml")
    model.load_state_dict(ref.state_dict(), strict=True)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - ref(x)).abs().max().item() <= 1e-5


# parameters that, by design, no output reaches: a detector's RPN head learns from its own losses (objectness and
# box regression against targets); its proposals are detached from the outputs, as in torchvision
NO_GRADIENT = {"faster_rcnn": ("rpn.head.",), "mask_rcnn": ("rpn.head.",)}


@pytest.mark.parametrize("case", bundled(), ids=case_id)
def test_every_spec_trains(case):
    """Build, forward and backward on a small input: every parameter gets a gradient, every output is finite.

    A data-dependent size (a detector's number of detections K) takes any value, the same wherever it appears."""
    path, network = case
    try:
        spec = load(path)
    except NetspecError as e:
        pytest.fail(f"{path} does not load:\n{e.format()}")
    b = small_bindings(spec, network)
    g = expand(spec, network, params=small_params(network))
    model = build(g).train()
    ys = outputs(model(**make_inputs(g, b)))
    floats = [y for y in ys if y.is_floating_point()]
    assert floats, "no floating-point output to take a gradient of"
    data: dict = {}
    for y, (oname, t) in zip(ys, g.output_types().items()):
        want = [d if isinstance(d, int) else data.setdefault(str(d), n) if d.free_symbols() <= g.sym.data
                else d.evaluate(b) for d, n in zip(t.shape, y.shape)]
        assert list(y.shape) == want, f"output {oname}: {list(y.shape)} vs inferred {t} = {want}"
        if y.is_floating_point():
            assert torch.isfinite(y).all(), f"output {oname} is not finite"
    sum(y.float().mean() for y in floats).backward()
    cut = NO_GRADIENT.get(Path(path).stem, ())
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None and not n.startswith(cut)]
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith(cut)), "NO_GRADIENT is stale"
    assert not missing, f"parameters without a gradient: {missing}"
