"""User meshes from a folder: ``<root>/<category>/<file>.{glb,gltf,obj,ply,stl,off}``.

The category of a file is the name of its sub-folder; files lying directly in ``root`` take their
file stem as category. Each mesh is turned into an :class:`Asset` in the canonical frame (bounding
box centred at the origin, y up; the file's up axis is given by ``up_axis``; its front is kept as
stored) and rescaled to a real-world size: when the category is a procedural one, its largest side
matches the middle of that category's size prior; otherwise it matches ``default_size`` metres
(``rescale=False`` keeps the file's own units). Colours come from the file (vertex or face colours,
textures baked to vertex colours) or a neutral grey; every face is part 0 ("body").

A file that cannot be read (broken, empty, no triangles, NaN vertices) is skipped with a
:class:`UserAssetWarning` and recorded in :attr:`UserAssetLibrary.skipped`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from sceneforge.assets.base import Asset, SizePrior
from sceneforge.assets.procedural import REGISTRY
from sceneforge.errors import InputError
from sceneforge.io.meshes import MESH_SUFFIXES, load_mesh

_UP_TO_Y = {
    "y": np.eye(3),
    "z": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),  # (x, y, z) -> (x, z, -y)
    "x": np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),  # (x, y, z) -> (y, -x, z)
}


class UserAssetWarning(UserWarning):
    """A user mesh file was skipped."""


@dataclass(frozen=True)
class SkippedFile:
    """A user mesh file that could not be used, and why."""

    path: str
    problem: str


@dataclass(frozen=True, eq=False)
class UserAssetLibrary:
    """Assets loaded from a folder, in sorted path order, and the files that were skipped."""

    root: str
    assets: tuple[Asset, ...]
    skipped: tuple[SkippedFile, ...]

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({a.category for a in self.assets}))

    def by_category(self, category: str) -> tuple[Asset, ...]:
        return tuple(a for a in self.assets if a.category == category)


def _face_colours(mesh: trimesh.Trimesh) -> np.ndarray:
    """(F, 4) uint8 colours from whatever the file carried; grey when it carried none."""
    try:
        visual = mesh.visual
        if visual.kind == "texture":
            visual = visual.to_color()
        if visual.kind in ("vertex", "face"):
            colours = np.asarray(trimesh.visual.ColorVisuals(mesh, vertex_colors=visual.vertex_colors).face_colors
                                 if visual.kind == "vertex" else visual.face_colors, dtype=np.uint8)
            if colours.shape == (len(mesh.faces), 4):
                return colours
    except Exception:  # colour baking is best effort; geometry is what matters
        pass
    return np.tile(np.array([180, 180, 180, 255], dtype=np.uint8), (len(mesh.faces), 1))


def canonical_user_asset(mesh: trimesh.Trimesh, category: str, source: str, *, up_axis: str = "y",
                         rescale: bool = True, default_size: float = 0.3) -> Asset:
    """Turn a loaded mesh into a canonical :class:`Asset` (see the module docstring)."""
    if up_axis not in _UP_TO_Y:
        raise InputError(None, f"up_axis must be one of x, y, z, got {up_axis!r}")
    if not default_size > 0:
        raise InputError(None, f"default_size must be positive metres, got {default_size}")
    colours = _face_colours(mesh)
    vertices = np.asarray(mesh.vertices, dtype=np.float64) @ _UP_TO_Y[up_axis].T
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    if not np.max(hi - lo) > 0:
        raise InputError(source, "mesh has zero size")
    spec = REGISTRY.get(category)
    target = float(np.max(spec.size_prior.mean)) if spec is not None else float(default_size)
    scale = target / float(np.max(hi - lo)) if rescale else 1.0
    vertices = (vertices - (lo + hi) / 2.0) * scale
    out = trimesh.Trimesh(vertices, np.asarray(mesh.faces), face_colors=colours, process=False)
    if out.is_watertight and out.volume < 0:
        out.invert()
    extents = out.extents
    prior = spec.size_prior if spec is not None else SizePrior(extents * 0.75, extents * 1.25)
    key = f"user/{category}/{Path(source).name}"
    out.metadata["name"] = key
    params = {"source": source, "scale_applied": scale, "up_axis": up_axis}
    return Asset(out, np.zeros(len(out.faces), dtype=np.int32), ("body",), category, params, prior, key, source)


def load_user_assets(root: str | Path, *, up_axis: str = "y", rescale: bool = True,
                     default_size: float = 0.3) -> UserAssetLibrary:
    """Load every mesh file under ``root`` (one level of category sub-folders, see module docstring).

    Raises InputError when ``root`` is not a folder or holds no mesh file at all; a broken file is
    skipped with a warning and counted in the result.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "user mesh folder not found (expected a directory)")
    files = sorted(p for p in list(root.glob("*")) + list(root.glob("*/*"))
                   if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
    if not files:
        raise InputError(root, f"no mesh file ({', '.join(MESH_SUFFIXES)}) in the folder or its sub-folders")
    assets, skipped = [], []
    for path in files:
        category = path.stem if path.parent == root else path.parent.name
        try:
            mesh = load_mesh(path)
            assets.append(canonical_user_asset(mesh, category, str(path), up_axis=up_axis, rescale=rescale,
                                               default_size=default_size))
        except InputError as exc:
            warnings.warn(f"skipping user mesh {exc}", UserAssetWarning, stacklevel=2)
            skipped.append(SkippedFile(str(path), exc.problem))
    return UserAssetLibrary(str(root), tuple(assets), tuple(skipped))
