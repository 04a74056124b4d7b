"""Robust ICP as specified in the I-Scene appendix ("Robust ICP" and "Practical notes").

Steps, all on Open3D's registration (open3d-cpu, imported lazily):

1. Shared normalisation: ``x' = (x - c) / sigma`` with ``c`` the mid-point of the joint AABB of both
   clouds and ``sigma`` its largest side.
2. Voxel downsampling with ``v = 0.03`` (normalised units); normals on the downsampled and the
   full-resolution target.
3. Yaw sweep about the chosen up axis over {0, 45, ..., 315} degrees, each pre-scored by a trimmed
   symmetric Chamfer distance (trim 0.2, at most 2000 points per cloud); the best three get a short
   point-to-point seed ICP; the initialisation minimising ``rmse + v * (1 - fitness)`` wins.
4. Coarse point-to-point ICP (optionally with uniform scale) on the downsampled pair, threshold
   ``2.5 v``, ``T_coarse = max(10, floor(0.5 T))`` iterations; fine point-to-plane ICP with a Tukey
   loss ``k = 1.5 v`` on the full-resolution pair, threshold ``v`` (``1.5 v`` when it falls back to
   point-to-point), ``T_fine = max(10, T - T_coarse)`` iterations. With scale, the coarse result is
   pre-applied and fine ICP runs from identity, then the two are composed.
5. The rotation block is projected onto SO(3) by SVD (no reflection unless allowed); sanity checks
   (finite, scale in range, translation not excessive) fall back to the coarse result or identity.

:func:`align_point_clouds` runs this in the two normalised spaces of the practical notes (min/max
scaling by the output range; AABB re-centred to [-1, 1]) and keeps the better result.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

from sceneforge.errors import MissingDependencyError
from sceneforge.geometry.transforms import invert_transform, rotation_about_axis

UP_AXES = {"x": np.array([1.0, 0.0, 0.0]), "y": np.array([0.0, 1.0, 0.0]), "z": np.array([0.0, 0.0, 1.0])}
ScaleMode = Literal["none", "normalise", "icp"]
SCALE_MODES = ("none", "normalise", "icp")
NORMALISATIONS = ("minmax", "aabb")


@dataclass(frozen=True)
class RobustICPConfig:
    """Settings of the robust ICP; defaults are the I-Scene appendix values.

    voxel_size : v in normalised units (scene largest side = 1).
    max_iterations : T, the total budget split between coarse and fine stages.
    with_scale : estimate a uniform scale jointly with the rigid motion in the coarse stage.
    scale_refinement_iterations : with scale, a final point-to-point pass with scale at threshold v
        (an addition to the paper, see docs/metrics.md); 0 disables it.
    sparse_voxel_share : before the coarse downsampling, drop points in voxels holding fewer than
        max(2, share x median) points (an addition to the paper against scattered outliers); 0 disables.
    max_coarse_points : random subset (seeded) of each cloud that is voxel-downsampled for the
        coarse stage; at v = 0.03 it fills the same voxels as the whole cloud. None: every point.
    max_fine_points : cap on the full-resolution clouds of the fine stage (random subset, seeded);
        None uses every point.
    max_translation : sanity bound on the translation, normalised units.
    scale_range : sanity bounds on the estimated scale.
    """

    up_axis: str = "y"
    yaw_degrees: tuple[float, ...] = (0, 45, 90, 135, 180, 225, 270, 315)
    trim_ratio: float = 0.2
    prescore_points: int = 2000
    top_k: int = 3
    seed_iterations: int = 10
    voxel_size: float = 0.03
    max_iterations: int = 60
    with_scale: bool = False
    allow_reflection: bool = False
    max_fine_points: int | None = 10_000
    max_coarse_points: int | None = 50_000
    scale_refinement_iterations: int = 10
    sparse_voxel_share: float = 0.1
    max_translation: float = 1.5
    scale_range: tuple[float, float] = (0.2, 5.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.up_axis not in UP_AXES:
            raise ValueError(f"up_axis must be one of x, y, z, got {self.up_axis!r}")
        if not 0.0 <= self.trim_ratio < 1.0:
            raise ValueError(f"trim_ratio must be in [0, 1), got {self.trim_ratio}")
        if self.voxel_size <= 0:
            raise ValueError(f"voxel_size must be positive, got {self.voxel_size}")
        if self.max_iterations < 1 or self.top_k < 1 or self.prescore_points < 1:
            raise ValueError("max_iterations, top_k and prescore_points must be at least 1")

    @property
    def coarse_iterations(self) -> int:
        return max(10, int(np.floor(0.5 * self.max_iterations)))

    @property
    def fine_iterations(self) -> int:
        return max(10, self.max_iterations - self.coarse_iterations)


@dataclass(frozen=True)
class RegistrationResult:
    """Result of a registration, source -> target.

    T_target_source : (4, 4) similarity ``[s R | t]`` mapping source points onto the target, in the
        clouds' own units.
    scale : its uniform scale s (1.0 for a rigid result).
    fitness : share of source points with a target point within the final threshold, in [0, 1].
    inlier_rmse : RMS distance of those inliers, normalised units (largest side of the pair = 1).
    init_yaw_deg : the yaw of the winning initialisation, degrees about ``up_axis``.
    init_translation : its translation hypothesis: "centroids" (brought together) or "in_place".
    stage : "fine", or the fallback that was kept ("coarse", "identity").
    normalisation : "shared" for a single run; "minmax" or "aabb" when chosen by align_point_clouds.
    score : the selection score of align_point_clouds (Chamfer, unsquared mean), NaN otherwise.
    """

    T_target_source: np.ndarray
    scale: float
    fitness: float
    inlier_rmse: float
    init_yaw_deg: float
    init_translation: str
    stage: str
    normalisation: str = "shared"
    score: float = float("nan")
    candidates: dict[str, float] = field(default_factory=dict)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) source points -> (N, 3) in the target frame."""
        p = np.asarray(points, dtype=np.float64)
        return p @ self.T_target_source[:3, :3].T + self.T_target_source[:3, 3]

    def to_dict(self) -> dict[str, object]:
        return {"T_target_source": self.T_target_source.tolist(), "scale": self.scale,
                "fitness": self.fitness, "inlier_rmse": self.inlier_rmse,
                "init_yaw_deg": self.init_yaw_deg, "init_translation": self.init_translation,
                "stage": self.stage,
                "normalisation": self.normalisation, "score": self.score,
                "candidates": dict(self.candidates)}


