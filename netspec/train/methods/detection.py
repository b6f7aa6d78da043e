"""Object detection (Faster / Mask R-CNN): images and their objects in, the detector's own losses out.

The network is the detector as the zoo writes it (faster_rcnn, mask_rcnn, or a smaller one from the same ops); the
targets reach its detection steps through ``netspec.ops.detection.detection_targets`` for each training forward, and
the loss is the sum of the losses they return (torchvision's: loss_objectness, loss_rpn_box_reg, loss_classifier,
loss_box_reg, and loss_mask for Mask R-CNN), each also logged. Evaluation: VOC-style mAP at IoU 0.5 of the boxes
(``map50``) and, for a detector with masks, of the instance masks (``mask_map50``).
"""
from __future__ import annotations

import torch

from ...errors import SpecError
from ...ops.detection import detection_targets
from ..data import Data, batch_targets, batches, bind_inputs, detection_data, to_device
from ..metrics import average_precision
from ..optim import build_optimizer
from .base import Method

OUTPUTS = ("boxes", "scores", "labels", "image")
STEPS = ("box_decode", "rpn_proposals", "roi_sample", "box_postprocess")      # the ops that compute the losses


class Detection(Method):
    """A detector trained on its own losses; evaluated by mean average precision at IoU 0.5 (``map50``)."""

    def setup(self) -> None:
        loc = self.run.loc("data")
        self.data = detection_data(self.cfg.data, loc)
        name = self.run.network_name()
        self.net = self.run.build(name)
        self.networks[name] = self.net
        graph = self.run.graphs[name]
        images = Data({"images": self.data.arrays["images"]}, None, self.data.splits)
        self.inputs = bind_inputs(graph, images, self.cfg.data.inputs, loc)
        self.check_target(graph)
        self.model = self.run.wrap(self.net)
        self.optimizers["main"] = build_optimizer(self.cfg.optimizer, [self.net])

    def check_target(self, graph) -> None:
        """The network is a detector with outputs boxes, scores, labels, image; the labels fit its classes; masks
        come with the data when it predicts them."""
        outs = graph.output_types()
        missing = [k for k in OUTPUTS if k not in outs]
        ops = {n.op.name: n for n in graph.nodes.values()}
        if missing or "box_postprocess" not in ops:
            raise SpecError(f"method 'detection' trains a detector whose outputs include {', '.join(OUTPUTS)} (from "
                            f"box_postprocess); the network gives {', '.join(outs)}", self.run.loc("method"),
                            "use a detector such as faster_rcnn or mask_rcnn")
        lacking = [k for k in STEPS if k not in ops]
        if lacking:
            hint = ("put a roi_sample between the proposals and the RoI pooling, as specs/blocks/rcnn.yaml does"
                    if lacking == ["roi_sample"] else "write the detector as specs/faster_rcnn.yaml does")
            raise SpecError(f"method 'detection' needs the detector's training steps ({', '.join(STEPS)}); the "
                            f"network has no {', '.join(lacking)}", self.run.loc("method"), hint)
        classes = ops["box_postprocess"].meta["in"][0].shape[1]
        top = int(self.data.objects["labels"].max()) if len(self.data.objects["labels"]) else 0
        if isinstance(classes, int) and top >= classes:
            raise SpecError(f"the data has label {top} but the detector predicts {classes} classes (0 is the "
                            f"background)", self.run.loc("params"),
                            f"set the spec's class count, e.g. train.params: {{num_classes: {top + 1}}}")
        if "paste_masks" in ops and "masks" not in self.data.objects:
            raise SpecError("the detector predicts masks, but the data has none", self.run.loc("data"),
                            "give masks [B, H, W] in the .npz, or train a detector without a mask branch")
        if "paste_masks" not in ops:            # no mask branch: the transform need not resize masks
            self.data.objects.pop("masks", None)

    def loss(self, batch: dict, meter=None):
        targets = batch_targets(self.data, batch, self.run.device)
        with detection_targets(self.net, targets) as ctx:
            self.forward(batch)
        if not ctx.losses:
            raise SpecError("the network returned no detection losses", self.run.loc("method"),
                            "its detection steps need rpn_proposals, roi_sample and box_postprocess")
        loss = sum(ctx.losses.values())
        return loss, {k: v.item() for k, v in ctx.losses.items()}

    @torch.no_grad()
    def evaluate(self, split: str) -> dict:
        detections, targets = [], []
        self.net.eval()
        try:
            for micro in batches(self.data, split, self.cfg.batch_size, shuffle=False, drop_last=False):
                batch = to_device(micro, self.run.device, self.run.channels_last)
                with self.run.autocast():
                    out = self.net(**self.inputs_of(batch))
                for i in range(len(batch["count"])):
                    keep = out["image"] == i
                    detections.append({k: out[k][keep].float() if k != "labels" else out[k][keep]
                                       for k in ("boxes", "scores", "labels", "masks") if k in out})
                targets.extend(batch_targets(self.data, batch, "cpu"))
        finally:
            self.net.train()
        res = average_precision(detections, targets)
        if detections and "masks" in detections[0] and targets and "masks" in targets[0]:
            res.update(average_precision(detections, targets, masks=True))     # Mask R-CNN: the masks' own AP
        res["detections_per_image"] = sum(len(d["boxes"]) for d in detections) / max(len(detections), 1)
        return res
