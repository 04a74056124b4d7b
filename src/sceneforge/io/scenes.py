"""Whole-scene loading and saving: one entry point per direction, dispatching on the path.

Scene output folder (DESIGN.md)::

    scene.glb        one named node per object, background, camera   (format "glb")
    scene.usda       or scene.usdc                                    (format "usda" / "usdc")
    scene.json       + objects/<id>_<label>.ply (+ background.ply)   (format "json")
    preview.png, report.json, ...                                     (``extra`` files of later stages)

The folder is written atomically: a failure leaves the previous folder (if any) untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from sceneforge.errors import InputError, SceneFileError, UnsupportedFormatError
from sceneforge.io.atomic import atomic_directory, write_bytes_atomic
from sceneforge.types import Scene

SCENE_FORMATS = ("glb", "usda", "usdc", "json")
SCENE_FILE_SUFFIXES = (".json", ".glb", ".gltf", ".usda", ".usdc", ".usd")
# Files whose presence marks a folder as a scene output folder (so it may be replaced whole).
_SCENE_FOLDER_MARKERS = ("scene.json", "scene.glb", "scene.usda", "scene.usdc")


def load_scene(path: str | Path) -> Scene:
    """Load a :class:`Scene` from scene.json, a scene output folder, a .glb/.gltf or a USD file.

    A folder is read through its scene.json, else its scene.glb, else its scene.usda/.usdc.
    Raises :class:`UnsupportedFormatError` for any other file type and
    :class:`SceneFileError` for a missing or malformed file.
    """
    path = Path(path)
    if path.is_dir():
        for name in _SCENE_FOLDER_MARKERS:
            if (path / name).is_file():
                return load_scene(path / name)
        raise SceneFileError(path, f"folder holds no scene file (looked for {', '.join(_SCENE_FOLDER_MARKERS)})")
    suffix = path.suffix.lower()
    if suffix not in SCENE_FILE_SUFFIXES:
        raise UnsupportedFormatError(path, f"unknown scene type {suffix!r}; expected a scene folder or one of "
                                           f"{', '.join(SCENE_FILE_SUFFIXES)}")
    if not path.is_file():
        raise SceneFileError(path, "scene file not found")
    if suffix == ".json":
        from sceneforge.io.scene_json import read_scene_json

        return read_scene_json(path)
    if suffix in (".glb", ".gltf"):
        from sceneforge.io.glb import read_glb_scene

        return read_glb_scene(path)
    from sceneforge.io.usd import read_usd_scene

    return read_usd_scene(path)


def export_scene(scene: Scene, path: str | Path) -> Path:
    """Write ``scene`` to one file chosen by extension (.glb, .usda, .usdc, .usd), or, for a path
    without extension, to a whole scene output folder (glb + usda + json). Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == "":
        return save_scene(scene, path)
    if suffix == ".glb":
        from sceneforge.io.glb import write_glb

        return write_glb(scene, path)
    if suffix in (".usda", ".usdc", ".usd"):
        from sceneforge.io.usd import write_usd

        return write_usd(scene, path)
    raise UnsupportedFormatError(path, f"cannot export to {suffix!r}; use .glb, .usda, .usdc, .usd, "
                                       "or a folder name (no extension) for glb + usda + json")


def save_scene(scene: Scene, out_dir: str | Path, formats: Iterable[str] = ("glb", "usda", "json"),
               extra: Mapping[str, bytes] | None = None,
               write_more: Callable[[Path], None] | None = None) -> Path:
    """Write the scene output folder ``out_dir`` atomically; returns it.

    formats : any of "glb", "usda", "usdc", "json" (json also writes objects/ and background.ply).
    extra : relative file name -> bytes, written into the folder too (e.g. "preview.png").
    write_more : called with the temporary folder before it is moved into place, for writers
        that make their own files; an exception there leaves the previous folder untouched.

    An existing ``out_dir`` is replaced whole, so it must be empty or a scene output folder.
    """
    out_dir = Path(out_dir)
    formats = tuple(formats)
    unknown = [f for f in formats if f not in SCENE_FORMATS]
    if unknown or not formats:
        raise InputError(None, f"unknown scene formats {unknown or formats}; choose from {', '.join(SCENE_FORMATS)}")
    _check_replaceable(out_dir)
    with atomic_directory(out_dir) as tmp:
        if "json" in formats:
            from sceneforge.io.scene_json import write_scene_json

            write_scene_json(scene, tmp)
        if "glb" in formats:
            from sceneforge.io.glb import write_glb

            write_glb(scene, tmp / "scene.glb")
        for usd_format in ("usda", "usdc"):
            if usd_format in formats:
                from sceneforge.io.usd import write_usd

                write_usd(scene, tmp / f"scene.{usd_format}")
        for name, data in (extra or {}).items():
            write_bytes_atomic(_inside(tmp, name), data)
        if write_more is not None:
            write_more(tmp)
    return out_dir


def _check_replaceable(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "output path exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not any((out_dir / m).is_file() for m in _SCENE_FOLDER_MARKERS):
        raise InputError(out_dir, "folder is not empty and is not a scene output folder; refusing to replace it")


def _inside(folder: Path, name: str) -> Path:
    """``folder / name`` for a relative name that stays inside ``folder``."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise InputError(None, f"extra file name {name!r} must be a relative path inside the scene folder")
    return folder / relative
