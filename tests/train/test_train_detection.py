"""method: detection: a small Faster R-CNN learns the generated shapes; the metric (VOC AP@0.5) against hand-computed
cases; the data checks; resume; Mask R-CNN through the method; evaluate and predict on a trained detector."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import netspec
from netspec.errors import NetspecError
from netspec.train.metrics import average_precision

ROOT = Path(__file__).resolve().parents[2]
DETECTOR = ROOT / "examples" / "shapes_detector.yaml"

# a short run of the example detector (resume, data checks): 48 images, 4 per batch
SHORT = """\
train:
  method: detection
  data: {%s, split: {val: 0.0, test: 0.2}}
  optimizer: {name: adamw, lr: 0.001}
  batch_size: 4
  threads: 1
  log_every: 1
  seed: 3
"""


SHAPES = "source: shapes, n: 60, size: 64, channels: 3, noise: 0.05"


def _config(tmp_path, data=SHAPES, extra=""):
    p = tmp_path / "train.yaml"
    p.write_text(SHORT % data + extra)
    return p


# -- the metric ------------------------------------------------------------------------------------------------

def _det(boxes, scores, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "scores": torch.tensor(scores),
            "labels": torch.tensor(labels)}


def _gt(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)}


G1, G2, FAR = [0., 0., 10., 10.], [20., 20., 30., 30.], [100., 100., 110., 110.]


def test_ap_hand_computed():
    # hit (P 1, R .5), miss (P .5, R .5), hit (P 2/3, R 1): envelope 1 up to R .5, 2/3 up to 1 -> .5 + .5 * 2/3
    res = average_precision([_det([G1, FAR, G2], [0.9, 0.8, 0.7], [1, 1, 1])], [_gt([G1, G2], [1, 1])])
    assert res["ap50_class1"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # the same detections in another score order: miss first, then two hits -> P 0, 1/2, 2/3: AP = .5 * 2/3 * 2
    res = average_precision([_det([G1, FAR, G2], [0.7, 0.9, 0.8], [1, 1, 1])], [_gt([G1, G2], [1, 1])])
    assert res["ap50_class1"] == pytest.approx(2 / 3)
    # a second detection of a matched target is a false positive; IoU 1/3 is too little; a target never found
    shifted, half = [1., 0., 11., 10.], [5., 0., 15., 10.]
    res = average_precision([_det([G1, shifted, half], [0.9, 0.8, 0.7], [1, 1, 1])], [_gt([G1, G2], [1, 1])])
    assert res["ap50_class1"] == pytest.approx(0.5)


def test_ap_classes_and_images():
    # class 2 has no targets (left out), class 3 has one never detected (AP 0); a class-1 detection in the other
    # image does not match a target of the first; the wrong class does not match either
    dets = [_det([G1, G2], [0.9, 0.6], [1, 2]), _det([G1, G2], [0.8, 0.5], [1, 1])]
    gts = [_gt([G1, G2], [1, 3]), _gt([G2], [1])]
    res = average_precision(dets, gts)
    # class 1: .9 hit (1/2), .8 miss (image 2 has no G1), .5 hit -> P 1, 1/2, 2/3 at R .5, .5, 1 -> .5 + .5 * 2/3
    assert res["ap50_class1"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert res["ap50_class3"] == 0.0 and "ap50_class2" not in res
    assert res["map50"] == pytest.approx((0.5 + 0.5 * 2 / 3) / 2)
    assert average_precision([_det([G1], [0.9], [1])], [_gt([G1], [1])])["map50"] == pytest.approx(1.0)


def test_mask_ap_uses_the_masks_not_the_boxes():
    """Two detections with the same box: the one whose mask covers the target's is the hit; masks are taken at 0.5."""
    gt = torch.zeros(1, 8, 8)
    gt[0, :4, :4] = 1                                              # the target's mask: the top-left quarter
    good, bad = torch.zeros(8, 8), torch.zeros(8, 8)
    good[:4, :4] = 0.9
    bad[4:, 4:] = 0.9                                              # same box, the wrong quarter
    box = [0., 0., 8., 8.]
    det = {**_det([box, box], [0.9, 0.8], [1, 1]), "masks": torch.stack([bad, good])[:, None]}
    res = average_precision([det], [{**_gt([box], [1]), "masks": gt}], masks=True)
    # the best-scored detection misses (its mask does not overlap), the second hits: P 0 then 1/2 at R 1
    assert res["mask_ap50_class1"] == pytest.approx(0.5) and res["mask_map50"] == pytest.approx(0.5)
    assert average_precision([det], [_gt([box], [1])])["map50"] == pytest.approx(1.0)   # the boxes: a hit at once
    det["masks"] = torch.stack([good * 0.5, good])[:, None]                                  # 0.45: not a pixel
    assert average_precision([det], [{**_gt([box], [1]), "masks": gt}], masks=True)["mask_map50"] == \
        pytest.approx(0.5)


