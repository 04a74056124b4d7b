"""PLY point clouds: a binary little-endian writer and a reader of ascii and binary PLY vertices.

Written layout: ``element vertex N`` with ``float x y z``, then ``float nx ny nz`` when normals
are given, then ``uchar red green blue`` when colours are given (what Open3D, MeshLab, CloudCompare
and Blender read). Coordinates are stored as float32 (about 1e-7 relative precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sceneforge.errors import InputError, SceneFileError, UnsupportedFormatError
from sceneforge.io.atomic import write_bytes_atomic
from sceneforge.types import frozen_array

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_COLOR_NAMES = (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue"))


@dataclass(frozen=True, eq=False)
class PointCloud:
    """points : (N, 3) float64 metres; colors : (N, 3) uint8 RGB or None; normals : (N, 3) float64 or None."""

    points: np.ndarray
    colors: np.ndarray | None = None
    normals: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", frozen_array(self.points, shape=(None, 3), name="points"))
        n = len(self.points)
        if self.colors is not None:
            object.__setattr__(self, "colors", frozen_array(self.colors, dtype=np.uint8, shape=(n, 3), name="colors"))
        if self.normals is not None:
            object.__setattr__(self, "normals", frozen_array(self.normals, shape=(n, 3), name="normals"))

    def __len__(self) -> int:
        return len(self.points)


def save_point_cloud(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None,
                     normals: np.ndarray | None = None) -> Path:
    """Write a binary PLY point cloud atomically; returns the path.

    points : (N, 3) metres, finite. colors : (N, 3) uint8 RGB (other integer types must lie in
    0..255). normals : (N, 3).
    """
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise UnsupportedFormatError(path, f"point clouds are written as .ply, got {path.suffix!r}")
    points = _checked_array(points, "points", None)
    n = len(points)
    if not np.all(np.isfinite(points)):
        raise InputError(path, "points contain NaN or infinite values")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    columns = [points[:, 0], points[:, 1], points[:, 2]]
    if normals is not None:
        normals = _checked_array(normals, "normals", n)
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
        columns += [normals[:, 0], normals[:, 1], normals[:, 2]]
    if colors is not None:
        colors = _checked_colors(colors, n)
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
        columns += [colors[:, 0], colors[:, 1], colors[:, 2]]
    table = np.empty(n, dtype=np.dtype(fields))
    for (name, _), column in zip(fields, columns):
        table[name] = column
    header = ["ply", "format binary_little_endian 1.0", "comment written by sceneforge", f"element vertex {n}"]
    ply_names = {"<f4": "float", "u1": "uchar"}
    header += [f"property {ply_names[kind]} {name}" for name, kind in fields]
    header.append("end_header")
    write_bytes_atomic(path, ("\n".join(header) + "\n").encode("ascii") + table.tobytes())
    return path


def _checked_array(values: np.ndarray, name: str, n: int | None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3 or (n is not None and len(array) != n):
        expected = "(N, 3)" if n is None else f"({n}, 3)"
        raise InputError(None, f"{name} must have shape {expected}, got {array.shape}")
    return array


def _checked_colors(colors: np.ndarray, n: int) -> np.ndarray:
    array = np.asarray(colors)
    if array.ndim != 2 or array.shape != (n, 3):
        raise InputError(None, f"colors must have shape ({n}, 3), got {array.shape}")
    if array.dtype != np.uint8:
        if array.dtype.kind not in "iu" or (array.size and (array.min() < 0 or array.max() > 255)):
            raise InputError(None, f"colors must be uint8 RGB in 0..255, got {array.dtype} "
                                   f"in [{array.min() if array.size else 0}, {array.max() if array.size else 0}]")
    return array.astype(np.uint8)


@dataclass(frozen=True)
class _PlyElement:
    name: str
    count: int
    properties: tuple[tuple[str, str, str | None], ...]  # (name, value type, list count type or None)


def load_point_cloud(path: str | Path) -> PointCloud:
    """The vertices of a PLY file (ascii or binary; faces, if any, are ignored) as a point cloud.

    Normals are read from nx/ny/nz and colours from red/green/blue (or r/g/b, diffuse_*); float
    colours in [0, 1] are scaled to 0..255.
    """
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise UnsupportedFormatError(path, f"point clouds are read from .ply, got {path.suffix!r}")
    if not path.is_file():
        raise SceneFileError(path, "point cloud file not found")
    data = path.read_bytes()
    fmt, elements, body_start = _parse_header(data, path)
    vertex = _read_vertex_element(data[body_start:], fmt, elements, path)
    names = vertex.dtype.names
    for axis in "xyz":
        if axis not in names:
            raise SceneFileError(path, f"vertex element has no {axis!r} property")
    points = np.stack([vertex[a].astype(np.float64) for a in "xyz"], axis=1)
    normals = None
    if all(a in names for a in ("nx", "ny", "nz")):
        normals = np.stack([vertex[a].astype(np.float64) for a in ("nx", "ny", "nz")], axis=1)
    colors = None
    for triple in _COLOR_NAMES:
        if all(a in names for a in triple):
            raw = np.stack([vertex[a] for a in triple], axis=1)
            if raw.dtype.kind == "f":
                raw = np.round(np.clip(raw, 0.0, 1.0) * 255.0)
            colors = np.clip(raw, 0, 255).astype(np.uint8)
            break
    return PointCloud(points, colors, normals)


def _parse_header(data: bytes, path: Path) -> tuple[str, list[_PlyElement], int]:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise SceneFileError(path, "not a PLY file (no 'ply' magic or no 'end_header')")
    body_start = data.index(b"\n", end) + 1
    lines = data[:end].decode("ascii", errors="replace").splitlines()
    fmt, elements = None, []
    for line in lines[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            elements.append(_PlyElement(words[1], int(words[2]), ()))
        elif words[0] == "property" and elements:
            prop = (words[4], words[3], words[2]) if words[1] == "list" else (words[2], words[1], None)
            if prop[1] not in _PLY_TYPES or (prop[2] is not None and prop[2] not in _PLY_TYPES):
                raise SceneFileError(path, f"unknown PLY property type in {line!r}")
            last = elements[-1]
            elements[-1] = _PlyElement(last.name, last.count, last.properties + (prop,))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise SceneFileError(path, f"unknown PLY format {fmt!r}")
    return fmt, elements, body_start


def _read_vertex_element(body: bytes, fmt: str, elements: list[_PlyElement], path: Path) -> np.ndarray:
    """The vertex element as a structured array; elements before it are skipped."""
    order = "<" if fmt == "binary_little_endian" else ">"
    offset = 0  # bytes (binary) or lines (ascii) consumed by earlier elements
    for element in elements:
        has_list = any(p[2] is not None for p in element.properties)
        if element.name == "vertex":
            if has_list:
                raise SceneFileError(path, "vertex element with list properties is not supported")
            dtype = np.dtype([(name, _PLY_TYPES[kind]) for name, kind, _ in element.properties])
            if fmt == "ascii":
                lines = body.decode("ascii", errors="replace").splitlines()[offset:offset + element.count]
                if len(lines) != element.count:
                    raise SceneFileError(path, f"PLY has {len(lines)} of {element.count} vertex lines")
                values = np.array([ln.split()[: len(dtype.names)] for ln in lines], dtype=np.float64)
                table = np.empty(element.count, dtype=dtype)
                for i, name in enumerate(dtype.names):
                    table[name] = values[:, i]
                return table
            binary = dtype.newbyteorder(order)
            if offset + binary.itemsize * element.count > len(body):
                raise SceneFileError(path, "PLY file is truncated (vertex data shorter than the header says)")
            return np.frombuffer(body, dtype=binary, count=element.count, offset=offset).astype(dtype.newbyteorder("="))
        if fmt == "ascii":
            offset += element.count
        elif has_list:
            raise SceneFileError(path, f"element {element.name!r} with list properties comes before the vertices")
        else:
            offset += element.count * sum(np.dtype(_PLY_TYPES[k]).itemsize for _, k, _ in element.properties)
    raise SceneFileError(path, "PLY file has no vertex element")
