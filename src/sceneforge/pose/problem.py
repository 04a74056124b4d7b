"""Inputs, settings and typed results of the pose optimisation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trimesh

from sceneforge.types import Camera, PlacedMesh, Plane, Similarity

OBJECT_STATUSES = ("optimised", "kept_initial", "nan_stopped")


@dataclass(frozen=True, eq=False)
class PoseTarget:
    """One object to place.

    mesh : canonical mesh (bounding box centred at the origin, y up), object units.
    initial_pose : Similarity T_world_obj (uniform scale).
    mask : (H, W) bool target silhouette, the amodal mask when one is known.
    visible_mask : (H, W) bool visible mask, or None (= ``mask``); other objects' visible pixels
        are not counted against this object's render (they may hide it).
    points_world : (N, 3) float metres, the object's back-projected depth points, or None.
    alternative_poses : other starting poses (Similarity T_world_obj, e.g. a learned model's),
        refined beside the initial pose's yaw hypotheses and kept when their refined image loss
        is lower by the optimiser's hypothesis margin.
    alternative_shapes : other canonical meshes with their poses (Similarity T_world_obj; e.g. the
        shape stage's runners-up), refined the same way; the chosen one's mesh is returned
        (:attr:`ObjectPoseResult.mesh`).
    """

    id: int
    mesh: trimesh.Trimesh
    initial_pose: Similarity
    mask: np.ndarray
    visible_mask: np.ndarray | None = None
    points_world: np.ndarray | None = None
    label: str = ""
    alternative_poses: tuple[Similarity, ...] = ()
    alternative_shapes: tuple[PlacedMesh, ...] = ()


@dataclass(frozen=True, eq=False)
class PoseProblem:
    """A scene's objects with what couples them.

    camera : Camera with T_world_cam (world frame y-up by convention, floor plane in world).
    floor : Plane in world coordinates, normal pointing up.
    floor_mask : (H, W) bool pixels of visible floor, or None (then the 3D rule of
        ``PoseSettings.floor_rule`` decides the planar objects).
    background : background mesh in world coordinates (free-space test), or None.
    """

    camera: Camera
    floor: Plane
    targets: tuple[PoseTarget, ...]
    floor_mask: np.ndarray | None = None
    background: trimesh.Trimesh | None = None


@dataclass(frozen=True)
class PoseSettings:
    """Schedule, weights and switches of :class:`~sceneforge.pose.optimise.PoseOptimiser`.

    Schedule: Adam with per-kind learning rates (translation in units of the object's initial size
    per step, rotation in radians, log-scale), cosine decay from the given rates to
    ``final_lr_fraction`` of them over ``iterations``; early stop when the total loss has not
    improved by ``min_improvement`` (relative) for ``patience`` iterations. The pose returned is
    the one of the lowest total loss. After refined yaw hypotheses the joint refinement starts at
    ``joint_lr_fraction`` of the rates: its poses are then near a minimum, which a full-rate restart
    overshoots (the early stop then returned the start, and the physical terms never acted).

    Silhouette term: each object's soft render (splat radius ``radius_px`` render pixels, crops of
    ``resolution``²) against its target mask seen through the same splats (``splat_target``: the
    render bleeds past the object's edge, and a hard target made the loss shrink objects,
    docs/pose.md, "Splatted target").

    Physical terms (``use_physical``): evaluated at scale-detached poses unless
    ``physical_scale_gradient``; after the loop, with ``seat_on_tops`` (on by default), a carried
    object sunk into its support's top by at most ``contact_tolerance`` is lifted onto it plus
    ``contact_clearance`` (docs/pose.md, "Seat"); then, with ``project_contacts``, the collision-resolving
    projection of :mod:`sceneforge.pose.contact` (lift / push apart the pairs that overlap by at most
    ``project_max_depth`` times the smaller object's size: a deeper overlap is the approximate shapes'
    disagreement with the image, and pushing it apart moved objects off their depth points on a real
    frame, docs/pose.md; settling floating 5-DoF objects onto their support only when
    ``settle_max_drop`` > 0, in object sizes).

    Measured heights (``keep_measured_height``): a planar object whose mesh proportions are a
    library prior's (:func:`~sceneforge.shape.base.has_prior_proportions`) and whose visible top
    (99.5th percentile of its points' heights above the floor) is within
    ``measured_height_tolerance`` of its initial mesh's top (relative to that height, at least
    1 cm) has a measured height: its scale then sizes the footprint and the canonical mesh is
    stretched vertically to keep that height, in full with ``measured_height_hold`` 1
    (:class:`~sceneforge.pose.models.PlanarModel`; the stretch is baked into the returned mesh,
    docs/pose.md, "Measured heights").

    Footprint aspect: a planar or 5-DoF object whose mesh proportions are a library prior's has one
    more parameter, its footprint's aspect (canonical x stretched by e^a, z by e^-a, |a| below
    ``aspect_limit``, 0: off; learning rate ``lr_scale``), baked into the returned mesh
    (docs/pose.md, "Footprint aspect").
    """

    iterations: int = 120
    lr_translation: float = 0.02
    lr_rotation: float = 0.04
    lr_scale: float = 0.02
    final_lr_fraction: float = 0.1
    joint_lr_fraction: float = 0.3
    patience: int = 20
    min_improvement: float = 1e-3
    resolution: int = 64
    radius_px: float = 1.0
    splat_target: bool = True
    max_render_samples: int = 4000
    point_samples: int = 384
    surface_samples: int = 1024
    physical_samples: int = 256
    contact_samples: int = 2048
    contact_clearance: float = 0.0
    seat_on_tops: bool = True
    sdf_resolution: int = 24
    background_resolution: int = 128
    weight_silhouette: float = 1.0
    weight_points: float = 1.0
    weight_penetration: float = 5.0
    weight_background: float = 20.0
    weight_floor: float = 20.0
    weight_support: float = 2.0
    contact_tolerance: float = 0.01
    physical_scale_gradient: bool = False
    project_contacts: bool = True
    project_max_depth: float = 0.05
    settle_max_drop: float = 0.0
    background_margin: float = 0.03
    use_planar: bool = True
    keep_measured_height: bool = True
    measured_height_tolerance: float = 0.02
    measured_height_hold: float = 1.0
    aspect_limit: float = 0.2
    use_silhouette: bool = True
    use_points: bool = True
    use_physical: bool = True
    model: str = "auto"
    floor_rule: str = "mask_and_height"
    floor_touch_px: int = 3
    floor_height_tolerance: float = 0.05
    yaw_candidates: int = 8
    yaw_hypotheses: int = 4
    hypothesis_iterations: int = 30
    min_pixels: int = 64
    min_points: int = 32
    seed: int = 0
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.model not in ("auto", "planar", "5dof", "7dof"):
            raise ValueError(f"model must be auto, planar, 5dof or 7dof, got {self.model!r}")
        if self.floor_rule not in ("mask", "mask_and_height", "height"):
            raise ValueError(f"floor_rule must be mask, mask_and_height or height, got {self.floor_rule!r}")
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if self.aspect_limit < 0.0:
            raise ValueError(f"aspect_limit must be >= 0 (0: the footprint aspect is not refined), got {self.aspect_limit}")
        if self.yaw_candidates < 1:
            raise ValueError(f"yaw_candidates must be >= 1, got {self.yaw_candidates}")
        if not 0.0 <= self.measured_height_hold <= 1.0 or self.measured_height_tolerance < 0.0:
            raise ValueError(f"measured_height_hold must be in [0, 1] and measured_height_tolerance >= 0, got "
                             f"{self.measured_height_hold} and {self.measured_height_tolerance}")
        if self.yaw_hypotheses < 1 or self.hypothesis_iterations < 0:
            raise ValueError(f"yaw_hypotheses must be >= 1 and hypothesis_iterations >= 0, got "
                             f"{self.yaw_hypotheses} and {self.hypothesis_iterations}")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class ObjectPoseResult:
    """One object's outcome. status in OBJECT_STATUSES; losses : final value of each term; rests_on :
    the id of the object whose top is its ground (a carried 5-DoF object), else None; start : the
    starting pose kept, "initial", "alternative k" (``PoseTarget.alternative_poses[k]``) or "shape k"
    (``PoseTarget.alternative_shapes[k]``, whose canonical mesh is ``mesh``; else None: the target's);
    stretch : per-axis factors of the canonical mesh that ``pose`` places (a kept measured height,
    :class:`PoseSettings`), ones when the mesh is unchanged."""

    id: int
    pose: Similarity
    initial_pose: Similarity
    model: str
    status: str
    warnings: tuple[str, ...] = ()
    losses: Mapping[str, float] = field(default_factory=dict)
    yaw_offset_deg: float = 0.0
    projection_m: float = 0.0
    rests_on: int | None = None
    start: str = "initial"
    stretch: tuple[float, float, float] = (1.0, 1.0, 1.0)
    mesh: trimesh.Trimesh | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "status": self.status, "warnings": list(self.warnings),
                "losses": dict(self.losses), "start": self.start, "yaw_offset_deg": self.yaw_offset_deg,
                "projection_m": self.projection_m, "rests_on": self.rests_on, "stretch": list(self.stretch),
                "shape": None if self.mesh is None else self.mesh.metadata.get("name"),
                "pose": self.pose.matrix.tolist(), "initial_pose": self.initial_pose.matrix.tolist()}


@dataclass(frozen=True, eq=False)
class PoseOptimisationResult:
    """All objects' outcomes, the total-loss history and timing."""

    objects: tuple[ObjectPoseResult, ...]
    loss_history: tuple[float, ...]
    iterations: int
    seconds: float
    warnings: tuple[str, ...] = ()

    def object(self, object_id: int) -> ObjectPoseResult:
        for o in self.objects:
            if o.id == object_id:
                return o
        raise KeyError(f"no object with id {object_id}")

    def to_report(self) -> dict[str, Any]:
        """JSON-serialisable summary for report.json."""
        return {"iterations": self.iterations, "seconds": round(self.seconds, 3),
                "final_loss": self.loss_history[-1] if self.loss_history else None,
                "warnings": list(self.warnings), "objects": [o.to_dict() for o in self.objects]}
