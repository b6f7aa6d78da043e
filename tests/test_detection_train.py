"""Training the detectors against torchvision: with the same weights, images, targets and seed, the spec-built
faster_rcnn / mask_rcnn in training mode under ``detection_targets`` give the losses torchvision's
fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn return, and the same gradients. Small images keep it to seconds."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec
from netspec.ops.detection import detection_targets

torchvision = pytest.importorskip("torchvision")
detection = torchvision.models.detection

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = {"faster_rcnn": detection.fasterrcnn_resnet50_fpn, "mask_rcnn": detection.maskrcnn_resnet50_fpn}
CLASSES = 4
SPEC_ARGS = {"num_classes": CLASSES, "min_size": 96, "max_size": 128, "rpn_pre_nms_top_n": [300, 300],
             "rpn_post_nms_top_n": [100, 60]}
TV_ARGS = {"num_classes": CLASSES, "min_size": 96, "max_size": 128, "rpn_pre_nms_top_n_train": 300,
           "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_train": 100, "rpn_post_nms_top_n_test": 60}
# parameters whose gradients are compared: the first conv, the RPN head, the box predictor (and the mask predictor)
GRADS = ["backbone.body.conv1.weight", "rpn.head.conv.0.0.weight", "rpn.head.cls_logits.weight",
         "roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.bbox_pred.weight"]


def _batch():
    """Two 3x96x128 images and their targets: 2 and 3 boxes, labels in 1..3, instance masks."""
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 96, 128, generator=gen)
    boxes = [torch.tensor([[10., 12., 60., 70.], [50., 30., 120., 90.]]),
             torch.tensor([[5., 5., 40., 50.], [60., 10., 100., 40.], [30., 40., 90., 95.]])]
    targets = []
    for b, labels in zip(boxes, ([1, 2], [3, 1, 2])):
        masks = torch.zeros(len(b), 96, 128, dtype=torch.uint8)
        for k, (x1, y1, x2, y2) in enumerate(b.int().tolist()):
            masks[k, y1:y2, x1:x2] = 1
        targets.append({"boxes": b, "labels": torch.tensor(labels), "masks": masks})
    return images, targets


@pytest.fixture(scope="module", params=sorted(REFERENCE))
def pair(request):
    stem = request.param
    torch.manual_seed(0)
    ref = REFERENCE[stem](weights=None, weights_backbone=None, **TV_ARGS)
    model = netspec.build(ROOT / "specs" / f"{stem}.yaml", **SPEC_ARGS)
    model.load_state_dict(ref.state_dict(), strict=True)
    return stem, ref, model


def _losses_and_grads(model, run, names):
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(7)                         # the same draws (transform size, anchor and RoI sampling) both sides
    losses = run()
    sum(losses.values()).backward()
    params = dict(model.named_parameters())
    return {k: v.detach() for k, v in losses.items()}, {k: params[k].grad.clone() for k in names}


@pytest.mark.parametrize("empty", [False, True], ids=["objects", "an_image_without_objects"])
def test_same_losses_and_gradients_as_torchvision(pair, empty):
    stem, ref, model = pair
    images, targets = _batch()
    if empty:       # torchvision matches such an image's proposals to a dummy box and labels them all background
        targets[1] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                      "masks": torch.zeros(0, 96, 128, dtype=torch.uint8)}
    names = GRADS + (["roi_heads.mask_predictor.mask_fcn_logits.weight"] if stem == "mask_rcnn" else [])
    want, want_grads = _losses_and_grads(ref, lambda: ref(list(images), [dict(t) for t in targets]), names)

    def spec_forward():
        with detection_targets(model, targets) as ctx:
            model(images)
        return ctx.losses

    got, got_grads = _losses_and_grads(model, spec_forward, names)
    keys = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    assert set(want) == keys | ({"loss_mask"} if stem == "mask_rcnn" else set())
    assert set(got) == set(want)
    for k in want:
        assert want[k].item() > 0, k
        assert torch.allclose(got[k], want[k], rtol=1e-5, atol=1e-7), (k, got[k].item(), want[k].item())
    for k in names:
        assert want_grads[k].abs().max() > 0, k
        assert torch.allclose(got_grads[k], want_grads[k], rtol=1e-4, atol=1e-6), \
            (k, (got_grads[k] - want_grads[k]).abs().max().item())


def test_context_is_detached_and_eval_unchanged(pair):
    _, _, model = pair
    images, targets = _batch()
    model.eval()
    with torch.no_grad():
        plain = model(images)
        with detection_targets(model, targets) as ctx:
            with_ctx = model(images)
    assert ctx.losses == {}                       # eval mode: no losses, no sampling
    assert set(plain) == set(with_ctx) and len(plain["boxes"]) > 0
    for k in plain:
        assert torch.equal(plain[k], with_ctx[k]), k
    assert all("detection_context" not in m.__dict__ for m in model.modules())
    model.train()
    broken = [{"labels": t["labels"]} for t in targets]
    with pytest.raises(KeyError), detection_targets(model, broken):   # the context is detached all the same
        model(images)
    assert all("detection_context" not in m.__dict__ for m in model.modules())
    model.eval()


def test_standalone_model_py_trains_the_same(pair, tmp_path):
    """compile's model.py (torch and torchvision only) gives the same losses under detection_targets."""
    from codegen_helpers import import_file

    from netspec.codegen.build import compile_source, top_class_name
    stem, _, model = pair
    src = compile_source(ROOT / "specs" / f"{stem}.yaml")
    (tmp_path / "model.py").write_text(src)
    standalone = getattr(import_file(tmp_path / "model.py", f"netspec_train_{stem}"), top_class_name(src))(**SPEC_ARGS)
    standalone.load_state_dict(model.state_dict(), strict=True)
    images, targets = _batch()
    losses = []
    for m in (model, standalone):
        m.train()
        torch.manual_seed(7)
        with torch.no_grad(), detection_targets(m, targets) as ctx:
            m(images)
        losses.append(ctx.losses)
    model.eval()
    assert set(losses[0]) == set(losses[1]) and len(losses[0]) >= 4
    for k in losses[0]:
        assert torch.equal(losses[0][k], losses[1][k]), k