# -- training ----------------------------------------------------------------------------------------------------

def _fixed_batch_loss(module) -> float:
    from netspec.ops.detection import detection_targets
    from netspec.train.data import make_shapes
    x, _, boxes = make_shapes(8, 64, noise=0.05, seed=11, channels=3)
    targets = [{"boxes": torch.tensor([b[1:] for b in bs]), "labels": torch.tensor([b[0] for b in bs])}
               for bs in boxes]
    module.train()
    torch.manual_seed(0)
    with torch.no_grad(), detection_targets(module, targets) as ctx:
        module(torch.from_numpy(x))
    module.eval()
    return float(sum(ctx.losses.values()))


def test_small_detector_learns_the_shapes(tmp_path):
    """examples/shapes_detector.yaml as it stands (its train: section): test mAP@0.5 over the three shape kinds."""
    res = netspec.train(DETECTOR, out=str(tmp_path), quiet=True)
    assert res.metrics["map50"] >= 0.75, res.metrics          # 0.90 measured (83 s on a 2-core CPU)
    train = [r for r in res.history if r["split"] == "train"]
    for k in ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"):
        assert k in train[-1], train[-1]                               # each loss logged in metrics.jsonl
    # the summed loss on one fixed batch (fixed sampling seed): the trained detector's against an untrained one's
    # (the logged losses are of changing batches, and the RoI losses grow for a while as the RPN finds objects)
    torch.manual_seed(0)
    untrained = netspec.build(DETECTOR)
    trained, untrained_loss = _fixed_batch_loss(res.module), _fixed_batch_loss(untrained)
    assert trained < 0.5 * untrained_loss, (trained, untrained_loss)
    # evaluate and predict from the weight file
    from netspec.train.use import evaluate, predict
    metrics, _ = evaluate(DETECTOR, tmp_path / "shapes_detector.safetensors")
    assert metrics["map50"] == pytest.approx(res.metrics["map50"])
    from netspec.train.data import make_shapes
    x, _, _ = make_shapes(2, 64, noise=0.05, seed=5, channels=3)
    np.savez(tmp_path / "in.npz", images=x)
    lines, _ = predict(DETECTOR, tmp_path / "shapes_detector.safetensors", tmp_path / "in.npz",
                       output=tmp_path / "out.npz")
    assert lines[0].startswith("image 0: class ") and "box [" in lines[0], lines[:3]
    with np.load(tmp_path / "out.npz") as z:
        assert z["boxes"].shape[1] == 4 and len(z["scores"]) == len(z["boxes"])


def test_resume_continues_to_the_same_weights(tmp_path):
    cfg = _config(tmp_path)
    whole = netspec.train(DETECTOR, config=cfg, out=str(tmp_path / "whole"), steps=6, quiet=True)
    netspec.train(DETECTOR, config=cfg, out=str(tmp_path / "part"), steps=3, quiet=True)
    netspec.train(DETECTOR, config=cfg, out=str(tmp_path / "part"), steps=6, quiet=True, resume=True)
    resumed = load_file(str(tmp_path / "part" / "shapes_detector.safetensors"))
    straight = whole.module.state_dict()
    assert resumed.keys() == straight.keys()
    for k in straight:
        assert torch.equal(resumed[k], straight[k].cpu()), k
    logged = [json.loads(line) for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if r["split"] == "train"] == list(range(1, 7))