def _open3d():
    try:
        import open3d as o3d
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("open3d-cpu", purpose="robust ICP alignment") from exc
    return o3d


def _cloud(points: np.ndarray):
    o3d = _open3d()
    pcd = o3d.geometry.PointCloud()
    pcd.points = o3d.utility.Vector3dVector(np.ascontiguousarray(points, dtype=np.float64))
    return pcd


def similarity_matrix(scale: float, centre: np.ndarray) -> np.ndarray:
    """(4, 4) matrix of ``x -> (x - centre) * scale``."""
    T = np.eye(4) * scale
    T[3, 3] = 1.0
    T[:3, 3] = -scale * np.asarray(centre, dtype=np.float64)
    return T


def shared_normalisation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4, 4) ``x' = (x - c) / sigma``: c the mid-point of the joint AABB, sigma its largest side."""
    both = np.concatenate([source, target])
    lo, hi = both.min(axis=0), both.max(axis=0)
    sigma = float(np.max(hi - lo))
    return similarity_matrix(1.0 / sigma if sigma > 0 else 1.0, 0.5 * (lo + hi))


def trimmed_symmetric_chamfer(a: np.ndarray, b: np.ndarray, trim_ratio: float,
                              tree_b: cKDTree | None = None) -> float:
    """Mean NN distance a->b plus b->a, each after dropping the largest ``trim_ratio`` share."""
    tree_b = cKDTree(b) if tree_b is None else tree_b
    d_ab, _ = tree_b.query(a, k=1)
    d_ba, _ = cKDTree(a).query(b, k=1)
    return _trimmed_mean(d_ab, trim_ratio) + _trimmed_mean(d_ba, trim_ratio)


