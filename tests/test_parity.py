"""Reference parity: the spec-built modules are the torchvision and timm networks (or hand-written references), weight
for weight and output for output; and every bundled spec checks, builds on meta and for real, runs forward and
backward, gives every parameter a gradient, and has a verification.
"""
from __future__ import annotations

import functools

import pytest
import torch

from netspec import build, check, expand, load
from netspec.errors import NetspecError

from codegen_helpers import (SPECS, bundled, case_id, expected_keys, make_inputs, outputs, small_bindings,
                             small_params)
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


# spec -> (timm model name, input size[, network parameters]): timm is a test dependency (requirements-test.lock)
TIMM = {
    "xception": ("legacy_xception", 64),
    # NASNet's TF 'SAME' padding depends on the parity of each stage's size, so the size is a parameter. The two
    # smallest sizes whose patterns complement each other give every strided layer an odd and an even input: 11 -> 5,
    # 3, 2, 1 into the four strided stages (odd, odd, even, odd: the pattern of the native 331 -> 165, 83, 42, 21)
    # and 25 -> 12, 6, 3, 2 (even, even, odd, even)
    "nasnet_a_large-11": ("nasnetalarge", 11, {"size": 11}),
    "nasnet_a_large-25": ("nasnetalarge", 25, {"size": 25}),
}


