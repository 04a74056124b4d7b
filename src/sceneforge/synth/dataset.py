"""The synthetic dataset: one folder per scene, written atomically, deterministic from a seed.

Layout of an output folder::

    dataset.json                 format, version and the generation config (checked on resume)
    scene_000000/
        scene.json               ground truth (io/scene_json.py) + metadata: layout kind, seed,
        objects/001_chair.ply    relations and layout extras, and "synth" (views kept/dropped)
        views/0000/ ...          one scene input folder per kept view (see writer.py)

Scene ``i`` depends only on ``(seed, i)`` and the config: the layout draws from
``SeedSequence([seed, i, 0])``, the cameras from ``SeedSequence([seed, i, 1])``, so any worker
count, order or restart gives the same files. A scene folder appears only once complete
(:func:`~sceneforge.io.atomic.atomic_directory`); a run that was killed leaves at most hidden
``.scene_*.tmp`` folders (and the ``.assets.*.tmp`` folder its workers shared built assets in),
which the next run removes before making the missing scenes.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sceneforge.errors import InputError
from sceneforge.io.atomic import atomic_directory, write_files, write_text_atomic
from sceneforge.io.scene_json import scene_json_files
from sceneforge.synth.cameras import OrbitSpec
from sceneforge.synth.kinds import KINDS, SynthScene
from sceneforge.synth.meshmemo import mesh_ply_bytes
from sceneforge.synth.views import ViewSettings, render_views
from sceneforge.synth.writer import DEPTH_FORMATS, view_files, views_summary
from sceneforge.types import Plane, Scene

DATASET_FORMAT = "sceneforge.synth_dataset"
DATASET_VERSION = 1
MAX_SCENES = 10_000_000
#: The stages of making one scene, timed in :class:`SceneFiles`.
STAGES = ("layout", "render", "encode")
SCENE_DIR = re.compile(r"^scene_(\d{6,})$")
#: Hidden folder in which the worker processes of a run share built assets (runner.py).
ASSET_STORE_PREFIX = ".assets."
LEFTOVER = re.compile(r"^(\.scene_\d{6,}\..*\.(tmp|old)|\.assets\..*\.tmp)$")

#: A layout kind: (layout seed, options) -> SynthScene (posed objects on the ground y = 0 + look).
LayoutFn = Callable[[int, Mapping[str, Any]], SynthScene]
_LAYOUTS: dict[str, LayoutFn] = dict(KINDS)


def register_layout(kind: str, fn: LayoutFn) -> None:
    """Make ``kind`` available to :class:`SynthConfig`; the runner hands it on to its worker
    processes and Ray tasks (``fn`` must be picklable: a module-level function).

    The meshes a layout returns are treated as immutable: a worker encodes and uploads each mesh
    object once and reuses it in later scenes, so never modify one in place after returning it."""
    _LAYOUTS[kind] = fn


def registered_layout(kind: str) -> dict[str, LayoutFn]:
    """``{kind: fn}`` when ``kind`` was registered with :func:`register_layout` (not built in), else
    ``{}``: what a worker process must register before it builds scenes of ``kind``."""
    return {kind: _LAYOUTS[kind]} if kind in _LAYOUTS and kind not in KINDS else {}


def layout_kinds() -> tuple[str, ...]:
    return tuple(sorted(_LAYOUTS))


def layout_function(kind: str) -> LayoutFn:
    if kind not in _LAYOUTS:
        raise InputError(None, f"unknown layout kind {kind!r}; allowed: {', '.join(sorted(_LAYOUTS))}")
    return _LAYOUTS[kind]


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides the content of a dataset (but not how many scenes or workers).

    kind : layout kind ("iscene", "openset" (synth/kinds.py), or one registered with :func:`register_layout`).
    seed : dataset seed, any integer >= 0.
    views : cameras and occlusion policy.
    layout : options passed to the layout function (JSON-able).
    depth_format : "png" (uint16 mm), "npy" (float32 m) or "both".
    png_compression : zlib level 0..9 (1 is fast and near the smallest files for renders).
    """

    kind: str = "iscene"
    seed: int = 0
    views: ViewSettings = field(default_factory=ViewSettings)
    layout: Mapping[str, Any] = field(default_factory=dict)
    depth_format: str = "png"
    png_compression: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InputError(None, f"seed must be an integer >= 0, got {self.seed!r}")
        if self.kind not in _LAYOUTS:
            raise InputError(None, f"unknown layout kind {self.kind!r}; allowed: {', '.join(sorted(_LAYOUTS))}")
        if self.depth_format not in DEPTH_FORMATS:
            raise InputError(None, f"depth_format must be one of {', '.join(DEPTH_FORMATS)}, got {self.depth_format!r}")
        if isinstance(self.png_compression, bool) or not 0 <= int(self.png_compression) <= 9:
            raise InputError(None, f"png_compression must be in [0, 9], got {self.png_compression!r}")
        object.__setattr__(self, "layout", dict(self.layout))

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["views"]["orbit"]["elevation_deg"] = list(self.views.orbit.elevation_deg)
        doc["views"]["orbit"]["distance_factor"] = list(self.views.orbit.distance_factor)
        if self.views.orbit.intrinsics is not None:
            doc["views"]["orbit"]["intrinsics"] = list(self.views.orbit.intrinsics)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SynthConfig:
        views = dict(doc.get("views", {}))
        orbit = OrbitSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in views.pop("orbit", {}).items()})
        return cls(kind=doc["kind"], seed=int(doc["seed"]), views=ViewSettings(orbit=orbit, **views),
                   layout=doc.get("layout", {}), depth_format=doc.get("depth_format", "png"),
                   png_compression=int(doc.get("png_compression", 1)))


