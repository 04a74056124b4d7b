"""Depth maps in the encodings real RGB-D data uses, all decoded to float32 metres (0 = invalid).

| encoding | file | decoding |
| --- | --- | --- |
| ``mm`` | 16-bit PNG | value / 1000 (Redwood, ScanNet, our own ``depth.png``) |
| ``tum`` | 16-bit PNG | value / 5000 (TUM RGB-D) |
| ``metres`` | float ``.npy`` / ``.npz`` array | as stored |
| ``sun`` | 16-bit PNG | bits rotated right by 3, / 1000; beyond 7 m invalid (as Open3D's SUN reader) |
| ``nyu`` | 16-bit PGM | Kinect disparity d (byte-swapped) -> 351.3 / (1092.5 - d); d = 2047 invalid |

``auto`` picks ``metres`` for .npy, ``nyu`` for .pgm and ``mm`` for other 16-bit images.
NaN, infinite and negative values are marked invalid (0) and counted; a map with no valid pixel
is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from sceneforge.errors import DepthError, UnsupportedFormatError
from sceneforge.io.images import open_image

DepthEncoding = Literal["auto", "mm", "tum", "metres", "sun", "nyu"]
DEPTH_ENCODINGS: tuple[str, ...] = ("auto", "mm", "tum", "metres", "sun", "nyu")
SUN_MAX_DEPTH_M = 7.0


def resolve_encoding(path: Path, encoding: str) -> str:
    if encoding not in DEPTH_ENCODINGS:
        raise DepthError(path, f"unknown depth encoding {encoding!r}; expected one of {', '.join(DEPTH_ENCODINGS)}")
    if encoding != "auto":
        return encoding
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return "metres"
    if suffix == ".pgm":
        return "nyu"
    if suffix in (".png", ".tif", ".tiff"):
        return "mm"
    raise UnsupportedFormatError(path, f"unknown depth file type {suffix!r}; expected .png (16-bit), "
                                       ".npy (float metres) or .pgm (NYU)")


def decode_depth(raw: np.ndarray, encoding: str, source: str | Path) -> tuple[np.ndarray, int]:
    """Decode a raw depth array -> ((H, W) float32 metres with 0 = invalid, number of pixels
    that held NaN, inf or negative values)."""
    if encoding == "metres":
        depth = raw.astype(np.float64)
    elif encoding in ("mm", "tum"):
        if not np.issubdtype(raw.dtype, np.integer):
            raise DepthError(source, f"{encoding} depth must be an integer image, got {raw.dtype}")
        depth = raw.astype(np.float64) / (1000.0 if encoding == "mm" else 5000.0)
    elif encoding == "sun":
        r = raw.astype(np.uint16)
        depth = ((r >> 3) | (r << 13)).astype(np.float64) / 1000.0
        depth[depth > SUN_MAX_DEPTH_M] = 0.0
    elif encoding == "nyu":
        disparity = raw.astype(np.uint16).byteswap().astype(np.float64)
        with np.errstate(divide="ignore"):
            depth = np.where(disparity >= 2047, 0.0, 351.3 / (1092.5 - disparity))
    else:
        raise DepthError(source, f"unknown depth encoding {encoding!r}")
    bad = ~np.isfinite(depth) | (depth < 0)
    depth[bad] = 0.0
    if not np.any(depth > 0):
        raise DepthError(source, "depth has no valid pixel (all zero, NaN, inf or negative)")
    return depth.astype(np.float32), int(np.count_nonzero(bad))


def read_depth(path: str | Path, encoding: str = "auto") -> tuple[np.ndarray, int]:
    """Depth file -> ((H, W) float32 metres, 0 = invalid; count of NaN/inf/negative pixels masked)."""
    path = Path(path)
    encoding = resolve_encoding(path, encoding)
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise DepthError(path, "file not found")
        try:
            raw = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DepthError(path, f"cannot read .npy depth ({exc})") from exc
    else:
        img = open_image(path)
        if img.mode not in ("I;16", "I;16B", "I;16L", "I", "F", "L"):
            raise DepthError(path, f"depth image must be single-channel 16-bit, got mode {img.mode!r}")
        raw = np.asarray(img)
    if raw.ndim != 2:
        raise DepthError(path, f"depth must be a 2-D array, got shape {raw.shape}")
    return decode_depth(raw, encoding, path)


def write_depth_png(path: str | Path, depth_m: np.ndarray) -> None:
    """(H, W) metres -> 16-bit PNG in millimetres (0 = invalid; clipped to 65.535 m), atomically."""
    from sceneforge.io.atomic import atomic_path

    mm = np.clip(np.round(np.nan_to_num(depth_m, nan=0.0) * 1000.0), 0, 65535).astype(np.uint16)
    with atomic_path(path) as tmp:
        Image.fromarray(mm).save(tmp, format="PNG")
