"""Encode rendered views into scene input folders, in memory, ready to be written atomically.

Each view becomes ``views/NNNN/`` in the scene input folder format (DESIGN.md), so it can be given
to ``reconstruct`` as is:

- ``rgb.png``        (H, W, 3) 8-bit RGB.
- ``instances.png``  (H, W) 16-bit index map, 0 = background (sky and ground), k = object id k.
- ``depth.png``      (H, W) uint16 millimetres along the camera z axis, 0 = no surface or > 65.535 m;
  and/or ``depth.npy`` float32 metres (0 = no surface), by ``depth_format``.
- ``normals.png``    optional (H, W, 3) 8-bit camera-frame normals, ``(n + 1) / 2 * 255``, 0 = none.
- ``camera.json``    ``fx fy cx cy width height`` and ``T_world_cam`` (4x4, OpenCV camera -> world).
- ``labels.json``    ``{"<id>": "<label>"}`` for the objects visible in this view.
- ``view.json``      the view-centric data: ``T_cam_world``, ``normalisation`` (I-Scene: centre and
  largest side of the scene's box in this camera frame, ``p_norm = (p_cam - centre) / scale``) and
  per object ``T_cam_obj`` and ``T_norm_obj`` (4x4 with scale), ``box_cam``, ``visible_pixels``
  and ``visible``.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from sceneforge.errors import InputError
from sceneforge.io.compact_json import compact_json
from sceneforge.synth.views import SynthView
from sceneforge.types import Scene

DEPTH_FORMATS = ("png", "npy", "both")
VIEW_FORMAT = "sceneforge.synth_view"
VIEW_VERSION = 1
MAX_DEPTH_MM = 65535


try:  # ISA-L's deflate: about 5x faster than zlib at levels 1-3, the same format
    from isal import isal_zlib as _fast_deflate
except ImportError:  # pragma: no cover - isal is a dependency; plain zlib gives the same files, slower
    _fast_deflate = None

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG filter types by name (every row of an image gets the same one): "none" the bytes as they are,
#: "sub" each byte minus the byte one pixel to its left, "up" each byte minus the byte above it.
PNG_FILTERS = {"none": 0, "sub": 1, "up": 2}


def deflate(data: bytes | np.ndarray, level: int) -> bytes:
    """zlib stream of ``data`` (bytes or a C-contiguous array's buffer) at zlib level 0..9; levels 1-3
    run on ISA-L when installed."""
    if _fast_deflate is not None and 1 <= level <= 3:
        return _fast_deflate.compress(data, level)
    return zlib.compress(data, level)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = _fast_deflate.crc32(data, zlib.crc32(kind)) if _fast_deflate is not None else zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _filtered_rows(rows: np.ndarray, bytes_per_pixel: int, png_filter: str) -> np.ndarray:
    """(H, 1 + R) uint8: each of the (H, R) uint8 ``rows`` behind its filter type byte, filtered."""
    height, row_bytes = rows.shape
    out = np.empty((height, row_bytes + 1), np.uint8)
    out[:, 0] = PNG_FILTERS[png_filter]
    if png_filter == "none":
        out[:, 1:] = rows
    elif png_filter == "up":
        out[0, 1:] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
    else:  # "sub", on the whole buffer at once (faster than row by row); each row's first pixel put back
        flat = rows.reshape(-1)
        difference = np.empty_like(flat)
        np.subtract(flat[bytes_per_pixel:], flat[:-bytes_per_pixel], out=difference[bytes_per_pixel:])
        out[:, 1:] = difference.reshape(height, row_bytes)
        out[:, 1:1 + bytes_per_pixel] = rows[:, :bytes_per_pixel]
    return out


def encode_png(image: np.ndarray, compression: int, png_filter: str = "sub") -> bytes:
    """PNG bytes of a (H, W) or (H, W, 3) uint8/uint16 image (RGB order for colour), zlib level 0..9.

    Every row uses the same filter, ``png_filter`` (a key of :data:`PNG_FILTERS`; no per-row filter
    search: renders compress about as well, much faster), and the deflate of :func:`deflate`. The
    filter changes the file's bytes, never the decoded image."""
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16) or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise InputError(None, f"PNG encoding needs (H, W) or (H, W, 3) uint8/uint16, got {image.dtype} {image.shape}")
    if png_filter not in PNG_FILTERS:
        raise InputError(None, f"png_filter must be one of {', '.join(PNG_FILTERS)}, got {png_filter!r}")
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else 3
    rows = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder(">")).reshape(height, -1).view(np.uint8)
    filtered = _filtered_rows(rows, channels * image.itemsize, png_filter)
    header = struct.pack(">IIBBBBB", width, height, 8 * image.itemsize, 0 if channels == 1 else 2, 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", deflate(filtered, int(compression))), _png_chunk(b"IEND", b"")))


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """(H, W) float metres -> uint16 millimetres (rounded); 0 and anything beyond 65.535 m become 0."""
    mm = np.multiply(depth, 1000.0, dtype=np.float64)
    np.rint(mm, out=mm)
    outside = ~(mm <= MAX_DEPTH_MM)  # beyond the range, and NaN
    outside |= mm < 0
    mm[outside] = 0
    return mm.astype(np.uint16)


def encode_npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def view_document(view: SynthView, scene: Scene) -> dict[str, Any]:
    """The JSON of view.json (see the module docstring)."""
    labels = {o.id: o.label for o in scene.objects}
    objects = []
    for pose in view.frame.objects:
        objects.append({
            "id": pose.object_id,
            "label": labels[pose.object_id],
            "visible": view.is_visible(pose.object_id),
            "visible_pixels": int(view.visible_pixels.get(pose.object_id, 0)),
            "T_cam_obj": pose.T_cam_obj.tolist(),
            "T_norm_obj": pose.T_norm_obj.tolist(),
            "box_cam": {"min": pose.box_cam[0].tolist(), "max": pose.box_cam[1].tolist()},
        })
    return {
        "format": VIEW_FORMAT,
        "version": VIEW_VERSION,
        "view": view.index,
        "candidate": view.candidate,
        "camera": view.camera.to_dict(),
        "T_cam_world": view.frame.T_cam_world.tolist(),
        "normalisation": view.frame.normalisation.to_dict(),
        "objects": objects,
    }


def view_files(view: SynthView, scene: Scene, depth_format: str = "png", compression: int = 1) -> dict[str, bytes]:
    """Relative path (under the scene folder) -> bytes of every file of one view."""
    if depth_format not in DEPTH_FORMATS:
        raise InputError(None, f"depth_format must be one of {', '.join(DEPTH_FORMATS)}, got {depth_format!r}")
    if not 0 <= int(compression) <= 9:
        raise InputError(None, f"png compression must be in [0, 9], got {compression}")
    folder = f"views/{view.index:04d}"
    r = view.render
    labels = {o.id: o.label for o in scene.objects}
    # PNG filters (they change the bytes, not the images): Sub for colour, None for the instance map
    # (flat regions compress best as they are, and nothing to compute), Up for depth (cheaper than Sub)
    files = {
        f"{folder}/rgb.png": encode_png(r.rgb, compression, "sub"),
        f"{folder}/instances.png": encode_png(r.instances, compression, "none"),
        f"{folder}/camera.json": compact_json(view.camera.to_dict()),
        f"{folder}/labels.json": compact_json({str(i): labels[i] for i in view.visible_ids}),
        f"{folder}/view.json": compact_json(view_document(view, scene)),
    }
    if depth_format in ("png", "both"):
        files[f"{folder}/depth.png"] = encode_png(depth_to_millimetres(r.depth), compression, "up")
    if depth_format in ("npy", "both"):
        files[f"{folder}/depth.npy"] = encode_npy(r.depth.astype(np.float32))
    if r.normals is not None:
        encoded = np.where(np.any(r.normals != 0, axis=-1, keepdims=True),
                           np.clip(np.rint((r.normals + 1.0) * 127.5), 1, 255), 0).astype(np.uint8)
        files[f"{folder}/normals.png"] = encode_png(encoded, compression, "sub")
    return files


def views_summary(views: tuple[SynthView, ...]) -> list[Mapping[str, Any]]:
    """Per kept view: folder, candidate index, visible and invisible object ids (for scene.json metadata)."""
    out = []
    for v in views:
        visible = v.visible_ids
        out.append({"folder": f"views/{v.index:04d}", "candidate": v.candidate, "visible": visible,
                    "invisible": [i for i in v.visible_pixels if i not in visible]})
    return out
