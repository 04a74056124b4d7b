"""Pose-model checkpoints: a folder with ``model.safetensors`` and ``config.json``.

config.json holds ``format``, ``version``, ``model`` (PoseModelConfig), ``data`` (PoseDataConfig),
``train`` (TrainConfig, when written by training) and ``step``. A training folder also holds
``optimizer.safetensors`` + ``optimizer.json`` (AdamW state) so a run can be resumed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sceneforge.errors import InputError, MissingDependencyError
from sceneforge.io.atomic import atomic_path, write_text_atomic
from sceneforge.models.data import PoseDataConfig
from sceneforge.models.pose_model import PoseModel, PoseModelConfig

CHECKPOINT_FORMAT = "sceneforge.pose_model"
CHECKPOINT_VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"


def _safetensors_torch():
    try:
        import safetensors.torch as st
    except ImportError as exc:
        raise MissingDependencyError("safetensors", extra="learn", purpose="model checkpoints") from exc
    return st


@dataclass(frozen=True, eq=False)
class LoadedPoseModel:
    """A model read from a checkpoint folder, in eval mode, with the data settings it was trained with."""

    model: PoseModel
    data: PoseDataConfig
    step: int
    config: dict[str, Any]


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict without frozen pretrained backbones (they are loaded from their own folder)."""
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items() if ".backbone." not in f".{k}"}


def save_model(model: PoseModel, data: PoseDataConfig, folder: str | Path, step: int = 0,
               extra: dict[str, Any] | None = None) -> Path:
    """Write model.safetensors and config.json atomically into ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    st = _safetensors_torch()
    with atomic_path(folder / MODEL_FILE) as tmp:
        st.save_file(trainable_state(model), str(tmp))
    doc = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": model.config.to_dict(),
           "data": data.to_dict(), "step": int(step), **(extra or {})}
    write_text_atomic(folder / CONFIG_FILE, json.dumps(doc, indent=2) + "\n")
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise InputError(folder, f"not a pose-model checkpoint ({CONFIG_FILE} missing)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from exc
    if doc.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, f'not a pose-model checkpoint (expected "format": "{CHECKPOINT_FORMAT}")')
    if doc.get("version") != CHECKPOINT_VERSION:
        raise InputError(path, f"unsupported checkpoint version {doc.get('version')!r}")
    return doc


def load_model(folder: str | Path) -> LoadedPoseModel:
    """Read a checkpoint folder into an eval-mode :class:`PoseModel`."""
    doc = read_config(folder)
    model = PoseModel(PoseModelConfig.from_dict(doc["model"]))
    load_weights(model, folder)
    model.eval()
    return LoadedPoseModel(model, PoseDataConfig.from_dict(doc["data"]), int(doc.get("step", 0)), doc)


def load_weights(model: torch.nn.Module, folder: str | Path) -> None:
    path = Path(folder) / MODEL_FILE
    if not path.is_file():
        raise InputError(folder, f"checkpoint has no {MODEL_FILE}")
    state = _safetensors_torch().load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if ".backbone." not in f".{k}"]
    if missing or unexpected:
        raise InputError(path, f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")


def save_optimizer(optimizer: torch.optim.Optimizer, folder: str | Path) -> None:
    """AdamW state as safetensors (per-parameter tensors) + JSON (hyper-parameters)."""
    state = optimizer.state_dict()
    tensors = {f"{index}.{name}": value.detach().clone().contiguous().reshape(value.shape)
               for index, entry in state["state"].items() for name, value in entry.items()
               if isinstance(value, torch.Tensor)}
    st = _safetensors_torch()
    with atomic_path(Path(folder) / OPTIMIZER_FILE) as tmp:
        st.save_file(tensors, str(tmp))
    write_text_atomic(Path(folder) / OPTIMIZER_JSON, json.dumps({"param_groups": state["param_groups"]}) + "\n")


def load_optimizer(optimizer: torch.optim.Optimizer, folder: str | Path) -> None:
    folder = Path(folder)
    tensors = _safetensors_torch().load_file(str(folder / OPTIMIZER_FILE))
    groups = json.loads((folder / OPTIMIZER_JSON).read_text(encoding="utf-8"))["param_groups"]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
