"""Pose parameterisations in torch: planar 4-DoF, 5-DoF and 7-DoF similarity models.

Every model holds its free parameters as deltas from an initial pose (zero = the initial pose,
except for the planar model, which first puts the pivot on the floor) and returns the posed
similarity ``x_world = s · R @ x_obj + t`` as tensors.

- ``PlanarModel`` (4-DoF, 3D-RE-GEN's PlanarModel): translation of the pivot within the floor
  plane (2), yaw about the floor normal (1), uniform scale about the pivot (1). The pivot is the
  bottom centre of the canonical bounding box, so the object stands on the floor exactly.
- ``FreeModel`` (5-DoF): 3D translation, yaw about the floor normal, uniform scale about the
  same bottom-centre pivot, so a carried object keeps its base on its support's top while its size
  changes.
- ``FullModel`` (7-DoF): 3D translation, rotation (axis-angle delta), uniform scale.

Translations are parameterised in units of the initial scale (the object's size), so one learning
rate suits large and small objects alike.

With ``aspect`` > 0 (the planar and 5-DoF models), the canonical mesh's footprint proportions are
a further parameter: its x axis stretched by e^a and its z axis by e^-a (the footprint's area
kept; the uniform scale sizes it), |a| held below ``aspect`` (log units) by a tanh. The optimiser
turns it on for a mesh whose proportions are a library prior's (a retrieved asset's,
:func:`~sceneforge.shape.base.has_prior_proportions`): the shape stage picked them from a coarse
grid of stretches against a mask, and the image terms refine them here (docs/pose.md, "Footprint
aspect"). The stretch is part of the posed similarity and is baked into the returned mesh.

``model(scale_gradient=False)`` returns the same pose with the scale detached from the graph (the
translation then moves with the scale as it does in the model, but no gradient reaches the
log-scale): the optimiser poses the objects this way for the physical terms, so that contact and
non-penetration move objects instead of shrinking them (docs/pose.md, "Losses").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from sceneforge.geometry import rotation_about_axis
from sceneforge.geometry.planes import floor_axes
from sceneforge.types import Plane, Similarity

MODEL_KINDS = ("planar", "5dof", "7dof")


def skew(v: torch.Tensor) -> torch.Tensor:
    """(3,) -> (3, 3) cross-product matrix."""
    zero = torch.zeros((), dtype=v.dtype)
    return torch.stack([torch.stack([zero, -v[2], v[1]]), torch.stack([v[2], zero, -v[0]]),
                        torch.stack([-v[1], v[0], zero])])


def rotation_about(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: unit (3,) axis, scalar angle (radians) -> (3, 3) rotation."""
    Kx = skew(axis)
    eye = torch.eye(3, dtype=axis.dtype)
    return eye + torch.sin(angle) * Kx + (1.0 - torch.cos(angle)) * (Kx @ Kx)


def rotation_from_rotvec(rotvec: torch.Tensor) -> torch.Tensor:
    """(3,) axis-angle -> (3, 3), smooth at zero (series for small angles)."""
    theta2 = (rotvec * rotvec).sum()
    theta = torch.sqrt(theta2 + 1e-24)
    small = theta2 < 1e-8
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / (theta2 + 1e-24))
    Kx = skew(rotvec)
    return torch.eye(3, dtype=rotvec.dtype) + a * Kx + b * (Kx @ Kx)


