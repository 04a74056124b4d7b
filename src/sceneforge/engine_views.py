"""One engine view as a reconstruction input with its ground truth (the project's round trip).

``write_engine_view`` lays out and renders one scene of the synthetic engine with a single camera
and writes it to a folder; its ``views/0000`` is a scene input folder, and the ground truth is the
scene's scene.json objects that are visible in that view, with the view's camera (its
T_world_cam) attached so that :mod:`sceneforge.eval` can score in camera frames
(``EvalConfig(frame="camera")``): the reconstruction's world frame is its own (floor-aligned),
so only the camera frames of the two scenes are comparable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sceneforge.errors import InputError
from sceneforge.types import Scene

DEMO_LAYOUT = {"min_objects": 3, "max_objects": 5}


@dataclass(frozen=True, eq=False)
class EngineView:
    """input_dir : the view's scene input folder.  ground_truth : Scene of the visible objects
    with the view camera (T_world_cam) and the engine floor.  scene_dir : the whole engine scene."""

    input_dir: Path
    ground_truth: Scene
    scene_dir: Path


def write_engine_view(folder: str | Path, seed: int = 0, index: int = 0, size: int = 256,
                      layout: dict | None = None, hfov_deg: float = 55.0, kind: str = "iscene") -> EngineView:
    """Render engine scene ``index`` of dataset ``seed`` from one camera into ``folder``.

    size : image width and height, pixels.  layout : options of the kind's layout (object counts;
    None = DEMO_LAYOUT, {} = the kind's defaults).  kind : "iscene" or "openset".
    """
    from sceneforge.synth.cameras import OrbitSpec
    from sceneforge.synth.dataset import SynthConfig, build_scene_files
    from sceneforge.synth.views import ViewSettings

    folder = Path(folder)
    views = ViewSettings(orbit=OrbitSpec(n_views=1, width=size, height=size, hfov_deg=hfov_deg), occlusion="mark")
    config = SynthConfig(kind=kind, seed=seed, layout=dict(DEMO_LAYOUT if layout is None else layout),
                         views=views)
    files = build_scene_files(index, config)
    for name, data in files.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    input_dir = folder / "views" / "0000"
    return EngineView(input_dir, view_ground_truth(folder, input_dir), folder)


def view_ground_truth(scene_dir: str | Path, view_dir: str | Path) -> Scene:
    """The engine scene's objects visible in the view (labels.json ids), with the view's camera."""
    from sceneforge.io.cameras import read_camera
    from sceneforge.io.scenes import load_scene

    view_dir = Path(view_dir)
    scene = load_scene(Path(scene_dir) / "scene.json")
    camera = read_camera(view_dir / "camera.json")
    labels_path = view_dir / "labels.json"
    if not labels_path.is_file():
        raise InputError(labels_path, "engine view has no labels.json (the ids of its visible objects)")
    visible = {int(k) for k in json.loads(labels_path.read_text())}
    objects = tuple(o for o in scene.objects if o.id in visible)
    return Scene(objects=objects, camera=camera, floor=scene.floor, background=None, metadata=scene.metadata)
