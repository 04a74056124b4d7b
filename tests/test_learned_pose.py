"""The learned pose model: rotations, rectified flow, the transformer's routing and equivariance,
the engine-dataset pipeline, checkpoints and resume, overfitting, the DINOv2 adapter, DDP and CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

roma = pytest.importorskip("roma", reason="roma is needed for 6D rotations: pip install -e .[learn]")
pytest.importorskip("safetensors", reason="safetensors is needed for checkpoints: pip install -e .[learn]")

from sceneforge.errors import InputError
from sceneforge.geometry.camera import backproject_depth
from sceneforge.io.inputs import load_input
from sceneforge.io.scene_json import read_scene_json
from sceneforge.models.checkpoint import load_model, save_model
from sceneforge.models.data import (
    EngineViewDataset,
    PoseDataConfig,
    UnitMesh,
    camera_pose,
    collate_samples,
    find_views,
    poses_to_vectors,
    split_views,
    target_pose,
    vectors_to_poses,
)
from sceneforge.models.flow import euler_sample, flow_training_sample, interpolate, velocity_target
from sceneforge.models.plot import plot_loss_curve
from sceneforge.models.pose_model import OBSERVATION_DIM, PoseConditions, PoseModel, PoseModelConfig
from sceneforge.models.predict import (
    RegistrationConfig,
    consistency_scores,
    predict_poses,
    register_samples,
    unit_distance_grids,
)
from sceneforge.models.rotations import matrix_to_6d, sixd_to_matrix
from sceneforge.models.train import (
    Distributed,
    RunConfig,
    StepBatchSampler,
    TrainConfig,
    flow_loss,
    step_generator,
    train_pose_model,
)

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)

TINY_MODEL = PoseModelConfig(dim=32, depth=2, heads=2, cnn_width=8, scene_point_centres=16,
                             object_point_centres=8, geometry_point_centres=8)
TINY_DATA = PoseDataConfig(image_height=32, image_width=48, crop_size=16, object_points=64, scene_points=128,
                           mesh_points=64)


def tiny_run(steps: int, **train) -> RunConfig:
    cfg = TrainConfig(steps=steps, batch_size=2, lr=1e-3, warmup_steps=1, log_every=1, checkpoint_every=1000,
                      **train)
    return RunConfig(TINY_MODEL, TINY_DATA, cfg)


def random_conditions(batch: int, objects: int, seed: int = 0, data: PoseDataConfig = TINY_DATA) -> PoseConditions:
    g = torch.Generator().manual_seed(seed)
    return PoseConditions(
        scene_image=torch.rand(batch, 4, data.image_height, data.image_width, generator=g),
        scene_points=torch.randn(batch, data.scene_points, 3, generator=g),
        scene_points_valid=torch.ones(batch, data.scene_points, dtype=torch.bool),
        crops=torch.rand(batch, objects, 4, data.crop_size, data.crop_size, generator=g),
        object_points=torch.randn(batch, objects, data.object_points, 3, generator=g),
        observations=torch.randn(batch, objects, OBSERVATION_DIM, generator=g),
        mesh_points=torch.rand(batch, objects, data.mesh_points, 3, generator=g) - 0.5,
        object_mask=torch.ones(batch, objects, dtype=torch.bool))


def trained_like(model: PoseModel, seed: int = 1) -> PoseModel:
    """Perturb the zero-initialised output layers so outputs depend on the inputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.fixture(scope="module")
def engine_data(tmp_path_factory) -> Path:
    from sceneforge.synth.cameras import OrbitSpec
    from sceneforge.synth.dataset import SynthConfig
    from sceneforge.synth.runner import generate_dataset
    from sceneforge.synth.views import ViewSettings

    out = tmp_path_factory.mktemp("engine") / "data"
    orbit = OrbitSpec(n_views=2, width=96, height=72)
    generate_dataset(out, SynthConfig(kind="openset", seed=3, views=ViewSettings(orbit=orbit), depth_format="npy"), 3)
    return out


# ------------------------------------------------------------------------------- rotations, flow


def test_6d_round_trip_and_known_value():
    R = roma.random_rotmat(100)
    assert torch.allclose(sixd_to_matrix(matrix_to_6d(R)), R, atol=1e-5)
    Rz90 = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert matrix_to_6d(Rz90).tolist() == [0.0, 1.0, 0.0, -1.0, 0.0, 0.0]