def _trimmed_mean(d: np.ndarray, trim_ratio: float) -> float:
    keep = max(1, int(np.ceil(len(d) * (1.0 - trim_ratio))))
    return float(np.mean(np.partition(d, keep - 1)[:keep]))


def _subsample(points: np.ndarray, count: int | None, rng: np.random.Generator) -> np.ndarray:
    if count is None or len(points) <= count:
        return points
    return points[rng.choice(len(points), size=count, replace=False)]


def yaw_candidate(yaw_deg: float, up_axis: str, source_centre: np.ndarray,
                  target_centre: np.ndarray) -> np.ndarray:
    """(4, 4) rotation by ``yaw_deg`` about ``up_axis`` through ``source_centre``, moving that point
    onto ``target_centre`` (pass the same point twice to rotate in place)."""
    R = rotation_about_axis(UP_AXES[up_axis], np.radians(yaw_deg))
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = target_centre - R @ source_centre
    return T


def yaw_candidates(config: RobustICPConfig, source: np.ndarray,
                   target: np.ndarray) -> list[tuple[float, str, np.ndarray]]:
    """(yaw_deg, translation hypothesis, T) initial guesses: every sweep yaw about the source
    centroid, with two translation hypotheses each: centroids brought together, and the source
    left in place (which is right when the prediction misses or adds objects, so that its centroid
    moved)."""
    src_c, tgt_c = source.mean(axis=0), target.mean(axis=0)
    out = []
    for yaw in config.yaw_degrees:
        out.append((float(yaw), "centroids", yaw_candidate(float(yaw), config.up_axis, src_c, tgt_c)))
        out.append((float(yaw), "in_place", yaw_candidate(float(yaw), config.up_axis, src_c, src_c)))
    return out


def project_similarity(T: np.ndarray, allow_reflection: bool = False) -> tuple[np.ndarray, float]:
    """Nearest ``[s R | t]`` to an affine (4, 4) matrix: R by SVD (det +1 unless reflections are
    allowed), s the mean singular value. Returns (T_projected, s)."""
    U, S, Vt = np.linalg.svd(T[:3, :3])
    R = U @ Vt
    if not allow_reflection and np.linalg.det(R) < 0:
        R = U @ np.diag([1.0, 1.0, -1.0]) @ Vt
    s = float(np.mean(S))
    out = np.eye(4)
    out[:3, :3] = s * R
    out[:3, 3] = T[:3, 3]
    return out, s


def transform_is_sane(T: np.ndarray, config: RobustICPConfig) -> bool:
    """Finite entries, scale within ``scale_range`` (near 1 when rigid), translation bounded."""
    if not np.all(np.isfinite(T)):
        return False
    det = float(np.linalg.det(T[:3, :3]))
    lo, hi = config.scale_range if config.with_scale else (0.9, 1.1)
    if not lo ** 3 <= abs(det) <= hi ** 3:
        return False
    return float(np.linalg.norm(T[:3, 3])) <= config.max_translation


def _estimate_normals(pcd, radius: float) -> None:
    o3d = _open3d()
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=radius, max_nn=30))


def _icp_point_to_point(src, tgt, threshold: float, init: np.ndarray, iterations: int, with_scale: bool):
    o3d = _open3d()
    reg = o3d.pipelines.registration
    return reg.registration_icp(src, tgt, threshold, init,
                                reg.TransformationEstimationPointToPoint(with_scale),
                                reg.ICPConvergenceCriteria(max_iteration=iterations))


def _icp_point_to_plane(src, tgt, threshold: float, init: np.ndarray, iterations: int, k: float):
    o3d = _open3d()
    reg = o3d.pipelines.registration
    return reg.registration_icp(src, tgt, threshold, init,
                                reg.TransformationEstimationPointToPlane(reg.TukeyLoss(k=k)),
                                reg.ICPConvergenceCriteria(max_iteration=iterations))


