"""Engine datasets -> tensors for the pose model.

One sample is one view (``scene_*/views/NNNN``) of a dataset written by ``sceneforge synth``. The
objects kept are those visible in the view with at least ``min_pixels`` pixels of valid depth.

Frames. Poses live in the *observed view-centric frame*: the camera's axes (OpenCV), normalised by
the axis-aligned box of the observed object points (depth back-projected under the instance masks;
per object the 2nd..98th percentile along each axis, then the union):
``p_norm = (p_cam - centre) / scale``, scale = the box's largest side. This is I-Scene's view-centric
normalisation computed from what an input shows; the engine's view.json normalisation uses the
complete meshes, which are unknown at test time, so it cannot be the model's frame.

Pose parameters of an object, for its canonical mesh re-normalised to a unit box (centre of its box
at the origin, largest side 1: ``q = (p_obj - box_centre) / extent``): ``p_norm = S * R @ q + T``,
with R the rotation (camera axes), T the centre of the object's box in the normalised frame and S its
largest side in normalised units (uniform scale).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from sceneforge.errors import InputError
from sceneforge.geometry.camera import backproject_depth
from sceneforge.io.inputs import load_input
from sceneforge.io.meshes import load_mesh
from sceneforge.models.pose_model import PoseConditions
from sceneforge.models.rotations import matrix_to_6d, sixd_to_matrix
from sceneforge.types import Normalisation, SceneInput

OBSERVED_FRAME = "camera_observed"
# pose vector x = [r6, (T - 0) * T_GAIN, (log S - LOG_S_MEAN) / LOG_S_STD]: unit-order spread for the flow
T_GAIN = 2.0
LOG_S_MEAN = -0.5
LOG_S_STD = 0.5
MESH_CACHE_SCENES = 256


@dataclass(frozen=True)
class PoseDataConfig:
    """Sizes of the tensors built per view (saved in the checkpoint's config.json)."""

    image_height: int = 96
    image_width: int = 96
    crop_size: int = 48
    crop_margin: float = 0.15
    object_points: int = 256
    scene_points: int = 512
    mesh_points: int = 256
    min_pixels: int = 16
    scene_extent: float = 1.5

    def __post_init__(self) -> None:
        for name in ("image_height", "image_width", "crop_size"):
            value = getattr(self, name)
            if value < 8 or value % 8:
                raise ValueError(f"{name} must be a positive multiple of 8, got {value}")
        for name in ("object_points", "scene_points", "mesh_points", "min_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseDataConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown data settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True, eq=False)
class UnitMesh:
    """A canonical mesh and its unit normalisation ``q = (p - centre) / extent`` (box centre, largest side)."""

    mesh: trimesh.Trimesh
    centre: np.ndarray
    extent: float

    @classmethod
    def of(cls, mesh: trimesh.Trimesh) -> UnitMesh:
        low, high = mesh.bounds
        return cls(mesh, 0.5 * (low + high), float(np.max(high - low)))

    def unit_mesh(self) -> trimesh.Trimesh:
        """A copy of the mesh in unit coordinates."""
        return self.mesh.copy().apply_translation(-self.centre).apply_scale(1.0 / self.extent)

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, 3) float32 area-uniform surface samples in unit coordinates."""
        areas = self.mesh.area_faces
        faces = rng.choice(len(areas), size=count, p=areas / areas.sum())
        tri = self.mesh.triangles[faces]
        r1, r2 = rng.random((2, count, 1))
        s1 = np.sqrt(r1)
        points = (1 - s1) * tri[:, 0] + s1 * (1 - r2) * tri[:, 1] + s1 * r2 * tri[:, 2]
        return ((points - self.centre) / self.extent).astype(np.float32)


@dataclass(frozen=True, eq=False)
class ObjectObservation:
    """What one view shows of one object. points_norm : (K, 3) in the observed normalised frame."""

    object_id: int
    mask: np.ndarray
    points_norm: np.ndarray


@dataclass(frozen=True, eq=False)
class PoseSample:
    """One view as numpy arrays (shapes as in :class:`PoseConditions` without the batch axis).

    target : (N, POSE_DIM) pose vectors, or None when no ground truth is known.
    """

    scene_image: np.ndarray
    scene_points: np.ndarray
    scene_points_valid: np.ndarray
    crops: np.ndarray
    object_points: np.ndarray
    observations: np.ndarray
    mesh_points: np.ndarray
    target: np.ndarray | None
    object_ids: tuple[int, ...]
    normalisation: Normalisation
    source: str


@dataclass(frozen=True, eq=False)
class PoseBatch:
    """Collated samples: conditions padded to the largest object count, targets (B, N, POSE_DIM)."""

    conditions: PoseConditions
    target: torch.Tensor | None
    object_ids: tuple[tuple[int, ...], ...]
    normalisations: tuple[Normalisation, ...]
    sources: tuple[str, ...]


# ---------------------------------------------------------------------------------------- poses


@dataclass(frozen=True, eq=False)
class NormalisedPoses:
    """Poses in the observed normalised frame: R (..., 3, 3), T (..., 3), S (...,) largest side."""

    R: torch.Tensor
    T: torch.Tensor
    S: torch.Tensor


def poses_to_vectors(R: torch.Tensor, T: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """R (..., 3, 3), T (..., 3), S (...,) -> (..., POSE_DIM) flow-space vectors."""
    return torch.cat([matrix_to_6d(R), T * T_GAIN, ((S.log() - LOG_S_MEAN) / LOG_S_STD)[..., None]], dim=-1)


def vectors_to_poses(x: torch.Tensor) -> NormalisedPoses:
    """(..., POSE_DIM) flow-space vectors -> rotation, translation, scale (inverse of poses_to_vectors)."""
    return NormalisedPoses(sixd_to_matrix(x[..., 0:6]), x[..., 6:9] / T_GAIN, (x[..., 9] * LOG_S_STD + LOG_S_MEAN).exp())


def target_pose(T_cam_obj: np.ndarray, unit: UnitMesh, norm: Normalisation) -> tuple[np.ndarray, np.ndarray, float]:
    """Ground-truth (R (3, 3), T (3,), S) of an object in the observed frame from its camera pose (with scale)."""
    A = np.asarray(T_cam_obj, dtype=np.float64)[:3, :3]
    s_obj = float(np.linalg.norm(A, axis=0).mean())
    U, _, Vt = np.linalg.svd(A / s_obj)
    R = U @ Vt
    centre_cam = A @ unit.centre + T_cam_obj[:3, 3]
    return R, (centre_cam - norm.centre) / norm.scale, s_obj * unit.extent / norm.scale


def camera_pose(R: np.ndarray, T: np.ndarray, S: float, unit: UnitMesh, norm: Normalisation) -> np.ndarray:
    """(4, 4) T_cam_obj (with uniform scale) of the canonical mesh from a normalised-frame pose."""
    scale = S * norm.scale / unit.extent
    out = np.eye(4)
    out[:3, :3] = R * scale
    out[:3, 3] = norm.scale * np.asarray(T) + norm.centre - scale * (R @ unit.centre)
    return out


# ---------------------------------------------------------------------------------- observation


def observed_normalisation(points_per_object: Sequence[np.ndarray], low_q: float = 0.02) -> Normalisation:
    """Box of the observed object points (robust per object: ``low_q .. 1 - low_q`` quantiles per axis)."""
    lows, highs = [], []
    for points in points_per_object:
        lows.append(np.quantile(points, low_q, axis=0))
        highs.append(np.quantile(points, 1.0 - low_q, axis=0))
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    side = float(np.max(high - low))
    if not side > 1e-6:
        raise InputError(None, "the observed object points span no volume; cannot normalise the view")
    return Normalisation(0.5 * (low + high), side, OBSERVED_FRAME)


def observe_objects(scene_input: SceneInput, object_ids: Sequence[int], min_pixels: int
                    ) -> tuple[list[ObjectObservation], Normalisation]:
    """Masked depth points of each object with >= min_pixels valid depth pixels, and the normalisation."""
    if scene_input.depth is None or scene_input.camera is None or scene_input.instances is None:
        raise InputError(scene_input.source, "the learned pose model needs instance masks, depth and a camera")
    kept = []
    for object_id in object_ids:
        mask = scene_input.instances == object_id
        points = backproject_depth(scene_input.camera, scene_input.depth, mask)
        if len(points) >= min_pixels:
            kept.append((int(object_id), mask, points))
    if not kept:
        raise InputError(scene_input.source, f"no object has {min_pixels} or more pixels with valid depth")
    norm = observed_normalisation([p for _, _, p in kept])
    return [ObjectObservation(i, m, norm.apply(p).astype(np.float32)) for i, m, p in kept], norm


def _take(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` rows of ``points`` in random order (without replacement when there are enough)."""
    idx = rng.permutation(len(points))[:count] if len(points) >= count else rng.integers(0, len(points), count)
    return points[idx]


def _crop_box(mask: np.ndarray, margin: float) -> tuple[float, float, float]:
    """Square crop around a mask: centre (u, v) and side, pixels."""
    v, u = np.nonzero(mask)
    u0, u1, v0, v1 = u.min(), u.max(), v.min(), v.max()
    side = max(u1 - u0, v1 - v0) + 1.0
    return 0.5 * (u0 + u1), 0.5 * (v0 + v1), side * (1.0 + 2.0 * margin)


def _warp(image: np.ndarray, cu: float, cv: float, side: float, size: int, nearest: bool) -> np.ndarray:
    """Square crop of side ``side`` pixels centred at (cu, cv), resampled to size x size (0 outside)."""
    import cv2

    k = size / side
    M = np.array([[k, 0.0, size / 2.0 - 0.5 - k * cu], [0.0, k, size / 2.0 - 0.5 - k * cv]])
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(image, M, (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def observation_features(obs: ObjectObservation, image_hw: tuple[int, int]) -> np.ndarray:
    """(OBSERVATION_DIM,) box of observed points (6), their mean (3), 2D box in [-1, 1] (4), log pixel share (1)."""
    H, W = image_hw
    p = obs.points_norm
    v, u = np.nonzero(obs.mask)
    box2d = np.array([u.min() / W, v.min() / H, (u.max() + 1) / W, (v.max() + 1) / H]) * 2.0 - 1.0
    share = (np.log(len(u) / (H * W)) + 5.0) / 3.0
    out = np.concatenate([np.quantile(p, 0.02, axis=0), np.quantile(p, 0.98, axis=0), p.mean(axis=0), box2d, [share]])
    return out.astype(np.float32)


def build_conditions(scene_input: SceneInput, object_ids: Sequence[int], unit_meshes: dict[int, UnitMesh],
                     config: PoseDataConfig, rng: np.random.Generator
                     ) -> tuple[dict[str, np.ndarray], list[int], Normalisation]:
    """The numpy condition arrays of one input for the objects of ``object_ids`` that are observed."""
    import cv2

    observations, norm = observe_objects(scene_input, [i for i in object_ids if i in unit_meshes], config.min_pixels)
    H, W = scene_input.height, scene_input.width
    rgb = scene_input.image.astype(np.float32) / 255.0
    depth = scene_input.depth
    depth_norm = np.where(depth > 0, np.clip((depth - norm.centre[2]) / norm.scale, -2.0, 2.0), -3.0)
    size = (config.image_width, config.image_height)
    scene_image = np.concatenate([cv2.resize(rgb, size, interpolation=cv2.INTER_AREA),
                                  cv2.resize(depth_norm.astype(np.float32), size, interpolation=cv2.INTER_NEAREST)[..., None]],
                                 axis=-1).transpose(2, 0, 1)
    all_points = norm.apply(backproject_depth(scene_input.camera, depth)).astype(np.float32)
    near = np.all(np.abs(all_points) <= config.scene_extent, axis=1)
    all_points = all_points[near]
    scene_points = np.zeros((config.scene_points, 3), np.float32)
    scene_valid = np.zeros(config.scene_points, bool)
    if len(all_points):
        chosen = _take(all_points, config.scene_points, rng) if len(all_points) >= config.scene_points else \
            all_points[rng.permutation(len(all_points))]
        scene_points[:len(chosen)] = chosen
        scene_valid[:len(chosen)] = True
    crops, obj_points, feats, mesh_points = [], [], [], []
    for obs in observations:
        cu, cv, side = _crop_box(obs.mask, config.crop_margin)
        crop_rgb = _warp(rgb, cu, cv, side, config.crop_size, nearest=False)
        crop_mask = _warp(obs.mask.astype(np.float32), cu, cv, side, config.crop_size, nearest=True)
        crops.append(np.concatenate([crop_rgb, crop_mask[..., None]], axis=-1).transpose(2, 0, 1))
        low, high = np.quantile(obs.points_norm, 0.02, axis=0), np.quantile(obs.points_norm, 0.98, axis=0)
        local = (obs.points_norm - 0.5 * (low + high)) / max(float(np.max(high - low)), 1e-3)
        obj_points.append(_take(local, config.object_points, rng))
        feats.append(observation_features(obs, (H, W)))
        mesh_points.append(unit_meshes[obs.object_id].sample(config.mesh_points, rng))
    arrays = {
        "scene_image": scene_image.astype(np.float32),
        "scene_points": scene_points,
        "scene_points_valid": scene_valid,
        "crops": np.stack(crops).astype(np.float32),
        "object_points": np.stack(obj_points).astype(np.float32),
        "observations": np.stack(feats),
        "mesh_points": np.stack(mesh_points),
    }
    return arrays, [o.object_id for o in observations], norm


# -------------------------------------------------------------------------------------- dataset


def find_views(root: str | Path) -> list[Path]:
    """Every ``scene_*/views/*`` folder holding a view.json under ``root``, sorted.

    ``root`` is an engine dataset, or a folder of engine datasets (e.g. ``iscene/`` and ``openset/``,
    one level down) that are used together.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    views = sorted(p.parent for pattern in ("scene_*/views/*/view.json", "*/scene_*/views/*/view.json")
                   for p in root.glob(pattern))
    if not views:
        raise InputError(root, "no engine views here (expected [DATASET/]scene_*/views/NNNN/view.json; make them "
                               "with sceneforge synth)")
    return views


def split_views(views: Sequence[Path], split: str, val_scenes: int) -> list[Path]:
    """"all", or "train"/"val": the last ``val_scenes`` scenes (sorted by name) are held out."""
    if split == "all":
        return list(views)
    scenes = sorted({v.parent.parent for v in views})
    held = set(scenes[len(scenes) - val_scenes:]) if val_scenes > 0 else set()
    if split == "val":
        return [v for v in views if v.parent.parent in held]
    if split == "train":
        return [v for v in views if v.parent.parent not in held]
    raise ValueError(f"split must be all, train or val, got {split!r}")


class EngineViewDataset(torch.utils.data.Dataset):
    """Views of an engine dataset as :class:`PoseSample`.

    ``dataset[i]`` is deterministic (seeded by ``(seed, i)``); ``dataset[(i, draw_seed)]`` draws the
    random point subsets with ``draw_seed`` (the training sampler passes one per step, so a resumed
    run sees the same draws).
    """

    def __init__(self, root: str | Path, config: PoseDataConfig | None = None, split: str = "all",
                 val_scenes: int = 0, seed: int = 0):
        self.root = Path(root)
        self.config = config or PoseDataConfig()
        self.views = split_views(find_views(root), split, val_scenes)
        if not self.views:
            raise InputError(root, f"the {split!r} split is empty ({val_scenes} held-out scene(s))")
        self.seed = seed
        self._meshes: dict[Path, dict[int, UnitMesh]] = {}

    def __len__(self) -> int:
        return len(self.views)

    def _unit_meshes(self, scene_dir: Path) -> dict[int, UnitMesh]:
        """The scene's canonical meshes, kept for the last ``MESH_CACHE_SCENES`` scenes used."""
        if scene_dir in self._meshes:
            self._meshes[scene_dir] = self._meshes.pop(scene_dir)
        else:
            doc = json.loads((scene_dir / "scene.json").read_text(encoding="utf-8"))
            self._meshes[scene_dir] = {int(o["id"]): UnitMesh.of(load_mesh(scene_dir / o["mesh"]))
                                       for o in doc["objects"]}
            while len(self._meshes) > MESH_CACHE_SCENES:
                self._meshes.pop(next(iter(self._meshes)))
        return self._meshes[scene_dir]

    def __getitem__(self, item: int | tuple[int, int]) -> PoseSample:
        index, draw = item if isinstance(item, tuple) else (item, None)
        rng = np.random.default_rng([self.seed, index] if draw is None else [self.seed, index, draw])
        view_dir = self.views[index]
        doc = json.loads((view_dir / "view.json").read_text(encoding="utf-8"))
        unit = self._unit_meshes(view_dir.parent.parent)
        visible = [o for o in doc["objects"] if o.get("visible", True)]
        scene_input = load_input(view_dir)
        arrays, ids, norm = build_conditions(scene_input, [int(o["id"]) for o in visible], unit, self.config, rng)
        poses = {int(o["id"]): np.asarray(o["T_cam_obj"], dtype=np.float64) for o in visible}
        targets = []
        for object_id in ids:
            R, T, S = target_pose(poses[object_id], unit[object_id], norm)
            targets.append(poses_to_vectors(torch.from_numpy(R), torch.from_numpy(T), torch.tensor(S)).numpy())
        return PoseSample(**arrays, target=np.stack(targets).astype(np.float32), object_ids=tuple(ids),
                          normalisation=norm, source=str(view_dir))


def collate_samples(samples: Sequence[PoseSample]) -> PoseBatch:
    """Pad to the largest object count; ``object_mask`` marks the real objects."""
    B = len(samples)
    N = max(len(s.object_ids) for s in samples)

    def pad(name: str) -> torch.Tensor:
        first = getattr(samples[0], name)
        out = np.zeros((B, N) + first.shape[1:], dtype=first.dtype)
        for b, s in enumerate(samples):
            value = getattr(s, name)
            out[b, :len(value)] = value
        return torch.from_numpy(out)

    mask = torch.zeros(B, N, dtype=torch.bool)
    for b, s in enumerate(samples):
        mask[b, :len(s.object_ids)] = True
    cond = PoseConditions(
        scene_image=torch.from_numpy(np.stack([s.scene_image for s in samples])),
        scene_points=torch.from_numpy(np.stack([s.scene_points for s in samples])),
        scene_points_valid=torch.from_numpy(np.stack([s.scene_points_valid for s in samples])),
        crops=pad("crops"), object_points=pad("object_points"), observations=pad("observations"),
        mesh_points=pad("mesh_points"), object_mask=mask)
    target = None if any(s.target is None for s in samples) else pad("target")
    return PoseBatch(cond, target, tuple(s.object_ids for s in samples), tuple(s.normalisation for s in samples),
                     tuple(s.source for s in samples))
