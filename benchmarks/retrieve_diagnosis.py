"""Which factor limits a shape backend's IoU-B and strict F-score: extents, centre, yaw or shape.

On development engine views (never the benchmark's seed 777), each reconstructed object is rebuilt
from its ground truth with one factor taken from the prediction, everything else true:

- shape: the predicted mesh normalised to a unit box, at the true extents, yaw and centre;
- extents (and ext_x / ext_y / ext_z, one axis each): the true mesh at the predicted box extents
  (along the object's own axes);
- yaw: the true mesh turned by the predicted yaw error about its up axis; tilt+yaw: the
  predicted rotation (the floor's tilt included);
- centre: the true mesh at the predicted box centre;
- pred: the prediction itself.

Every variant is scored like benchmarks/reconstruct.py (camera frame, no alignment): the mean
per-object AABB IoU and the scene's IoU-B, F-Score-S@0.02 and F-Score-O. A factor whose variant
scores far below 1 / 100 limits the backend. Per-object rows (predicted / true extents, yaw error,
centre error) go to the log with ``--objects``.

    python benchmarks/retrieve_diagnosis.py --seed 3 --views 12
    python benchmarks/retrieve_diagnosis.py --seed 5 --views 10 --shape '{"name": "retrieve", "config": {"variants_per_category": 4}}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import trimesh

from sceneforge.engine_views import write_engine_view
from sceneforge.eval import EvalConfig, evaluate_scene
from sceneforge.eval.boxes import aabb_iou, aabb_of_points
from sceneforge.eval.frames import scene_in_camera_frame
from sceneforge.io.inputs import load_input
from sceneforge.pipeline import ScenePipeline
from sceneforge.types import SceneObject, Similarity

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reconstruct import LAYOUT  # noqa: E402

HELD_OUT_SEED = 777  # benchmarks/reconstruct.py's views: not for development
FACTORS = ("shape", "extents", "ext_x", "ext_y", "ext_z", "yaw", "tilt+yaw", "centre", "pred")


def unit_box(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The mesh scaled per axis into the unit box centred at the origin."""
    out = mesh.copy()
    vertices = np.asarray(out.vertices)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    out.vertices = (vertices - (lo + hi) / 2) / np.maximum(hi - lo, 1e-12)
    return out


def box_extents_centre(obj: SceneObject) -> tuple[np.ndarray, np.ndarray]:
    """(3,) box side lengths along the object's axes and (3,) box centre, in its scene's frame (metres)."""
    vertices = np.asarray(obj.mesh.vertices)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    s = obj.pose.scale_xyz
    return (hi - lo) * s, obj.pose.R @ (s * (lo + hi) / 2) + obj.pose.t


def axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about the unit vector ``axis`` (Rodrigues)."""
    axis = axis / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def yaw_error(R_pred: np.ndarray, R_true: np.ndarray) -> float:
    """Angle (radians) about the true object's up axis from its x axis to the predicted one."""
    up, a = R_true[:, 1], R_true[:, 0]
    b = R_pred[:, 0] - up * (R_pred[:, 0] @ up)
    return float(np.arctan2(np.cross(a, b) @ up, a @ b))


def variants(pred: SceneObject, truth: SceneObject) -> dict[str, SceneObject]:
    """The leave-one-in objects (module docstring), in the camera frame both are given in."""
    shape_p, shape_t = unit_box(pred.mesh), unit_box(truth.mesh)
    ext_p, centre_p = box_extents_centre(pred)
    ext_t, centre_t = box_extents_centre(truth)
    R_t = truth.pose.R
    R_yaw = axis_rotation(R_t[:, 1], yaw_error(pred.pose.R, R_t)) @ R_t

    def build(shape, extents, R, centre) -> SceneObject:
        mesh = shape.copy()
        mesh.vertices = np.asarray(mesh.vertices) * extents
        return SceneObject(pred.id, pred.label, mesh, Similarity(R, centre, 1.0), pred.confidence)

    def one_axis(axis: int) -> np.ndarray:
        extents = ext_t.copy()
        extents[axis] = ext_p[axis]
        return extents

    return {"truth": build(shape_t, ext_t, R_t, centre_t), "shape": build(shape_p, ext_t, R_t, centre_t),
            "extents": build(shape_t, ext_p, R_t, centre_t), "ext_x": build(shape_t, one_axis(0), R_t, centre_t),
            "ext_y": build(shape_t, one_axis(1), R_t, centre_t), "ext_z": build(shape_t, one_axis(2), R_t, centre_t),
            "yaw": build(shape_t, ext_t, R_yaw, centre_t), "tilt+yaw": build(shape_t, ext_t, pred.pose.R, centre_t),
            "centre": build(shape_t, ext_t, R_t, centre_p), "pred": build(shape_p, ext_p, pred.pose.R, centre_p)}


