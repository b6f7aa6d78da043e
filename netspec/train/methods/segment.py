"""Segmentation: per-pixel class scores (N, C, H, W) against a mask of class indices (N, H, W)."""
from __future__ import annotations

from ...errors import SpecError
from .supervised import Classify


class Segment(Classify):
    """Classification at every pixel; the usual metrics are mean IoU and pixel accuracy."""

    def check_target(self, graph) -> None:
        out = next(iter(graph.output_types().values()))
        target = self.data.arrays[self.data.target]
        if len(out.shape) != target.dim() + 1:
            raise SpecError(f"segmentation needs per-pixel scores [N, C, H, W]; the network gives {out}",
                            self.run.loc("method"), "use a network whose output keeps the spatial dims (a U-Net)")
        super().check_target(graph)
