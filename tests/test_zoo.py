"""Every bundled spec in specs/: it checks cleanly, has the expected input/output shapes and requirements, and the
parameter count of the paper or of the reference implementation (torch.nn / torchvision modules built here on the
meta device, so no weights are allocated). Timing is measured by tools/, never asserted here."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

import netspec
import references

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs").glob("*.json"))


class Net(NamedTuple):
    inputs: dict[str, str]              # name -> type as printed by `netspec check`
    outputs: dict[str, str]
    requires: tuple[str, ...] = ()


DIV32 = ("H % 32 == 0", "W % 32 == 0")    # the input declares multiple_of: {H: 32, W: 32}

# file stem -> network name -> expected interface
EXPECTED: dict[str, dict[str, Net]] = {
    "alexnet": {"alexnet": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"})},
    "autoencoder": {"autoencoder": Net({"x": "[N, 3, H, W]"},
                                       {"recon": "[N, 3, H, W]", "code": "[N, 128, H/8, W/8]"})},
    "dcgan": {"generator": Net({"z": "[N, 100, 1, 1]"}, {"out": "[N, 3, 64, 64]"}),
              "discriminator": Net({"image": "[N, 3, 64, 64]"}, {"out": "[N]"})},
    "densenet121": {"densenet121": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    "dqn": {"dqn": Net({"frames": "[N, 4, 84, 84]"}, {"out": "[N, 18]"})},
    "efficientnet_b0": {"efficientnet_b0": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    # detectors: K (the number of detections) is a data-dependent size, known only when the model runs
    "faster_rcnn": {"faster_rcnn": Net({"images": "[N, 3, H, W]"}, {"boxes": "[K, 4]", "scores": "[K]",
                                                                   "labels": "[K] int64", "image": "[K] int64"})},
    "mask_rcnn": {"mask_rcnn": Net({"images": "[N, 3, H, W]"}, {"boxes": "[K, 4]", "scores": "[K]",
                                                               "labels": "[K] int64", "image": "[K] int64",
                                                               "masks": "[K, 1, H, W]"})},
    "googlenet": {"googlenet": Net({"x": "[N, 3, H, W]"}, {"logits": "[N, 1000]", "aux_logits2": "[N, 1000]",
                                                          "aux_logits1": "[N, 1000]"}, DIV32)},
    "gpt": {"gpt": Net({"idx": "[N, T] int64"}, {"logits": "[N, T, 50257]"}, ("T <= 1024",))},  # wpe's rows
    "gru": {"gru": Net({"tokens": "[N, T] int64"}, {"tags": "[N, T, 17]"})},
    "inception_v3": {"inception_v3": Net({"x": "[N, 3, 299, 299]"},
                                         {"logits": "[N, 1000]", "aux_logits": "[N, 1000]"})},
    "lenet5": {"lenet5": Net({"x": "[N, 1, 32, 32]"}, {"out": "[N, 10]"})},
    "lstm": {"lstm": Net({"tokens": "[N, T] int64"}, {"out": "[N, 2]"})},
    "mlp": {"mlp": Net({"x": "[N, 64]"}, {"out": "[N, 10]"})},
    "mobilenet_v2": {"mobilenet_v2": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    "mobilenet_v3_large": {"mobilenet_v3_large": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    "nasnet_a_large": {"nasnet_a_large": Net({"x": "[N, 3, 331, 331]"}, {"out": "[N, 1000]"})},
    "resnet18": {"resnet18": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    "resnet34": {"resnet34": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    "resnet50": {"resnet50": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    "resnet101": {"resnet101": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    "resnet152": {"resnet152": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    "rnn": {"rnn": Net({"x": "[N, T, 28]"}, {"out": "[N, 10]"})},
    "seq2seq_attention": {"seq2seq_attention": Net({"src": "[N, S] int64", "tgt": "[N, T] int64"},
                                                   {"logits": "[N, T, 50000]"})},
    "squeezenet1_0": {"squeezenet1_0": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"})},
    "squeezenet1_1": {"squeezenet1_1": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"})},
    "transformer": {"transformer": Net({"src": "[N, S] int64", "tgt": "[N, T] int64"}, {"out": "[N, T, 10000]"},
                                       ("S <= 5000", "T <= 5000"))},     # the positional table's max_len
    "transformer_explicit": {"transformer_explicit": Net({"src": "[N, S] int64", "tgt": "[N, T] int64"},
                                                         {"out": "[N, T, 10000]"}, ("S <= 5000", "T <= 5000"))},
    "unet": {"unet": Net({"x": "[N, 1, H, W]"}, {"out": "[N, 2, H, W]"}, ("H % 16 == 0", "W % 16 == 0"))},
    "vae": {"vae": Net({"x": "[N, 1, 28, 28]"}, {"recon": "[N, 784]", "mu": "[N, 20]", "logvar": "[N, 20]"})},
    "vgg16": {"vgg16": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    "vgg16_bn": {"vgg16_bn": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"}, DIV32)},
    "xception": {"xception": Net({"x": "[N, 3, H, W]"}, {"out": "[N, 1000]"})},
}

# specs that reproduce a torchvision model: file stem -> torchvision.models constructor (state_dicts must match)
TORCHVISION = {stem: stem for stem in (
    "alexnet", "densenet121", "efficientnet_b0", "googlenet", "inception_v3", "mobilenet_v2", "mobilenet_v3_large",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "squeezenet1_0", "squeezenet1_1", "vgg16", "vgg16_bn")}


# -- parameter counts: the paper's arithmetic, or a reference module ---------------------------------------------

def _conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def _double_conv(cin, cout):
    return _conv(cin, cout, 3) + _conv(cout, cout, 3)


# U-Net with padded convs, the paper's widths: 4 levels down, 4 up (up-conv 2x2 halving channels + two 3x3 convs)
UNET_PARAMS = (_double_conv(1, 64) + _double_conv(64, 128) + _double_conv(128, 256) + _double_conv(256, 512)
               + _double_conv(512, 1024)
               + sum(_conv(c, c // 2, 2) + _double_conv(c, c // 2) for c in (1024, 512, 256, 128))
               + _conv(64, 2, 1))

# Luong et al. 2015: 50K vocabularies, 1000-d embeddings, 4-layer LSTMs of 1000 cells (encoder and decoder), W_a and
# W_c without bias, the output layer with one
def _luong_params(v=50_000, e=1000, h=1000, layers=4) -> int:
    lstm = sum(4 * h * (i + h) + 8 * h for i in [e] + [h] * (layers - 1))
    return 2 * v * e + 2 * lstm + h * h + 2 * h * h + (h * v + v)


# LeNet-5: C1 6@5x5, C3 16@5x5 (full table), C5 120@5x5, F6 84, output 10
LENET5_PARAMS = _conv(1, 6, 5) + _conv(6, 16, 5) + _conv(16, 120, 5) + (120 * 84 + 84) + (84 * 10 + 10)

# MLP 64 -> 128 -> 64 -> 10
MLP_PARAMS = (64 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)

# autoencoder: 3 x (conv 4x4 /2 no bias + BN), 2 x (conv-transpose 4x4 x2 no bias + BN), conv-transpose to 3 (bias)
AE_PARAMS = (sum(_conv(a, b, 4, bias=False) + 2 * b for a, b in ((3, 32), (32, 64), (64, 128)))
             + sum(_conv(a, b, 4, bias=False) + 2 * b for a, b in ((128, 64), (64, 32)))
             + _conv(32, 3, 4))


def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _meta(make):
    import torch
    with torch.device("meta"):
        return make()


def _transformer_params() -> int:
    from torch import nn
    core = _meta(lambda: nn.Transformer(d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                                        dim_feedforward=2048, dropout=0.1, batch_first=True))
    embeddings = 2 * 10000 * 512
    generator = 512 * 10000 + 10000
    return _numel(core) + embeddings + generator


def _lstm_params() -> int:
    from torch import nn
    return 10000 * 128 + _numel(_meta(lambda: nn.LSTM(128, 256, num_layers=2))) + (256 * 2 + 2)


def _gru_params() -> int:
    from torch import nn
    return 10000 * 100 + _numel(_meta(lambda: nn.GRU(100, 128, num_layers=2, bidirectional=True))) + (256 * 17 + 17)


# specs that reproduce a timm model (timm is a test dependency): file stem -> timm model name
TIMM = {"xception": "legacy_xception", "nasnet_a_large": "nasnetalarge"}

# specs that reproduce a torchvision detector: file stem -> torchvision.models.detection constructor
DETECTION = {"faster_rcnn": "fasterrcnn_resnet50_fpn", "mask_rcnn": "maskrcnn_resnet50_fpn"}

# constructor arguments where the defaults differ from the spec (auxiliary classifiers on, no weight init on meta)
TORCHVISION_ARGS = {"googlenet": {"init_weights": False}, "inception_v3": {"aux_logits": True, "init_weights": False}}


def _torchvision(stem: str):
    torchvision = pytest.importorskip("torchvision")
    make = getattr(torchvision.models, TORCHVISION[stem])
    return _meta(lambda: make(weights=None, **TORCHVISION_ARGS.get(stem, {})))


def _torchvision_detector(stem: str):
    torchvision = pytest.importorskip("torchvision")
    make = getattr(torchvision.models.detection, DETECTION[stem])
    return _meta(lambda: make(weights=None, weights_backbone=None))


def _reference(make) -> int:
    return _numel(_meta(make))


# file stem -> network -> count (an int, or a function computing it from a reference module)
PARAMS = {
    "autoencoder": {"autoencoder": AE_PARAMS},
    "dcgan": {"generator": lambda: _reference(references.Generator),
              "discriminator": lambda: _reference(references.Discriminator)},
    "dqn": {"dqn": 1_693_362},                      # the paper's layers (dqn.yaml's header); references.dqn agrees
    "rnn": {"rnn": lambda: _reference(references.RNN)},
    "seq2seq_attention": {"seq2seq_attention": _luong_params()},   # 217,114,000
    "vae": {"vae": lambda: _reference(references.VAE)},
    "gru": {"gru": _gru_params},
    "gpt": {"gpt": 124_439_808},                    # GPT-2 small, token embedding and output layer tied
    "lenet5": {"lenet5": LENET5_PARAMS},
    "lstm": {"lstm": _lstm_params},
    "mlp": {"mlp": MLP_PARAMS},
    "transformer": {"transformer": _transformer_params},
    "transformer_explicit": {"transformer_explicit": _transformer_params},
    "unet": {"unet": UNET_PARAMS},
    # the torchvision models: the published counts, which the reference modules are checked against below
    "mobilenet_v2": {"mobilenet_v2": 3_504_872},
    "mobilenet_v3_large": {"mobilenet_v3_large": 5_483_032},
    "efficientnet_b0": {"efficientnet_b0": 5_288_548},
    "resnet18": {"resnet18": 11_689_512},
    "resnet34": {"resnet34": 21_797_672},
    "resnet50": {"resnet50": 25_557_032},
    "resnet101": {"resnet101": 44_549_160},
    "resnet152": {"resnet152": 60_192_808},
    "vgg16": {"vgg16": 138_357_544},
    "vgg16_bn": {"vgg16_bn": 138_365_992},
    "alexnet": {"alexnet": 61_100_840},
    "densenet121": {"densenet121": 7_978_856},
    "squeezenet1_0": {"squeezenet1_0": 1_248_424},
    "googlenet": {"googlenet": 13_004_888},         # with the auxiliary classifiers (6,624,904 without)
    "inception_v3": {"inception_v3": 27_161_264},   # with the auxiliary classifier (23,834,568 without)
    "squeezenet1_1": {"squeezenet1_1": 1_235_496},
    "xception": {"xception": 22_855_952},           # timm's legacy_xception
    "nasnet_a_large": {"nasnet_a_large": 88_753_150},   # timm's nasnetalarge
    # torchvision's detectors without pretrained weights (batch norm learns: 41,755,286 with frozen batch norm)
    "faster_rcnn": {"faster_rcnn": 41_808_406},
    "mask_rcnn": {"mask_rcnn": 44_454_513},
}


# -- helpers ---------------------------------------------------------------------------------------------------

def _state(g) -> dict[str, tuple]:
    """The state_dict the spec's module will have, from the check's annotations: {key: (shape, kind)}."""
    out = {}
    for n in g.nodes.values():
        if n.meta.get("shared_with"):
            continue
        for wname, (shape, kind) in n.meta.get("weights", {}).items():
            out[f"{n.id}.{wname}"] = (tuple(shape), kind)
    return out


def _param_count(g) -> int:
    total = 0
    for shape, kind in _state(g).values():
        if kind == "param":
            k = 1
            for d in shape:
                k *= d
            total += k
    return total


def _reference_state(module, prefix: str = "") -> dict[str, tuple]:
    return {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}


_checked: dict[Path, netspec.CheckResult] = {}


def checked(path: Path) -> netspec.CheckResult:
    if path not in _checked:
        _checked[path] = netspec.check(path)
    return _checked[path]


def _ids(paths):
    return [p.stem for p in paths]


# -- tests -----------------------------------------------------------------------------------------------------

def test_every_spec_has_expectations():
    stems = {p.stem for p in SPECS}
    assert stems == set(EXPECTED), "add the new spec's shapes to EXPECTED (or drop a stale entry)"
    assert stems == set(PARAMS), "add the new spec's parameter count to PARAMS (or drop a stale entry)"


@pytest.mark.parametrize("path", SPECS, ids=_ids(SPECS))
def test_spec_checks_without_errors_or_warnings(path):
    res = checked(path)
    assert res.ok, "\n".join(e.format() for e in res.errors)
    assert not res.warnings, "\n".join(w.format() for w in res.warnings)
    assert set(res.graphs) == set(EXPECTED[path.stem])


BLOCK_FILES = sorted((ROOT / "specs" / "blocks").glob("*.yaml"))
ALL_FILES = SPECS + BLOCK_FILES

# what each file's header names as the reference it matches (the "reproduces" column): a torchvision or timm
# model, a torch.nn module, or the reference implementation the spec follows layer for layer
REFERENCE_NAMED = {
    **{stem: f"torchvision.models.{stem}" for stem in TORCHVISION},
    "xception": "timm's `legacy_xception`",
    "nasnet_a_large": "timm's `nasnetalarge`",
    "rnn": "torch.nn.RNN",
    "lstm": "torch.nn.LSTM",
    "gru": "torch.nn.GRU",
    "transformer": "torch.nn.Transformer",
    "transformer_explicit": "torch.nn.Transformer",
    "gpt": "karpathy/nanoGPT",
    "seq2seq_attention": "tests/test_seq2seq.py",
    "dcgan": "pytorch/examples dcgan/main.py",
    "vae": "pytorch/examples vae/main.py",
    "autoencoder": "keras.io/examples/vision/autoencoder",
    "unet": "milesial/Pytorch-UNet",
    "lenet5": "d2l.ai",
    "mlp": "sklearn.neural_network.MLPClassifier",
    "dqn": "Reference: the paper's Methods",
    "blocks/densenet": "torchvision.models.densenet",
    "blocks/inception": "torchvision's BasicConv2d",
    "blocks/mobilenet": "torchvision.ops.misc",
    "blocks/nasnet": "timm's `nasnetalarge`",
    "blocks/resnet": "torchvision.models.resnet.Bottleneck",
    "blocks/squeezenet": "torchvision.models.squeezenet.Fire",
    "blocks/vgg": "torchvision.models.vgg",
    "faster_rcnn": "torchvision.models.detection.fasterrcnn_resnet50_fpn",
    "mask_rcnn": "torchvision.models.detection.maskrcnn_resnet50_fpn",
    "blocks/rcnn": "torchvision.models.detection",
}


def _key(path: Path) -> str:
    return path.relative_to(ROOT / "specs").with_suffix("").as_posix()


def test_every_file_names_its_reference():
    assert {_key(p) for p in ALL_FILES} == set(REFERENCE_NAMED), \
        "add the new file's reference to REFERENCE_NAMED (or drop a stale entry)"


@pytest.mark.parametrize("path", ALL_FILES, ids=[_key(p) for p in ALL_FILES])
def test_spec_header_says_what_it_reproduces(path):
    """Every file in specs/ (networks and block files) opens with a comment that cites the paper (a quoted title and
    a year) and names the reference implementation it matches."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ") and len(lines[0]) > 20, "start with a one-line comment saying what it is"
    header = " ".join(line[1:].strip() for line in lines[:next(i for i, t in enumerate(lines) if not t.startswith("#"))])
    assert re.search(r"\b(19|20)\d\d\b", header), "cite the paper (authors, title, year) it reproduces"
    assert re.search(r'"[A-Z][^"]{10,}"', header), "cite the paper by its title, in double quotes"
    assert REFERENCE_NAMED[_key(path)] in header, f"name the reference it matches: {REFERENCE_NAMED[_key(path)]}"