def world_vertices(obj: SceneObject) -> np.ndarray:
    T = obj.pose.matrix
    return np.asarray(obj.mesh.vertices) @ T[:3, :3].T + T[:3, 3]


def diagnose(shape, seed: int, views: int, points: int = 4096, log=print):
    """Per-object rows and per-view scene scores of every FACTORS variant (module docstring)."""
    if seed == HELD_OUT_SEED:
        raise SystemExit(f"seed {HELD_OUT_SEED} is the held-out benchmark's: diagnose on another seed")
    pipeline = ScenePipeline(shape=shape, pose="initial")
    config = EvalConfig(align=False, points_per_object=points, taus=(0.1, 0.02), frame="camera", threads=1,
                        plausibility=False)
    rows, scenes = [], []
    for index in range(views):
        with tempfile.TemporaryDirectory() as tmp:
            view = write_engine_view(Path(tmp), seed=seed, index=index, size=512, layout=LAYOUT)
            result = pipeline.run(load_input(view.input_dir))
        pred, truth = scene_in_camera_frame(result.scene), scene_in_camera_frame(view.ground_truth)
        truth_by_id = {o.id: o for o in truth.objects}
        rebuilt = {name: [] for name in FACTORS}
        for obj in pred.objects:
            if obj.id not in truth_by_id:
                continue
            built = variants(obj, truth_by_id[obj.id])
            box = aabb_of_points(world_vertices(built["truth"]))
            ious = {name: aabb_iou(aabb_of_points(world_vertices(built[name])), box) for name in FACTORS}
            for name in FACTORS:
                rebuilt[name].append(built[name])
            ext_p, centre_p = box_extents_centre(obj)
            ext_t, centre_t = box_extents_centre(truth_by_id[obj.id])
            rows.append({"view": index, "id": obj.id, "label": obj.label, "ious": ious, "ratio": ext_p / ext_t,
                         "centre_error": centre_p - centre_t,
                         "yaw_error_deg": float(np.degrees(yaw_error(obj.pose.R, truth_by_id[obj.id].pose.R)))})
        scene = {}
        for name, objects in rebuilt.items():
            summary = evaluate_scene(dataclasses.replace(pred, objects=tuple(objects)), truth, config).summary()
            scene[name] = (summary["iou_b"], 100 * summary["fscore_s@0.02"], 100 * summary["fscore_o@0.1"])
        scenes.append(scene)
        log(f"view {index}: {len(rebuilt['pred'])} objects, IoU-B {scene['pred'][0]:.3f}")
    return rows, scenes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=3, help="engine dataset seed (not 777, the held-out one)")
    parser.add_argument("--views", type=int, default=12)
    parser.add_argument("--shape", default='"retrieve"', help="shape stage as JSON (a name or {name, config})")
    parser.add_argument("--objects", action="store_true", help="also print one row per object")
    args = parser.parse_args(argv)
    rows, scenes = diagnose(json.loads(args.shape), args.seed, args.views)
    if args.objects:
        for r in rows:
            print(f"view {r['view']} id {r['id']} {r['label']}: extents pred/true {np.round(r['ratio'], 2)}, "
                  f"centre error {np.round(r['centre_error'], 3)} m, yaw error {r['yaw_error_deg']:.1f} deg | "
                  + " ".join(f"{k} {v:.2f}" for k, v in r["ious"].items()))
    ratios = np.array([r["ratio"] for r in rows])
    print(f"\n{len(rows)} objects, engine seed {args.seed} views 0-{args.views - 1}, shape {args.shape}; extents "
          f"pred/true median {np.round(np.median(ratios, axis=0), 3)} (x, y, z), mean |log| "
          f"{np.round(np.mean(np.abs(np.log(ratios)), axis=0), 3)}\n")
    print("| predicted factor | object IoU (mean) | IoU-B | F-Score-S@0.02 | F-Score-O |")
    print("|---|---|---|---|---|")
    for name in FACTORS:
        print(f"| {name} | {np.mean([r['ious'][name] for r in rows]):.3f} | "
              f"{np.mean([s[name][0] for s in scenes]):.3f} | {np.mean([s[name][1] for s in scenes]):.1f} | "
              f"{np.mean([s[name][2] for s in scenes]):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
