"""``LensSimulator``: SIE (+ external shear) lensing a Sersic source, optional Sersic lens light,
supersampled, PSF-convolved, on a pixel grid. Parameters are one flat dict (see ``LensSimulator``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .grid import PixelGrid, _check_supersampling, bin_pixels
from .light import sersic_brightness
from .mass import ray_shoot
from .psf import convolve_psf, normalize_psf

__all__ = [
    "Simulator",
    "LensSimulator",
    "LENS_KEYS",
    "SHEAR_KEYS",
    "SOURCE_KEYS",
    "LENS_LIGHT_KEYS",
]

# Anything that maps a parameter pytree to a model image (H, W) and is jit/grad/vmap-able.
Simulator = Callable[[Any], Float[Array, "H W"]]

_SERSIC = ("amp", "R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y")
LENS_KEYS = tuple("lens_" + k for k in ("theta_E", "e1", "e2", "center_x", "center_y"))
SHEAR_KEYS = ("shear_gamma1", "shear_gamma2")
SOURCE_KEYS = tuple("source_" + k for k in _SERSIC)
LENS_LIGHT_KEYS = tuple("lens_light_" + k for k in _SERSIC)


def _components(params: Mapping[str, Any]) -> tuple[bool, bool]:
    """Validates the parameter names; returns (has_shear, has_lens_light)."""
    if not isinstance(params, Mapping):
        raise TypeError(
            f"LensSimulator: params must be a dict of named scalars, got {type(params).__name__}."
        )
    keys = set(params)
    present = {}
    for name, group, required in (
        ("lens", LENS_KEYS, True),
        ("source", SOURCE_KEYS, True),
        ("shear", SHEAR_KEYS, False),
        ("lens light", LENS_LIGHT_KEYS, False),
    ):
        missing = [k for k in group if k not in keys]
        if missing and (required or len(missing) < len(group)):
            raise ValueError(
                f"LensSimulator: missing {name} parameter(s) {missing}; the {name} component needs all of "
                f"{list(group)}" + ("." if required else " (or none of them).")
            )
        present[name] = not missing
    unknown = keys - set(LENS_KEYS + SOURCE_KEYS + SHEAR_KEYS + LENS_LIGHT_KEYS)
    if unknown:
        raise ValueError(
            f"LensSimulator: unknown parameter(s) {sorted(unknown)}; valid names are {list(LENS_KEYS)}, "
            f"{list(SOURCE_KEYS)}, optionally {list(SHEAR_KEYS)} and {list(LENS_LIGHT_KEYS)}."
        )
    for k, v in params.items():
        if jnp.ndim(v) != 0:
            raise ValueError(
                f"LensSimulator: parameter {k!r} must be a scalar, got shape {jnp.shape(v)}; "
                "use jax.vmap to simulate a batch."
            )
    return present["shear"], present["lens light"]


class LensSimulator(eqx.Module):
    """Simulated lens image, lenstronomy's ``ImageModel`` with ``supersampling_convolution=False``:

        image = convolve_psf(bin_pixels(I(x_sub, y_sub), s), psf) * pixel_scale^2

    where I is the surface brightness (flux / arcsec^2) at the s x s sub-pixel centres of each pixel:
    the Sersic source at the ray-shot positions plus, optionally, the Sersic lens light. So the image
    is in flux per pixel, in the units of the ``amp`` parameters times arcsec^2 (lenstronomy's
    convention: amp = 1 flux/arcsec^2 over a 0.05" pixel gives 0.0025 per pixel).

    Parameters are one flat dict of scalars (jnp arrays or floats), so that NumPyro sample sites map
    one-to-one onto it; the names are lenstronomy's with a component prefix:

    - lens (SIE, required): ``lens_theta_E, lens_e1, lens_e2, lens_center_x, lens_center_y``
    - external shear (optional, both or none): ``shear_gamma1, shear_gamma2``; zero at the origin
    - source (Sersic, required): ``source_amp, source_R_sersic, source_n_sersic, source_e1,
      source_e2, source_center_x, source_center_y``
    - lens light (Sersic, optional, all or none): the same seven names prefixed ``lens_light_``

    Which optional components are on is decided by the keys, at trace time. Unknown or partial keys
    raise ValueError. Batch with ``jax.vmap`` over a dict of arrays. Compile with
    ``eqx.filter_jit(sim)`` or ``jax.jit(lambda p: sim(p))`` (plain ``jax.jit(sim)`` would try to
    hash the module, which holds an array).

    Timing (float32, 2 shared CPU cores): 64 x 64 pixels, supersampling 2, 21 x 21 PSF: 0.5 ms per
    image and 1.1 ms per value-and-gradient of a scalar loss, after jit.

    Args:
        grid: the ``PixelGrid`` of the image.
        psf: pixelated PSF kernel on the image pixel scale (odd sides; normalised here), or None.
        supersampling: sub-pixels per pixel side (int >= 1).
    """

    grid: PixelGrid
    psf: Float[Array, "ky kx"] | None
    supersampling: int = eqx.field(static=True)

    def __init__(self, grid: PixelGrid, psf: Float[ArrayLike, "ky kx"] | None = None, supersampling: int = 1):
        if not isinstance(grid, PixelGrid):
            raise TypeError(f"LensSimulator: grid must be a PixelGrid, got {type(grid).__name__}.")
        self.grid = grid
        self.psf = None if psf is None else normalize_psf(psf)
        self.supersampling = _check_supersampling(supersampling)

    def surface_brightness(
        self,
        params: Mapping[str, Float[ArrayLike, ""]],
        x: Float[ArrayLike, "*shape"],
        y: Float[ArrayLike, "*shape"],
    ) -> Float[Array, "*shape"]:
        """Unconvolved surface brightness (flux / arcsec^2) at image-plane positions (x, y) (arcsec)."""
        has_shear, has_lens_light = _components(params)
        p = {k: jnp.asarray(v) for k, v in params.items()}
        shear = (p["shear_gamma1"], p["shear_gamma2"]) if has_shear else (0.0, 0.0)
        bx, by = ray_shoot(x, y, *(p[k] for k in LENS_KEYS), *shear)
        brightness = sersic_brightness(bx, by, *(p[k] for k in SOURCE_KEYS))
        if has_lens_light:
            brightness = brightness + sersic_brightness(x, y, *(p[k] for k in LENS_LIGHT_KEYS))
        return brightness

    def __call__(self, params: Mapping[str, Float[ArrayLike, ""]]) -> Float[Array, "ny nx"]:
        """The model image (ny, nx) in flux per pixel (see the class docstring)."""
        x, y = self.grid.coordinates(self.supersampling)
        image = bin_pixels(self.surface_brightness(params, x, y), self.supersampling)
        image = image * self.grid.pixel_scale**2
        if self.psf is not None:
            image = convolve_psf(image, self.psf)
        return image