@pytest.mark.parametrize("path", SPECS, ids=_ids(SPECS))
def test_spec_shapes(path):
    res = checked(path)
    assert res.ok
    for name, want in EXPECTED[path.stem].items():
        g = res.graphs[name]
        assert {k: str(t) for k, t in g.input_types().items()} == want.inputs
        assert {k: str(t) for k, t in g.output_types().items()} == want.outputs
        assert tuple(r.text for r in g.requirements) == want.requires


@pytest.mark.parametrize("path", SPECS, ids=_ids(SPECS))
def test_spec_parameter_count(path):
    res = checked(path)
    assert res.ok
    for name, want in PARAMS[path.stem].items():
        expected = want() if callable(want) else want
        assert _param_count(res.graphs[name]) == expected, name


def test_unet_parameter_count_is_the_papers():
    # the arithmetic written out in specs/unet.yaml's header
    assert UNET_PARAMS == 31_030_658
    assert "total 31,030,658" in (ROOT / "specs" / "unet.yaml").read_text(encoding="utf-8")


def test_dqn_count_is_the_papers():
    assert _reference(references.dqn) == 1_693_362
    assert "= 1,693,362" in (ROOT / "specs" / "dqn.yaml").read_text(encoding="utf-8")


def test_lenet5_and_dcgan_counts_match_their_headers():
    assert LENET5_PARAMS == 61_706
    gan = (ROOT / "specs" / "dcgan.yaml").read_text(encoding="utf-8")
    g, d = _reference(references.Generator), _reference(references.Discriminator)
    assert f"generator {g:,}" in gan and f"discriminator {d:,}" in gan


