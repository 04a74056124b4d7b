"""Digest of a dataset folder for determinism tests: every file by its bytes, except PNG images,
by their decoded pixels. ISA-L's deflate (the engine's PNG encoder) has been seen to give other,
equally valid, bytes for the same pixels in about one PNG in a thousand of a multi-worker run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2


def folder_digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256 hex} of every file under ``folder``; PNGs hashed as decoded pixels."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".png":
            pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            content = f"{pixels.dtype} {pixels.shape}".encode() + pixels.tobytes()
        else:
            content = path.read_bytes()
        out[path.relative_to(folder).as_posix()] = hashlib.sha256(content).hexdigest()
    return out
