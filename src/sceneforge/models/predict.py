"""Inference: K flow samples per scene, the most consistent with the masks and depth kept.

The K samples are drawn jointly for all objects of the scene; then, with ``select="object"`` (the
default), each object keeps its own most consistent sample (the consistency terms below are per
object), or with ``select="scene"`` one whole sample is kept (lowest mean over the objects).

Consistency of an object's pose (lower is better), in normalised units:

- ``fit``: mean distance from each observed object point to the posed mesh, read from a signed
  distance grid of the unit mesh (the visible surface must lie on the object);
- ``free_space``: share of posed mesh samples that project onto a pixel whose observed depth is
  farther by more than ``tolerance`` but lies outside the object's mask grown by ``mask_margin``
  pixels (the camera would have seen the object there); weighted by ``free_space_weight``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from sceneforge.geometry.camera import backproject_depth
from sceneforge.models.checkpoint import LoadedPoseModel
from sceneforge.models.data import (
    NormalisedPoses,
    PoseSample,
    UnitMesh,
    build_conditions,
    camera_pose,
    collate_samples,
    target_pose,
    vectors_to_poses,
)
from sceneforge.models.flow import euler_sample
from sceneforge.models.pose_model import POSE_DIM, PoseConditions, PoseModel
from sceneforge.models.rotations import rotvec_to_matrix, uniform_rotations
from sceneforge.pose.sdf import build_sdf_grid, sample_sdf
from sceneforge.types import Normalisation, SceneInput, Similarity


@dataclass(frozen=True)
class ScoringConfig:
    """Weights of the consistency score; tolerance in normalised units, mask_margin in pixels;
    ``grid_resolution`` the side of each unit mesh's signed distance grid (the ``fit`` term)."""

    free_space_weight: float = 1.0
    tolerance: float = 0.02
    mask_margin: int = 2
    fit_points: int = 256
    grid_resolution: int = 24


@dataclass(frozen=True)
class RegistrationConfig:
    """Registration of every sample to the view before scoring (:func:`register_samples`): ``steps``
    Adam steps (0: none; rate ``lr``, cosine decay to 0) on a rotation increment (axis-angle, rad),
    the translation and the log-scale (normalised units); ``scale_prior`` weighs the squared
    log-ratio of the scale to the sampled one (0 = free scale), ``silhouette`` the mean distance
    (normalised units) of seen mesh samples outside the mask."""

    steps: int = 100
    lr: float = 0.03
    scale_prior: float = 0.3
    silhouette: float = 4.0


def _dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """(H, W) bool mask grown by ``pixels`` (square structuring element)."""
    if pixels <= 0:
        return mask
    import cv2

    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


@dataclass(frozen=True, eq=False)
class ObjectPosePrediction:
    """One object's predicted pose: ``T_cam_obj`` = similarity (uniform scale) of its canonical mesh."""

    object_id: int
    T_cam_obj: Similarity


SELECTIONS = ("object", "scene")
ROTATIONS = ("model", "uniform")


@dataclass(frozen=True, eq=False)
class PosePrediction:
    """The kept poses of one scene: ``scores`` (K,) each sample's mean score over the objects (K + 1
    with the incoming poses last), ``chosen`` the sample kept for each object (order of ``objects``)."""

    objects: tuple[ObjectPosePrediction, ...]
    normalisation: Normalisation
    scores: tuple[float, ...]
    chosen: tuple[int, ...]