@pytest.mark.parametrize("stem", sorted(TORCHVISION))
def test_state_dict_matches_torchvision(stem):
    ref = _torchvision(stem)
    assert _numel(ref) == PARAMS[stem][stem]
    res = checked(ROOT / "specs" / f"{stem}.yaml")
    assert res.ok, "\n".join(e.format() for e in res.errors)
    assert {k: s for k, (s, _) in _state(res.graphs[stem]).items()} == _reference_state(ref)


@pytest.mark.parametrize("stem", sorted(DETECTION))
def test_state_dict_matches_torchvision_detector(stem):
    ref = _torchvision_detector(stem)
    assert _numel(ref) == PARAMS[stem][stem]
    res = checked(ROOT / "specs" / f"{stem}.yaml")
    assert res.ok, "\n".join(e.format() for e in res.errors)
    assert {k: s for k, (s, _) in _state(res.graphs[stem]).items()} == _reference_state(ref)


@pytest.mark.parametrize("stem", sorted(TIMM))
def test_state_dict_matches_timm(stem):
    timm = pytest.importorskip("timm")
    ref = _meta(lambda: timm.create_model(TIMM[stem], pretrained=False))
    assert _numel(ref) == PARAMS[stem][stem]
    res = checked(ROOT / "specs" / f"{stem}.yaml")
    assert res.ok, "\n".join(e.format() for e in res.errors)
    assert {k: s for k, (s, _) in _state(res.graphs[stem]).items()} == _reference_state(ref)