def test_any_6d_vector_gives_a_rotation():
    R = sixd_to_matrix(torch.randn(50, 6, dtype=torch.float64))
    assert torch.allclose(R.transpose(-1, -2) @ R, torch.eye(3, dtype=torch.float64).expand(50, 3, 3), atol=1e-10)
    assert torch.allclose(torch.linalg.det(R), torch.ones(50, dtype=torch.float64))


@pytest.mark.parametrize("steps", [1, 7, 50])
def test_euler_integrates_a_constant_velocity_exactly(steps):
    x0 = torch.randn(3, 4, 10, dtype=torch.float64)
    v = torch.randn(4, 10, dtype=torch.float64)
    calls = []

    def velocity(x, t):
        calls.append(t.clone())
        return v.expand_as(x)

    assert torch.allclose(euler_sample(velocity, x0, steps), x0 + v, atol=1e-12)
    assert len(calls) == steps and calls[0].tolist() == [0.0] * 3
    assert calls[-1][0].item() == pytest.approx(1.0 - 1.0 / steps)


def test_straight_path_endpoints_and_velocity():
    x0, x1 = torch.randn(5, 2, 10), torch.randn(5, 2, 10)
    assert torch.allclose(interpolate(x0, x1, torch.zeros(5)), x0)
    assert torch.allclose(interpolate(x0, x1, torch.ones(5)), x1)
    t = torch.rand(5)
    eps = 1e-3
    finite = (interpolate(x0, x1, t + eps) - interpolate(x0, x1, t)) / eps
    assert torch.allclose(finite, velocity_target(x0, x1), atol=1e-2)
    draw = flow_training_sample(x1, torch.Generator().manual_seed(0))
    x0_back = x1 - draw.velocity
    assert torch.allclose(interpolate(x0_back, x1, draw.t), draw.x_t, atol=1e-6)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        euler_sample(lambda x, t: x, x0, 0)


# ------------------------------------------------------------------------------------- the model


def test_shapes_and_masking_with_variable_object_counts():
    model = trained_like(PoseModel(TINY_MODEL))
    small = random_conditions(1, 2, seed=1)
    big = random_conditions(1, 5, seed=2)
    padded = PoseConditions(**{f.name: _pad_cat(getattr(small, f.name), getattr(big, f.name))
                               for f in dataclasses.fields(PoseConditions)})
    assert padded.object_mask[0].tolist() == [True, True, False, False, False]
    x = torch.randn(2, 5, 10)
    t = torch.rand(2)
    with torch.no_grad():
        out = model(x, t, padded)
        alone = model(x[:1, :2], t[:1], small)
    assert out.shape == (2, 5, 10)
    assert torch.allclose(out[0, :2], alone[0], atol=1e-5), "padding changed the real objects' output"
    assert torch.all(out[0, 2:] == 0)
    assert torch.all(torch.isfinite(out))


def _pad_cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dim() >= 2 and a.shape[1] != b.shape[1] and a.shape[1] <= 5 and b.shape[1] == 5:
        pad = torch.zeros((a.shape[0], b.shape[1] - a.shape[1]) + a.shape[2:], dtype=a.dtype)
        a = torch.cat([a, pad], dim=1)
    return torch.cat([a, b], dim=0)


def test_permutation_equivariance_across_objects():
    model = trained_like(PoseModel(TINY_MODEL))
    cond = random_conditions(2, 4, seed=3)
    perm = torch.tensor([2, 0, 3, 1])
    permuted = PoseConditions(**{f.name: (getattr(cond, f.name)[:, perm]
                                          if f.name in ("crops", "object_points", "observations", "mesh_points",
                                                        "object_mask") else getattr(cond, f.name))
                                 for f in dataclasses.fields(PoseConditions)})
    x, t = torch.randn(2, 4, 10), torch.rand(2)
    with torch.no_grad():
        out = model(x, t, cond)
        out_perm = model(x[:, perm], t, permuted)
    assert torch.allclose(out[:, perm], out_perm, atol=1e-5)


def test_more_objects_than_in_training(engine_data, tmp_path):
    train_pose_model(engine_data, tmp_path / "ck", tiny_run(2))
    loaded = load_model(tmp_path / "ck")
    cond = random_conditions(1, 14, seed=4)   # engine open-set scenes have at most 5 objects
    with torch.no_grad():
        out = loaded.model(torch.randn(1, 14, 10), torch.rand(1), cond)
    assert out.shape == (1, 14, 10) and torch.all(torch.isfinite(out))


