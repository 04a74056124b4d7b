"""Images, instance maps and binary masks.

Instance maps come in three layouts, all turned into an (H, W) int32 index map (0 = background):

- index maps: palette ("P"), 8-bit grey ("L") or 16-bit ("I;16"/"I") PNGs whose values are ids;
- RGB colour-coded maps (MIDI-3D, some SceneMaker maps): each distinct non-black colour is one
  instance; ids 1..K follow the colours sorted by their 24-bit code (0xRRGGBB), so the numbering is
  stable; an RGB map whose three channels are equal is read as an index map;
- one binary mask file per object (SceneGen): any channel > 127 is the object.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from sceneforge.errors import ImageError, MaskError, UnsupportedFormatError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp")
MAX_COLOUR_INSTANCES = 512


def open_image(path: Path) -> Image.Image:
    """Open and fully decode an image, turning every decoder failure into ImageError."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UnsupportedFormatError(path, f"unknown image type {path.suffix!r}; expected one of "
                                           f"{', '.join(IMAGE_SUFFIXES)}")
    if not path.is_file():
        raise ImageError(path, "file not found")
    try:
        img = Image.open(path)
        img.load()
    except UnidentifiedImageError as exc:
        raise ImageError(path, "not a readable image (unknown or corrupt content)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(path, f"cannot decode image, it may be truncated ({exc})") from exc
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Colour image -> (H, W, 3) uint8 RGB. Grey images are repeated, alpha is dropped,
    16-bit images are scaled to 8 bits."""
    path = Path(path)
    img = open_image(path)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = a.max() if a.size and a.max() > 0 else 1.0
        grey = np.clip(a / hi * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def read_instance_map(path: str | Path) -> np.ndarray:
    """Instance map in any supported layout -> (H, W) int32 ids, 0 = background."""
    path = Path(path)
    img = open_image(path)
    if img.mode in ("P", "L", "I;16", "I;16B", "I;16L", "I"):
        ids = np.asarray(img, dtype=np.int64)
    elif img.mode in ("RGB", "RGBA", "LA"):
        rgb = np.asarray(img.convert("RGB"), dtype=np.int64)
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            ids = rgb[..., 0]
        else:
            ids = _colour_codes_to_ids(path, (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    else:
        raise MaskError(path, f"unsupported instance map mode {img.mode!r}; expected an index "
                              "(palette/grey/16-bit) or RGB colour-coded PNG")
    if ids.min() < 0 or ids.max() > np.iinfo(np.int32).max:
        raise MaskError(path, "instance ids out of range")
    ids = ids.astype(np.int32)
    if not np.any(ids > 0):
        raise MaskError(path, "instance map has no instance (every pixel is background)")
    return ids


def _colour_codes_to_ids(path: Path, codes: np.ndarray) -> np.ndarray:
    colours, inverse = np.unique(codes, return_inverse=True)
    n = int(np.count_nonzero(colours))
    if n > MAX_COLOUR_INSTANCES:
        raise MaskError(path, f"colour-coded instance map has {n} distinct colours (at most "
                              f"{MAX_COLOUR_INSTANCES}); it looks like a photo or an antialiased/lossy map")
    # black (code 0), when present, is colours[0] and must map to 0
    offset = 0 if colours[0] == 0 else 1
    return (inverse.reshape(codes.shape) + offset).astype(np.int64)


def read_binary_mask(path: str | Path) -> np.ndarray:
    """One object's mask file -> (H, W) bool (any channel > 127)."""
    path = Path(path)
    img = open_image(path)
    a = np.asarray(img.convert("RGB") if img.mode not in ("L", "1") else img.convert("L"))
    return (a > 127).any(axis=2) if a.ndim == 3 else a > 127


def masks_to_instance_map(masks: list[np.ndarray], ids: list[int], source: str | Path) -> tuple[np.ndarray, int]:
    """Stack per-object boolean masks into an index map; later masks win where they overlap.

    Returns ((H, W) int32 ids, number of overlapping pixels)."""
    if not masks:
        raise MaskError(source, "no mask given")
    shape = masks[0].shape
    out = np.zeros(shape, dtype=np.int32)
    covered = np.zeros(shape, dtype=np.int32)
    for mask, object_id in zip(masks, ids):
        if mask.shape != shape:
            raise MaskError(source, f"mask for id {object_id} is {mask.shape[1]}x{mask.shape[0]} but the "
                                    f"first mask is {shape[1]}x{shape[0]}")
        out[mask] = object_id
        covered += mask
    return out, int(np.count_nonzero(covered > 1))