def test_transformer_core_state_dict_matches_nn_transformer():
    from torch import nn
    core = _meta(lambda: nn.Transformer(d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                                        dim_feedforward=2048, dropout=0.1, batch_first=True))
    g = checked(ROOT / "specs" / "transformer.yaml").graphs["transformer"]
    state = {k: s for k, (s, _) in _state(g).items()}
    mine = {k: s for k, s in state.items() if k.startswith(("encoder.", "decoder."))}
    assert mine == _reference_state(core)
    assert {k: s for k, s in state.items() if k not in mine} == {
        "src_embed.tok.weight": (10000, 512), "tgt_embed.tok.weight": (10000, 512),
        "generator.weight": (10000, 512), "generator.bias": (10000,)}


def test_transformer_decoder_is_causal_over_encoder_memory():
    g = checked(ROOT / "specs" / "transformer.yaml").graphs["transformer"]
    for i in range(6):
        n = g.nodes[f"decoder.layers.{i}"]
        assert n.params.causal
        assert n.inputs[1] == ("encoder.norm", 0)


@pytest.mark.parametrize("stem,module,make", [
    ("lstm", "lstm", lambda nn: nn.LSTM(128, 256, num_layers=2, batch_first=True, dropout=0.2)),
    ("gru", "gru", lambda nn: nn.GRU(100, 128, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)),
])
def test_recurrent_names_mirror_torch(stem, module, make):
    from torch import nn
    ref = _meta(lambda: make(nn))
    g = checked(ROOT / "specs" / f"{stem}.yaml").graphs[stem]
    state = {k: s for k, (s, _) in _state(g).items() if k.startswith(module + ".")}
    assert state == _reference_state(ref, module + ".")