def _crop_sensitivity(config: PoseModelConfig) -> tuple[float, float]:
    """How much objects 0 and 1 change when only object 0's crop changes."""
    model = trained_like(PoseModel(config))
    cond = random_conditions(1, 2, seed=5)
    crops = cond.crops.clone()
    crops[0, 0] = torch.rand(crops[0, 0].shape)
    changed = dataclasses.replace(cond, crops=crops)
    x, t = torch.randn(1, 2, 10), torch.rand(1)
    with torch.no_grad():
        diff = (model(x, t, cond) - model(x, t, changed)).abs().amax(dim=-1)[0]
    return float(diff[0]), float(diff[1])


@pytest.mark.parametrize("switch", [None, "local_self_attention", "global_self_attention", "local_cross_attention",
                                    "rotation_sees_geometry"])
def test_every_parameter_learns_in_each_ablation(switch):
    """DDP needs every parameter in the loss; an ablation must not leave unused weights behind."""
    config = TINY_MODEL if switch is None else dataclasses.replace(TINY_MODEL, **{switch: False})
    model = trained_like(PoseModel(config)).train()
    out = model(torch.randn(2, 3, 10), torch.rand(2), random_conditions(2, 3, seed=8))
    out.pow(2).sum().backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and
              (p.grad is None or not torch.any(p.grad != 0))]
    assert unused == []


def test_attention_routing_of_the_three_ablations():
    own, other = _crop_sensitivity(TINY_MODEL)
    assert own > 1e-3 and other > 1e-5             # global self-attention spreads it to the other object
    own, other = _crop_sensitivity(dataclasses.replace(TINY_MODEL, global_self_attention=False))
    assert own > 1e-3 and other < 1e-7             # without GSA objects do not see each other
    own, other = _crop_sensitivity(dataclasses.replace(TINY_MODEL, local_cross_attention=False))
    assert own < 1e-7 and other < 1e-7             # without LCA nothing attends to the crops
    model = PoseModel(dataclasses.replace(TINY_MODEL, local_self_attention=False))
    assert model.blocks[0].local_sa is None
    with pytest.raises(ValueError, match="image_encoder must be one of"):
        PoseModelConfig(image_encoder="vit")


# --------------------------------------------------------------------------------------- the data


def test_dataset_targets_undo_to_the_engine_poses(engine_data):
    ds = EngineViewDataset(engine_data, TINY_DATA)
    sample = ds[0]
    view = json.loads((ds.views[0] / "view.json").read_text())
    scene = read_scene_json(ds.views[0].parent.parent)
    poses = vectors_to_poses(torch.from_numpy(sample.target).double())
    scene_input = load_input(ds.views[0])
    for n, object_id in enumerate(sample.object_ids):
        truth = np.asarray(next(o for o in view["objects"] if o["id"] == object_id)["T_cam_obj"])
        unit = UnitMesh.of(scene.object(object_id).mesh)
        T = camera_pose(poses.R[n].numpy(), poses.T[n].numpy(), float(poses.S[n]), unit, sample.normalisation)
        assert np.allclose(T, truth, atol=1e-5)
        # independent check of the frame: observed depth points lie on the posed mesh
        observed = backproject_depth(scene_input.camera, scene_input.depth, scene_input.instances == object_id)
        posed = scene.object(object_id).mesh.copy().apply_transform(truth)
        _, dist, _ = posed.nearest.on_surface(observed[:200])
        assert np.median(dist) < 0.01
    assert sample.crops.shape == (len(sample.object_ids), 4, 16, 16)
    assert sample.scene_image.shape == (4, 32, 48)


def test_targets_round_trip_through_vectors():
    R = roma.random_rotmat(4).double()
    T, S = torch.randn(4, 3).double() * 0.3, torch.rand(4).double() * 0.8 + 0.1
    back = vectors_to_poses(poses_to_vectors(R, T, S))
    assert torch.allclose(back.R, R, atol=1e-9) and torch.allclose(back.T, T) and torch.allclose(back.S, S)
    unit = UnitMesh(None, np.array([0.1, -0.2, 0.05]), 0.7)
    from sceneforge.types import Normalisation

    norm = Normalisation(np.array([0.3, 0.1, 2.0]), 1.7)
    T_cam_obj = camera_pose(R[0].numpy(), T[0].numpy(), float(S[0]), unit, norm)
    R2, T2, S2 = target_pose(T_cam_obj, unit, norm)
    assert np.allclose(R2, R[0].numpy()) and np.allclose(T2, T[0].numpy()) and S2 == pytest.approx(float(S[0]))