def _select_initialisation(src_down: np.ndarray, tgt_down: np.ndarray, src_pcd, tgt_pcd,
                           config: RobustICPConfig, rng: np.random.Generator) -> tuple[np.ndarray, float, str]:
    """Yaw sweep + trimmed-Chamfer pre-score + seed ICP on the top candidates
    -> (T_0, yaw_deg, translation hypothesis)."""
    v = config.voxel_size
    src_small = _subsample(src_down, config.prescore_points, rng)
    tgt_small = _subsample(tgt_down, config.prescore_points, rng)
    tgt_tree = cKDTree(tgt_small)
    prescored = []
    for yaw, hypothesis, T in yaw_candidates(config, src_down, tgt_down):
        moved = src_small @ T[:3, :3].T + T[:3, 3]
        score = trimmed_symmetric_chamfer(moved, tgt_small, config.trim_ratio, tgt_tree)
        prescored.append((score, yaw, hypothesis, T))
    prescored.sort(key=lambda item: (item[0], item[1], item[2]))
    best = None
    for _, yaw, hypothesis, T in prescored[: config.top_k]:
        res = _icp_point_to_point(src_pcd, tgt_pcd, 2.5 * v, T, config.seed_iterations, config.with_scale)
        objective = float(res.inlier_rmse) + v * (1.0 - float(res.fitness))
        if res.fitness == 0:
            objective = float("inf")
        if best is None or objective < best[0]:
            best = (objective, np.asarray(res.transformation), yaw, hypothesis)
    assert best is not None
    if not np.isfinite(best[0]):  # no seed ICP found any correspondence: keep the best pre-score
        return prescored[0][3], prescored[0][1], prescored[0][2]
    return best[1], best[2], best[3]


def _refine_scale(src_pre, tgt, T_fine_rel: np.ndarray, T_coarse: np.ndarray, config: RobustICPConfig) -> np.ndarray:
    """Short point-to-point pass with uniform scale at the fine threshold ``v``, from the fine
    result (``src_pre`` is the source with T_coarse already applied). The coarse scale is estimated
    with the wide ``2.5 v`` threshold, where outliers near the surface bias it; this pass re-estimates
    it from close correspondences only. Returns the composed (4, 4) transform of the raw source."""
    refined = _icp_point_to_point(src_pre, tgt, config.voxel_size, T_fine_rel,
                                  config.scale_refinement_iterations, True)
    if refined.fitness == 0:
        return T_fine_rel @ T_coarse
    return np.asarray(refined.transformation) @ T_coarse


def drop_sparse_voxels(points: np.ndarray, voxel: float, share: float) -> np.ndarray:
    """Points whose voxel holds at least ``max(2, share * m)`` points, m the median over points of
    their voxel's count: isolated outliers fall out, surfaces stay. Voxel downsampling alone turns
    30% scattered outliers into most of the downsampled cloud (each outlier keeps its own voxel),
    which drags a scale-estimating point-to-point ICP. The filter is skipped (all points returned)
    when ``share`` is 0 or when it would drop half of the cloud or more."""
    if share <= 0 or len(points) == 0:
        return points
    cells = np.floor(points / voxel).astype(np.int64)
    cells -= cells.min(axis=0)
    dims = cells.max(axis=0) + 1
    keys = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    per_point = counts[inverse]
    keep = per_point >= max(2.0, share * float(np.median(per_point)))
    return points[keep] if keep.sum() > 0.5 * len(points) else points


