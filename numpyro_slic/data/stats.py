"""Robust sky statistics: noise scale, background level and non-Gaussianity summaries.

All functions take numpy arrays (any float dtype) and an optional bool mask, ``True`` where a pixel
must be ignored (a source, a bad pixel); non-finite pixels are always ignored.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
from jaxtyping import Bool, Float

from .._extras import require

_astropy_stats = require("astropy.stats", "train")
mad_std, sigma_clipped_stats = _astropy_stats.mad_std, _astropy_stats.sigma_clipped_stats

__all__ = ["robust_sigma", "sky_background", "noise_statistics"]


def _good_values(x, mask, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    good = np.isfinite(x)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != x.shape:
            raise ValueError(f"{what}: mask shape {mask.shape} differs from the data shape {x.shape}.")
        good &= ~mask
    values = x[good]
    if values.size < 2:
        raise ValueError(
            f"{what}: fewer than 2 usable pixels ({values.size} of {x.size}); loosen the mask or "
            "give a larger region."
        )
    return values


def robust_sigma(x: Float[np.ndarray, "..."], mask: Bool[np.ndarray, "..."] | None = None) -> float:
    """1.4826 x the median absolute deviation of the usable pixels of ``x`` (same units as ``x``).

    Equals the standard deviation for Gaussian noise and ignores a minority of outliers (sources
    that masking missed), unlike the plain standard deviation.
    """
    return float(mad_std(_good_values(x, mask, "robust_sigma")))


def sky_background(
    x: Float[np.ndarray, "..."], mask: Bool[np.ndarray, "..."] | None = None, *, nsigma: float = 3.0
) -> float:
    """Sigma-clipped median of the usable pixels of ``x`` (same units as ``x``).

    Clipping at ``nsigma`` (iterated to convergence) removes the positive tail that faint,
    undetected sources add, which a plain mean would pick up.
    """
    values = _good_values(x, mask, "sky_background")
    _, median, _ = sigma_clipped_stats(values, sigma=nsigma, maxiters=None)
    return float(median)


def _lag1_correlation(z: np.ndarray, good: np.ndarray, axis: int) -> float:
    """Correlation of horizontally (axis=-1) or vertically (axis=-2) adjacent usable pixels."""
    n = z.shape[axis]
    a = np.take(z, range(1, n), axis=axis)
    b = np.take(z, range(0, n - 1), axis=axis)
    ok = np.take(good, range(1, n), axis=axis) & np.take(good, range(0, n - 1), axis=axis)
    a, b = a[ok], b[ok]
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def noise_statistics(
    x: Float[np.ndarray, "*batch H W"], mask: Bool[np.ndarray, "*batch H W"] | None = None
) -> dict[str, float]:
    """Summary of the noise in one image ``(H, W)`` or a stack of patches ``(N, H, W)``.

    The pixels are first standardised, z = (x - median) / robust_sigma, over the usable pixels.

    Returns a dict with:
        ``n_pixels``: usable pixels; ``median`` and ``robust_sigma`` (units of ``x``);
        ``std``: standard deviation of z (1 for Gaussian noise, larger with heavy tails);
        ``excess_kurtosis``: Fisher kurtosis of z (0 for Gaussian noise);
        ``lag1_x``, ``lag1_y``: correlation of horizontally / vertically adjacent pixels;
        ``tail_ratio_3sigma``, ``tail_ratio_4sigma``, ``tail_ratio_5sigma``: fraction of |z| > 3, 4, 5
        divided by the Gaussian fraction (2.7e-3, 6.3e-5, 5.7e-7).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"noise_statistics needs an image (H, W) or patches (N, H, W), got shape {x.shape}.")
    good = np.isfinite(x) if mask is None else np.isfinite(x) & ~np.asarray(mask, dtype=bool)
    values = _good_values(x, ~good, "noise_statistics")
    median = float(np.median(values))
    sigma = float(mad_std(values))
    if not sigma > 0:
        raise ValueError("noise_statistics: the usable pixels have zero spread (a constant image?).")
    z = np.where(good, (x - median) / sigma, 0.0)
    zv = (values - median) / sigma
    return {
        "n_pixels": int(values.size),
        "median": median,
        "robust_sigma": sigma,
        "std": float(np.std(zv)),
        "excess_kurtosis": float(scipy.stats.kurtosis(zv, fisher=True)),
        "lag1_x": _lag1_correlation(z, good, axis=-1),
        "lag1_y": _lag1_correlation(z, good, axis=-2),
        **{
            f"tail_ratio_{k}sigma": float(np.mean(np.abs(zv) > k) / (2.0 * scipy.stats.norm.sf(k)))
            for k in (3, 4, 5)
        },
    }