@torch.no_grad()
def sample_pose_vectors(model: PoseModel, conditions: PoseConditions, samples: int, steps: int,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, N, POSE_DIM) conditions -> (B, samples, N, POSE_DIM) Euler samples of the flow."""
    B, N = conditions.object_mask.shape
    encoded = model.encode(conditions).repeat(samples)
    x0 = torch.randn(B * samples, N, POSE_DIM, generator=generator)
    x1 = euler_sample(lambda x, t: model.velocity(x, t, encoded), x0, steps)
    return x1.reshape(B, samples, N, POSE_DIM)


@dataclass(frozen=True, eq=False)
class UnitGrids:
    """Signed distance grids of N unit meshes: values (N, D, D, D) indexed [z, y, x], box lo, hi (N, 3)."""

    values: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor


def unit_distance_grids(units: list[UnitMesh], resolution: int) -> UnitGrids:
    """Grids of the unit meshes (each mesh whole: only distances near its surface are used)."""
    grids = [build_sdf_grid(unit.unit_mesh(), resolution, max_parts=1) for unit in units]
    return UnitGrids(*(torch.from_numpy(np.stack([getattr(g, k) for g in grids])).float() for k in ("values", "lo", "hi")))


def surface_distance(poses: NormalisedPoses, grids: UnitGrids, observed: list[torch.Tensor]) -> torch.Tensor:
    """(K, N) mean distance (normalised units) from each object's observed points to its posed mesh
    (the unit mesh's grid read at the points mapped into unit coordinates, times S; differentiable).

    poses : R (K, N, 3, 3), T (K, N, 3), S (K, N).  observed : per object (P_i, 3), normalised frame.
    """
    K, N = poses.T.shape[:2]
    points = torch.nn.utils.rnn.pad_sequence(observed, batch_first=True)                    # (N, P, 3)
    valid = torch.nn.utils.rnn.pad_sequence([torch.ones(len(o)) for o in observed], batch_first=True)
    unit = torch.einsum("knji,knpj->nkpi", poses.R, points[None] - poses.T[:, :, None]) / poses.S.T[:, :, None, None]
    distance = sample_sdf(grids.values, grids.lo, grids.hi, unit.reshape(N, -1, 3)).reshape(N, K, -1).abs()
    return ((distance * valid[:, None]).sum(-1) / valid.sum(-1)[:, None]).T * poses.S


def consistency_scores(poses: NormalisedPoses, mesh_points: torch.Tensor, grids: UnitGrids,
                       observed: list[torch.Tensor], scene_input: SceneInput, object_ids: tuple[int, ...],
                       norm: Normalisation, config: ScoringConfig = ScoringConfig()) -> torch.Tensor:
    """(K, N) score of each object in each of K samples of one scene (lower = more consistent).

    poses : R (K, N, 3, 3), T (K, N, 3), S (K, N).  mesh_points : (N, M, 3) unit-mesh samples.
    grids : the unit meshes' distance grids (:func:`unit_distance_grids`).
    observed : per object (P_i, 3) observed points in the normalised frame.
    """
    K, N = poses.T.shape[:2]
    posed = poses.S[..., None, None] * torch.einsum("knij,nmj->knmi", poses.R, mesh_points) + poses.T[:, :, None]
    fit = surface_distance(poses, grids, observed)
    cam = posed.double() * norm.scale + torch.tensor(norm.centre)               # (K, N, M, 3) metres
    K_mat = scene_input.camera.K
    z = cam[..., 2]
    u = np.rint((K_mat[0, 0] * cam[..., 0] / z.clamp(min=1e-6) + K_mat[0, 2]).numpy()).astype(np.int64)
    v = np.rint((K_mat[1, 1] * cam[..., 1] / z.clamp(min=1e-6) + K_mat[1, 2]).numpy()).astype(np.int64)
    H, W = scene_input.height, scene_input.width
    inside = (u >= 0) & (u < W) & (v >= 0) & (v < H) & (z.numpy() > 0)
    uc, vc = np.clip(u, 0, W - 1), np.clip(v, 0, H - 1)
    depth = scene_input.depth[vc, uc]
    own_masks = np.stack([_dilate(scene_input.instances == i, config.mask_margin) for i in object_ids])
    on_own = own_masks[np.arange(N)[None, :, None], vc, uc]
    seen_behind = (depth > 0) & (depth > z.numpy() + config.tolerance * norm.scale)
    violation = inside & seen_behind & ~on_own
    free = torch.from_numpy(violation.mean(axis=-1))                                 # (K, N)
    return fit + config.free_space_weight * free.to(fit.dtype)


def _outside_distance(scene_input: SceneInput, object_ids: tuple[int, ...], margin: int) -> torch.Tensor:
    """(N, H, W) distance in pixels from each pixel to the object's mask grown by ``margin`` (0 inside)."""
    import cv2

    fields = [cv2.distanceTransform((~_dilate(scene_input.instances == i, margin)).astype(np.uint8), cv2.DIST_L2, 3)
              for i in object_ids]
    return torch.from_numpy(np.stack(fields)).float()


def register_samples(poses: NormalisedPoses, mesh_points: torch.Tensor, grids: UnitGrids,
                     observed: list[torch.Tensor], scene_input: SceneInput, object_ids: tuple[int, ...],
                     norm: Normalisation, config: RegistrationConfig,
                     scoring: ScoringConfig = ScoringConfig()) -> NormalisedPoses:
    """Each object of each sample registered to what the view shows of it (all K x N at once).

    Minimises, by Adam on R = exp(w) R0, T and log S: the ``fit`` term of :func:`consistency_scores`
    (:func:`surface_distance`); ``silhouette`` x the mean distance outside the object's mask (grown
    by ``mask_margin``; pixels turned into normalised units at the sample's depth) of the posed mesh
    samples that the depth says would be seen (not behind the observed surface); ``scale_prior`` x
    (log S/S0)^2. poses : R (K, N, 3, 3), T (K, N, 3), S (K, N).  mesh_points : (N, M, 3).
    grids : the unit meshes' distance grids.  observed : per object (P_i, 3), normalised frame.
    """
    if config.steps <= 0:
        return poses
    K, N = poses.T.shape[:2]
    outside = _outside_distance(scene_input, object_ids, scoring.mask_margin)[:, None]    # (N, 1, H, W) pixels
    depth = torch.from_numpy(np.array(scene_input.depth, dtype=np.float32))
    H, W = depth.shape
    fx, fy, cx, cy = (float(scene_input.camera.K[0, 0]), float(scene_input.camera.K[1, 1]),
                      float(scene_input.camera.K[0, 2]), float(scene_input.camera.K[1, 2]))
    centre = torch.tensor(norm.centre, dtype=torch.float32)
    R0, log_s0 = poses.R.detach().float(), poses.S.detach().float().log()
    w = torch.zeros(K, N, 3, requires_grad=True)
    T = poses.T.detach().float().clone().requires_grad_(True)
    log_s = log_s0.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([w, T, log_s], lr=config.lr)
    decay = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (1 + np.cos(np.pi * step / config.steps)))
    with torch.enable_grad():
        for _ in range(config.steps):
            current = NormalisedPoses(rotvec_to_matrix(w) @ R0, T, log_s.exp())
            loss = surface_distance(current, grids, observed).sum()
            loss = loss + config.scale_prior * ((log_s - log_s0) ** 2).sum()
            if config.silhouette > 0:
                posed = current.S[..., None, None] * torch.einsum("knij,nmj->knmi", current.R, mesh_points)
                cam = (posed + T[:, :, None]) * norm.scale + centre                        # (K, N, M, 3) metres
                z = cam[..., 2].clamp(min=1e-3)
                u, v = fx * cam[..., 0] / z + cx, fy * cam[..., 1] / z + cy
                pixels = torch.stack([(u + 0.5) / W * 2 - 1, (v + 0.5) / H * 2 - 1], -1)     # (K, N, M, 2)
                away = torch.nn.functional.grid_sample(outside, pixels.transpose(0, 1).reshape(N, 1, -1, 2),
                                                       align_corners=False, padding_mode="border")
                away = away.reshape(N, K, -1).transpose(0, 1)                                 # (K, N, M) pixels
                with torch.no_grad():
                    seen_depth = depth[v.round().long().clamp(0, H - 1), u.round().long().clamp(0, W - 1)]
                    seen = (seen_depth <= 0) | (seen_depth > z - scoring.tolerance * norm.scale)
                loss = loss + config.silhouette * (away * z / (fx * norm.scale) * seen).mean(-1).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            decay.step()
    with torch.no_grad():
        return NormalisedPoses(rotvec_to_matrix(w) @ R0, T.detach(), log_s.detach().exp())


