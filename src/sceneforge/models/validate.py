"""Pose errors of a trained model on held-out engine views (a quick check; the scene metrics of the
benchmark, IoU-B and F-Score-S, are computed by ``sceneforge evaluate`` on exported scenes).

Per object, for the kept sample of each view: rotation error (degrees, geodesic), translation error
(distance between predicted and true box centres, in units of the observed normalisation, i.e. of the
scene's largest observed side) and scale error ``|log(S_pred / S_true)|``.

The geodesic error says nothing useful for symmetric shapes (a box turned by a half turn is the same
box), so rotation is also scored by shape: ``rotation_shape`` is the symmetric mean nearest-neighbour
distance between the object's unit mesh (largest side 1) rotated by the predicted and by the true
rotation (0 for any symmetry of the shape); ``rotation_shape_random`` is the same for a uniformly
random rotation, the level of a model that has learned nothing about rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from sceneforge.io.inputs import load_input
from sceneforge.io.scene_json import read_scene_json
from sceneforge.models.checkpoint import LoadedPoseModel
from sceneforge.models.data import EngineViewDataset, UnitMesh, target_pose
from sceneforge.models.predict import predict_poses
from sceneforge.models.rotations import geodesic_angle

SHAPE_POINTS = 512


@dataclass(frozen=True)
class PoseErrors:
    """Medians and means over all objects of the evaluated views."""

    views: int
    objects: int
    rotation_deg_median: float
    translation_median: float
    log_scale_median: float
    rotation_deg_mean: float
    translation_mean: float
    log_scale_mean: float
    rotation_shape_median: float
    rotation_shape_random_median: float
    seconds_per_view: float


def rotation_shape_distance(R_a: np.ndarray, R_b: np.ndarray, points: np.ndarray) -> float:
    """Symmetric mean nearest-neighbour distance between ``points`` (M, 3) rotated by R_a and by R_b."""
    from scipy.spatial import cKDTree

    a, b = points @ R_a.T, points @ R_b.T
    return 0.5 * float(cKDTree(a).query(b)[0].mean() + cKDTree(b).query(a)[0].mean())


def pose_errors(loaded: LoadedPoseModel, dataset: EngineViewDataset, max_views: int | None = None,
                samples: int = 8, steps: int = 20, seed: int = 0) -> PoseErrors:
    """Predict every view of ``dataset`` (up to ``max_views``) and compare with its ground truth."""
    import json
    import time

    rot, trans, scale, shape, shape_random = [], [], [], [], []
    rng = np.random.default_rng(seed)
    views = dataset.views[:max_views] if max_views else dataset.views
    began = time.perf_counter()
    for i, view in enumerate(views):
        scene = read_scene_json(view.parent.parent)
        truth = {int(o["id"]): np.asarray(o["T_cam_obj"]) for o in
                 json.loads((view / "view.json").read_text(encoding="utf-8"))["objects"]}
        pred = predict_poses(loaded, load_input(view), {o.id: o.mesh for o in scene.objects if o.id in truth},
                             samples=samples, steps=steps, seed=seed + i)
        for obj in pred.objects:
            unit = UnitMesh.of(scene.object(obj.object_id).mesh)
            R_t, T_t, S_t = target_pose(truth[obj.object_id], unit, pred.normalisation)
            R_p, T_p, S_p = target_pose(obj.T_cam_obj.matrix, unit, pred.normalisation)
            rot.append(float(np.degrees(float(geodesic_angle(torch.from_numpy(R_p), torch.from_numpy(R_t))))))
            trans.append(float(np.linalg.norm(T_p - T_t)))
            scale.append(abs(float(np.log(S_p / S_t))))
            points = unit.sample(SHAPE_POINTS, rng).astype(np.float64)
            shape.append(rotation_shape_distance(R_p, R_t, points))
            shape_random.append(rotation_shape_distance(Rotation.random(random_state=rng).as_matrix(), R_t, points))
    seconds = (time.perf_counter() - began) / max(len(views), 1)
    if not rot:
        raise ValueError("no object was predicted in the evaluated views")
    return PoseErrors(len(views), len(rot), float(np.median(rot)), float(np.median(trans)), float(np.median(scale)),
                      float(np.mean(rot)), float(np.mean(trans)), float(np.mean(scale)), float(np.median(shape)),
                      float(np.median(shape_random)), seconds)