def test_mask_rcnn_trains_with_its_mask_loss(tmp_path):
    """The zoo's mask_rcnn (small images) through the method: all five losses logged, masks from the shapes."""
    cfg = _config(tmp_path, extra="  params: {num_classes: 4, min_size: 64, max_size: 64}\n")
    res = netspec.train(ROOT / "specs" / "mask_rcnn.yaml", config=cfg, out=str(tmp_path / "run"), steps=1,
                        quiet=True)
    train = [r for r in res.history if r["split"] == "train"][-1]
    assert {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"} <= set(train)
    assert np.isfinite(train["loss"]) and train["loss_mask"] > 0
    test = [r for r in res.history if r["split"] == "test"][-1]       # evaluated on its boxes and on its masks
    assert {"map50", "mask_map50"} <= set(test) and 0 <= test["mask_map50"] <= 1


# -- the data is checked before the first step ----------------------------------------------------------------------

def _npz(tmp_path, drop=(), **change):
    arrays = {"images": np.zeros((12, 3, 64, 64), np.float32),
              "boxes": np.tile(np.array([[4., 4., 20., 24.]], np.float32), (24, 1)),
              "labels": np.tile(np.array([1, 2], np.int64), 12), "owner": np.repeat(np.arange(12), 2)}
    arrays.update(change)
    np.savez(tmp_path / "d.npz", **{k: v for k, v in arrays.items() if k not in drop})
    return f"source: npz, path: {tmp_path / 'd.npz'}"


@pytest.mark.parametrize("change, message", [
    ({"boxes": np.tile(np.array([[20., 4., 4., 24.]], np.float32), (24, 1))}, "boxes need x2 > x1 and y2 > y1"),
    ({"labels": np.tile(np.array([1, 7], np.int64), 12)}, "the data has label 7 but the detector predicts 4 classes"),
    ({"labels": np.zeros(24, np.int64)}, "labels start at 1"),
    ({"owner": np.repeat(np.arange(12), 2) + 1}, "owner of box 22 is 12, but there are 12 images"),
    ({"boxes": np.zeros((24, 5), np.float32)}, "boxes must be a float array [B, 4]"),
    ({"masks": np.zeros((24, 32, 32), np.uint8)}, "masks must be [B, H, W] = [24, 64, 64]"),
    ({"drop": ("owner",)}, "lacks the detection array(s) owner"),
])
def test_bad_detection_data_is_a_located_error(tmp_path, change, message):
    cfg = _config(tmp_path, _npz(tmp_path, **change))
    with pytest.raises(NetspecError) as e:
        netspec.train(DETECTOR, config=cfg, out=str(tmp_path / "run"), steps=1, quiet=True)
    text = e.value.format()
    assert message in text, text
    assert f"{cfg}:" in text and "error:" in text


def test_config_mistakes_for_detection(tmp_path):
    for extra, message in (("  loss: {name: mse}\n", "trains on the detector's own losses"),
                           ("", "reads images with boxes")):
        cfg = _config(tmp_path, SHAPES if extra else "source: digits", extra)
        with pytest.raises(NetspecError) as e:
            netspec.train(DETECTOR, config=cfg, out=str(tmp_path / "run"), steps=1, quiet=True)
        assert message in e.value.format()
    cfg = _config(tmp_path, _npz(tmp_path), "  params: {num_classes: 4}\n")
    with pytest.raises(NetspecError) as e:           # a mask detector needs masks
        netspec.train(ROOT / "specs" / "mask_rcnn.yaml", config=cfg, out=str(tmp_path / "run"), steps=1, quiet=True)
    assert "the detector predicts masks, but the data has none" in e.value.format()


def test_two_process_ddp_trains_a_detector(tmp_path):
    """torchrun, 2 CPU processes (gloo): each takes its share of every batch's images with their objects; the run
    ends with weights and a test mAP. (Not equal to one process: anchor and RoI sampling draw per process.)"""
    import os
    import subprocess
    import sys
    cfg = _config(tmp_path, extra="  steps: 4\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                        "netspec", "train", str(DETECTOR), "--config", str(cfg), "--out", "two", "-q"],
                       env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "two" / "shapes_detector.safetensors").is_file()
    records = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["split"] == "test" and 0 <= records[-1]["map50"] <= 1
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4]


def test_a_detector_without_roi_sample_is_refused_before_training(tmp_path):
    text = DETECTOR.read_text()
    text = "\n".join(ln for ln in text.splitlines() if "op: roi_sample" not in ln)
    spec = tmp_path / "no_sample.yaml"
    spec.write_text(text.replace("sample.boxes, sample.image", "proposals.boxes, proposals.image"))
    with pytest.raises(NetspecError) as e:
        netspec.train(spec, out=str(tmp_path / "run"), steps=1, quiet=True)
    text = e.value.format()
    assert "the network has no roi_sample" in text and "put a roi_sample between" in text, text
    assert f"{spec}:" in text
