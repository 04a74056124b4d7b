"""Quick previews of assets without a GPU: an orthographic painter's-algorithm drawing with PIL.

Faces are seen from the front-right and above (yaw 35 degrees, pitch 25 degrees), back faces are
culled, the rest are drawn far to near with Lambert shading of their own colour. Good enough for
thumbnails and the contact sheet of the docs; the real renderer lives in ``sceneforge.render``.

Run ``python -m sceneforge.assets.preview docs/assets.png`` to draw every category.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sceneforge.assets.base import Asset
from sceneforge.geometry.transforms import rotation_about_axis, rotation_y
from sceneforge.io.atomic import atomic_path

_LIGHT = np.array([0.4, 0.6, 0.7]) / np.linalg.norm([0.4, 0.6, 0.7])


def asset_thumbnail(asset: Asset, size: int = 192, yaw_deg: float = 35.0, pitch_deg: float = 25.0,
                    background: tuple[int, int, int] = (255, 255, 255), supersample: int = 2) -> Image.Image:
    """(size x size) RGB PIL image of the asset, fitted to the frame with a small margin."""
    R_view = rotation_about_axis(np.array([1.0, 0.0, 0.0]), np.radians(pitch_deg)) @ rotation_y(np.radians(-yaw_deg))
    v = np.asarray(asset.mesh.vertices) @ R_view.T
    faces = np.asarray(asset.mesh.faces)
    tri = v[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    keep = (normals[:, 2] > 0) & (lengths > 0)
    normals = normals[keep] / lengths[keep, None]
    tri = tri[keep]
    colours = asset.face_colours[keep][:, :3].astype(np.float64)
    shade = 0.35 + 0.65 * np.clip(normals @ _LIGHT, 0.0, 1.0)
    colours = np.clip(colours * shade[:, None], 0, 255).astype(np.uint8)
    big = size * supersample
    lo, hi = v[:, :2].min(axis=0), v[:, :2].max(axis=0)
    scale = 0.9 * big / max(float(np.max(hi - lo)), 1e-9)
    centre = (lo + hi) / 2.0
    xy = (tri[..., :2] - centre) * scale
    xy[..., 0] += big / 2.0
    xy[..., 1] = big / 2.0 - xy[..., 1]
    order = np.argsort(tri[..., 2].mean(axis=1))  # far (small z) first
    image = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(image)
    for k in order:
        draw.polygon([tuple(p) for p in xy[k]], fill=tuple(int(c) for c in colours[k]))
    return image.resize((size, size), Image.LANCZOS)


def contact_sheet(assets: Sequence[Asset], columns: int = 7, cell: int = 160, label: bool = True) -> Image.Image:
    """A grid of thumbnails, each labelled with its category and size in metres."""
    rows = (len(assets) + columns - 1) // columns
    text_h = 28 if label else 0
    sheet = Image.new("RGB", (columns * cell, rows * (cell + text_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, asset in enumerate(assets):
        x, y = (k % columns) * cell, (k // columns) * (cell + text_h)
        sheet.paste(asset_thumbnail(asset, cell), (x, y))
        if label:
            w, h, d = asset.extents
            draw.text((x + 6, y + cell), asset.category, fill=(20, 20, 20))
            draw.text((x + 6, y + cell + 13), f"{w:.2f} x {h:.2f} x {d:.2f} m", fill=(110, 110, 110))
    return sheet


def main(argv: Sequence[str] | None = None) -> None:
    """Write a contact sheet of every procedural category (two seeds each) to the path given."""
    from sceneforge.assets.procedural import CATEGORIES, generate_asset

    args = list(sys.argv[1:] if argv is None else argv)
    out = Path(args[0] if args else "docs/assets.png")
    assets = [generate_asset(c, seed) for c in CATEGORIES for seed in (1, 2)]
    with atomic_path(out) as tmp:
        contact_sheet(assets, columns=9, cell=150).save(tmp, format="PNG")
    print(f"wrote {out} ({len(assets)} assets, {len(CATEGORIES)} categories)")


if __name__ == "__main__":
    main()