def test_collate_pads_and_masks(engine_data):
    ds = EngineViewDataset(engine_data, TINY_DATA)
    samples = [ds[i] for i in range(len(ds))]
    counts = [len(s.object_ids) for s in samples]
    batch = collate_samples(samples)
    assert batch.conditions.object_mask.sum(dim=1).tolist() == counts
    assert batch.target.shape == (len(samples), max(counts), 10)
    for b, n in enumerate(counts):
        assert torch.all(batch.target[b, n:] == 0)
    assert ds[0].object_points.tolist() == ds[0].object_points.tolist()
    assert not np.array_equal(ds[(0, 1)].object_points, ds[(0, 2)].object_points)


def test_a_folder_of_datasets_is_read_together(engine_data, tmp_path):
    root = tmp_path / "both"
    root.mkdir()
    for name in ("iscene", "openset"):
        (root / name).symlink_to(engine_data, target_is_directory=True)
    single, both = find_views(engine_data), find_views(root)
    assert len(both) == 2 * len(single)
    assert [v.relative_to(root / "iscene") for v in both[:len(single)]] == [v.relative_to(engine_data) for v in single]
    held = split_views(both, "val", 1)
    assert held and all(v.parts[-4] == "openset" for v in held)


def test_dataset_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="dataset folder not found"):
        EngineViewDataset(tmp_path / "missing")
    with pytest.raises(InputError, match="no engine views here"):
        EngineViewDataset(tmp_path)
    with pytest.raises(ValueError, match="multiple of 8"):
        PoseDataConfig(crop_size=20)


def test_sampler_splits_global_batches_between_ranks():
    ranks = [StepBatchSampler(10, 2, seed=0, dist=Distributed(r, 2)) for r in range(2)]
    for step in range(7):
        a, b = (s.batch(step) for s in ranks)
        assert not {i for i, _ in a} & {i for i, _ in b} or step * 4 % 10 > 6
        assert all(seed == step for _, seed in a + b)
    first_epoch = [i for step in range(5) for s in ranks for i, _ in s.batch(step)][:10]
    assert sorted(first_epoch) == list(range(10))
    resumed = StepBatchSampler(10, 2, seed=0, start_step=3)
    assert next(iter(resumed)) == StepBatchSampler(10, 2, seed=0).batch(3)


# ------------------------------------------------------------------------------ training, resume


def test_checkpoint_round_trip(tmp_path):
    model = trained_like(PoseModel(TINY_MODEL))
    save_model(model, TINY_DATA, tmp_path / "ck", step=7)
    loaded = load_model(tmp_path / "ck")
    cond, x, t = random_conditions(1, 3, seed=6), torch.randn(1, 3, 10), torch.rand(1)
    with torch.no_grad():
        assert torch.equal(model(x, t, cond), loaded.model(x, t, cond))
    assert loaded.step == 7 and loaded.data == TINY_DATA
    with pytest.raises(InputError, match="not a pose-model checkpoint"):
        load_model(tmp_path)