def _randomise_batchnorm_statistics(model):
    """Running means and variances away from 0 and 1, so that eval-mode batch norm is not nearly the identity and a
    mix-up of two norms (or a missed one) changes the output."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


@functools.cache
def _timm_reference(model_name: str):
    """One timm model per name for the whole file (NASNet-A Large allocates 88.8M parameters), in eval mode, with
    random batch-norm statistics; tests only read it."""
    timm = pytest.importorskip("timm")
    ref = timm.create_model(model_name, pretrained=False).eval()
    _randomise_batchnorm_statistics(ref)
    return ref


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_parity(name):
    model_name, size, *params = TIMM[name]
    ref = _timm_reference(model_name)
    model = build(SPECS / f"{name.split('-')[0]}.yaml", device="meta", **(params[0] if params else {}))
    model.load_state_dict(ref.state_dict(), strict=True, assign=True)
    model.eval()
    assert list(model.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        a, b = model(x), ref(x)
    assert a.shape == b.shape == (2, 1000)
    assert b.std() > 1e-3                     # the comparison below is not between two near-zero outputs
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


# parameters that a training step leaves without a gradient by design: (spec, network) -> {parameter: why}. Every
# other parameter of every bundled network feeds an output (the auxiliary classifiers of GoogLeNet and Inception v3
# are outputs, computed in training and evaluation alike); an entry here must say why, and the test fails when a
# listed parameter does get a gradient, so the list cannot go stale.
_RPN_HEAD = {f"rpn.head.{k}": "a detector's RPN head learns from its own losses against targets; its proposals are "
                              "detached from the detections, as in torchvision"
             for k in ("conv.0.0.weight", "conv.0.0.bias", "cls_logits.weight", "cls_logits.bias",
                       "bbox_pred.weight", "bbox_pred.bias")}
NO_GRADIENT: dict[tuple[str, str], dict[str, str]] = {("faster_rcnn", "faster_rcnn"): _RPN_HEAD,
                                                      ("mask_rcnn", "mask_rcnn"): _RPN_HEAD}

# the specs verified by a test outside this file: spec -> what verifies it (the "verified by" column)
VERIFIED_ELSEWHERE = {
    "autoencoder": "its layers' parameter count (test_zoo.py AE_PARAMS)",
    "lenet5": "the paper's parameter count, 61,706 (test_zoo.py)",
    "unet": "the paper's parameter count, 31,030,658 (test_zoo.py)",
    "transformer": "torch.nn.Transformer's state_dict and outputs (test_zoo.py, test_torch_parity.py)",
    "transformer_explicit": "torch.nn.Transformer's state_dict and outputs (test_transformer.py)",
    "gpt": "a hand-written GPT's state_dict and outputs; 124,439,808 parameters (test_gpt.py)",
    "seq2seq_attention": "a hand-written Luong attention model's state_dict and outputs (test_seq2seq.py)",
    "faster_rcnn": "torchvision's fasterrcnn_resnet50_fpn: state_dict and detections (test_detection.py)",
    "mask_rcnn": "torchvision's maskrcnn_resnet50_fpn: state_dict, detections and masks (test_detection.py)",
}

CASES = bundled()


def test_every_spec_has_a_verification():
    """Each bundled network is compared with a reference here (torchvision, timm, or a hand-written module), or is
    named in VERIFIED_ELSEWHERE with the test that verifies it."""
    here = set(REFERENCES) | {n.split("-")[0] for n in TIMM} | {stem for stem, _ in HANDWRITTEN}
    stems = {p.stem for p in SPECS.glob("*.yaml")} | {p.stem for p in SPECS.glob("*.json")}
    assert not here & set(VERIFIED_ELSEWHERE), "a spec verified here needs no VERIFIED_ELSEWHERE entry"
    assert stems == here | set(VERIFIED_ELSEWHERE), "add the new spec's verification (or drop a stale entry)"
    networks = {(stem, net) for stem, net in HANDWRITTEN}
    for path, net in CASES:      # a file with several networks is verified network by network
        stem = SPECS.joinpath(path).stem
        if stem in {s for s, _ in HANDWRITTEN}:
            assert (stem, net) in networks, f"{stem}.{net} has no hand-written reference"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_spec_checks_builds_and_trains(case):
    """The zoo's promise, spec by spec: it checks without errors or warnings; builds on the meta device with exactly
    the state_dict its check promised, and for real with the same keys; a forward pass on a small input (batch 2, the
    smallest sizes its requirements allow) gives every output the shape check inferred, finite; and a backward pass
    gives every parameter a finite gradient (but those NO_GRADIENT lists, with the reason)."""
    path, network = case
    try:
        spec = load(path)
    except NetspecError as e:
        pytest.fail(f"{path} does not load:\n{e.format()}")
    params = small_params(path)
    res = check(spec, params=params)
    assert res.ok, "\n".join(e.format() for e in res.errors)
    assert not res.warnings, "\n".join(w.format() for w in res.warnings)
    b = small_bindings(spec, network, params)
    g = expand(spec, network, params=params)

    meta = build(g, device="meta")
    assert all(t.is_meta for t in meta.state_dict().values())
    assert {k: tuple(v.shape) for k, v in meta.state_dict().items()} == expected_keys(g)

    model = build(g).train()
    assert list(model.state_dict()) == list(meta.state_dict())
    assert not any(t.is_meta for t in model.state_dict().values())
    ys = outputs(model(**make_inputs(g, b)))
    floats = [y for y in ys if y.is_floating_point()]
    assert floats, "no floating-point output to take a gradient of"
    data: dict = {}        # a data-dependent size (a detector's K) is any value, the same wherever it appears
    for y, (oname, t) in zip(ys, g.output_types().items()):
        want = [d if isinstance(d, int) else data.setdefault(str(d), n) if d.free_symbols() <= g.sym.data
                else d.evaluate(b) for d, n in zip(t.shape, y.shape)]
        assert list(y.shape) == want, f"output {oname}: {list(y.shape)} vs inferred {t} = {want}"
        if y.is_floating_point():
            assert torch.isfinite(y).all(), f"output {oname} is not finite"
    sum(y.float().mean() for y in floats).backward()
    missing = {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
    excused = NO_GRADIENT.get((SPECS.joinpath(path).stem, network), {})
    assert missing == set(excused), f"parameters without a gradient: {sorted(missing - set(excused))}; " \
                                    f"listed in NO_GRADIENT but given one: {sorted(set(excused) - missing)}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"parameters with a non-finite gradient: {bad}"