def robust_icp(source: np.ndarray, target: np.ndarray, config: RobustICPConfig | None = None,
               target_normals: np.ndarray | None = None) -> RegistrationResult:
    """Register ``source`` (N, 3) onto ``target`` (M, 3) with the I-Scene robust ICP.

    Both clouds must be non-empty and finite. ``target_normals`` (M, 3) unit vectors (for instance
    the face normals of surface samples) are used by the fine point-to-plane stage when given;
    otherwise they are estimated from the full-resolution target. Returns a RegistrationResult whose
    transform is in the clouds' own units (the shared normalisation is undone).
    """
    config = config or RobustICPConfig()
    source = np.asarray(source, dtype=np.float64).reshape(-1, 3)
    target = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    if len(source) == 0 or len(target) == 0:
        raise ValueError(f"robust ICP needs two non-empty clouds, got {len(source)} and {len(target)} points")
    if not (np.all(np.isfinite(source)) and np.all(np.isfinite(target))):
        raise ValueError("robust ICP needs finite points (found NaN or inf)")
    rng = np.random.default_rng(config.seed)
    N = shared_normalisation(source, target)
    src_n = source @ N[:3, :3].T + N[:3, 3]
    tgt_n = target @ N[:3, :3].T + N[:3, 3]
    v = config.voxel_size

    src_coarse = drop_sparse_voxels(_subsample(src_n, config.max_coarse_points, rng), v, config.sparse_voxel_share)
    tgt_coarse = drop_sparse_voxels(_subsample(tgt_n, config.max_coarse_points, rng), v, config.sparse_voxel_share)
    src_down_pcd = _cloud(src_coarse).voxel_down_sample(v)
    tgt_down_pcd = _cloud(tgt_coarse).voxel_down_sample(v)
    src_down, tgt_down = np.asarray(src_down_pcd.points), np.asarray(tgt_down_pcd.points)
    T0, yaw, hypothesis = _select_initialisation(src_down, tgt_down, src_down_pcd, tgt_down_pcd, config, rng)

    coarse = _icp_point_to_point(src_down_pcd, tgt_down_pcd, 2.5 * v, T0, config.coarse_iterations, config.with_scale)
    T_coarse, _ = project_similarity(np.asarray(coarse.transformation), config.allow_reflection)

    src_full = _cloud(drop_sparse_voxels(_subsample(src_n, config.max_fine_points, rng), v, config.sparse_voxel_share))
    tgt_index = _subsample(np.arange(len(tgt_n)), config.max_fine_points, rng)
    tgt_full = _cloud(tgt_n[tgt_index])
    if target_normals is not None and len(target_normals) == len(target):
        tgt_full.normals = _open3d().utility.Vector3dVector(
            np.ascontiguousarray(np.asarray(target_normals, dtype=np.float64)[tgt_index]))
    else:
        _estimate_normals(tgt_full, 2.0 * v)
    if config.with_scale:
        src_full.transform(T_coarse)
        fine = _icp_point_to_plane(src_full, tgt_full, v, np.eye(4), config.fine_iterations, 1.5 * v)
        T_fine = np.asarray(fine.transformation) @ T_coarse
    else:
        fine = _icp_point_to_plane(src_full, tgt_full, v, T_coarse, config.fine_iterations, 1.5 * v)
        T_fine = np.asarray(fine.transformation)
    if not tgt_full.has_normals() or fine.fitness == 0:  # no usable normals/correspondences: point-to-point
        fine = _icp_point_to_point(src_full, tgt_full, 1.5 * v, T_coarse if not config.with_scale else np.eye(4),
                                   config.fine_iterations, False)
        T_fine = np.asarray(fine.transformation) @ (T_coarse if config.with_scale else np.eye(4))
    if config.with_scale and config.scale_refinement_iterations > 0:
        T_fine = _refine_scale(src_full, tgt_full, T_fine @ np.linalg.inv(T_coarse), T_coarse, config)
    T_fine, _ = project_similarity(T_fine, config.allow_reflection)

    if transform_is_sane(T_fine, config):
        T_norm, stage, fitness, rmse = T_fine, "fine", float(fine.fitness), float(fine.inlier_rmse)
    elif transform_is_sane(T_coarse, config):
        T_norm, stage, fitness, rmse = T_coarse, "coarse", float(coarse.fitness), float(coarse.inlier_rmse)
    else:
        T_norm, stage, fitness, rmse = np.eye(4), "identity", float("nan"), float("nan")
    T_target_source = invert_transform(N) @ T_norm @ N
    T_target_source, scale = project_similarity(T_target_source, config.allow_reflection)
    return RegistrationResult(T_target_source, scale, fitness, rmse, yaw, hypothesis, stage)


def minmax_normalisation(points: np.ndarray, output_range: tuple[float, float] | None) -> np.ndarray:
    """(4, 4) min/max normalisation: the output range [lo, hi] (every axis) mapped onto [-1, 1].

    ``output_range`` is the generator's declared range (TRELLIS: (-0.5, 0.5), i.e. scale by 2);
    None takes the cloud's own smallest and largest coordinate.
    """
    if output_range is None:
        lo, hi = float(points.min()), float(points.max())
    else:
        lo, hi = float(output_range[0]), float(output_range[1])
    if not hi > lo:
        return np.eye(4)
    return similarity_matrix(2.0 / (hi - lo), np.full(3, 0.5 * (lo + hi)))


