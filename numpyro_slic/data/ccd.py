"""Basic reduction of a raw CCD frame into sky whose noise is the detector's own.

A raw CCD frame is integer ADU on top of a bias level, with an overscan (bias) strip beside the
exposed area, and sometimes whole rows that did not read out. ``reduce_ccd_frame`` subtracts the
overscan level, trims to the exposed area and flags rows that read far below the rest; sources are
then masked with ``mask_sources`` (with ``median_filter`` so that cosmic rays and hot pixels, which
are part of the noise, are not mistaken for stars). Cosmic rays and hot pixels are deliberately
left in: they are the non-Gaussian part of ground-based CCD noise.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from typing import Any, Literal

import numpy as np
from jaxtyping import Bool, Float

from .._extras import require
from .fits import load_fits_image
from .stats import robust_sigma

fits = require("astropy.io.fits", "train")

__all__ = [
    "CCDFrame",
    "parse_fits_section",
    "overscan_level",
    "find_low_rows",
    "reduce_ccd_frame",
    "load_ccd_frame",
]

_SECTION = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")


def parse_fits_section(section: str) -> tuple[slice, slice]:
    """``"[x0:x1, y0:y1]"`` (FITS/IRAF: 1-based, inclusive, x = column first) as numpy ``(rows, cols)`` slices.

    ``image[parse_fits_section("[4:13, 1:520]")]`` is columns 3..12 and rows 0..519 (0-based).
    """
    match = _SECTION.match(str(section))
    if match is None:
        raise ValueError(f"Cannot parse the FITS section {section!r}; expected '[x0:x1, y0:y1]'.")
    x0, x1, y0, y1 = (int(v) for v in match.groups())
    if not (1 <= x0 <= x1 and 1 <= y0 <= y1):
        raise ValueError(f"FITS section {section!r} must have 1 <= start <= end on both axes (no flips).")
    return slice(y0 - 1, y1), slice(x0 - 1, x1)


def _as_float(raw) -> np.ndarray:
    """Any 2-D numeric array (integer FITS data are often big-endian int16) as native float64."""
    raw = np.asarray(raw)
    if raw.ndim != 2:
        raise ValueError(f"A CCD frame must be a 2-D image, got shape {raw.shape}.")
    if not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        raise TypeError(f"A CCD frame must hold numbers, got dtype {raw.dtype}.")
    # Converting before any arithmetic: int16 differences overflow, and JAX refuses big-endian data.
    return raw.astype(np.float64)


def overscan_level(
    raw: np.ndarray,
    biassec: str | tuple[slice, slice],
    *,
    method: Literal["auto", "constant", "row"] = "auto",
    max_excess: float = 2.0,
) -> tuple[Float[np.ndarray, " H"], dict[str, Any]]:
    """The bias level of every row of ``raw``, from its overscan strip.

    * ``"constant"``: one number, the median of every overscan pixel (robust to the odd hot pixel).
    * ``"row"``: the median of each row's overscan pixels. With few overscan columns this adds the
      noise of a small-sample median to every row (a horizontal stripe pattern that is not in the
      data), so use it only when the bias really changes from row to row.
    * ``"auto"``: ``"row"`` when the variance of the per-row overscan means exceeds the variance
      that the overscan's own pixel noise gives them (robust sigma^2 / n_columns) by more than a
      factor ``max_excess``, else ``"constant"``.

    Returns:
        ``(level, info)``: float64 ``(H,)`` bias per row, and a dict with the method used, the
        constant level, the measured and expected scatter of the row means, and their ratio.
    """
    if method not in ("auto", "constant", "row"):
        raise ValueError(f"method must be 'auto', 'constant' or 'row', got {method!r}.")
    frame = _as_float(raw)
    slices = parse_fits_section(biassec) if isinstance(biassec, str) else biassec
    strip = frame[slices]
    if strip.size == 0 or strip.shape[0] != frame.shape[0]:
        raise ValueError(
            f"The overscan section {biassec!r} must cover every row of the {frame.shape} frame, "
            f"got a {strip.shape} strip."
        )
    n_cols = strip.shape[1]
    sigma = robust_sigma(strip)
    constant = float(np.median(strip))
    # Row means of sigma-clipped pixels: a plain mean is hit by hot pixels, a 10-pixel median is noisy.
    clipped = np.where(np.abs(strip - constant) > 5 * sigma, np.nan, strip)
    row_means = np.nanmean(clipped, axis=1)
    observed = float(np.nanstd(row_means))
    expected = float(sigma / np.sqrt(n_cols))
    ratio = (observed / expected) ** 2 if expected > 0 else np.inf
    chosen = method if method != "auto" else ("row" if ratio > max_excess else "constant")
    level = np.median(strip, axis=1) if chosen == "row" else np.full(frame.shape[0], constant)
    info = {
        "method": chosen,
        "requested": method,
        "constant_level": constant,
        "overscan_robust_sigma": float(sigma),
        "overscan_columns": int(n_cols),
        "row_mean_scatter": observed,
        "row_mean_scatter_expected_from_noise": expected,
        "variance_ratio": float(ratio),
    }
    return level, info


def find_low_rows(
    image: Float[np.ndarray, "H W"],
    mask: Bool[np.ndarray, "H W"] | None = None,
    *,
    nsigma: float = 5.0,
) -> Bool[np.ndarray, " H"]:
    """Rows whose median lies more than ``nsigma`` pixel noise sigmas below the typical row's.

    The typical row is the median of the row medians and the noise sigma is the robust sigma of
    all usable pixels, so a few bad rows (or sources) shift neither. A row's median has an error of
    about 1.25 sigma / sqrt(W), so with the default a row is flagged only when it is far off (a
    row that did not read out sits tens of sigmas low), never by chance.

    Returns:
        bool ``(H,)``, ``True`` for a low row.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"find_low_rows needs a 2-D image, got shape {image.shape}.")
    good = np.isfinite(image) if mask is None else np.isfinite(image) & ~np.asarray(mask, dtype=bool)
    values = np.where(good, image, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-masked row: treated as not low
        row_medians = np.nanmedian(values, axis=1)
    sigma = robust_sigma(image, ~good)
    typical = float(np.nanmedian(row_medians))
    return np.nan_to_num(row_medians, nan=typical) < typical - nsigma * sigma


@dataclasses.dataclass(frozen=True, eq=False)
class CCDFrame:
    """A reduced CCD frame.

    Attributes:
        image: float64 ``(H, W)`` trimmed image in ADU above the bias (overscan) level.
        bad: bool ``(H, W)``, ``True`` at unusable pixels (low rows, non-finite values). Sources are
            not in it: mask them with ``mask_sources(image, mask=bad, median_filter=5)``.
        info: JSON-serialisable dict of what was done and measured (sections, overscan, low rows,
            gain and read noise when known).
    """

    image: Float[np.ndarray, "H W"]
    bad: Bool[np.ndarray, "H W"]
    info: dict[str, Any]


def reduce_ccd_frame(
    raw: np.ndarray,
    *,
    biassec: str,
    trimsec: str,
    overscan: Literal["auto", "constant", "row"] = "auto",
    low_row_nsigma: float | None = 5.0,
    dequantise_seed: int | None = None,
    header: dict[str, Any] | None = None,
) -> CCDFrame:
    """Overscan subtraction, trimming and bad-row flagging of one raw frame.

    Steps: convert to float64 (any integer dtype and byte order); subtract the overscan level of
    ``biassec`` (``overscan_level(method=overscan)``); trim to ``trimsec``; optionally add
    uniform(-0.5, 0.5) ADU (seeded by ``dequantise_seed``) so that the integer ADU become a
    continuous variable (its variance, 1/12 ADU^2, is tiny next to any sky noise; rounding
    ``image + bias`` gives the raw integers back); flag the rows of the trimmed image that read
    low (``find_low_rows(nsigma=low_row_nsigma)``; ``None``: flag none).

    Args:
        raw: the raw frame as stored (``(H_raw, W_raw)``, integer or float).
        biassec: FITS sections ``"[x0:x1, y0:y1]"`` (1-based, inclusive; x = column).
        trimsec: as ``biassec``.
        header: optional header values (e.g. ``{"GAIN": 1.9}``) to record in ``info``.

    Returns:
        A CCDFrame.
    """
    frame = _as_float(raw)
    level, overscan_info = overscan_level(frame, biassec, method=overscan)
    rows, cols = parse_fits_section(trimsec)
    if rows.stop > frame.shape[0] or cols.stop > frame.shape[1]:
        raise ValueError(f"TRIMSEC {trimsec!r} does not fit in the {frame.shape} frame.")
    image = (frame - level[:, None])[rows, cols]
    if dequantise_seed is not None:
        image = image + np.random.default_rng(dequantise_seed).uniform(-0.5, 0.5, size=image.shape)
    bad = ~np.isfinite(image)
    low = np.zeros(image.shape[0], dtype=bool)
    if low_row_nsigma is not None:
        low = find_low_rows(image, bad, nsigma=low_row_nsigma)
        bad = bad | low[:, None]
    info = {
        "raw_shape": list(frame.shape),
        "raw_dtype": str(np.asarray(raw).dtype),
        "biassec": str(biassec),
        "trimsec": str(trimsec),
        "overscan": overscan_info,
        "trimmed_shape": list(image.shape),
        "low_row_nsigma": low_row_nsigma,
        "low_rows": [int(r) for r in np.nonzero(low)[0]],
        "dequantise_seed": dequantise_seed,
        "units": "ADU above the overscan level" + (" + uniform(-0.5, 0.5)" if dequantise_seed is not None else ""),
    }
    if header:
        info["header"] = dict(header)
    return CCDFrame(image=image, bad=bad, info=info)


def load_ccd_frame(
    path: str | os.PathLike,
    hdu: int | str | None = None,
    *,
    biassec: str | None = None,
    trimsec: str | None = None,
    **kwargs,
) -> CCDFrame:
    """``reduce_ccd_frame`` on a raw FITS frame, with BIASSEC / TRIMSEC from its header unless given.

    The data are read with ``load_fits_image`` (BZERO / BSCALE applied, so unsigned 16-bit data
    stored as int16 + 32768 come out right, as native float64). BITPIX, BZERO, BSCALE, GAIN,
    RDNOISE, EXPTIME and OBJECT, when in the header, are recorded in ``info["header"]``.
    **kwargs go to ``reduce_ccd_frame``.
    """
    image, _ = load_fits_image(path, hdu)
    with fits.open(os.fspath(path), memmap=False) as hdul:
        if hdu is None:
            chosen = next(h for h in hdul if h.is_image and h.data is not None and h.data.ndim == 2)
        else:
            chosen = hdul[hdu]
        header = chosen.header
        sections = {}
        for key, given in (("BIASSEC", biassec), ("TRIMSEC", trimsec)):
            if given is None and key not in header:
                raise ValueError(f"{os.fspath(path)!r} has no {key} keyword; pass {key.lower()}=...")
            sections[key] = given if given is not None else str(header[key])
        keys = ("BITPIX", "BZERO", "BSCALE", "GAIN", "RDNOISE", "EXPTIME", "OBJECT")
        recorded = {k: header[k] for k in keys if k in header}
    return reduce_ccd_frame(
        image, biassec=sections["BIASSEC"], trimsec=sections["TRIMSEC"], header=recorded, **kwargs
    )
