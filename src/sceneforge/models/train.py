"""Training loop of the pose model: rectified flow, AdamW, warmup + cosine schedule, checkpoints,
resume, loss log and curve, multi-process data loading, and DDP (gloo) under torchrun.

Determinism: the data order, the random point draws of each sample and the flow noise of each step
are functions of ``(seed, step, rank)`` only, so a run resumed from a checkpoint continues exactly as
the uninterrupted run would have (with the same world size, on one thread).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sceneforge.errors import InputError
from sceneforge.io.atomic import write_text_atomic
from sceneforge.models.checkpoint import (
    CONFIG_FILE,
    OPTIMIZER_FILE,
    load_optimizer,
    load_weights,
    read_config,
    save_model,
    save_optimizer,
)
from sceneforge.models.data import EngineViewDataset, PoseBatch, PoseDataConfig, collate_samples
from sceneforge.models.flow import TIME_SAMPLINGS, flow_training_sample
from sceneforge.models.plot import plot_loss_curve
from sceneforge.models.pose_model import ROTATION_SLICE, SCALE_SLICE, TRANSLATION_SLICE, PoseModel, PoseModelConfig

LOSS_LOG = "losses.jsonl"
LOSS_PNG = "loss_curve.png"
VALIDATION_LOG = "validation.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. ``batch_size`` is per process; ``workers`` are data-loading processes."""

    steps: int = 1000
    batch_size: int = 8
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    workers: int = 0
    time_sampling: str = "logit_normal"
    log_every: int = 10
    checkpoint_every: int = 200
    val_scenes: int = 0
    val_every: int = 0
    val_views: int = 16
    val_samples: int = 4
    val_flow_steps: int = 10
    threads: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps} and {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"time_sampling must be one of {', '.join(TIME_SAMPLINGS)}, got {self.time_sampling!r}")
        if self.log_every < 1 or self.checkpoint_every < 1:
            raise ValueError("log_every and checkpoint_every must be >= 1")
        if self.val_every < 0 or (self.val_every and self.val_scenes < 1):
            raise ValueError("val_every must be >= 0, and > 0 only with val_scenes >= 1 held-out scenes")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown train settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run is made of; read from a JSON file with keys model, data, train."""

    model: PoseModelConfig = field(default_factory=PoseModelConfig)
    data: PoseDataConfig = field(default_factory=PoseDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunConfig:
        unknown = set(doc) - {"model", "data", "train"}
        if unknown:
            raise ValueError(f"unknown config sections {sorted(unknown)}; known: model, data, train")
        return cls(PoseModelConfig.from_dict(doc.get("model", {})), PoseDataConfig.from_dict(doc.get("data", {})),
                   TrainConfig.from_dict(doc.get("train", {})))

    @classmethod
    def from_file(cls, path: str | Path | None) -> RunConfig:
        if path is None:
            return cls()
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "config file not found")
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not valid JSON ({exc})") from exc
        except (TypeError, ValueError) as exc:
            raise InputError(path, str(exc)) from exc


@dataclass(frozen=True)
class TrainResult:
    """What a run did: last step, last logged losses, wall time, output folder."""

    out: Path
    step: int
    start_step: int
    last_loss: float
    seconds: float


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class StepBatchSampler(torch.utils.data.Sampler):
    """Infinite batches of ``(index, draw_seed)`` from step ``start_step`` on.

    The global index stream is one permutation of the dataset per epoch (seeded by ``(seed, epoch)``);
    step s takes positions ``[s * B * world, (s + 1) * B * world)`` of it and rank r its r-th slice of B.
    """

    def __init__(self, size: int, batch_size: int, seed: int, start_step: int = 0, dist: Distributed = Distributed()):
        self.size, self.batch_size, self.seed, self.start_step, self.dist = size, batch_size, seed, start_step, dist
        self._perms: dict[int, np.ndarray] = {}

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, self.size)
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.size)}
        return int(self._perms[epoch][offset])

    def batch(self, step: int) -> list[tuple[int, int]]:
        start = (step * self.dist.world + self.dist.rank) * self.batch_size
        return [(self._index(p), step) for p in range(start, start + self.batch_size)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr`` then cosine decay to ``lr * min_lr_ratio`` at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass(frozen=True, eq=False)
class FlowLoss:
    """Equal-weight masked MSE of the velocity on rotation (6D), translation and scale."""

    total: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor
    scale: torch.Tensor


def flow_loss(model: torch.nn.Module, batch: PoseBatch, generator: torch.Generator, time_sampling: str) -> FlowLoss:
    """One rectified-flow loss on a batch (targets required)."""
    if batch.target is None:
        raise ValueError("the batch has no targets")
    draw = flow_training_sample(batch.target, generator, time_sampling)
    pred = model(draw.x_t, draw.t, batch.conditions)
    mask = batch.conditions.object_mask.to(pred.dtype)
    count = mask.sum().clamp(min=1.0)

    def part(sl: slice) -> torch.Tensor:
        return (((pred[..., sl] - draw.velocity[..., sl]) ** 2).mean(-1) * mask).sum() / count

    r, t, s = part(ROTATION_SLICE), part(TRANSLATION_SLICE), part(SCALE_SLICE)
    return FlowLoss(r + t + s, r, t, s)


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0]))


def _distributed() -> Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def _read_log(out: Path, up_to_step: int) -> list[dict[str, float]]:
    path = out / LOSS_LOG
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r["step"] <= up_to_step]


def train_pose_model(data_root: str | Path, out: str | Path, config: RunConfig | None = None, resume: bool = True,
                     on_log: Callable[[dict[str, float]], None] | None = None,
                     until_step: int | None = None) -> TrainResult:
    """Train (or resume) the pose model on an engine dataset; checkpoints go to ``out``.

    Under torchrun (``WORLD_SIZE`` > 1) each process trains on its slice of every global batch with
    DDP over gloo; only rank 0 writes. An existing checkpoint in ``out`` is resumed when ``resume``
    (its model and data settings must match ``config``), else refused. ``until_step`` stops the run
    (with a checkpoint) after that step while keeping the schedule of ``train.steps``: a long
    recipe can be run in pieces.
    """
    config = config or RunConfig()
    cfg = config.train
    out = Path(out)
    torch.set_num_threads(cfg.threads)
    dist = _distributed()
    torch.manual_seed(cfg.seed)
    model = PoseModel(config.model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    dataset = EngineViewDataset(data_root, config.data, split="train", val_scenes=cfg.val_scenes, seed=cfg.seed)
    start_step = _maybe_resume(model, optimizer, config, out, resume)
    sampler = StepBatchSampler(len(dataset), cfg.batch_size, cfg.seed, start_step, dist)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_samples,
                                         num_workers=cfg.workers, persistent_workers=False,
                                         worker_init_fn=_worker_init if cfg.workers else None)
    net: torch.nn.Module = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model)
    log = _read_log(out, start_step) if dist.is_main else []
    began = time.perf_counter()
    step, last = start_step, float("nan")
    end = cfg.steps if until_step is None else max(start_step, min(cfg.steps, until_step))
    model.train()
    batches = iter(loader)
    for step in range(start_step, end):
        batch = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        loss = flow_loss(net, batch, step_generator(cfg.seed, step, dist.rank), cfg.time_sampling)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        last = float(loss.total.detach())
        done = step + 1
        if dist.is_main and (done % cfg.log_every == 0 or done == cfg.steps):
            row = {"step": done, "loss": last, "rotation": float(loss.rotation.detach()),
                   "translation": float(loss.translation.detach()), "scale": float(loss.scale.detach()), "lr": learning_rate(step, cfg),
                   "seconds": time.perf_counter() - began}
            log.append(row)
            if on_log is not None:
                on_log(row)
        if dist.is_main and (done % cfg.checkpoint_every == 0 or done == end):
            _write_checkpoint(model, optimizer, config, out, done, log)
        if dist.is_main and cfg.val_every and done % cfg.val_every == 0:
            _validate(model, data_root, config, out, done, on_log)
            model.train()
    del batches
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
    return TrainResult(out, end, start_step, last, time.perf_counter() - began)


def _validate(model: PoseModel, data_root: str | Path, config: RunConfig, out: Path, step: int,
              on_log: Callable[[dict[str, float]], None] | None) -> None:
    """Pose errors on the first ``val_views`` held-out views, appended to validation.jsonl."""
    from sceneforge.models.checkpoint import LoadedPoseModel
    from sceneforge.models.validate import pose_errors

    cfg = config.train
    model.eval()
    val = EngineViewDataset(data_root, config.data, split="val", val_scenes=cfg.val_scenes, seed=cfg.seed)
    errors = pose_errors(LoadedPoseModel(model, config.data, step, {}), val, max_views=cfg.val_views,
                         samples=cfg.val_samples, steps=cfg.val_flow_steps, seed=cfg.seed)
    row = {"step": step, **asdict(errors)}
    path = out / VALIDATION_LOG
    previous = [] if not path.is_file() else [
        line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and json.loads(line)["step"] < step]
    write_text_atomic(path, "".join(line + "\n" for line in previous) + json.dumps(row) + "\n")
    if on_log is not None:
        on_log({"validation": 1.0, **row})


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)


def _maybe_resume(model: PoseModel, optimizer: torch.optim.Optimizer, config: RunConfig, out: Path,
                  resume: bool) -> int:
    if not (out / CONFIG_FILE).is_file():
        return 0
    if not resume:
        raise InputError(out, "a checkpoint is already here; resume it or choose another --out")
    doc = read_config(out)
    for section, current in (("model", config.model.to_dict()), ("data", config.data.to_dict())):
        if doc.get(section) != current:
            changed = sorted(k for k in current if doc.get(section, {}).get(k) != current[k])
            raise InputError(out, f"cannot resume: the {section} settings differ from the checkpoint's ({changed})")
    load_weights(model, out)
    if (out / OPTIMIZER_FILE).is_file():
        load_optimizer(optimizer, out)
    return int(doc.get("step", 0))


def _write_checkpoint(model: PoseModel, optimizer: torch.optim.Optimizer, config: RunConfig, out: Path, step: int,
                      log: list[dict[str, float]]) -> None:
    save_optimizer(optimizer, out.mkdir(parents=True, exist_ok=True) or out)
    save_model(model, config.data, out, step, extra={"train": config.train.to_dict()})
    write_text_atomic(out / LOSS_LOG, "".join(json.dumps(r) + "\n" for r in log))
    if log:
        plot_loss_curve([r["step"] for r in log], {k: [r[k] for r in log] for k in
                                                   ("loss", "rotation", "translation", "scale")}, out / LOSS_PNG)