def test_resume_continues_exactly(engine_data, tmp_path):
    straight = train_pose_model(engine_data, tmp_path / "a", tiny_run(4))
    train_pose_model(engine_data, tmp_path / "b", tiny_run(4), until_step=2)
    resumed = train_pose_model(engine_data, tmp_path / "b", tiny_run(4))
    assert resumed.start_step == 2 and resumed.step == 4
    a, b = load_model(tmp_path / "a").model.state_dict(), load_model(tmp_path / "b").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.last_loss == resumed.last_loss
    log = [json.loads(line) for line in (tmp_path / "b" / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert (tmp_path / "b" / "loss_curve.png").stat().st_size > 1000
    with pytest.raises(InputError, match="model settings differ"):
        other = dataclasses.replace(tiny_run(5), model=dataclasses.replace(TINY_MODEL, depth=3))
        train_pose_model(engine_data, tmp_path / "b", other)
    with pytest.raises(InputError, match="checkpoint is already here"):
        train_pose_model(engine_data, tmp_path / "b", tiny_run(5), resume=False)


def test_loss_falls_on_a_tiny_overfit_batch(engine_data):
    torch.manual_seed(0)
    ds = EngineViewDataset(engine_data, TINY_DATA)
    batch = collate_samples([ds[0], ds[1]])
    model = PoseModel(TINY_MODEL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def eval_loss() -> float:
        with torch.no_grad():
            return float(np.mean([float(flow_loss(model, batch, step_generator(99, i, 0), "uniform").total)
                                  for i in range(8)]))

    before = eval_loss()
    for step in range(80):
        loss = flow_loss(model, batch, step_generator(0, step, 0), "uniform")
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
    after = eval_loss()
    assert after < 0.5 * before, (before, after)


def test_loss_curve_png_draws_each_series(tmp_path):
    path = plot_loss_curve([1, 2, 3], {"loss": [3.0, 1.0, 0.5], "rotation": [1.0, 0.4, 0.2]}, tmp_path / "curve.png")
    pixels = np.asarray(Image.open(path).convert("RGB"))
    assert pixels.shape == (400, 640, 3)
    assert np.any(np.all(pixels == (31, 119, 180), axis=-1))   # the first series was drawn


# ---------------------------------------------------------------------------------------- inference


def _unit_grids(ds: EngineViewDataset, sample) -> list:
    """Distance grids of the unit meshes of the first view's objects, in the sample's object order."""
    meshes = {o.id: o.mesh for o in read_scene_json(ds.views[0].parent.parent).objects}
    return unit_distance_grids([UnitMesh.of(meshes[i]) for i in sample.object_ids], 32)


def test_consistency_prefers_the_true_pose(engine_data):
    ds = EngineViewDataset(engine_data, TINY_DATA)
    sample = ds[0]
    scene_input = load_input(ds.views[0])
    truth = vectors_to_poses(torch.from_numpy(sample.target))
    shifted_T = truth.T + torch.tensor([0.15, 0.0, 0.0])
    from sceneforge.models.data import NormalisedPoses

    poses = NormalisedPoses(torch.stack([truth.R, truth.R]), torch.stack([truth.T, shifted_T]),
                            torch.stack([truth.S, truth.S]))
    norm = sample.normalisation
    observed = [torch.from_numpy(norm.apply(backproject_depth(scene_input.camera, scene_input.depth,
                                                               scene_input.instances == i))).float()
                for i in sample.object_ids]
    per_object = consistency_scores(poses, torch.from_numpy(sample.mesh_points), _unit_grids(ds, sample), observed,
                                    scene_input, sample.object_ids, norm)
    assert per_object.shape == (2, len(sample.object_ids)) and torch.all(per_object[0] < per_object[1])
    scores = per_object.mean(dim=1)
    assert scores[0] < scores[1]
    assert float(scores[0]) < 0.01 and float(scores[1]) > float(scores[0]) + 0.05


def test_registration_brings_perturbed_poses_back_to_the_view(engine_data):
    import roma

    from sceneforge.models.data import NormalisedPoses

    ds = EngineViewDataset(engine_data, TINY_DATA)
    sample, scene_input = ds[0], load_input(ds.views[0])
    truth = vectors_to_poses(torch.from_numpy(sample.target).float())
    truth = NormalisedPoses(truth.R[None], truth.T[None], truth.S[None])
    N = truth.T.shape[1]
    turn = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.3, 0.0]).expand(1, N, 3))             # 17 degrees
    start = NormalisedPoses(turn @ truth.R, truth.T + torch.tensor([0.04, -0.03, 0.0]), truth.S * 1.1)
    norm = sample.normalisation
    observed = [torch.from_numpy(norm.apply(backproject_depth(scene_input.camera, scene_input.depth,
                                                               scene_input.instances == i))).float()
                for i in sample.object_ids]
    mesh, grids = torch.from_numpy(sample.mesh_points), _unit_grids(ds, sample)

    def register(poses, steps):
        return register_samples(poses, mesh, grids, observed, scene_input, sample.object_ids, norm,
                                RegistrationConfig(steps=steps, lr=0.02, silhouette=1.0, scale_prior=0.0))

    def fit(poses):
        return consistency_scores(poses, mesh, grids, observed, scene_input, sample.object_ids, norm)[0]

    assert register(start, 0) is start
    kept = register(truth, 150)                      # the true poses are where registration rests
    assert float((kept.T - truth.T).norm(dim=-1).mean()) < 0.015            # the start is 0.05 off
    assert float((kept.S / truth.S).log().abs().max()) < 0.03
    registered = register(start, 150)
    assert torch.all(fit(registered) < fit(start)) and float(fit(registered).mean()) < 0.5 * float(fit(start).mean())
    assert float((registered.T - truth.T).norm(dim=-1).mean()) < 0.6 * float((start.T - truth.T).norm(dim=-1).mean())
    assert float((registered.S / truth.S).log().abs().mean()) < 0.75 * np.log(1.1)


