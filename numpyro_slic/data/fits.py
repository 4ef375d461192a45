"""Reading 2-D images from FITS files."""

from __future__ import annotations

import os

import numpy as np
from jaxtyping import Bool, Float

from .._extras import require

fits = require("astropy.io.fits", "train")

__all__ = ["load_fits_image"]


def _describe(hdul: fits.HDUList) -> str:
    parts = []
    for i, h in enumerate(hdul):
        shape = getattr(h, "shape", None) if h.is_image else None
        kind = f"image {tuple(shape)}" if shape else ("empty image" if h.is_image else type(h).__name__)
        parts.append(f"{i} {h.name!r}: {kind}")
    return "; ".join(parts)


def load_fits_image(
    path: str | os.PathLike, hdu: int | str | None = None
) -> tuple[Float[np.ndarray, "H W"], Bool[np.ndarray, "H W"]]:
    """Reads one 2-D image from a FITS file.

    Args:
        path: the FITS file.
        hdu: which HDU: an index (0 = primary), an EXTNAME (case-insensitive), or None for the first
            HDU that holds a 2-D image (a primary HDU with no data is skipped).

    Returns:
        ``(image, bad)``: the image as float64 ``(H, W)`` in the file's units, in native byte order
        (FITS stores big-endian, which JAX does not take), and a bool ``(H, W)`` mask that is
        ``True`` at non-finite (NaN / inf) pixels. Bad pixels keep their values; mask them downstream.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a FITS file, no such HDU, a non-image HDU, or an image that is not 2-D.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No FITS file at {path!r}.")
    try:
        hdul = fits.open(path, memmap=False)
    except OSError as err:
        raise ValueError(f"{path!r} is not a readable FITS file: {err}") from err
    with hdul:
        if hdu is None:
            chosen = next((h for h in hdul if h.is_image and h.data is not None and h.data.ndim == 2), None)
            if chosen is None:
                raise ValueError(
                    f"{path!r} has no HDU holding a 2-D image (HDUs: {_describe(hdul)}); pass hdu=... "
                    "and slice higher-dimensional data yourself."
                )
        else:
            if not isinstance(hdu, (int, np.integer, str)) or isinstance(hdu, bool):
                raise TypeError(f"hdu must be an int index, an EXTNAME string or None, got {hdu!r}.")
            try:
                chosen = hdul[hdu]
            except (IndexError, KeyError) as err:
                raise ValueError(f"{path!r} has no HDU {hdu!r} (HDUs: {_describe(hdul)}).") from err
            if not chosen.is_image:
                raise ValueError(
                    f"HDU {hdu!r} of {path!r} is a {type(chosen).__name__}, not an image "
                    f"(HDUs: {_describe(hdul)})."
                )
            if chosen.data is None or chosen.data.ndim != 2:
                shape = None if chosen.data is None else chosen.data.shape
                raise ValueError(
                    f"HDU {hdu!r} of {path!r} holds an array of shape {shape}, not a 2-D image; "
                    "slice it to 2-D yourself (e.g. one plane of a cube)."
                )
        image = np.array(chosen.data, dtype=np.float64)
    return image, ~np.isfinite(image)