@dataclass(frozen=True)
class PosedSimilarity:
    """Torch similarity ``x_world = s · R @ (stretch ⊙ x) + t``: R (3, 3), t (3,), s scalar tensor;
    ``stretch`` (3,) per-axis factors on the canonical mesh (None: 1), set by a planar model that
    keeps a measured height (:class:`PlanarModel`)."""

    R: torch.Tensor
    t: torch.Tensor
    s: torch.Tensor
    stretch: torch.Tensor | None = None

    def apply(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) object-frame points -> (N, 3) world."""
        if self.stretch is not None:
            points = points * self.stretch
        return self.s * points @ self.R.T + self.t

    def to_local(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) world -> (N, 3) object-frame points (the inverse of :meth:`apply`)."""
        local = (points - self.t) @ self.R / self.s
        return local if self.stretch is None else local / self.stretch

    @property
    def distance_scale(self) -> torch.Tensor:
        """Metres per canonical unit of distance (the smallest per-axis scale: distances read off a
        canonical SDF are not overestimated)."""
        return self.s if self.stretch is None else self.s * self.stretch.min()

    def detached(self) -> PosedSimilarity:
        return PosedSimilarity(self.R.detach(), self.t.detach(), self.s.detach(),
                               None if self.stretch is None else self.stretch.detach())

    def rotate_normals(self, normals: torch.Tensor) -> torch.Tensor:
        """(N, 3) canonical unit normals -> (N, 3) world unit normals (a stretch tilts them)."""
        if self.stretch is not None:
            normals = normals / self.stretch
            normals = normals / normals.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return normals @ self.R.T

    def stretch_factors(self) -> np.ndarray:
        """(3,) float64 per-axis factors to bake into the canonical mesh (ones when none)."""
        return np.ones(3) if self.stretch is None else self.stretch.detach().double().numpy()

    def to_similarity(self) -> Similarity:
        R = self.R.detach().double().numpy()
        U, _, Vt = np.linalg.svd(R)
        return Similarity(U @ Vt, self.t.detach().double().numpy(), float(self.s.detach()))


