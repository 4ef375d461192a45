"""Fitting real data in a noise model's whitened units: the whitened simulator, mask fill, baseline noise.

The noise models live in noise-map-whitened units (the sky patches they were fitted to are
(data - sky) / noise_map / s, s the patches' robust sigma), so a fit of real data does too:

    d' = (data - sky) / noise_map / s                       (the data, whitened)
    M'(theta) = (M(theta) + sky_offset) / noise_map / s     (WhitenedSimulator)

Masked pixels (another galaxy, a poorly modelled core) carry no information about theta. The model
is 0 there and the data are replaced by the same pixels of one real held-out sky patch
(``fill_masked``): their residual is a fixed, real, theta-independent noise realisation. The score
models are image models and see a noise-like residual everywhere (a zero residual would be
noise-free, off the learned model's training data).
"""

from __future__ import annotations

from typing import Callable, Mapping

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

__all__ = ["WhitenedSimulator", "fill_masked", "wrapped_stationary_noise"]


class WhitenedSimulator(eqx.Module):
    """params -> M'(theta) = (lens(params) + params["sky"] * sky_unit) / (noise_map * scale), 0 where masked.

    Attributes:
        lens: any simulator params -> (H, W) image in data units (e.g. a LensSimulator); it gets
            ``params`` without the ``"sky"`` entry.
        inverse_noise: (H, W) 1 / (noise_map * scale), 0 on masked pixels.
        sky_unit: data units per unit of the ``"sky"`` parameter (a constant background offset).
    """

    lens: Callable
    inverse_noise: Float[Array, "H W"]
    sky_unit: float

    def __init__(
        self,
        lens: Callable,
        noise_map: Float[ArrayLike, "H W"],
        scale: float = 1.0,
        mask: Bool[ArrayLike, "H W"] | None = None,
        sky_unit: float = 1.0,
    ):
        """
        Args:
            lens: params -> (H, W) model image (data units).
            noise_map: (H, W) per-pixel noise rms (data units).
            scale: s, the sky patches' robust sigma in units of (data - sky) / noise_map.
            mask: (H, W) True where pixels are masked (the output is 0 there); None: no mask.
            sky_unit: data units per unit of ``params["sky"]``.
        """
        noise_map = np.asarray(noise_map, dtype=np.float64)
        inverse = 1.0 / (noise_map * scale)
        if mask is not None:
            inverse = np.where(np.asarray(mask, bool), 0.0, inverse)
        self.lens = lens
        self.inverse_noise = jnp.asarray(inverse, jnp.float32)
        self.sky_unit = float(sky_unit)

    def __call__(self, params: Mapping[str, Float[Array, ""]]) -> Float[Array, "H W"]:
        lens_params = {k: v for k, v in params.items() if k != "sky"}
        return (self.lens(lens_params) + params["sky"] * self.sky_unit) * self.inverse_noise


def fill_masked(
    data: Float[ArrayLike, "H W"], mask: Bool[ArrayLike, "H W"], fill: Float[ArrayLike, "P Q"]
) -> Float[np.ndarray, "H W"]:
    """``data`` with its masked pixels replaced by the same pixels of a real sky patch ``fill``.

    The patch's window starts at the mask's bounding-box corner: masked pixel (r, c) gets
    ``fill[r - r_min, c - c_min]``, so the fill keeps the sky's spatial correlation. Units: those of
    ``data`` (whiten both first). Returns a new array; ``data`` when nothing is masked (a copy).

    Raises:
        ValueError: the mask's bounding box is larger than ``fill``.
    """
    data = np.array(data, copy=True)
    mask = np.asarray(mask, bool)
    fill = np.asarray(fill)
    if not mask.any():
        return data
    rows, cols = np.nonzero(mask)
    if np.ptp(rows) >= fill.shape[0] or np.ptp(cols) >= fill.shape[1]:
        raise ValueError(
            f"fill_masked: the mask's bounding box ({np.ptp(rows) + 1} x {np.ptp(cols) + 1}) is larger than the "
            f"fill patch {fill.shape}; use a smaller image."
        )
    data[rows, cols] = fill[rows - rows.min(), cols - cols.min()]
    return data


def wrapped_stationary_noise(patches: Float[ArrayLike, "N P P"], size: int):
    """The correlated-Gaussian baseline (StationaryGaussianNoise) on a size x size grid.

    Up to the patches' size it is ``likelihood_noise("stationary")`` of the patches cropped to the
    grid; beyond it, the patches' autocovariance (to lag 16, tapered: ``GaussianBackbone``) is
    wrapped onto the larger grid. ``patches`` are sky-noise patches in the fit's units.
    """
    from ..noise import StationaryGaussianNoise
    from ..noise.backbones import GaussianBackbone
    from .lens import likelihood_noise

    patches = np.asarray(patches)
    if size <= patches.shape[-1]:
        return likelihood_noise("stationary", patches=patches[:, :size, :size])
    power = GaussianBackbone.from_patches(patches).power((size, size))
    return StationaryGaussianNoise(np.asarray(power, dtype=np.float64))
