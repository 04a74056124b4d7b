"""Perlin gradient noise and the textures made from it (ground of open-set scenes).

``perlin_noise`` is classic 2D gradient noise: random unit gradients on a lattice of
``cells`` x ``cells`` squares, dot products with the offsets to the four corners, blended with
the quintic fade 6t^5 - 15t^4 + 10t^3. ``fractal_noise`` sums octaves (lattice doubled, amplitude
times ``persistence`` each octave) and rescales to [0, 1]. Deterministic from the numpy Generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from sceneforge.errors import InputError


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


class _Side(NamedTuple):
    """Where the pixels along one side of the noise lie on the lattice (the same for rows and columns),
    all (size,) unless said: ``cell[d]`` the index of the pixel's cell (d = 0) or of the next one
    (d = 1), ``offset[d]`` float32 f - d for the fractional position f in the cell, ``fade`` and
    ``one_minus_fade`` float32 blend weights, ``pixels_per_cell`` (cells,) (the cell index never
    decreases)."""

    cell: tuple[np.ndarray, np.ndarray]
    offset: tuple[np.ndarray, np.ndarray]
    fade: np.ndarray
    one_minus_fade: np.ndarray
    pixels_per_cell: np.ndarray


@lru_cache(maxsize=64)
def _side(size: int, cells: int) -> _Side:
    """:class:`_Side` of ``size`` pixels on ``cells`` lattice squares (read-only arrays, computed once)."""
    coords = (np.arange(size) + 0.5) * (cells / size)
    i = np.minimum(coords.astype(int), cells - 1)
    f = (coords - i).astype(np.float32)  # fractional position
    u = _fade(f)
    side = _Side((i, i + 1), (f - 0, f - 1), u, 1 - u, np.bincount(i, minlength=cells))
    for array in (*side.cell, *side.offset, side.fade, side.one_minus_fade, side.pixels_per_cell):
        array.setflags(write=False)
    return side


def perlin_noise(size: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) float64 Perlin noise, roughly in [-0.7, 0.7], zero at lattice points.

    size : pixels per side (>= 2). cells : lattice squares per side (>= 1).
    """
    if size < 2 or cells < 1:
        raise InputError(None, f"perlin noise needs size >= 2 and cells >= 1, got size={size}, cells={cells}")
    angles = rng.uniform(0.0, 2.0 * np.pi, size=(cells + 1, cells + 1))
    gx, gy = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)  # unit gradients
    cell, offset, u, w, pixels_per_cell = _side(size, cells)
    # The dot product of corner (dy, dx)'s gradient with the offset to it is an x term, which depends
    # on pixel (r, c) through its cell row i[r] and column c only, plus a y term (row r and cell
    # column i[c]). Both are computed once per lattice row or column for dx (resp. dy) = 0 and 1:
    # x_terms[dx][I, c] = gx[I, i[c] + dx] * (f[c] - dx), y_terms[dy][r, J] = gy[i[r] + dy, J] * (f[r] - dy).
    x_terms = [gx.take(cell[d], axis=1) * offset[d][None, :] for d in (0, 1)]  # (cells + 1, size) each
    y_terms = [gy.take(cell[d], axis=0) * offset[d][:, None] for d in (0, 1)]  # (size, cells + 1) each

    def corner(dy: int, dx: int) -> np.ndarray:
        # (size, size): the terms of each pixel's cell spread over the cell's pixels (repeating the
        # columns is faster than gathering them)
        out = x_terms[dx].take(cell[dy], axis=0)
        out += np.repeat(y_terms[dy][:, dx:dx + cells], pixels_per_cell, axis=1)
        return out

    def blend(a: np.ndarray, b: np.ndarray, t: np.ndarray, one_minus_t: np.ndarray) -> np.ndarray:
        # a * (1 - t) + b * t, in place in a and b
        a *= one_minus_t
        b *= t
        a += b
        return a

    top = blend(corner(0, 0), corner(0, 1), u[None, :], w[None, :])
    bottom = blend(corner(1, 0), corner(1, 1), u[None, :], w[None, :])
    return blend(top, bottom, u[:, None], w[:, None]).astype(np.float64)


def fractal_noise(size: int, cells: int, octaves: int, rng: np.random.Generator, persistence: float = 0.5) -> np.ndarray:
    """(size, size) float64 in [0, 1]: ``octaves`` Perlin layers, lattice doubled each octave."""
    if octaves < 1:
        raise InputError(None, f"octaves must be >= 1, got {octaves}")
    if not 0.0 < persistence <= 1.0:
        raise InputError(None, f"persistence must be in (0, 1], got {persistence}")
    total = np.zeros((size, size))
    amplitude = 1.0
    for k in range(octaves):
        layer = perlin_noise(size, cells * 2 ** k, rng)
        layer *= amplitude
        total += layer
        amplitude *= persistence
    lo, hi = total.min(), total.max()
    if not hi > lo:
        return np.zeros_like(total)
    total -= lo
    total /= hi - lo
    return total


def noise_texture(noise: np.ndarray, colour_a: Sequence[int], colour_b: Sequence[int]) -> np.ndarray:
    """(H, W, 3) uint8: per pixel ``(1 - n) * colour_a + n * colour_b`` for noise n in [0, 1] (rounded)."""
    noise = np.asarray(noise, dtype=np.float64)
    out = np.empty(noise.shape + (3,), dtype=np.uint8)
    weight_a = 1.0 - noise
    for c in range(3):  # one contiguous channel at a time (several times faster than broadcasting over RGB)
        channel = weight_a * float(colour_a[c])
        channel += noise * float(colour_b[c])
        np.rint(channel, out=channel)
        np.clip(channel, 0, 255, out=channel)
        out[..., c] = channel
    return out


def mean_colour(image: np.ndarray) -> np.ndarray:
    """(3,) float64 mean of an (H, W, 3) integer image: exact channel sums (the same value as
    ``image.reshape(-1, 3).mean(axis=0)``, several times faster)."""
    image = np.asarray(image)
    return np.array([image[..., c].sum(dtype=np.int64) for c in range(3)]) / (image.shape[0] * image.shape[1])
