"""The detectors against torchvision: specs/faster_rcnn.yaml and specs/mask_rcnn.yaml load the state_dict of
fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn (weights=None, weights_backbone=None) strictly and, in eval mode on a
fixed input, return the same boxes, scores, labels (and masks) with the box score threshold at 0. Small images and
fewer proposals (set identically on both sides) keep each case to seconds on a CPU."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec
from codegen_helpers import import_file
from netspec.codegen.build import compile_source, top_class_name

torchvision = pytest.importorskip("torchvision")
detection = torchvision.models.detection

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = {"faster_rcnn": detection.fasterrcnn_resnet50_fpn, "mask_rcnn": detection.maskrcnn_resnet50_fpn}

# the same small configuration on both sides: the score threshold at 0, so nothing is filtered by score
SPEC_ARGS = {"min_size": 96, "max_size": 128, "box_score_thresh": 0.0,
             "rpn_pre_nms_top_n": [2000, 300], "rpn_post_nms_top_n": [2000, 60]}
TV_ARGS = {"min_size": 96, "max_size": 128, "box_score_thresh": 0.0,
           "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_test": 60}


def _reference(stem: str):
    torch.manual_seed(0)
    return REFERENCE[stem](weights=None, weights_backbone=None, **TV_ARGS).eval()


def _images():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 72, 90, generator=gen)        # two images of one size, as the spec's batch


def _flat(detections: list[dict]) -> dict:
    """torchvision's list of per-image dicts as the spec's outputs: everything concatenated, plus the image index."""
    out = {k: torch.cat([d[k] for d in detections]) for k in detections[0]}
    out["image"] = torch.cat([torch.full((len(d["boxes"]),), i, dtype=torch.int64)
                              for i, d in enumerate(detections)])
    return out


def _assert_same(got: dict, want: dict):
    assert set(got) == set(want)
    assert len(want["boxes"]) > 0, "no detections: the comparison would prove nothing"
    assert torch.equal(got["labels"], want["labels"]) and torch.equal(got["image"], want["image"])
    for k in want:
        assert got[k].shape == want[k].shape, k
        assert got[k].dtype == want[k].dtype, k
        if want[k].is_floating_point():
            assert (got[k] - want[k]).abs().max().item() <= 1e-4, k


@pytest.fixture(scope="module", params=sorted(REFERENCE))
def pair(request):
    """(stem, torchvision model, spec-built model with the torchvision weights, torchvision's detections)."""
    stem = request.param
    ref = _reference(stem)
    model = netspec.build(ROOT / "specs" / f"{stem}.yaml", **SPEC_ARGS)
    model.load_state_dict(ref.state_dict(), strict=True)
    model.eval()
    with torch.no_grad():
        want = _flat(ref(list(_images())))
    return stem, ref, model, want


def test_state_dict_keys_are_torchvisions(pair):
    stem, ref, model, _ = pair
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}


def test_same_detections_as_torchvision(pair):
    stem, ref, model, want = pair
    with torch.no_grad():
        got = model(_images())
    _assert_same(got, want)
    if stem == "mask_rcnn":
        assert got["masks"].shape[1:] == (1, 72, 90) and 0 <= got["masks"].min() <= got["masks"].max() <= 1


def test_generated_model_py_gives_the_same_detections(pair, tmp_path):
    stem, ref, _, want = pair
    src = compile_source(ROOT / "specs" / f"{stem}.yaml")
    imports = [ln for ln in src.splitlines() if ln.startswith(("import ", "from "))]
    assert imports and all(ln.split()[1].split(".")[0] in ("math", "torch", "torchvision") for ln in imports)
    f = tmp_path / "model.py"
    f.write_text(src)
    cls = getattr(import_file(f, f"netspec_test_{stem}"), top_class_name(src))
    model = cls(**SPEC_ARGS)
    model.load_state_dict(ref.state_dict(), strict=True)
    with torch.no_grad():
        got = model.eval()(_images())
    _assert_same(got, want)


