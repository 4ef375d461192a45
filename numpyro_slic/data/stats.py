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

__all__ = ["robust_sigma", "sky_background", "noise_statistics", "lag_correlation", "noise_step_map"]


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


def _pairs(z: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """The two views ``z[..., r, c]`` and ``z[..., r + dy, c + dx]`` over every in-bounds pair."""
    h, w = z.shape[-2:]
    if dy < 0 or (dy == 0 and dx < 0):
        dy, dx = -dy, -dx  # the same pairs, counted from the other end
    if dy >= h or abs(dx) >= w:
        raise ValueError(f"Lag {(dy, dx)} does not fit in an image of shape {(h, w)}.")
    c0, c1 = (0, w - dx) if dx >= 0 else (-dx, w)
    return z[..., : h - dy, c0:c1], z[..., dy:, c0 + dx : c1 + dx]


def _lag_correlation(z: np.ndarray, good: np.ndarray, dy: int, dx: int) -> float:
    """Correlation (about 0) of the usable pixel pairs at offset ``(dy, dx)`` (rows, columns)."""
    a, b = _pairs(z, dy, dx)
    ga, gb = _pairs(good, dy, dx)
    ok = ga & gb
    a, b = a[ok], b[ok]
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def _lag1_correlation(z: np.ndarray, good: np.ndarray, axis: int) -> float:
    """Correlation of horizontally (axis=-1) or vertically (axis=-2) adjacent usable pixels."""
    return _lag_correlation(z, good, *((0, 1) if axis in (-1, z.ndim - 1) else (1, 0)))


def lag_correlation(
    x: Float[np.ndarray, "*batch H W"],
    mask: Bool[np.ndarray, "*batch H W"] | None = None,
    *,
    lag: tuple[int, int],
) -> float:
    """Correlation of the usable pixel pairs ``(r, c)``, ``(r + dy, c + dx)`` of an image or patch stack.

    The pixels are standardised as in ``noise_statistics`` (about the median of the usable pixels),
    and a pair counts when both pixels are usable; pairs never span two patches of a stack. ``(0, 1)``
    is ``noise_statistics``'s ``lag1_x`` (neighbours along a row), ``(1, 0)`` its ``lag1_y``
    (along a column); ``(1, 1)`` and ``(1, -1)`` are the two diagonals. A left-right or up-down flip
    maps lag ``(dy, dx)`` to ``(dy, -dx)``, a 90-degree rotation to ``(dx, -dy)``, so comparing these
    tells which flips and rotations keep the noise's second-order statistics.

    Args:
        x: ``(H, W)`` image or ``(N, H, W)`` patches.
        mask: bool, same shape, ``True`` at pixels to ignore (non-finite pixels always are).
        lag: ``(dy, dx)`` in pixels (rows, columns); ``(-dy, -dx)`` gives the same pairs.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"lag_correlation needs an image (H, W) or patches (N, H, W), got shape {x.shape}.")
    dy, dx = (int(v) for v in lag)
    if (dy, dx) == (0, 0):
        raise ValueError("lag (0, 0) is the variance, not a correlation; give a non-zero lag.")
    good = np.isfinite(x) if mask is None else np.isfinite(x) & ~np.asarray(mask, dtype=bool)
    values = _good_values(x, ~good, "lag_correlation")
    z = np.where(good, x - np.median(values), 0.0)
    return _lag_correlation(z, good, dy, dx)


def noise_step_map(
    x: Float[np.ndarray, "H W"],
    mask: Bool[np.ndarray, "H W"] | None = None,
    *,
    axis: int = 0,
    margin: int = 16,
    clip: float = 5.0,
) -> tuple[Float[np.ndarray, "H W"], dict[str, float]]:
    """A two-level noise map for an image whose noise rms changes once along rows or columns.

    Mosaics have such steps where the number of exposures changes. When no usable noise map comes
    with the image (one floored at a constant, say), this finds the step from the pixels: for every
    boundary ``b`` (a row for ``axis=0``, a column for ``axis=1``) at least ``margin`` from either
    edge it takes the variances ``v1`` of the usable pixels before ``b`` and ``v2`` from ``b`` on,
    and keeps the ``b`` that minimises ``n1 log v1 + n2 log v2`` (the profile likelihood of two
    Gaussian levels). The variances are of pixels winsorised at ``clip`` robust sigmas, so that a few
    outliers do not place the step; they must be variances, not robust sigmas, because the robust
    sigma of a band that mixes both levels understates its spread and would favour a wrong ``b``.
    The map's two levels are then the robust sigmas of the two sides. Divide ``x - background`` by
    the map (``extract_sky_patches(noise_map=...)``) to whiten it.

    Args:
        x: ``(H, W)`` image (sources masked; background need not be subtracted).
        mask: bool ``(H, W)``, ``True`` at pixels to ignore (sources; non-finite pixels always are).
        axis: 0 for a step between rows, 1 between columns.
        margin: smallest band, rows or columns, on either side of the step.
        clip: winsorising threshold, in robust sigmas of all usable pixels.

    Returns:
        ``(noise_map, info)``: the float64 ``(H, W)`` map, ``s1`` before the step and ``s2`` from it
        on (robust sigmas, units of ``x``), and ``info`` with ``axis``, ``index`` (``b``),
        ``sigma_before`` (``s1``), ``sigma_after`` (``s2``), ``ratio`` (``s2 / s1``) and
        ``n_before`` / ``n_after`` (usable pixels). A homogeneous image gives a ratio near 1 at an
        arbitrary ``b``: read the ratio first.
    """
    x = _check_2d(x, "noise_step_map")
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (a step between rows) or 1 (between columns), got {axis!r}.")
    good = np.isfinite(x) if mask is None else np.isfinite(x) & ~np.asarray(mask, dtype=bool)
    if good.shape != x.shape:
        raise ValueError(f"noise_step_map: mask shape {good.shape} differs from the data shape {x.shape}.")
    length = x.shape[axis]
    margin = int(margin)
    if margin < 1 or length < 2 * margin:
        raise ValueError(f"noise_step_map: need 1 <= margin <= {length // 2} for {length} lines, got {margin}.")
    values = _good_values(x, ~good, "noise_step_map")
    centre, spread = float(np.median(values)), float(mad_std(values))
    z = np.where(good, np.clip(x - centre, -clip * spread, clip * spread), 0.0)
    if axis == 1:
        z, good = z.T, good.T
    # Per-line counts, sums and sums of squares, accumulated: every boundary costs O(1).
    n = np.concatenate([[0], np.cumsum(good.sum(axis=1))])
    s = np.concatenate([[0.0], np.cumsum(z.sum(axis=1))])
    q = np.concatenate([[0.0], np.cumsum((z * z).sum(axis=1))])
    b = np.arange(margin, length - margin + 1)
    n1, n2 = n[b], n[-1] - n[b]
    with np.errstate(divide="ignore", invalid="ignore"):
        v1 = q[b] / n1 - (s[b] / n1) ** 2
        v2 = (q[-1] - q[b]) / n2 - ((s[-1] - s[b]) / n2) ** 2
        cost = n1 * np.log(v1) + n2 * np.log(v2)
    cost = np.where((n1 >= 2) & (n2 >= 2) & (v1 > 0) & (v2 > 0), cost, np.inf)
    if not np.isfinite(cost).any():
        raise ValueError("noise_step_map: too few usable pixels on either side of every boundary.")
    index = int(b[np.argmin(cost)])
    s1 = float(mad_std(z[:index][good[:index]]))
    s2 = float(mad_std(z[index:][good[index:]]))
    line = np.where(np.arange(length) < index, s1, s2)
    noise_map = np.array(np.broadcast_to(line[:, None] if axis == 0 else line[None, :], x.shape), dtype=np.float64)
    info = {"axis": axis, "index": index, "sigma_before": s1, "sigma_after": s2, "ratio": s2 / s1,
            "n_before": int(n[index]), "n_after": int(n[-1] - n[index])}
    return noise_map, info


def _check_2d(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} needs a 2-D image, got shape {x.shape}.")
    return x


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