def test_predict_poses_keeps_the_best_sample(engine_data, tmp_path):
    from sceneforge.types import Similarity

    train_pose_model(engine_data, tmp_path / "ck", tiny_run(2))
    loaded = load_model(tmp_path / "ck")
    ds = EngineViewDataset(engine_data, TINY_DATA)
    scene = read_scene_json(ds.views[0].parent.parent)
    scene_input, meshes = load_input(ds.views[0]), {o.id: o.mesh for o in scene.objects}
    whole = predict_poses(loaded, scene_input, meshes, samples=4, steps=3, select="scene")
    assert len(whole.scores) == 4 and set(whole.chosen) == {int(np.argmin(whole.scores))}
    prediction = predict_poses(loaded, scene_input, meshes, samples=4, steps=3)
    assert prediction.scores == whole.scores and len(prediction.chosen) == len(prediction.objects)
    truth = {int(o["id"]): Similarity.from_matrix(np.asarray(o["T_cam_obj"]))
             for o in json.loads((ds.views[0] / "view.json").read_text())["objects"]}
    with_truth = predict_poses(loaded, scene_input, meshes, samples=4, steps=3, incoming=truth)
    assert len(with_truth.scores) == 5 and set(with_truth.chosen) == {4}     # the true poses win
    assert all(o.T_cam_obj is truth[o.object_id] for o in with_truth.objects)
    assert {o.object_id for o in prediction.objects} <= set(scene.ids)
    assert all(np.isfinite(o.T_cam_obj.matrix).all() for o in prediction.objects)


# ------------------------------------------------------------------------------- DINOv2, DDP, CLI


