"""Pose errors of a trained model on held-out engine views (a quick check; the scene metrics of the
benchmark, IoU-B and F-Score-S, are computed by ``sceneforge evaluate`` on exported scenes).

Per object, for the kept sample of each view: rotation error (degrees, geodesic), translation error
(distance between predicted and true box centres, in units of the observed normalisation, i.e. of the
scene's largest observed side) and scale error ``|log(S_pred / S_true)|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sceneforge.io.inputs import load_input
from sceneforge.io.scene_json import read_scene_json
from sceneforge.models.checkpoint import LoadedPoseModel
from sceneforge.models.data import EngineViewDataset, UnitMesh, target_pose
from sceneforge.models.predict import predict_poses
from sceneforge.models.rotations import geodesic_angle


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
    seconds_per_view: float


def pose_errors(loaded: LoadedPoseModel, dataset: EngineViewDataset, max_views: int | None = None,
                samples: int = 8, steps: int = 20, seed: int = 0) -> PoseErrors:
    """Predict every view of ``dataset`` (up to ``max_views``) and compare with its ground truth."""
    import json
    import time

    rot, trans, scale = [], [], []
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
    seconds = (time.perf_counter() - began) / max(len(views), 1)
    if not rot:
        raise ValueError("no object was predicted in the evaluated views")
    return PoseErrors(len(views), len(rot), float(np.median(rot)), float(np.median(trans)), float(np.median(scale)),
                      float(np.mean(rot)), float(np.mean(trans)), float(np.mean(scale)), seconds)