@dataclass(frozen=True, eq=False)
class SceneFiles:
    """One scene's folder in memory: relative path -> bytes, plus counts and per-stage timings
    ("layout", "render", "encode"): ``seconds`` wall time, ``cpu_seconds`` the worker process's CPU
    time (all its threads, the renderer's included)."""

    index: int
    files: Mapping[str, bytes]
    n_views: int
    n_dropped: int
    seconds: Mapping[str, float]
    cpu_seconds: Mapping[str, float]

    @property
    def name(self) -> str:
        return scene_folder_name(self.index)

    @property
    def n_bytes(self) -> int:
        return sum(len(b) for b in self.files.values())


def scene_folder_name(index: int) -> str:
    return f"scene_{index:06d}"


def stream_seed(seed: int, index: int, stream: int) -> np.random.SeedSequence:
    """Seed of random stream ``stream`` (0 layout, 1 cameras) of scene ``index``."""
    return np.random.SeedSequence([int(seed), int(index), int(stream)])


def layout_seed(seed: int, index: int) -> int:
    """The integer seed handed to the layout function for scene ``index`` (63 bits)."""
    return int(stream_seed(seed, index, 0).generate_state(1, np.uint64)[0] >> np.uint64(1))


def kind_options(config: SynthConfig) -> dict[str, Any]:
    """The options handed to the layout kind: ``pool_seed`` (the dataset seed, which seeds the asset
    pool) and the config's ``layout`` settings."""
    return {"pool_seed": config.seed, **config.layout}


def make_scene(index: int, config: SynthConfig) -> SynthScene:
    """Scene ``index`` of the dataset from its layout kind (the asset pool is seeded by the dataset seed)."""
    made = layout_function(config.kind)(layout_seed(config.seed, index), kind_options(config))
    if not made.scene.objects:
        raise InputError(None, f"layout {config.kind!r} returned a scene without objects (seed {config.seed}, index {index})")
    return made