def test_dinov2_adapter_with_a_tiny_random_model(tmp_path):
    transformers = pytest.importorskip("transformers", reason="the DINOv2 adapter needs transformers: "
                                                              'pip install "sceneforge[dinov2]"')
    config = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=64, patch_size=8, image_size=32)
    transformers.Dinov2Model(config).save_pretrained(tmp_path / "dino")
    model_config = dataclasses.replace(TINY_MODEL, image_encoder="dinov2", dinov2_dir=str(tmp_path / "dino"))
    model = PoseModel(model_config)
    assert not any(p.requires_grad for p in model.image_encoder.backbone.parameters())
    cond = random_conditions(1, 2, seed=7, data=dataclasses.replace(TINY_DATA, crop_size=16))
    out = model(torch.randn(1, 2, 10), torch.rand(1), cond)
    tokens = model.image_encoder(cond.scene_image)
    assert tokens.shape == (1, 1 + (32 // 8) * (48 // 8), 32)
    out.sum().backward()
    assert model.image_encoder.proj.weight.grad is not None
    save_model(model, TINY_DATA, tmp_path / "ck")
    from safetensors.torch import load_file

    assert not any("backbone" in k for k in load_file(str(tmp_path / "ck" / "model.safetensors")))
    load_model(tmp_path / "ck")
    with pytest.raises(InputError, match="config.json missing"):
        dataclasses.replace(model_config, dinov2_dir=str(tmp_path))
        PoseModel(dataclasses.replace(model_config, dinov2_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model.image_encoder(torch.rand(1, 3, 30, 32))


def _cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _write_config(path: Path, steps: int) -> Path:
    run = tiny_run(steps)
    path.write_text(json.dumps({"model": run.model.to_dict(), "data": run.data.to_dict(),
                                "train": run.train.to_dict()}))
    return path


def test_cli_train_pose_and_errors(engine_data, tmp_path, run_cli):
    config = _write_config(tmp_path / "run.json", 2)
    code, out, err = run_cli("train", "pose", "--data", engine_data, "--out", tmp_path / "ck",
                             "--config", config, "--workers", "1")
    assert code == 0, out + err
    assert "trained steps 0..2" in out
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["step"] == 2
    run = json.loads(config.read_text())
    run["train"].update(steps=3, val_scenes=1, val_every=3, val_views=1, val_samples=1, val_flow_steps=1)
    config.write_text(json.dumps(run))
    code, out, err = run_cli("train", "pose", "--data", engine_data, "--out", tmp_path / "ck", "--config", config)
    assert code == 0, out + err
    assert "held-out (1 views" in out
    rows = [json.loads(line) for line in (tmp_path / "ck" / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3] and rows[0]["objects"] >= 1
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["step"] == 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": {"stepz": 3}}))
    code, out, err = run_cli("train", "pose", "--data", engine_data, "--out", tmp_path / "x", "--config", bad)
    assert code == 2 and "unknown train settings" in err


@pytest.mark.slow
def test_ddp_two_gloo_processes(engine_data, tmp_path):
    config = _write_config(tmp_path / "run.json", 2)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561",
           "-m", "sceneforge.cli", "train", "pose", "--data", str(engine_data), "--out", str(tmp_path / "ck"),
           "--config", str(config)]
    proc = subprocess.run(cmd, check=False, env=_cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["step"] == 2
    assert proc.stdout.count("trained steps 0..2") == 1   # only rank 0 reports and writes


def test_pose_errors_are_zero_for_the_true_poses(engine_data, tmp_path, monkeypatch):
    from sceneforge.models import validate
    from sceneforge.models.predict import ObjectPosePrediction, PosePrediction
    from sceneforge.types import Similarity

    ds = EngineViewDataset(engine_data, TINY_DATA)
    real_predict = validate.predict_poses

    def truth_predict(loaded, scene_input, meshes, samples, steps, seed):
        view = next(v for v in ds.views if str(v) == scene_input.source or v.samefile(scene_input.source))
        doc = json.loads((view / "view.json").read_text())
        pred = real_predict(loaded, scene_input, meshes, samples=1, steps=1, seed=seed)
        objects = tuple(ObjectPosePrediction(o.object_id, Similarity.from_matrix(
            np.asarray(next(d for d in doc["objects"] if d["id"] == o.object_id)["T_cam_obj"])))
            for o in pred.objects)
        return PosePrediction(objects, pred.normalisation, pred.scores, pred.chosen)

    train_pose_model(engine_data, tmp_path / "ck", tiny_run(1))
    loaded = load_model(tmp_path / "ck")
    monkeypatch.setattr(validate, "predict_poses", truth_predict)
    errors = validate.pose_errors(loaded, ds, max_views=2)
    assert errors.views == 2 and errors.objects >= 2
    assert errors.rotation_deg_mean < 0.01 and errors.translation_mean < 1e-6 and errors.log_scale_mean < 1e-6
    assert errors.rotation_shape_median < 1e-6 < errors.rotation_shape_random_median
    monkeypatch.setattr(validate, "predict_poses", real_predict)
    untrained = validate.pose_errors(loaded, ds, max_views=2, samples=2, steps=2)
    assert untrained.rotation_deg_median > 1.0 and untrained.rotation_shape_median > 0.01


def test_rotation_shape_distance_ignores_symmetries():
    from scipy.spatial.transform import Rotation

    from sceneforge.models.validate import rotation_shape_distance

    import trimesh

    box = UnitMesh.of(trimesh.creation.box((1.0, 0.4, 0.2))).sample(800, np.random.default_rng(0))  # half-turn symmetric
    half_turn = Rotation.from_euler("z", 180, degrees=True).as_matrix()
    quarter_turn = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    assert rotation_shape_distance(half_turn, np.eye(3), box) < 0.03
    assert rotation_shape_distance(quarter_turn, np.eye(3), box) > 0.1


# ------------------------------------------------------------------------------ pose stages


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny model with random (non-zero) output layers, saved as a checkpoint folder."""
    torch.manual_seed(0)
    return save_model(trained_like(PoseModel(TINY_MODEL)), TINY_DATA, tmp_path_factory.mktemp("ck"), step=7)


def _pipeline_on_engine_view(engine_data: Path, pose):
    from sceneforge.pipeline import ScenePipeline

    view = find_views(engine_data)[0]
    scene_input = load_input(view)
    return scene_input, ScenePipeline(shape="visible", pose=pose).run(scene_input)


def test_learned_stage_poses_are_the_models_in_the_world_frame(engine_data, tiny_checkpoint):
    from sceneforge.types import SceneInput, Similarity

    stage = {"name": "learned", "config": {"checkpoint": str(tiny_checkpoint), "samples": 3, "flow_steps": 2}}
    _, result = _pipeline_on_engine_view(engine_data, stage)
    report = result.report["pose"]
    assert report["name"] == "learned" and report["checkpoint_step"] == 7 and len(report["sample_scores"]) == 3
    seen = result.perception   # the model sees the cleaned depth of the perception stage
    seen_input = SceneInput(seen.image, seen.instances, seen.depth, seen.camera)
    direct = predict_poses(load_model(tiny_checkpoint), seen_input, {o.id: o.mesh for o in result.scene.objects},
                           samples=3, steps=2, seed=0)
    cam_world = Similarity.from_matrix(result.scene.camera.T_world_cam).inverse()
    by_id = {o.id: o for o in result.scene.objects}
    assert direct.objects
    for predicted in direct.objects:
        in_camera = (cam_world @ by_id[predicted.object_id].pose).matrix
        np.testing.assert_allclose(in_camera, predicted.T_cam_obj.matrix, atol=1e-6)


def test_learned_optimise_offers_the_models_poses_as_further_starts(engine_data, tiny_checkpoint, monkeypatch):
    from sceneforge.pose import PoseOptimiser

    config = {"checkpoint": str(tiny_checkpoint), "samples": 2, "flow_steps": 1}
    problems = []
    optimise = PoseOptimiser.optimise
    monkeypatch.setattr(PoseOptimiser, "optimise", lambda self, problem: problems.append(problem) or optimise(self, problem))
    _, result = _pipeline_on_engine_view(engine_data, {"name": "learned_optimise", "config": {**config, "iterations": 3}})
    _, learned = _pipeline_on_engine_view(engine_data, {"name": "learned", "config": config})
    _, shaped = _pipeline_on_engine_view(engine_data, "initial")
    report = result.report["pose"]
    assert report["name"] == "learned_optimise" and report["initialisation"]["name"] == "learned"
    assert len(report["objects"]) == len(result.scene.objects)
    assert all(o["start"] in ("initial", "alternative 0") for o in report["objects"])
    json.dumps(report)
    # the optimiser starts from the shape stage's poses and gets the model's as alternatives
    (problem,) = problems[:1]
    model_poses = {o.id: o.pose.matrix for o in learned.scene.objects}
    shape_poses = {o.id: o.pose.matrix for o in shaped.scene.objects}
    assert problem.targets
    for target in problem.targets:
        np.testing.assert_allclose(target.initial_pose.matrix, shape_poses[target.id], atol=1e-9)
        (alternative,) = target.alternative_poses
        np.testing.assert_allclose(alternative.matrix, model_poses[target.id], atol=1e-9)


def test_learned_optimise_runs_fewer_samples_and_hypothesis_steps_than_the_stages_apart():
    """Its defaults (docs/learned_pose.md, "Pose stages": the 10 s budget), each one overridable."""
    from sceneforge.pose.learned import LearnedOptimisedPoses, LearnedPoses
    from sceneforge.pose.problem import PoseSettings

    stage = LearnedOptimisedPoses()
    assert (stage.model.samples, stage.optimiser.settings.hypothesis_iterations) == (8, 20)
    assert (LearnedPoses().samples, PoseSettings().hypothesis_iterations) == (24, 30)
    stage = LearnedOptimisedPoses(samples=24, hypothesis_iterations=30, iterations=7)
    assert (stage.model.samples, stage.optimiser.settings.hypothesis_iterations) == (24, 30)
    assert stage.optimiser.settings.iterations == 7 and stage.config == {"samples": 24, "hypothesis_iterations": 30,
                                                                        "iterations": 7}


def test_learned_pose_without_a_checkpoint_is_a_clear_error(engine_data, tmp_path, monkeypatch, run_cli):
    from sceneforge.pose import learned
    from sceneforge.pose.base import OptimisedPoses, resolve_pose_stage

    monkeypatch.setattr(learned, "SHIPPED_CHECKPOINT", tmp_path / "none")
    assert isinstance(resolve_pose_stage("auto", depth_given=True), OptimisedPoses)
    code, _, err = run_cli("reconstruct", "--input", find_views(engine_data)[0], "--out", tmp_path / "out", "--pose", "learned",
                           "--shape", "visible")
    assert code == 2 and "no pose-model checkpoint ships" in err and "Traceback" not in err
    with pytest.raises(InputError, match="not a pose-model checkpoint"):
        _pipeline_on_engine_view(engine_data, {"name": "learned", "config": {"checkpoint": str(tmp_path)}})


def test_engine_views_of_either_kind(tmp_path):
    from sceneforge.engine_views import write_engine_view

    view = write_engine_view(tmp_path / "o", seed=3, size=64, layout={}, kind="openset")
    assert view.ground_truth.metadata["synth"]["kind"] == "openset" and view.ground_truth.objects
    assert write_engine_view(tmp_path / "i", seed=3, size=64).ground_truth.metadata["synth"]["kind"] == "iscene"


def test_the_shipped_checkpoint_loads_and_fits_the_size_limit():
    from sceneforge.pose.learned import shipped_checkpoint

    folder = shipped_checkpoint()
    assert folder is not None, "the package must ship its pose-model checkpoint in sceneforge/data/pose_model"
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 30 * 2**20
    loaded = load_model(folder)
    assert loaded.step > 0 and not any(p.requires_grad and not torch.isfinite(p).all() for p in loaded.model.parameters())
    assert {f.name for f in folder.iterdir()} == {"model.safetensors", "config.json"}