def test_mlp_hidden_sizes_are_params():
    g = netspec.expand(netspec.load(ROOT / "specs" / "mlp.yaml"), params={"hidden": [32, 32, 16]})
    assert [n.id for n in g.nodes.values() if n.op.name == "linear"] == [
        "hidden.0.fc", "hidden.1.fc", "hidden.2.fc", "out"]
    assert _param_count(g) == (64 * 32 + 32) + (32 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)


def test_check_all_specs_on_the_command_line():
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NETSPEC_DEBUG")}
    r = subprocess.run([sys.executable, "-m", "netspec", "check", *map(str, SPECS)], capture_output=True, text=True,
                       timeout=120, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    for p in SPECS:
        assert f"{p}: OK" in r.stdout
    assert "requires: H % 16 == 0, W % 16 == 0" in r.stdout
    assert f"{len(SPECS)} files checked: {len(SPECS)} ok, 0 with errors" in r.stdout


# -- NASNet-A Large: TF 'SAME' padding from the input size ------------------------------------------------------

def _tf_same(size: int, kernel: int, stride: int = 2) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding of one dim (the facts of timm.layers.padding.get_same_padding): (before, after)."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_nasnet_same_pad_is_tensorflows(kernel, tmp_path):
    """blocks/nasnet.yaml's same_pad gives each stride-2 window TensorFlow's 'SAME' padding, the odd pixel after, for
    odd and even sizes and for H != W."""
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "nasnet.yaml").write_text((ROOT / "specs" / "blocks" / "nasnet.yaml").read_text("utf-8"),
                                                     encoding="utf-8")
    f = tmp_path / "pads.yaml"
    f.write_text(f"""netspec: 1
imports: [blocks/nasnet.yaml]
params: {{h: 1, w: 1}}
inputs: {{x: [N, 4, h, w]}}
layers:
  - {{name: pad, op: same_pad, kernel: {kernel}}}
""", encoding="utf-8")
    spec = netspec.load(f)
    for h, w in [(1, 1), (2, 2), (3, 4), (6, 5), (11, 11), (42, 42), (165, 83)]:
        g = netspec.expand(spec, params={"h": h, "w": w})
        (node,) = [n for n in g.nodes.values() if n.op.name == "pad"]
        assert tuple(node.params.padding) == _tf_same(w, kernel) + _tf_same(h, kernel), (h, w)
        (out,) = [t.shape for t in g.output_types().values()]
        assert (out[2], out[3]) == (h + sum(_tf_same(h, kernel)), w + sum(_tf_same(w, kernel)))


def test_nasnet_input_size_is_a_parameter_from_3():
    """The header's promise: the input size is the parameter `size` (331 by default), any size >= 3 checks, and 2 is
    refused at conv0 with a hint."""
    path = ROOT / "specs" / "nasnet_a_large.yaml"
    assert "any size >= 3 builds" in path.read_text(encoding="utf-8")
    for size in (3, 4, 11, 25, 64):
        res = netspec.check(path, params={"size": size})
        assert res.ok, "\n".join(e.format() for e in res.errors)
        g = res.graphs["nasnet_a_large"]
        assert str(g.input_types()["x"]) == f"[N, 3, {size}, {size}]"
        assert str(g.output_types()["out"]) == "[N, 1000]"
        assert _param_count(g) == 88_753_150
    res = netspec.check(path, params={"size": 2})
    assert not res.ok
    msg = res.errors[0].format()
    assert "nasnet_a_large.yaml:" in msg and "conv0.conv" in msg and "larger than the padded input" in msg
    assert "hint:" in msg
