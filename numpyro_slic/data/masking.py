"""Source masking: which pixels of an image are not usable as sky."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import scipy.ndimage as ndi
from jaxtyping import Bool, Float

from .._extras import require

sigma_clip = require("astropy.stats", "train").sigma_clip

__all__ = ["mask_sources"]


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return np.hypot(r[:, None], r[None, :]) <= radius


def mask_sources(
    image: Float[np.ndarray, "H W"],
    *,
    nsigma: float = 3.0,
    npixels: int = 5,
    dilate: int = 4,
    smooth_fwhm: float = 2.0,
    median_filter: int = 0,
    method: Literal["segmentation", "sigma_clip"] = "segmentation",
    mask: Bool[np.ndarray, "H W"] | None = None,
) -> Bool[np.ndarray, "H W"]:
    """Marks pixels that are not usable as sky: sources, their wings, and bad pixels.

    With ``median_filter`` > 1, the image first goes through a square median filter of that side,
    which erases features narrower than about half the filter (cosmic-ray hits, hot pixels) while
    a star, whose PSF is wider, survives: then sharp features that belong to the noise are not
    masked as sources (on the shipped SAAO CCD frame, 5 keeps 16 of 18 cosmic-ray hits unmasked
    while every star is still masked). The image is then smoothed by a Gaussian of FWHM ``smooth_fwhm`` pixels (0: no smoothing), which
    averages the noise down so faint extended light stands out. Then, on the smoothed image:

    * ``"segmentation"``: photutils ``detect_threshold`` (sigma-clipped background and rms, with the
      already-masked pixels ignored) at ``nsigma``, and ``detect_sources`` keeps groups of at least
      ``npixels`` connected (8-connectivity) pixels above it;
    * ``"sigma_clip"``: astropy ``sigma_clip`` flags every pixel more than ``nsigma`` clipped standard
      deviations above the clipped median (``npixels`` is not used).

    Only positive excursions are sources: negative ones are noise (or artefacts that a noise model
    should see), so masking them would cut the noise's lower tail. The detections are then grown by
    a disk of radius ``dilate`` pixels (scipy ``binary_dilation``) to cover the faint wings that the
    threshold misses.

    Args:
        image: ``(H, W)`` image in any units; non-finite pixels are always masked.
        nsigma: detection threshold in units of the smoothed image's background rms.
        npixels: minimum number of connected pixels of a source (segmentation only).
        dilate: radius in pixels by which every detection grows (0: none).
        smooth_fwhm: FWHM in pixels of the Gaussian smoothing before detection (0: none).
        median_filter: side in pixels of a median filter applied before the smoothing (0 or 1:
            none). Detection only: the returned mask is grown from what survives it.
        method: ``"segmentation"`` or ``"sigma_clip"``.
        mask: optional bool ``(H, W)`` of pixels already known to be unusable (for example another
            catalogue's source mask); they are ignored when estimating the threshold, and included
            in the result.

    Returns:
        bool ``(H, W)``, ``True`` at pixels that are NOT usable as sky.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"mask_sources needs a 2-D image, got shape {image.shape}.")
    if method not in ("segmentation", "sigma_clip"):
        raise ValueError(f"method must be 'segmentation' or 'sigma_clip', got {method!r}.")
    if not nsigma > 0:
        raise ValueError(f"nsigma must be positive, got {nsigma!r}.")
    if int(npixels) < 1:
        raise ValueError(f"npixels must be at least 1, got {npixels!r}.")
    if int(median_filter) < 0:
        raise ValueError(f"median_filter must be >= 0, got {median_filter!r}.")
    if int(dilate) < 0 or smooth_fwhm < 0:
        raise ValueError(f"dilate and smooth_fwhm must be >= 0, got {dilate!r} and {smooth_fwhm!r}.")
    bad = ~np.isfinite(image)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != image.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the image shape {image.shape}.")
        bad |= mask
    if bad.all():
        raise ValueError("mask_sources: every pixel is already masked or non-finite.")

    # Filling unusable pixels with the median keeps the smoothing from spreading NaNs or a masked
    # source's light into the sky around it.
    filled = np.where(bad, np.median(image[~bad]), image)
    if int(median_filter) > 1:
        filled = ndi.median_filter(filled, size=int(median_filter), mode="reflect")
    smooth = ndi.gaussian_filter(filled, smooth_fwhm / np.sqrt(8 * np.log(2))) if smooth_fwhm > 0 else filled

    if method == "segmentation":
        # Imported here: photutils takes a second to import and only this branch needs it.
        segmentation = require("photutils.segmentation", "train")
        detect_sources, detect_threshold = segmentation.detect_sources, segmentation.detect_threshold
        NoDetectionsWarning = require("photutils.utils.exceptions", "train").NoDetectionsWarning

        # Positional threshold / npixels arguments: photutils renamed them (nsigma -> n_sigma,
        # npixels -> n_pixels) in 3.0, and positions work with every version we support.
        threshold = detect_threshold(smooth, nsigma, mask=bad)
        with warnings.catch_warnings():
            # Finding no source is a valid answer here (pure sky), not something to warn about.
            warnings.simplefilter("ignore", NoDetectionsWarning)
            segments = detect_sources(smooth, threshold, int(npixels), mask=bad)
        detected = np.zeros_like(bad) if segments is None else segments.data > 0
    else:
        clipped = sigma_clip(
            np.ma.masked_array(smooth, mask=bad), sigma_lower=np.inf, sigma_upper=nsigma, maxiters=None
        )
        detected = np.ma.getmaskarray(clipped) & ~bad

    if dilate > 0:
        detected = ndi.binary_dilation(detected, structure=_disk(int(dilate)))
    return detected | bad