def aabb_normalisation(points: np.ndarray) -> np.ndarray:
    """(4, 4) AABB re-centred normalisation: box centre to the origin, largest side to [-1, 1]
    (uniform scale, so shapes are not distorted)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    side = float(np.max(hi - lo))
    return similarity_matrix(2.0 / side if side > 0 else 1.0, 0.5 * (lo + hi))


@dataclass(frozen=True)
class AlignmentConfig:
    """How a prediction is aligned to the ground truth before scoring.

    scale : "none" rigid only (both clouds share the target's normalisation);
        "normalise" each cloud normalised on its own (the I-Scene practical notes; the scale ratio
        of the two normalisations is kept), rigid ICP; "icp" (default) as "normalise" plus a uniform
        scale estimated by the coarse ICP, which removes the bias of the normalisations' own scale.
    source_range, target_range : declared output ranges for the min/max normalisation (None: own).
    selection_points : points per cloud used to pick the better normalisation.
    """

    icp: RobustICPConfig = field(default_factory=RobustICPConfig)
    scale: ScaleMode = "icp"
    source_range: tuple[float, float] | None = None
    target_range: tuple[float, float] | None = None
    normalisations: tuple[str, ...] = NORMALISATIONS
    selection_points: int = 5_000

    def __post_init__(self) -> None:
        if self.scale not in SCALE_MODES:
            raise ValueError(f"scale must be one of {', '.join(SCALE_MODES)}, got {self.scale!r}")
        unknown = set(self.normalisations) - set(NORMALISATIONS)
        if unknown or not self.normalisations:
            raise ValueError(f"normalisations must be a non-empty subset of {NORMALISATIONS}, "
                             f"got {self.normalisations}")


def _normalisation_pair(name: str, source: np.ndarray, target: np.ndarray,
                        config: AlignmentConfig) -> tuple[np.ndarray, np.ndarray]:
    if name == "minmax":
        N_t = minmax_normalisation(target, config.target_range)
        N_s = N_t if config.scale == "none" else minmax_normalisation(source, config.source_range)
    else:
        N_t = aabb_normalisation(target)
        N_s = N_t if config.scale == "none" else aabb_normalisation(source)
    return N_s, N_t


def align_point_clouds(source: np.ndarray, target: np.ndarray, config: AlignmentConfig | None = None,
                       target_normals: np.ndarray | None = None) -> RegistrationResult:
    """Robust ICP in each of the two normalised spaces of the I-Scene practical notes; the result
    with the lower Chamfer distance (unsquared mean, on up to ``selection_points`` points, in the
    target's frame) is kept and its ``normalisation`` names the space."""
    config = config or AlignmentConfig()
    icp_config = replace(config.icp, with_scale=config.scale == "icp")
    rng = np.random.default_rng(icp_config.seed)
    src_sel = _subsample(np.asarray(source, dtype=np.float64), config.selection_points, rng)
    tgt_sel = _subsample(np.asarray(target, dtype=np.float64), config.selection_points, rng)
    tgt_tree = cKDTree(tgt_sel)
    best, scores = None, {}
    for name in config.normalisations:
        N_s, N_t = _normalisation_pair(name, source, target, config)
        src_n = source @ N_s[:3, :3].T + N_s[:3, 3]
        tgt_n = target @ N_t[:3, :3].T + N_t[:3, 3]
        res = robust_icp(src_n, tgt_n, icp_config, target_normals)
        T, scale = project_similarity(invert_transform(N_t) @ res.T_target_source @ N_s, icp_config.allow_reflection)
        moved = src_sel @ T[:3, :3].T + T[:3, 3]
        d_st, _ = tgt_tree.query(moved, k=1)
        d_ts, _ = cKDTree(moved).query(tgt_sel, k=1)
        score = float(0.5 * (d_st.mean() + d_ts.mean()))
        scores[name] = score
        if best is None or score < best.score:
            best = replace(res, T_target_source=T, scale=scale, normalisation=name, score=score)
    assert best is not None
    return replace(best, candidates=scores)