def floor_basis(floor: Plane) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(origin on the plane, e1, e2, normal): an orthonormal frame of the floor, (3,) each."""
    n = np.asarray(floor.normal, dtype=np.float64)
    e1, e2 = floor_axes(n)
    return -floor.offset * n, e1, e2, n


def nearest_upright(pose: Similarity, upright: Similarity, up: np.ndarray, centre: np.ndarray) -> Similarity:
    """``pose`` with the rotation nearest to its own (Frobenius) among ``upright``'s rotation turned
    about the unit floor normal ``up`` (3,): the rotations a planar or 5-DoF model can reach. The
    canonical point ``centre`` (3,) keeps its world position; the scale is kept. A start from
    another source (a learned model's tilted guess) then means the same to these models as their
    own initial pose."""
    R_up, R = np.asarray(upright.R), np.asarray(pose.R)
    n = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    M = R_up @ R.T  # maximise trace(rot(n, angle) @ M) over the angle
    Kx = np.array([[0.0, -n[2], n[1]], [n[2], 0.0, -n[0]], [-n[1], n[0], 0.0]])
    angle = np.arctan2(np.trace(Kx @ M), -np.trace(Kx @ Kx @ M))
    turned = rotation_about_axis(n, float(angle)) @ R_up
    c = np.asarray(centre, dtype=np.float64)
    return Similarity(turned, pose.t + pose.s * (R - turned) @ c, pose.s)


class PoseModel(torch.nn.Module, ABC):
    """Base: ``forward()`` -> PosedSimilarity; ``yaw`` is a parameter of every model kind."""

    kind = "base"

    def __init__(self, initial: Similarity, up: np.ndarray, dtype: torch.dtype = torch.float32, aspect: float = 0.0):
        super().__init__()
        if not initial.is_uniform:
            raise ValueError("pose models need an initial similarity with uniform scale")
        self.dtype_ = dtype
        self.aspect_limit = float(aspect)
        self.log_aspect = torch.nn.Parameter(torch.zeros((), dtype=dtype)) if aspect > 0 else None
        self.register_buffer("R0", torch.tensor(initial.R, dtype=dtype))
        self.register_buffer("t0", torch.tensor(initial.t, dtype=dtype))
        self.register_buffer("up", torch.tensor(np.array(up), dtype=dtype))
        self.s0 = float(initial.s)
        self.log_scale = torch.nn.Parameter(torch.zeros((), dtype=dtype))

    def set_yaw(self, yaw: float) -> None:
        with torch.no_grad():
            self.yaw.fill_(yaw)

    def scale(self, gradient: bool = True) -> torch.Tensor:
        """The uniform scale; detached from the graph when ``gradient`` is False."""
        s = self.s0 * torch.exp(self.log_scale)
        return s if gradient else s.detach()

    def stretch(self, height: torch.Tensor | None = None) -> torch.Tensor | None:
        """(3,) per-axis factors of the canonical mesh: the footprint's aspect (x by e^a, z by e^-a,
        a = limit * tanh(parameter / limit)) and ``height`` on y; None when neither."""
        if self.log_aspect is None and height is None:
            return None
        one = torch.ones((), dtype=self.dtype_)
        x = one if self.log_aspect is None else \
            torch.exp(self.aspect_limit * torch.tanh(self.log_aspect / self.aspect_limit))
        return torch.stack([x, one if height is None else height, 1.0 / x])

    def _groups(self, translation: torch.nn.Parameter) -> dict[str, list[torch.nn.Parameter]]:
        """The parameter groups of a yawing model; the aspect's with the scale's."""
        scale = [self.log_scale] + ([self.log_aspect] if self.log_aspect is not None else [])
        return {"translation": [translation], "rotation": [self.yaw], "scale": scale}

    def translation_basis(self) -> torch.Tensor:
        """(k, 3) orthonormal world directions the model can translate along (all three here)."""
        return torch.eye(3, dtype=self.dtype_)

    def translate(self, v: torch.Tensor) -> None:
        """Move the object by the world vector ``v`` (3,) projected onto :meth:`translation_basis`
        (no gradient; the collision projection's step)."""
        with torch.no_grad():
            self._shift(self.translation_basis().T @ (self.translation_basis() @ v))

    def _shift(self, v: torch.Tensor) -> None:
        self.delta_t.add_(v / self.s0)

    @abstractmethod
    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Parameters by kind ("translation", "rotation", "scale") for per-kind learning rates."""


class PlanarModel(PoseModel):
    """4-DoF: pivot (bottom centre of the canonical box) on the floor plane, yaw, uniform scale.

    ``height_scale``: the scale at which the object has its measured height. When given, the
    canonical mesh's y axis is stretched by ``(height_scale / scale) ** height_hold``: with
    ``height_hold`` 1 the scale sizes the footprint alone and the height stays measured, with 0.5
    the height moves half as much as the footprint (a shape stage's proportions are least sure
    across the view, and a uniform scale traded a measured height for the footprint). ``aspect``:
    the footprint's proportions are a parameter too (module docstring)."""

    kind = "planar"

    def __init__(self, initial: Similarity, floor: Plane, pivot_obj: np.ndarray,
                 dtype: torch.dtype = torch.float32, height_scale: float | None = None, height_hold: float = 1.0,
                 aspect: float = 0.0):
        origin, e1, e2, n = floor_basis(floor)
        super().__init__(initial, n, dtype, aspect)
        self.height_scale, self.height_hold = height_scale, height_hold
        pivot_world = initial.apply(np.asarray(pivot_obj, dtype=np.float64)[None])[0]
        rel = pivot_world - origin
        self.register_buffer("origin", torch.as_tensor(origin, dtype=dtype))
        self.register_buffer("e1", torch.as_tensor(e1, dtype=dtype))
        self.register_buffer("e2", torch.as_tensor(e2, dtype=dtype))
        self.register_buffer("pivot_obj", torch.as_tensor(pivot_obj, dtype=dtype))
        self.register_buffer("ab0", torch.as_tensor([rel @ e1, rel @ e2], dtype=dtype))
        self.delta_ab = torch.nn.Parameter(torch.zeros(2, dtype=dtype))
        self.yaw = torch.nn.Parameter(torch.zeros((), dtype=dtype))

    def translation_basis(self) -> torch.Tensor:
        return torch.stack([self.e1, self.e2])

    def _shift(self, v: torch.Tensor) -> None:
        self.delta_ab.add_(torch.stack([v @ self.e1, v @ self.e2]) / self.s0)

    def pivot_world(self) -> torch.Tensor:
        ab = self.ab0 + self.s0 * self.delta_ab
        return self.origin + ab[0] * self.e1 + ab[1] * self.e2

    def forward(self, scale_gradient: bool = True) -> PosedSimilarity:
        R = rotation_about(self.up, self.yaw) @ self.R0
        s = self.scale(scale_gradient)
        stretch = self.stretch(None if self.height_scale is None else (self.height_scale / s) ** self.height_hold)
        pivot = self.pivot_obj if stretch is None else self.pivot_obj * stretch
        return PosedSimilarity(R, self.pivot_world() - s * (R @ pivot), s, stretch)

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        return self._groups(self.delta_ab)


class FreeModel(PoseModel):
    """5-DoF: 3D translation of the pivot, yaw about the floor normal, uniform scale about the pivot
    ``pivot_obj`` (3,) canonical (the bottom centre of the canonical box); ``aspect``: the
    footprint's proportions are a parameter too (module docstring)."""

    kind = "5dof"

    def __init__(self, initial: Similarity, up: np.ndarray, pivot_obj: np.ndarray,
                 dtype: torch.dtype = torch.float32, aspect: float = 0.0):
        super().__init__(initial, up, dtype, aspect)
        pivot = np.asarray(pivot_obj, dtype=np.float64)
        self.register_buffer("pivot_obj", torch.as_tensor(pivot, dtype=dtype))
        self.register_buffer("pivot0", torch.as_tensor(initial.apply(pivot[None])[0], dtype=dtype))
        self.delta_t = torch.nn.Parameter(torch.zeros(3, dtype=dtype))
        self.yaw = torch.nn.Parameter(torch.zeros((), dtype=dtype))

    def forward(self, scale_gradient: bool = True) -> PosedSimilarity:
        R = rotation_about(self.up, self.yaw) @ self.R0
        s = self.scale(scale_gradient)
        stretch = self.stretch()
        pivot = self.pivot_obj if stretch is None else self.pivot_obj * stretch
        return PosedSimilarity(R, self.pivot0 + self.s0 * self.delta_t - s * (R @ pivot), s, stretch)

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        return self._groups(self.delta_t)


class FullModel(PoseModel):
    """7-DoF: 3D translation, full rotation (yaw about the up axis, then an axis-angle delta),
    uniform scale about the object centre."""

    kind = "7dof"

    def __init__(self, initial: Similarity, up: np.ndarray, dtype: torch.dtype = torch.float32):
        super().__init__(initial, up, dtype)
        self.delta_t = torch.nn.Parameter(torch.zeros(3, dtype=dtype))
        self.yaw = torch.nn.Parameter(torch.zeros((), dtype=dtype))
        self.rotvec = torch.nn.Parameter(torch.zeros(3, dtype=dtype))

    def forward(self, scale_gradient: bool = True) -> PosedSimilarity:
        R = rotation_from_rotvec(self.rotvec) @ rotation_about(self.up, self.yaw) @ self.R0
        return PosedSimilarity(R, self.t0 + self.s0 * self.delta_t, self.scale(scale_gradient))

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        return {"translation": [self.delta_t], "rotation": [self.yaw, self.rotvec], "scale": [self.log_scale]}


def build_model(kind: str, initial: Similarity, floor: Plane, pivot_obj: np.ndarray,
                dtype: torch.dtype = torch.float32, height_scale: float | None = None,
                height_hold: float = 1.0, aspect: float = 0.0) -> PoseModel:
    """``kind`` in MODEL_KINDS; ``pivot_obj`` (3,) bottom centre of the canonical box: the planar and
    5-DoF models scale about it (the 7-DoF model about the object's centre); ``height_scale``: the
    planar model's measured height and how firmly it holds (:class:`PlanarModel`; the other kinds
    ignore them); ``aspect`` > 0: the footprint's proportions are a parameter within that limit (log
    units; not for the 7-DoF model)."""
    if kind == "planar":
        return PlanarModel(initial, floor, pivot_obj, dtype, height_scale, height_hold, aspect)
    if kind == "5dof":
        return FreeModel(initial, floor.normal, pivot_obj, dtype, aspect)
    if kind == "7dof":
        return FullModel(initial, floor.normal, dtype)
    raise ValueError(f"unknown pose model {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
