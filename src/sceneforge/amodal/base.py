"""The amodal-completion interface: a diffusion inpainting model can implement it later."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np

from sceneforge.registry import Component


@dataclass(frozen=True, eq=False)
class AmodalResult:
    """The completed view of one object.

    mask : (H, W) bool amodal mask (visible part included), full image size.
    crop_rgb : (h, w, 3) uint8 colour crop of ``bbox`` with the occluded part filled in.
    bbox : (4,) int (u0, v0, u1, v1), half-open pixel box of the amodal mask.
    occluded_fraction : share of the amodal mask hidden by other objects, in [0, 1].
    """

    mask: np.ndarray
    crop_rgb: np.ndarray
    bbox: tuple[int, int, int, int]
    occluded_fraction: float


class AmodalCompleter(Component):
    """Interface: complete one object's mask and colours given the image, masks and depth."""

    @abstractmethod
    def complete(self, image: np.ndarray, instances: np.ndarray, object_id: int,
                 depth: np.ndarray | None) -> AmodalResult:
        """image (H, W, 3) uint8; instances (H, W) int; depth (H, W) metres (0 invalid) or None."""
