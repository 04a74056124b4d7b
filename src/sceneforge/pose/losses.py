"""Loss terms of the pose optimisation (torch). Distances are in metres unless a docstring says
they are divided by the object's size.

- silhouette: 0.75 · Dice + 0.25 · focal between a soft render and the target mask (3D-RE-GEN);
- points: robust distance from the back-projected object points to the posed surface samples;
- penetration: depth of one object's samples inside another's SDF (both poses get gradients);
- background: depth of samples behind the visible background surface along the camera ray;
- floor: depth of samples below the floor plane;
- support: gap between an object's lowest sample and the nearest support (floor, other objects,
  background) — nothing floating.

The optimiser evaluates the physical terms at poses whose scale is detached (size is measured by
the image terms; a one-sided penalty would otherwise always shrink objects) and lets the penetration
gradient reach only the carried object of a pair where one rests on the other; what the loop leaves
can be removed by the optional collision projection of :mod:`sceneforge.pose.contact` (docs/pose.md).
"""

from __future__ import annotations

import torch

from sceneforge.pose.models import PosedSimilarity
from sceneforge.pose.sdf import sample_sdf

DICE_WEIGHT = 0.75
FOCAL_WEIGHT = 0.25


def dice_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """pred, target, weight : (B, H, W) -> (B,) soft Dice loss (1 - Dice) over weighted pixels."""
    inter = (weight * pred * target).sum(dim=(1, 2))
    total = (weight * pred).sum(dim=(1, 2)) + (weight * target).sum(dim=(1, 2))
    return 1.0 - (2.0 * inter + eps) / (total + eps)


def focal_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, gamma: float = 2.0,
               alpha: float = 0.25, eps: float = 1e-6) -> torch.Tensor:
    """(B, H, W) -> (B,) binary focal loss (Lin et al.) averaged over weighted pixels; soft targets."""
    p = pred.clamp(eps, 1.0 - eps)
    pos = -alpha * target * (1.0 - p) ** gamma * torch.log(p)
    neg = -(1.0 - alpha) * (1.0 - target) * p ** gamma * torch.log(1.0 - p)
    return (weight * (pos + neg)).sum(dim=(1, 2)) / weight.sum(dim=(1, 2)).clamp(min=1.0)


def silhouette_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B,) ``0.75 · Dice + 0.25 · focal``."""
    return DICE_WEIGHT * dice_loss(pred, target, weight) + FOCAL_WEIGHT * focal_loss(pred, target, weight)


def point_to_surface_loss(observed: torch.Tensor, surface: torch.Tensor, normals: torch.Tensor, size: float,
                          robust: float = 0.1, tangential: float = 0.05,
                          nearest: torch.Tensor | None = None) -> torch.Tensor:
    """Robust point-to-mesh distance of the back-projected points.

    observed : (M, 3) back-projected points; surface : (N, 3) posed surface samples with unit
    ``normals`` (N, 3) (metres). The distance to the nearest sample is measured mostly along that
    sample's normal (point-to-plane, ``d² = (n·δ)² + tangential·|δ|²``), so the spacing of the
    samples does not bias the scale. Returns the mean of ``d² / (d² + c²)`` with ``d`` divided by
    ``size`` and ``c = robust`` (saturates for outliers). ``nearest`` : (M,) index of each point's
    nearest sample when the caller knows it (no gradient flows through the choice); else found here.
    """
    if nearest is None:
        nearest = torch.cdist(observed.detach(), surface.detach()).argmin(dim=1)
    delta = observed - surface[nearest]
    along = (delta * normals[nearest]).sum(dim=-1)
    d2 = (along ** 2 + tangential * (delta ** 2).sum(dim=-1)) / (size * size)
    return (d2 / (d2 + robust * robust)).mean()


def signed_distance_to_objects(points: torch.Tensor, sdf_grid: torch.Tensor, lo: torch.Tensor,
                               hi: torch.Tensor, pose: PosedSimilarity) -> torch.Tensor:
    """(N, 3) world points -> (N,) signed distance to object B (canonical SDF grid, lo, hi) at
    ``pose`` (negative inside), metres."""
    return pose.distance_scale * sample_sdf(sdf_grid, lo, hi, pose.to_local(points))


def behind_background(points_cam: torch.Tensor, K: torch.Tensor, depth: torch.Tensor,
                      margin: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """Free-space test against the background seen from the camera.

    points_cam : (N, 3) camera frame; K : (3, 3) intrinsics of ``depth`` (h, w) (metres, 0 = no
    background). Returns (behind (N,) metres behind the background surface beyond ``margin`` (0 in
    front or off-image), gap (N,) metres in front of it (large where unknown)).
    """
    h, w = depth.shape
    z = points_cam[:, 2].clamp(min=1e-3)
    uv = (points_cam @ K.T)[:, :2] / z[:, None]
    grid = torch.stack([(uv[:, 0] + 0.5) / w * 2.0 - 1.0, (uv[:, 1] + 0.5) / h * 2.0 - 1.0], dim=-1)
    sampled = torch.nn.functional.grid_sample(depth[None, None], grid[None, None], mode="bilinear",
                                              padding_mode="zeros", align_corners=False).reshape(-1)
    valid = torch.nn.functional.grid_sample((depth > 0).to(depth.dtype)[None, None], grid[None, None],
                                            mode="bilinear", padding_mode="zeros", align_corners=False).reshape(-1)
    known = (valid > 0.999) & (points_cam[:, 2] > 1e-3)
    behind = torch.where(known, torch.relu(points_cam[:, 2] - sampled - margin), torch.zeros_like(z))
    gap = torch.where(known, (sampled - points_cam[:, 2]).abs(), torch.full_like(z, 1e3))
    return behind, gap


def below_floor(points: torch.Tensor, normal: torch.Tensor, offset: float, margin: float = 0.0) -> torch.Tensor:
    """(N, 3) world -> (N,) depth below the floor plane beyond ``margin``, metres."""
    return torch.relu(-(points @ normal + offset) - margin)
