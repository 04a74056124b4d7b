"""The asset data model: :class:`Asset`, :class:`SizePrior`, :class:`Part` and the parameter sampler.

An :class:`Asset` is one object ready for a layout: a canonical triangle mesh (metres; bounding box
centred at the origin, y up, front facing +z) whose ``mesh.visual.face_colors`` hold per-part
colours, a per-face part index (``part_ids`` into ``part_names``), the category, the JSON-able
parameters that produced it, and the category's real-world size prior.

Procedural generators draw their parameters through :class:`ParamSampler`: every draw consumes
the random stream whether or not it is overridden, so overriding one parameter with the same seed
leaves every other parameter unchanged (this is what makes "shape parameters change the shape"
testable).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import trimesh

from sceneforge.errors import InputError


@dataclass(frozen=True, eq=False)
class SizePrior:
    """Real-world size range of a category: ``low``/``high`` are (3,) float64 metres for the
    (width x, height y, depth z) of the canonical bounding box."""

    low: np.ndarray
    high: np.ndarray

    def __post_init__(self) -> None:
        low = np.array(self.low, dtype=np.float64).reshape(3)
        high = np.array(self.high, dtype=np.float64).reshape(3)
        if np.any(low <= 0) or np.any(high < low):
            raise ValueError(f"size prior needs 0 < low <= high, got low={low.tolist()} high={high.tolist()}")
        low.setflags(write=False)
        high.setflags(write=False)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def mean(self) -> np.ndarray:
        """(3,) float64 metres, the middle of the range."""
        return (self.low + self.high) / 2.0

    def to_dict(self) -> dict[str, list[float]]:
        return {"low": self.low.tolist(), "high": self.high.tolist()}


@dataclass(frozen=True, eq=False)
class Part:
    """One coloured piece of an asset while it is being built (closed mesh, RGB uint8 colour)."""

    name: str
    mesh: trimesh.Trimesh
    colour: tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class Asset:
    """A canonical object mesh with per-part colours and ids.

    mesh : trimesh.Trimesh, metres, canonical frame (box centred at origin, y up, front +z);
        ``mesh.visual.face_colors`` (F, 4) uint8 RGBA per face.
    part_ids : (F,) int32, index into ``part_names`` for each face.
    part_names : names of the parts ("top", "leg", "seat", ...).
    category : category name (registry name, or a user folder's sub-folder name).
    params : JSON-able parameters that produced the mesh (shape, size, colours, source file).
    size_prior : the category's real-world size range.
    key : unique, stable identifier (e.g. ``"procedural/chair/seed=3"``) for caches (GPU buffers).
    source : ``"procedural"`` or the path of the user mesh file.
    """

    mesh: trimesh.Trimesh
    part_ids: np.ndarray
    part_names: tuple[str, ...]
    category: str
    params: Mapping[str, Any]
    size_prior: SizePrior
    key: str
    source: str = "procedural"

    def __post_init__(self) -> None:
        ids = np.array(self.part_ids, dtype=np.int32)
        if ids.shape != (len(self.mesh.faces),):
            raise ValueError(f"part_ids must have one entry per face ({len(self.mesh.faces)}), got {ids.shape}")
        ids.setflags(write=False)
        object.__setattr__(self, "part_ids", ids)
        object.__setattr__(self, "part_names", tuple(self.part_names))
        object.__setattr__(self, "params", dict(self.params))

    @cached_property
    def extents(self) -> np.ndarray:
        """(3,) float64 metres, bounding-box size (x, y, z); read-only, computed once (an asset's mesh
        is never modified in place)."""
        extents = np.array(self.mesh.extents, dtype=np.float64)
        extents.setflags(write=False)
        return extents

    @cached_property
    def footprint_radius(self) -> float:
        """Radius (metres) of the smallest origin-centred disc holding the x/z bounding box at any yaw:
        half the diagonal of the x/z extents (I-Scene's r-hat)."""
        ex, _, ez = self.extents
        return 0.5 * float(np.hypot(ex, ez))

    @property
    def face_colours(self) -> np.ndarray:
        """(F, 4) uint8 RGBA."""
        return np.asarray(self.mesh.visual.face_colors, dtype=np.uint8)


def assemble(parts: Sequence[Part]) -> tuple[trimesh.Trimesh, np.ndarray, tuple[str, ...]]:
    """Concatenate parts into one mesh centred on its bounding box; returns (mesh, part_ids, names).

    Parts that share a name share one part id. The mesh keeps every part closed (no vertex merging),
    so a set of closed parts gives a watertight mesh.
    """
    names: list[str] = []
    verts, faces, colours, ids = [], [], [], []
    offset = 0
    for part in parts:
        if part.name not in names:
            names.append(part.name)
        v = np.asarray(part.mesh.vertices, dtype=np.float64)
        f = np.asarray(part.mesh.faces, dtype=np.int64)
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
        colours.append(np.tile(np.array([*part.colour, 255], dtype=np.uint8), (len(f), 1)))
        ids.append(np.full(len(f), names.index(part.name), dtype=np.int32))
    vertices = np.vstack(verts)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    vertices = vertices - (lo + hi) / 2.0
    mesh = trimesh.Trimesh(vertices, np.vstack(faces), face_colors=np.vstack(colours), process=False)
    return mesh, np.concatenate(ids), tuple(names)


def _jitter_colour(rng: np.random.Generator, rgb: Sequence[int], amount: float) -> tuple[int, int, int]:
    scale = 1.0 + rng.uniform(-amount, amount)
    shift = rng.uniform(-amount, amount, size=3) * 40.0
    out = np.clip(np.asarray(rgb, dtype=np.float64) * scale + shift, 0, 255)
    return tuple(int(round(c)) for c in out)


@dataclass
class ParamSampler:
    """Draws named parameters from ``rng``, replacing any that appear in ``overrides``.

    Every method draws from the stream first and only then looks at the override, so the stream
    stays aligned whatever is overridden. ``params`` records what was used (JSON-able).
    """

    rng: np.random.Generator
    category: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def _take(self, name: str, drawn: Any) -> Any:
        if name in self.params:
            raise KeyError(f"parameter {name!r} drawn twice for {self.category}")
        return self.overrides.get(name, drawn)

    def _bad(self, name: str, value: Any, allowed: str) -> InputError:
        return InputError(None, f"{self.category} parameter {name}={value!r} is out of range; allowed: {allowed}")

    def uniform(self, name: str, low: float, high: float) -> float:
        value = self._take(name, float(self.rng.uniform(low, high)))
        if not isinstance(value, (int, float)) or not low <= float(value) <= high:
            raise self._bad(name, value, f"a number in [{low:g}, {high:g}]")
        self.params[name] = float(value)
        return float(value)

    def integer(self, name: str, low: int, high: int) -> int:
        """An integer in [low, high] (both inclusive)."""
        value = self._take(name, int(self.rng.integers(low, high + 1)))
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= int(value) <= high:
            raise self._bad(name, value, f"an integer in [{low}, {high}]")
        self.params[name] = int(value)
        return int(value)

    def choice(self, name: str, options: Sequence[Any]) -> Any:
        value = self._take(name, options[int(self.rng.integers(len(options)))])
        if value not in options:
            raise self._bad(name, value, f"one of {list(options)}")
        self.params[name] = value
        return value

    def flag(self, name: str, probability: float = 0.5) -> bool:
        value = self._take(name, bool(self.rng.uniform() < probability))
        if not isinstance(value, (bool, np.bool_)):
            raise self._bad(name, value, "True or False")
        self.params[name] = bool(value)
        return bool(value)

    def colour(self, name: str, palette: Sequence[Sequence[int]], jitter: float = 0.12) -> tuple[int, int, int]:
        """An RGB uint8 colour: a palette entry with brightness/tint jitter."""
        base = palette[int(self.rng.integers(len(palette)))]
        value = self._take(name, _jitter_colour(self.rng, base, jitter))
        arr = np.asarray(value)
        if arr.shape != (3,) or np.any(arr < 0) or np.any(arr > 255):
            raise self._bad(name, value, "three integers in [0, 255]")
        rgb = tuple(int(c) for c in arr)
        self.params[name] = list(rgb)
        return rgb

    def dims(self, prior: SizePrior) -> tuple[float, float, float]:
        """(width, height, depth) metres drawn uniformly within the size prior."""
        return (self.uniform("width", prior.low[0], prior.high[0]),
                self.uniform("height", prior.low[1], prior.high[1]),
                self.uniform("depth", prior.low[2], prior.high[2]))

    def check_overrides_used(self) -> None:
        unknown = sorted(set(self.overrides) - set(self.params))
        if unknown:
            raise InputError(None, f"unknown {self.category} parameter(s) {unknown}; "
                                   f"parameters are {sorted(self.params)}")