def test_boxes_come_back_to_the_input_size():
    """The boxes are on the input images (the transform's resize undone): inside them, and the spec's rescale is
    torchvision's resize_boxes."""
    from netspec.ops.detection import RescaleBoxesOp
    ns: dict = {"torch": torch}
    exec(RescaleBoxesOp.helpers()["rescale_boxes"], ns)
    boxes = torch.tensor([[0.0, 0.0, 128.0, 96.0], [10.0, 20.0, 30.0, 40.0], [1.0, 2.0, 3.0, 4.0]])
    image = torch.tensor([0, 1, 0])
    sizes = torch.tensor([[96, 128], [64, 128]])
    got = ns["rescale_boxes"](boxes, image, sizes, torch.zeros(2, 3, 72, 96))
    for k in range(3):
        want = detection.transform.resize_boxes(boxes[k:k + 1], tuple(sizes[image[k]].tolist()), (72, 96))
        assert torch.equal(got[k:k + 1], want)


def test_check_prints_the_data_dependent_sizes():
    res = netspec.check(ROOT / "specs" / "mask_rcnn.yaml")
    assert res.ok
    g = res.graphs["mask_rcnn"]
    assert {k: str(t) for k, t in g.output_types().items()} == {
        "boxes": "[K, 4]", "scores": "[K]", "labels": "[K] int64", "image": "[K] int64", "masks": "[K, 1, H, W]"}
    assert not g.requirements          # Hb, Wb (multiples of 32), R and K are the ops' own: nothing to bind
    assert {"Hb", "Wb", "R", "K"} <= g.sym.data
    assert str(g.nodes["backbone.fpn"].out[0]) == "[N, 256, Hb/4, Wb/4]"


def test_frozen_batchnorm2d_is_torchvisions():
    """frozen_batchnorm2d (pretrained detector backbones) is torchvision.ops.FrozenBatchNorm2d: four buffers, no
    parameters, the same output."""
    model = netspec.build("netspec: 1\ninputs: {x: [N, 8, H, W]}\nlayers:\n  - {name: bn, op: frozen_batchnorm2d}\n")
    ref = torchvision.ops.FrozenBatchNorm2d(8)
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.rand(v.shape, generator=gen) + 0.5 for k, v in ref.state_dict().items()}
    ref.load_state_dict(state)
    model.load_state_dict({f"bn.{k}": v for k, v in state.items()}, strict=True)
    assert not list(model.parameters())
    x = torch.randn(2, 8, 5, 5, generator=gen)
    assert torch.equal(model(x), ref(x))


def test_export_refuses_data_dependent_sizes_clearly(tmp_path):
    from netspec.export import ExportError, export_onnx
    with pytest.raises(ExportError) as e:
        export_onnx(ROOT / "specs" / "faster_rcnn.yaml", tmp_path / "f.onnx")
    assert "only the data decides (Hb, K, P, R, Wb)" in e.value.message and e.value.hints
    assert not (tmp_path / "f.onnx").exists()


def test_two_data_dependent_sizes_never_pass_for_equal():
    """Boxes of one proposal op with the image index of another: R == R2 is no requirement a user can meet (the data
    decides both), so check refuses it, located at the layer, instead of printing it."""
    text = """\
netspec: 1
inputs: {images: [N, 3, H, W]}
layers:
  - {name: transform, op: rcnn_transform, min_size: 64, max_size: 96}
  - {name: c2, op: conv2d, from: transform.images, out: 8, kernel: 3, stride: 4, padding: 1}
  - {name: anchors, op: anchors, from: [transform.images, c2], sizes: [[16]], aspect_ratios: [[1.0, 2.0]]}
  - {name: head, op: rpn_head, from: [c2], anchors: 2}
  - {name: decode, op: box_decode, from: [head.deltas, anchors]}
  - {name: p, op: rpn_proposals, from: [decode, head.objectness, transform.sizes, c2]}
  - {name: q, op: rpn_proposals, from: [decode, head.objectness, transform.sizes, c2]}
  - {name: pool, op: multiscale_roi_align, from: [p.boxes, q.image, transform.sizes, c2]}
"""
    res = netspec.check(netspec.load(text, name="two.yaml"))
    assert not res.ok
    (e,) = res.errors
    assert e.loc.line == 11 and "R2 == R" in e.message and "only the data decides" in e.message and e.hints
    res = netspec.check(netspec.load(text.replace("q.image", "p.image"), name="one.yaml"))
    assert res.ok and str(res.graphs["one"].output_types()["out"]) == "[R, 8, 7, 7]"
