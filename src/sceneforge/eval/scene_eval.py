"""Scoring one predicted scene against its ground truth.

Order of work: sample every object's surface (seeded by object id), align the prediction's union
of points to the ground truth's with the robust ICP, match objects, then score

- scene level: Chamfer (both conventions), F-score, Hausdorff on the union of all objects, in the
  ground truth's normalised space (AABB centred, largest side spanning [-1, 1]) by default;
- object level: the same per matched pair, each object normalised on its own (uniform by default,
  per axis as MIDI-3D), averaged over matched pairs;
- layout: IoU of axis-aligned boxes (IoU-B) and of oriented boxes of matched objects, rotation,
  translation and scale errors;
- plausibility: interpenetration volume and floating distances of the prediction (and of the
  ground truth, for reference).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from sceneforge.errors import InputError
from sceneforge.eval.boxes import aabb_iou, aabb_of_points, box_corners, oriented_box_iou
from sceneforge.eval.frames import FRAMES, scene_in_camera_frame, up_in_camera_frame
from sceneforge.eval.icp import AlignmentConfig, RegistrationResult, align_point_clouds
from sceneforge.eval.matching import MatchMode, Matching, match_objects
from sceneforge.eval.metrics import (
    REPORTED_TAUS,
    PointCloudScores,
    empty_prediction_scores,
    mean_scores,
    point_cloud_scores,
)
from sceneforge.eval.physics import PlacedObject, PlausibilityScores, plausibility
from sceneforge.eval.sampling import DEFAULT_POINTS_PER_OBJECT, SurfaceSample, finite_faces, sample_surface_with_normals
from sceneforge.types import Scene, SceneObject

ObjectNormalisation = Literal["uniform", "per_axis", "scene"]
OBJECT_NORMALISATIONS = ("uniform", "per_axis", "scene")
SceneNormalisation = Literal["uniform", "none"]
SCENE_NORMALISATIONS = ("uniform", "none")
UNITS_RATIO_WARNING = 10.0


@dataclass(frozen=True)
class EvalConfig:
    """How scenes are scored (defaults reproduce the I-Scene protocol; see docs/metrics.md).

    points_per_object : surface samples per object (MIDI-3D: 20,480).
    taus : F-score thresholds, first one is the headline (0.1 as in the papers).
    align : run the robust ICP (``alignment`` settings) before scoring.
    scene_normalisation : "uniform" scores in the ground truth's normalised space (AABB centre,
        largest side -> [-1, 1]); "none" in the ground truth's own units.
    object_normalisation : "uniform" (each object by its own AABB centre and largest side),
        "per_axis" (each axis to [-1, 1], MIDI-3D; distorts shapes), "scene" (the scene space).
    match : "auto" (by id when every predicted id is a GT id, else Hungarian), "id", "hungarian".
    symmetry : label -> order of rotational symmetry about the object's up (y) axis for the rotation
        error (2 = 180 degrees, 4 = 90 degrees, 0 = continuous); ``default_symmetry`` for others.
    up : world up vector for the floating check when the ground truth has no floor plane.
    threads : nearest-neighbour query threads (-1: all cores; the runner uses 1 per worker process).
    frame : "world" scores the scenes as given; "camera" first moves each scene into the frame of
        its own camera (both need a camera with T_world_cam), for predictions whose world frame is
        their own (a reconstruction's floor-aligned frame); ``up`` is then read in the ground
        truth's camera frame.
    """

    points_per_object: int = DEFAULT_POINTS_PER_OBJECT
    taus: tuple[float, ...] = REPORTED_TAUS
    align: bool = True
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    scene_normalisation: SceneNormalisation = "uniform"
    object_normalisation: ObjectNormalisation = "uniform"
    match: MatchMode = "auto"
    match_max_distance: float = 0.25
    symmetry: Mapping[str, int] = field(default_factory=dict)
    default_symmetry: int = 1
    plausibility: bool = True
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    seed: int = 0
    threads: int = -1
    frame: str = "world"

    def __post_init__(self) -> None:
        if self.points_per_object < 1:
            raise ValueError(f"points_per_object must be at least 1, got {self.points_per_object}")
        if not self.taus or any(t <= 0 for t in self.taus):
            raise ValueError(f"taus must be positive thresholds, got {self.taus}")
        if self.object_normalisation not in OBJECT_NORMALISATIONS:
            raise ValueError(f"object_normalisation must be one of {', '.join(OBJECT_NORMALISATIONS)}, "
                             f"got {self.object_normalisation!r}")
        if self.scene_normalisation not in SCENE_NORMALISATIONS:
            raise ValueError(f"scene_normalisation must be one of {', '.join(SCENE_NORMALISATIONS)}, "
                             f"got {self.scene_normalisation!r}")
        if self.frame not in FRAMES:
            raise ValueError(f"frame must be one of {', '.join(FRAMES)}, got {self.frame!r}")
        if self.default_symmetry < 0 or any(v < 0 for v in self.symmetry.values()):
            raise ValueError("symmetry orders must be 0 (continuous) or a positive integer")


@dataclass(frozen=True)
class ObjectScores:
    """Scores of one matched pair. Distances of ``points`` are in the object-normalised space;
    translation_error in ground-truth units; scale_error relative (0 = exact)."""

    gt_id: int
    pred_id: int
    label: str
    points: PointCloudScores
    iou_aabb: float
    iou_oriented: float
    rotation_error_deg: float
    translation_error: float
    scale_error: float

    def to_dict(self) -> dict[str, object]:
        return {"gt_id": self.gt_id, "pred_id": self.pred_id, "label": self.label,
                "points": self.points.to_dict(), "iou_aabb": self.iou_aabb,
                "iou_oriented": self.iou_oriented, "rotation_error_deg": self.rotation_error_deg,
                "translation_error": self.translation_error, "scale_error": self.scale_error}


@dataclass(frozen=True)
class SceneEvaluation:
    """Everything measured on one scene. ``scene`` and ``object_mean`` are PointCloudScores (scene
    level and object level); iou_b is the mean AABB IoU over matched pairs (0 when none), and
    iou_b_penalised counts every missed and extra object as IoU 0."""

    name: str
    scene: PointCloudScores
    object_mean: PointCloudScores
    objects: tuple[ObjectScores, ...]
    iou_b: float
    iou_b_penalised: float
    iou_oriented: float
    rotation_error_deg: float
    translation_error: float
    scale_error: float
    n_gt: int
    n_pred: int
    missed_ids: tuple[int, ...]
    extra_ids: tuple[int, ...]
    match_method: str
    alignment: RegistrationResult | None
    plausibility_pred: PlausibilityScores | None
    plausibility_gt: PlausibilityScores | None
    warnings: tuple[str, ...]
    seconds: float
    taus: tuple[float, ...]

    def summary(self) -> dict[str, float | int | str]:
        """A flat row: the paper columns under unambiguous names, then the extra numbers."""
        row: dict[str, float | int | str] = {"scene": self.name}
        for level, scores in (("s", self.scene), ("o", self.object_mean)):
            row[f"cd_{level}_l2_sum"] = scores.chamfer_l2_sum
            row[f"cd_{level}_l1_mean"] = scores.chamfer_l1_mean
            for tau in self.taus:
                row[f"fscore_{level}@{tau:g}"] = scores.fscore[float(tau)]
            row[f"hausdorff_{level}"] = scores.hausdorff
        row.update({"iou_b": self.iou_b, "iou_b_penalised": self.iou_b_penalised,
                    "iou_oriented": self.iou_oriented, "rotation_error_deg": self.rotation_error_deg,
                    "translation_error": self.translation_error, "scale_error": self.scale_error,
                    "n_gt": self.n_gt, "n_pred": self.n_pred, "n_missed": len(self.missed_ids),
                    "n_extra": len(self.extra_ids)})
        if self.plausibility_pred is not None:
            row["interpenetration_volume"] = self.plausibility_pred.interpenetration_volume
            row["floating_objects"] = self.plausibility_pred.floating_objects
            row["mean_floating_distance"] = self.plausibility_pred.mean_floating_distance
        row["seconds"] = self.seconds
        return row

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "summary": self.summary(), "scene": self.scene.to_dict(),
            "object_mean": self.object_mean.to_dict(), "objects": [o.to_dict() for o in self.objects],
            "missed_ids": list(self.missed_ids), "extra_ids": list(self.extra_ids),
            "match_method": self.match_method,
            "alignment": None if self.alignment is None else self.alignment.to_dict(),
            "plausibility_pred": None if self.plausibility_pred is None else self.plausibility_pred.to_dict(),
            "plausibility_gt": None if self.plausibility_gt is None else self.plausibility_gt.to_dict(),
            "warnings": list(self.warnings), "seconds": self.seconds, "taus": list(self.taus),
        }


@dataclass(frozen=True, eq=False)
class _Prepared:
    """One object sampled and boxed in its scene's world frame."""

    obj: SceneObject
    sample: SurfaceSample       # world points and normals
    vertices: np.ndarray        # (V, 3) finite world vertices
    corners: np.ndarray         # (8, 3) oriented box corners, world
    extent: np.ndarray          # (3,) oriented box side lengths, world units


def _object_seed(seed: int, object_id: int) -> int:
    return (seed * 1_000_003 + object_id * 7919) % (2 ** 32)


def _prepare(obj: SceneObject, count: int, seed: int) -> _Prepared:
    local = sample_surface_with_normals(obj.mesh, count, _object_seed(seed, obj.id))
    T = obj.pose.matrix
    points = local.points @ T[:3, :3].T + T[:3, 3]
    normals = None
    if local.normals is not None:
        normal_map = obj.pose.R / obj.pose.scale_xyz[None, :]  # inverse-transpose of R diag(s)
        normals = local.normals @ normal_map.T
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    vertices, faces = finite_faces(obj.mesh)
    used = np.unique(faces) if len(faces) else np.flatnonzero(np.all(np.isfinite(vertices), axis=1))
    local_vertices = vertices[used]
    if len(local_vertices) == 0:
        lo = hi = np.zeros(3)
    else:
        lo, hi = local_vertices.min(axis=0), local_vertices.max(axis=0)
    return _Prepared(obj, SurfaceSample(points, normals), local_vertices @ T[:3, :3].T + T[:3, 3],
                     box_corners(T, lo, hi), (hi - lo) * obj.pose.scale_xyz)


def _transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ T[:3, :3].T + T[:3, 3]


def _moved(p: _Prepared, T: np.ndarray, s: float) -> _Prepared:
    """The prepared object under a similarity T (uniform scale s)."""
    normals = None if p.sample.normals is None else p.sample.normals @ (T[:3, :3] / s).T
    return _Prepared(p.obj, SurfaceSample(_transform(T, p.sample.points), normals),
                     _transform(T, p.vertices), _transform(T, p.corners), p.extent * s)


def _normalise_uniform(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Points mapped by the uniform normalisation of ``reference``'s AABB (centre, largest side -> 2)."""
    if len(reference) == 0:
        return points
    lo, hi = reference.min(axis=0), reference.max(axis=0)
    side = float(np.max(hi - lo))
    return (points - 0.5 * (lo + hi)) * (2.0 / side if side > 0 else 1.0)


def _normalise_per_axis(points: np.ndarray) -> np.ndarray:
    if len(points) == 0:
        return points
    lo, hi = points.min(axis=0), points.max(axis=0)
    side = np.where(hi - lo > 0, hi - lo, 1.0)
    return (points - 0.5 * (lo + hi)) * (2.0 / side)


def rotation_error_deg(R_pred: np.ndarray, R_gt: np.ndarray, symmetry_order: int = 1) -> float:
    """Geodesic angle between two rotations, degrees, minimised over the object's symmetry about its
    own y axis: order k >= 2 tries the k rotations by 360/k degrees; 0 (continuous) compares the
    y axes only; 1 means no symmetry."""
    if symmetry_order == 0:
        cos = float(np.clip(R_pred[:, 1] @ R_gt[:, 1], -1.0, 1.0))
        return float(np.degrees(np.arccos(cos)))
    best = 180.0
    for j in range(max(1, symmetry_order)):
        a = 2.0 * np.pi * j / max(1, symmetry_order)
        c, s = np.cos(a), np.sin(a)
        R_sym = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
        cos = (np.trace(R_gt.T @ R_pred @ R_sym) - 1.0) / 2.0
        best = min(best, float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))
    return best


def _object_points_pair(pred: np.ndarray, gt: np.ndarray, mode: str,
                        scene_reference: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if mode == "uniform":
        return _normalise_uniform(pred, pred), _normalise_uniform(gt, gt)
    if mode == "per_axis":
        return _normalise_per_axis(pred), _normalise_per_axis(gt)
    if scene_reference is None:
        return pred, gt
    return _normalise_uniform(pred, scene_reference), _normalise_uniform(gt, scene_reference)


def _score_pair(pred: _Prepared, gt: _Prepared, R_align: np.ndarray, config: EvalConfig,
                scene_reference: np.ndarray | None) -> ObjectScores:
    p_pts, g_pts = _object_points_pair(pred.sample.points, gt.sample.points, config.object_normalisation,
                                       scene_reference)
    points = point_cloud_scores(p_pts, g_pts, config.taus, config.threads)
    order = config.symmetry.get(gt.obj.label, config.default_symmetry)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(gt.extent > 0, pred.extent / gt.extent, np.nan)
    return ObjectScores(
        gt_id=gt.obj.id, pred_id=pred.obj.id, label=gt.obj.label, points=points,
        iou_aabb=aabb_iou(aabb_of_points(pred.vertices), aabb_of_points(gt.vertices)),
        iou_oriented=oriented_box_iou(pred.corners, gt.corners),
        rotation_error_deg=rotation_error_deg(R_align @ pred.obj.pose.R, gt.obj.pose.R, order),
        translation_error=float(np.linalg.norm(pred.corners.mean(axis=0) - gt.corners.mean(axis=0))),
        scale_error=float(np.nanmean(np.abs(ratio - 1.0))) if np.any(np.isfinite(ratio)) else float("nan"))


def _union(prepared: list[_Prepared]) -> tuple[np.ndarray, np.ndarray | None]:
    if not prepared:
        return np.zeros((0, 3)), None
    points = np.concatenate([p.sample.points for p in prepared])
    if any(p.sample.normals is None for p in prepared):
        return points, None
    return points, np.concatenate([p.sample.normals for p in prepared])


def _extent(points: np.ndarray) -> float:
    return float(np.max(points.max(axis=0) - points.min(axis=0))) if len(points) else 0.0


def _placed(prepared: list[_Prepared], T: np.ndarray | None = None) -> list[PlacedObject]:
    out = []
    for p in prepared:
        mesh = p.obj.world_mesh()
        if T is not None:
            mesh.apply_transform(T)
        out.append(PlacedObject(mesh, p.corners, p.sample.points))
    return out


def evaluate_scene(pred: Scene, gt: Scene, config: EvalConfig | None = None, name: str = "scene") -> SceneEvaluation:
    """Score ``pred`` against ``gt``. The ground truth needs at least one object with surface; an
    empty prediction scores F 0 and infinite Chamfer distances (and every object missed)."""
    config = config or EvalConfig()
    start = time.perf_counter()
    warnings: list[str] = []
    up = np.asarray(config.up, dtype=np.float64)
    if config.frame == "camera":
        if gt.camera is None:
            raise InputError(f"{name} (ground truth)", "scoring in the camera frame needs a camera (with its "
                                                       "T_world_cam) in the scene")
        up = up_in_camera_frame(gt, up)
        gt = scene_in_camera_frame(gt, f"{name} (ground truth)")
        pred = scene_in_camera_frame(pred, f"{name} (prediction)")
    gt_prep = [_prepare(o, config.points_per_object, config.seed) for o in sorted(gt.objects, key=lambda o: o.id)]
    gt_points, gt_normals = _union(gt_prep)
    if len(gt_points) == 0:
        raise InputError(name, "ground-truth scene has no object with a surface: nothing to score against")
    pred_prep = [_prepare(o, config.points_per_object, config.seed) for o in sorted(pred.objects, key=lambda o: o.id)]
    for p in pred_prep:
        if len(p.sample.points) == 0:
            warnings.append(f"predicted object {p.obj.id} ({p.obj.label}) has no finite vertex: scored as empty")
        elif p.sample.normals is None:
            warnings.append(f"predicted object {p.obj.id} ({p.obj.label}) has no surface area: its vertices are used")
    pred_prep = [p for p in pred_prep if len(p.sample.points) > 0] + [p for p in pred_prep if len(p.sample.points) == 0]
    pred_points, _ = _union(pred_prep)
    if len(pred_points) == 0:
        warnings.append("prediction is empty: F-score 0 and infinite Chamfer distance")

    gt_size, pred_size = _extent(gt_points), _extent(pred_points)
    if gt_size > 0 and pred_size > 0 and max(gt_size / pred_size, pred_size / gt_size) > UNITS_RATIO_WARNING:
        warnings.append(f"prediction extent {pred_size:.4g} and ground-truth extent {gt_size:.4g} differ by more "
                        f"than {UNITS_RATIO_WARNING:g}x: is the prediction in other units?")

    alignment = None
    if config.align and len(pred_points) > 0:
        alignment = align_point_clouds(pred_points, gt_points, config.alignment, gt_normals)
        pred_prep = [_moved(p, alignment.T_target_source, alignment.scale) for p in pred_prep]
        pred_points = _transform(alignment.T_target_source, pred_points)
        if alignment.stage != "fine":
            warnings.append(f"robust ICP fell back to the {alignment.stage} result")
    R_align = np.eye(3) if alignment is None else alignment.T_target_source[:3, :3] / alignment.scale

    scene_reference = gt_points if config.scene_normalisation == "uniform" else None
    if scene_reference is not None:
        scene_scores = point_cloud_scores(_normalise_uniform(pred_points, gt_points),
                                          _normalise_uniform(gt_points, gt_points), config.taus, config.threads)
    else:
        scene_scores = point_cloud_scores(pred_points, gt_points, config.taus, config.threads)

    matching = match_objects([p.obj.id for p in pred_prep], [g.obj.id for g in gt_prep],
                             [aabb_of_points(p.vertices) for p in pred_prep],
                             [aabb_of_points(g.vertices) for g in gt_prep], config.match, config.match_max_distance)
    objects = tuple(_score_pair(pred_prep[pi], gt_prep[gi], R_align, config, scene_reference)
                    for pi, gi in matching.pairs)
    return _assemble(name, pred_prep, gt_prep, matching, objects, scene_scores, alignment, config, warnings,
                     gt_points, gt, start, up)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _assemble(name: str, pred_prep: list[_Prepared], gt_prep: list[_Prepared], matching: Matching,
              objects: tuple[ObjectScores, ...], scene_scores: PointCloudScores,
              alignment: RegistrationResult | None, config: EvalConfig, warnings: list[str],
              gt_points: np.ndarray, gt: Scene, start: float, up: np.ndarray) -> SceneEvaluation:
    missed = tuple(gt_prep[g].obj.id for g in matching.missed)
    extra = tuple(pred_prep[p].obj.id for p in matching.extra)
    if missed:
        warnings.append(f"{len(missed)} ground-truth object(s) without a match: ids {list(missed)}")
    if extra:
        warnings.append(f"{len(extra)} predicted object(s) without a match: ids {list(extra)}")
    ious = [o.iou_aabb for o in objects]
    plaus_pred = plaus_gt = None
    if config.plausibility:
        up = up if gt.floor is None else gt.floor.normal
        floor_height = None if gt.floor is None else -gt.floor.offset
        tolerance = 0.01 * _extent(gt_points)
        T_pred = None if alignment is None else alignment.T_target_source
        plaus_pred = plausibility(_placed(pred_prep, T_pred), up, floor_height, tolerance)
        plaus_gt = plausibility(_placed(gt_prep), up, floor_height, tolerance)
    return SceneEvaluation(
        name=name, scene=scene_scores,
        object_mean=mean_scores([o.points for o in objects]) if objects else empty_prediction_scores(config.taus),
        objects=objects,
        iou_b=float(np.mean(ious)) if ious else 0.0,
        iou_b_penalised=float(np.sum(ious) / max(1, len(ious) + len(missed) + len(extra))),
        iou_oriented=float(np.mean([o.iou_oriented for o in objects])) if objects else 0.0,
        rotation_error_deg=_mean([o.rotation_error_deg for o in objects]),
        translation_error=_mean([o.translation_error for o in objects]),
        scale_error=_mean([o.scale_error for o in objects]),
        n_gt=len(gt_prep), n_pred=len(pred_prep), missed_ids=missed, extra_ids=extra,
        match_method=matching.method, alignment=alignment, plausibility_pred=plaus_pred,
        plausibility_gt=plaus_gt, warnings=tuple(warnings), seconds=time.perf_counter() - start,
        taus=tuple(float(t) for t in config.taus))