def build_scene_files(index: int, config: SynthConfig, rasterizer: Any = None) -> SceneFiles:
    """Lay out, render and encode scene ``index``; nothing is written to the output folder.

    rasterizer : defaults to this process's shared one (one GL context per worker process).
    """
    if rasterizer is None:
        from sceneforge.render.rasterizer import shared_rasterizer

        rasterizer = shared_rasterizer()
    stamps = [(time.perf_counter(), time.process_time())]
    made = make_scene(index, config)
    scene = made.scene
    stamps.append((time.perf_counter(), time.process_time()))
    viewset = render_views(scene, config.views, np.random.default_rng(stream_seed(config.seed, index, 1)),
                           rasterizer, made.look, reuse_meshes=True)
    stamps.append((time.perf_counter(), time.process_time()))
    files: dict[str, bytes] = {}
    for view in viewset.views:
        files.update(view_files(view, scene, config.depth_format, config.png_compression))
    synth_meta = {"index": index, "dataset_seed": config.seed, "layout_seed": layout_seed(config.seed, index),
                  "kind": config.kind, "n_candidates": viewset.n_candidates,
                  "dropped_candidates": list(viewset.dropped), "views": views_summary(viewset.views)}
    truth = Scene(objects=scene.objects, camera=None,
                  floor=scene.floor if scene.floor is not None else Plane(np.array([0.0, 1.0, 0.0]), 0.0),
                  background=scene.background, normalisation=None,
                  metadata={**scene.metadata, "synth": synth_meta})
    files.update(scene_json_files(truth, mesh_file=mesh_ply_bytes, indent=None))
    stamps.append((time.perf_counter(), time.process_time()))
    wall, cpu = ({stage: b[k] - a[k] for stage, a, b in zip(STAGES, stamps, stamps[1:])} for k in (0, 1))
    return SceneFiles(index, files, len(viewset.views), len(viewset.dropped), wall, cpu)


def commit_scene(out: str | Path, scene_files: SceneFiles) -> Path:
    """Write one scene folder atomically (temp folder, then rename); returns its path."""
    target = Path(out) / scene_files.name
    with atomic_directory(target) as tmp:
        write_files(tmp, scene_files.files)
    return target


def prepare_output(out: str | Path, config: SynthConfig) -> Path:
    """Create or check ``out``: write dataset.json the first time; on resume the config must match.

    Removes the hidden temp folders a killed run left behind.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "output exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    doc_path = out / "dataset.json"
    wanted = config.to_dict()
    if doc_path.is_file():
        try:
            doc = json.loads(doc_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(doc_path, f"not valid JSON ({exc})") from exc
        if doc.get("format") != DATASET_FORMAT:
            raise InputError(doc_path, f"not a sceneforge synthetic dataset (expected format {DATASET_FORMAT!r})")
        differing = _differing_keys(doc.get("config", {}), wanted)
        if differing:
            raise InputError(doc_path, "was written with another config; differing settings: "
                             + ", ".join(differing) + " (use a new --out folder or the same settings)")
    else:
        doc = {"format": DATASET_FORMAT, "version": DATASET_VERSION, "config": wanted}
        write_text_atomic(doc_path, json.dumps(doc, indent=2) + "\n")
    for child in out.iterdir():
        if child.is_dir() and LEFTOVER.match(child.name):
            shutil.rmtree(child, ignore_errors=True)
    return out


def _differing_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differing_keys(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}={old!r}->{new!r}"]


def existing_scenes(out: str | Path) -> set[int]:
    """Indices of the complete scene folders in ``out``."""
    out = Path(out)
    if not out.is_dir():
        return set()
    found = set()
    for child in out.iterdir():
        m = SCENE_DIR.match(child.name)
        if m and child.is_dir() and (child / "scene.json").is_file():
            found.add(int(m.group(1)))
    return found


def check_scene_count(n_scenes: int) -> int:
    if isinstance(n_scenes, bool) or not isinstance(n_scenes, (int, np.integer)) or not 1 <= n_scenes <= MAX_SCENES:
        raise InputError(None, f"scenes must be an integer in [1, {MAX_SCENES}], got {n_scenes!r}")
    return int(n_scenes)
