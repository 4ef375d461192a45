"""The pixel grid: pixel-centre coordinates (optionally supersampled) and binning back to pixels."""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["PixelGrid", "bin_pixels"]


class PixelGrid(eqx.Module):
    """A regular ny x nx grid of square pixels centred on (0, 0).

    ``image[i, j]`` is the pixel whose centre is at

        x_j = (j - (nx - 1) / 2) * pixel_scale,     y_i = (i - (ny - 1) / 2) * pixel_scale   (arcsec),

    so row 0 is the bottom (``imshow(..., origin="lower")`` shows +y up) and x grows with the column.
    This is lenstronomy's ``PixelGrid(nx, ny, transform_pix2angle=diag(s, s), ra_at_xy_0=-(nx-1)s/2,
    dec_at_xy_0=-(ny-1)s/2)``. lenstronomy's ``make_grid_with_coordtransform`` defaults to
    ``inverse=True`` (RA, i.e. x, decreasing with the column, as on the sky); flip the columns of an
    image made that way to compare.

    All fields are static: a grid is configuration, and its coordinates are compile-time constants.

    Args:
        nx: number of pixels along x (columns) and y (rows).
        ny: as ``nx``.
        pixel_scale: pixel side (arcsec).
    """

    nx: int = eqx.field(static=True)
    ny: int = eqx.field(static=True)
    pixel_scale: float = eqx.field(static=True)

    def __init__(self, nx: int, ny: int, pixel_scale: float):
        for name, n in (("nx", nx), ("ny", ny)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
                raise TypeError(f"PixelGrid: {name} must be an int, got {type(n).__name__}.")
            if n < 1:
                raise ValueError(f"PixelGrid: {name} must be >= 1, got {n}.")
        scale = float(pixel_scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(
                f"PixelGrid: pixel_scale must be positive and finite (arcsec), got {pixel_scale!r}."
            )
        self.nx, self.ny, self.pixel_scale = int(nx), int(ny), scale

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx), the image shape."""
        return (self.ny, self.nx)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) of the pixel edges (arcsec), for ``imshow(extent=...)``."""
        hx, hy = 0.5 * self.nx * self.pixel_scale, 0.5 * self.ny * self.pixel_scale
        return (-hx, hx, -hy, hy)

    def coordinates(
        self, supersampling: int = 1
    ) -> tuple[Float[Array, "ny*s nx*s"], Float[Array, "ny*s nx*s"]]:
        """(x, y) of the pixel centres, or of the s x s sub-pixel centres of each pixel (arcsec).

        The sub-pixel grid is the pixel grid of an (ny s) x (nx s) image with pixel_scale / s, also
        centred on 0, so ``bin_pixels(f(x, y), s)`` averages f over each pixel's sub-pixels.
        """
        s = _check_supersampling(supersampling)
        step = self.pixel_scale / s
        x = (np.arange(self.nx * s) - (self.nx * s - 1) / 2) * step
        y = (np.arange(self.ny * s) - (self.ny * s - 1) / 2) * step
        xx, yy = np.meshgrid(x, y)
        return jnp.asarray(xx, dtype=float), jnp.asarray(yy, dtype=float)


def _check_supersampling(supersampling) -> int:
    if isinstance(supersampling, bool) or not isinstance(supersampling, (int, np.integer)):
        raise TypeError(f"supersampling must be an int, got {type(supersampling).__name__}.")
    if supersampling < 1:
        raise ValueError(f"supersampling must be >= 1, got {supersampling}.")
    return int(supersampling)


def bin_pixels(image: Float[Array, "*batch H W"], factor: int) -> Float[Array, "*batch h w"]:
    """Mean over non-overlapping factor x factor blocks of the last two axes: (H, W) -> (H/f, W/f).

    Averaging (not summing) keeps surface-brightness units, as lenstronomy's ``re_size`` does.
    """
    f = _check_supersampling(factor)
    h, w = image.shape[-2:]
    if h % f or w % f:
        raise ValueError(f"bin_pixels: image shape {(h, w)} is not divisible by factor {f}.")
    return image.reshape(image.shape[:-2] + (h // f, f, w // f, f)).mean(axis=(-3, -1))