def _with_candidate(poses: NormalisedPoses, candidate: list[tuple[np.ndarray, np.ndarray, float]]) -> NormalisedPoses:
    """Append one candidate (per object (R, T, S) in the normalised frame) as sample K."""
    R = torch.from_numpy(np.stack([c[0] for c in candidate])).to(poses.R.dtype)
    T = torch.from_numpy(np.stack([c[1] for c in candidate])).to(poses.T.dtype)
    S = torch.tensor([c[2] for c in candidate], dtype=poses.S.dtype)
    return NormalisedPoses(torch.cat([poses.R, R[None]]), torch.cat([poses.T, T[None]]), torch.cat([poses.S, S[None]]))


def predict_poses(loaded: LoadedPoseModel, scene_input: SceneInput, meshes: Mapping[int, trimesh.Trimesh],
                  samples: int = 8, steps: int = 20, seed: int = 0,
                  scoring: ScoringConfig = ScoringConfig(), select: str = "object",
                  incoming: Mapping[int, Similarity] | None = None,
                  registration: RegistrationConfig = RegistrationConfig(), rotations: str = "model") -> PosePrediction:
    """Poses of the objects of ``meshes`` (object id -> canonical mesh) seen in ``scene_input``.

    Objects with too few depth pixels are left out of the prediction. ``select``: "object" or
    "scene" (see the module doc). ``incoming``: poses (``T_cam_obj``) known from elsewhere for every
    object (e.g. the shape stage's), scored as one more candidate (index K); when one is kept it is
    returned as given. ``registration``: each sample registered to the view before scoring
    (:func:`register_samples`; ``steps=0``: not at all). ``rotations="uniform"`` replaces the
    samples' rotations by uniformly random ones (an ablation: what the model's rotations add).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, got {select!r}")
    if rotations not in ROTATIONS:
        raise ValueError(f"rotations must be one of {', '.join(ROTATIONS)}, got {rotations!r}")
    rng = np.random.default_rng(seed)
    units = {int(i): UnitMesh.of(m) for i, m in meshes.items()}
    arrays, ids, norm = build_conditions(scene_input, sorted(units), units, loaded.data, rng)
    batch = collate_samples([PoseSample(**arrays, target=None, object_ids=tuple(ids), normalisation=norm,
                                        source=scene_input.source)])
    generator = torch.Generator().manual_seed(seed)
    vectors = sample_pose_vectors(loaded.model, batch.conditions, samples, steps, generator)[0]   # (K, N, D)
    poses = vectors_to_poses(vectors)
    if rotations == "uniform":
        poses = NormalisedPoses(uniform_rotations(tuple(poses.T.shape[:2]), generator), poses.T, poses.S)
    observed = []
    for object_id in ids:
        points = norm.apply(backproject_depth(scene_input.camera, scene_input.depth, scene_input.instances == object_id))
        observed.append(torch.from_numpy(points[rng.permutation(len(points))[:scoring.fit_points]]).float())
    mesh_points = torch.from_numpy(np.stack([units[i].sample(loaded.data.mesh_points, rng) for i in ids]))
    grids = unit_distance_grids([units[i] for i in ids], scoring.grid_resolution)
    poses = register_samples(poses, mesh_points, grids, observed, scene_input, tuple(ids), norm, registration, scoring)
    if incoming is not None:
        poses = _with_candidate(poses, [target_pose(incoming[i].matrix, units[i], norm) for i in ids])
    per_object = consistency_scores(poses, mesh_points, grids, observed, scene_input, tuple(ids), norm, scoring)
    scores = per_object.mean(dim=1)
    chosen = per_object.argmin(dim=0).tolist() if select == "object" else [int(torch.argmin(scores))] * len(ids)
    objects = []
    for n, (object_id, k) in enumerate(zip(ids, chosen)):
        if k == samples:          # the incoming pose
            objects.append(ObjectPosePrediction(object_id, incoming[object_id]))
            continue
        T = camera_pose(poses.R[k, n].double().numpy(), poses.T[k, n].double().numpy(),
                        float(poses.S[k, n]), units[object_id], norm)
        objects.append(ObjectPosePrediction(object_id, Similarity.from_matrix(T)))
    return PosePrediction(tuple(objects), norm, tuple(float(s) for s in scores), tuple(int(k) for k in chosen))
