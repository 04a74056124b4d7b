"""Perlin noise of the open-set ground against a brute-force reference: each pixel on its own, in the
float32 arithmetic the module docstring describes (gradient dot offset per corner, quintic fade blend)."""

from __future__ import annotations

import numpy as np
import pytest

from sceneforge.errors import InputError
from sceneforge.synth.noise import fractal_noise, perlin_noise


def _fade(t: np.float32) -> np.float32:
    return t * t * t * (t * (t * np.float32(6.0) - np.float32(15.0)) + np.float32(10.0))


def perlin_reference(size: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) float64: the noise computed pixel by pixel with float32 scalars."""
    angles = rng.uniform(0.0, 2.0 * np.pi, size=(cells + 1, cells + 1))
    gx, gy = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    cell, frac = [], []
    for p in range(size):
        coord = (p + 0.5) * (cells / size)
        cell.append(min(int(coord), cells - 1))
        frac.append(np.float32(coord - cell[-1]))
    out = np.empty((size, size))
    one = np.float32(1.0)
    for r in range(size):
        for c in range(size):
            i, j, fy, fx = cell[r], cell[c], frac[r], frac[c]
            dots = {(dy, dx): gx[i + dy, j + dx] * (fx - np.float32(dx)) + gy[i + dy, j + dx] * (fy - np.float32(dy))
                    for dy in (0, 1) for dx in (0, 1)}
            u, v = _fade(fx), _fade(fy)
            top = dots[0, 0] * (one - u) + dots[0, 1] * u
            bottom = dots[1, 0] * (one - u) + dots[1, 1] * u
            out[r, c] = top * (one - v) + bottom * v
    return out


@pytest.mark.parametrize("size, cells", [(32, 4), (37, 5), (16, 16), (8, 20), (2, 1), (30, 7)])
def test_perlin_noise_equals_the_pixel_by_pixel_reference(size, cells):
    got = perlin_noise(size, cells, np.random.default_rng(size * 100 + cells))
    want = perlin_reference(size, cells, np.random.default_rng(size * 100 + cells))
    assert got.dtype == np.float64 and got.shape == (size, size)
    np.testing.assert_array_equal(got, want)


def test_perlin_noise_is_zero_on_the_lattice_and_draws_one_gradient_per_lattice_point():
    rng = np.random.default_rng(3)
    noise = perlin_noise(64, 4, rng)
    following = rng.uniform()
    rng = np.random.default_rng(3)
    rng.uniform(size=25)  # (cells + 1)^2 gradient angles
    assert following == rng.uniform()
    near_lattice = noise[::16, ::16]  # pixel centres half a pixel from the lattice points
    assert np.abs(near_lattice).max() < 0.1 < np.abs(noise).max()


def test_fractal_noise_spans_zero_to_one_and_checks_its_arguments():
    noise = fractal_noise(48, 3, 3, np.random.default_rng(0))
    assert noise.min() == 0.0 and noise.max() == 1.0
    with pytest.raises(InputError, match="octaves must be >= 1"):
        fractal_noise(48, 3, 0, np.random.default_rng(0))
    with pytest.raises(InputError, match=r"persistence must be in \(0, 1\]"):
        fractal_noise(48, 3, 2, np.random.default_rng(0), persistence=1.5)
    with pytest.raises(InputError, match="size >= 2 and cells >= 1"):
        perlin_noise(1, 3, np.random.default_rng(0))
