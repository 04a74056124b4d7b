"""Speed of the learned pose model on this machine: data loading, a training step, inference.

    python benchmarks/pose_model_speed.py --data DIR [--config FILE] [--threads 1] [--samples 8] [--steps 20]

DIR is an engine dataset (sceneforge synth). Prints a Markdown table; nothing is trained to
convergence, the weights are the random initial ones (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sceneforge.io.inputs import load_input
from sceneforge.io.scene_json import read_scene_json
from sceneforge.models.checkpoint import LoadedPoseModel
from sceneforge.models.data import EngineViewDataset, collate_samples
from sceneforge.models.pose_model import PoseModel
from sceneforge.models.predict import predict_poses
from sceneforge.models.train import RunConfig, flow_loss, step_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = RunConfig.from_file(args.config)
    torch.manual_seed(0)
    model = PoseModel(run.model)
    ds = EngineViewDataset(args.data, run.data)
    n = min(len(ds), max(args.repeats * run.train.batch_size, 8))

    began = time.perf_counter()
    samples = [ds[(i % len(ds), 1)] for i in range(n)]
    load_ms = 1000 * (time.perf_counter() - began) / n

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for r in range(args.repeats + 1):
        chunk = [samples[(r * run.train.batch_size + j) % n] for j in range(run.train.batch_size)]
        batch = collate_samples(chunk)
        began = time.perf_counter()
        loss = flow_loss(model, batch, step_generator(0, r, 0), run.train.time_sampling)
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
        if r:
            times.append(time.perf_counter() - began)
    step_s = float(np.median(times))

    model.eval()
    loaded = LoadedPoseModel(model, run.data, 0, {})
    infer = []
    objects = []
    for i in range(args.repeats + 1):
        view = ds.views[i % len(ds)]
        scene = read_scene_json(view.parent.parent)
        scene_input = load_input(view)
        began = time.perf_counter()
        pred = predict_poses(loaded, scene_input, {o.id: o.mesh for o in scene.objects}, samples=args.samples,
                             steps=args.steps, seed=i)
        if i:
            infer.append(time.perf_counter() - began)
            objects.append(len(pred.objects))
    params = sum(p.numel() for p in model.parameters())
    print(f"| threads | parameters | data ms/view | train s/step (batch {run.train.batch_size}) | "
          f"inference s/scene (K={args.samples}, {args.steps} Euler steps) | objects/scene |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {args.threads} | {params / 1e6:.2f} M | {load_ms:.1f} | {step_s:.3f} | {np.median(infer):.3f} | "
          f"{np.mean(objects):.1f} |")


if __name__ == "__main__":
    main()
