"""The pose stage components behind the registry, fed like the pipeline feeds them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from pose_scenes import make_scene, pose_error
from sceneforge.amodal.base import AmodalResult
from sceneforge.perception.base import ObjectObservation, PerceptionResult
from sceneforge.pose.base import build_problem
from sceneforge.registry import available, create
from sceneforge.types import SceneObject


@pytest.fixture(scope="module")
def staged():
    problem, truths, _ = make_scene()
    instances = np.zeros((problem.camera.height, problem.camera.width), np.int32)
    for t in problem.targets:
        instances[t.visible_mask] = t.id
    observations = tuple(ObjectObservation(t.id, f"obj{t.id}", t.visible_mask, np.argwhere(t.visible_mask),
                                           t.points_world) for t in problem.targets)
    depth = np.zeros(instances.shape, np.float32)  # floor pixels: plane depth from the camera
    K_inv = np.linalg.inv(problem.camera.K)
    T = problem.camera.T_world_cam
    vs, us = np.nonzero(instances == 0)
    rays = np.stack([us, vs, np.ones_like(us)], 1) @ K_inv.T @ T[:3, :3].T
    lam = -T[1, 3] / rays[:, 1]
    ok = lam > 0
    depth[vs[ok], us[ok]] = lam[ok]  # z of the ray direction in camera frame is 1
    perception = PerceptionResult(problem.camera, problem.floor, depth, instances,
                                  np.zeros(instances.shape + (3,), np.uint8), observations, problem.background)
    amodal = {t.id: AmodalResult(t.mask, np.zeros((1, 1, 3), np.uint8), (0, 0, 1, 1), 0.0) for t in problem.targets}
    objects = [SceneObject(t.id, f"obj{t.id}", t.mesh, t.initial_pose) for t in problem.targets]
    return perception, amodal, objects, truths


def test_both_pose_components_are_registered():
    assert {"initial", "optimise"} <= set(available("pose"))


def test_initial_keeps_the_poses(staged):
    perception, amodal, objects, _ = staged
    result = create("pose", "initial").refine(perception, objects, amodal)
    assert [o.pose for o in result.objects] == [o.pose for o in objects]


def test_problem_uses_amodal_targets_and_a_floor_mask(staged):
    perception, amodal, objects, _ = staged
    problem = build_problem(perception, objects, amodal)
    assert all(t.mask is amodal[t.id].mask for t in problem.targets)
    assert problem.floor_mask.sum() > 0.3 * problem.floor_mask.size
    assert not np.any(problem.floor_mask & (perception.instances > 0))


def test_optimise_stage_improves_poses_and_reports(staged):
    perception, amodal, objects, truths = staged
    stage = create("pose", "optimise", iterations=60, patience=15)
    assert stage.describe() == {"name": "optimise", "config": {"iterations": 60, "patience": 15}}
    result = stage.refine(perception, objects, amodal)
    assert [o.id for o in result.objects] == [o.id for o in objects]
    before = np.mean([pose_error(o.pose, t)[1] for o, t in zip(objects, truths)])
    after = np.mean([pose_error(o.pose, t)[1] for o, t in zip(result.objects, truths)])
    assert after < 0.5 * before
    report = json.loads(json.dumps(result.report))
    assert report["name"] == "optimise" and len(report["objects"]) == len(objects)
    assert {o["model"] for o in report["objects"]} == {"planar", "5dof"}


def test_optimise_stage_returns_the_shape_the_image_prefers(staged):
    """An object given a wrong mesh (the ellipsoid in its box), with its own mesh among the shape
    stage's alternatives: the stage returns the object with that mesh (maybe stretched: a kept
    measured height) and names it in the report."""
    perception, amodal, objects, _ = staged
    first = objects[0]
    right = first.mesh.copy()
    right.metadata["name"] = "right"
    ellipsoid = trimesh.creation.icosphere(subdivisions=3, radius=0.5).apply_scale(right.extents)
    wrong = SceneObject(first.id, first.label, ellipsoid, first.pose)
    stage = create("pose", "optimise", iterations=20, patience=15)
    result = stage.refine(perception, [wrong, *objects[1:]], amodal, {first.id: ((right, first.pose),)})
    assert result.objects[0].mesh.metadata.get("name") == "right"
    assert len(result.objects[0].mesh.vertices) == len(right.vertices)
    assert [o.mesh for o in result.objects[1:]] == [o.mesh for o in objects[1:]]
    report = result.report["objects"][0]
    assert report["start"] == "shape 0" and report["shape"] == "right"


def test_bad_settings_name_the_field():
    with pytest.raises(Exception, match="model must be"):
        create("pose", "optimise", model="12dof")


def test_auto_pose_stage_optimises_only_with_depth():
    from sceneforge.pose.base import InitialPoses, resolve_pose_stage
    from sceneforge.pose.learned import LearnedOptimisedPoses

    # with depth: the optimisation started from the shipped model's poses (without a checkpoint:
    # optimise alone, tests/test_learned_pose.py)
    assert isinstance(resolve_pose_stage("auto", depth_given=True), LearnedOptimisedPoses)
    assert isinstance(resolve_pose_stage(None, depth_given=False), InitialPoses)
    assert isinstance(resolve_pose_stage("initial", depth_given=True), InitialPoses)
    built = resolve_pose_stage({"name": "optimise", "config": {"iterations": 7}}, depth_given=False)
    assert built.settings.iterations == 7
    with pytest.raises(Exception, match="unknown pose component 'optimize'"):
        resolve_pose_stage("optimize", depth_given=True)
