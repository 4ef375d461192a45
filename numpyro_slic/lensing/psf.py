"""Point-spread functions: pixelated kernels (Gaussian or from FITS) and FFT convolution.

A PSF kernel here is a 2-D array with odd sides, centred on its middle pixel, summing to 1, on the
image's pixel scale (lenstronomy's ``PSF(psf_type="PIXEL")`` after its normalisation).
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import jax.scipy.signal as jsp_signal
import numpy as np
from jaxtyping import Array, ArrayLike, Float

__all__ = ["gaussian_psf_kernel", "normalize_psf", "load_psf_fits", "convolve_psf"]

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _check_kernel_shape(shape: tuple[int, ...], what: str) -> None:
    if len(shape) != 2:
        raise ValueError(f"{what}: a PSF kernel must be 2-D, got shape {shape}.")
    if shape[0] % 2 == 0 or shape[1] % 2 == 0:
        raise ValueError(
            f"{what}: PSF kernel sides must be odd so that it has a centre pixel, got shape {shape}; "
            "crop or re-centre it (e.g. drop one row/column and re-normalise)."
        )


def normalize_psf(kernel: Float[ArrayLike, "ky kx"]) -> Float[Array, "ky kx"]:
    """Checks a pixelated PSF (2-D, odd sides, finite, positive sum) and scales it to sum 1.

    Raises ValueError naming the problem. Needs concrete values (call it outside ``jit``).
    """
    k = np.asarray(kernel, dtype=np.float64)
    _check_kernel_shape(k.shape, "normalize_psf")
    if not np.all(np.isfinite(k)):
        raise ValueError("normalize_psf: the PSF kernel contains NaN or inf; fill or crop those pixels.")
    total = k.sum()
    if not total > 0:
        raise ValueError(f"normalize_psf: the PSF kernel must have a positive sum, got {total}.")
    return jnp.asarray(k / total, dtype=float)


def gaussian_psf_kernel(
    fwhm: Float[ArrayLike, ""], pixel_scale: float, size: int
) -> Float[Array, "size size"]:
    """A circular Gaussian sampled at the centres of a size x size pixel grid, normalised to sum 1.

    Point sampling at pixel centres, as lenstronomy's ``kernel_util.kernel_gaussian``; for a FWHM
    below about 2 pixels the pixel-integrated PSF is noticeably broader. ``fwhm`` may be traced
    (jit/grad), e.g. to fit the PSF width; ``pixel_scale`` and ``size`` are static.

    Args:
        fwhm: full width at half maximum (arcsec). pixel_scale: pixel side (arcsec).
        size: kernel side in pixels (odd); make it a few FWHM wide, since flux beyond it is dropped.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"gaussian_psf_kernel: size must be an int, got {type(size).__name__}.")
    _check_kernel_shape((size, size), "gaussian_psf_kernel")
    if not float(pixel_scale) > 0:
        raise ValueError(f"gaussian_psf_kernel: pixel_scale must be positive (arcsec), got {pixel_scale}.")
    if not isinstance(fwhm, jax.core.Tracer) and not float(np.asarray(fwhm)) > 0:
        raise ValueError(f"gaussian_psf_kernel: fwhm must be positive (arcsec), got {fwhm}.")
    sigma = jnp.asarray(fwhm, dtype=float) / _FWHM_PER_SIGMA
    r = jnp.asarray((np.arange(size) - (size - 1) / 2) * pixel_scale, dtype=sigma.dtype)
    profile = jnp.exp(-0.5 * (r / sigma) ** 2)
    kernel = jnp.outer(profile, profile)
    return kernel / jnp.sum(kernel)


def load_psf_fits(path: str | os.PathLike, hdu: int | str | None = None) -> Float[Array, "ky kx"]:
    """Reads a pixelated PSF from a FITS file and returns it normalised to sum 1.

    Args:
        path: the FITS file.
        hdu: index or EXTNAME of the HDU to read; default the first HDU that holds image data.

    Raises:
        ValueError: no image HDU, data not 2-D, even-sized, containing NaN/inf, or summing to <= 0.
    """
    try:
        from astropy.io import fits
    except ModuleNotFoundError as err:
        raise ImportError("load_psf_fits needs astropy: pip install 'numpyro-slic[train]'.") from err

    with fits.open(path) as hdul:
        if hdu is None:
            chosen = next((h for h in hdul if h.is_image and h.data is not None), None)
            if chosen is None:
                raise ValueError(f"load_psf_fits: {os.fspath(path)!r} has no HDU with image data.")
        else:
            chosen = hdul[hdu]
            if not chosen.is_image or chosen.data is None:
                raise ValueError(f"load_psf_fits: HDU {hdu!r} of {os.fspath(path)!r} holds no image data.")
        data = np.array(chosen.data, dtype=np.float64)
        name = chosen.name
    where = f"load_psf_fits({os.fspath(path)!r}, HDU {name!r})"
    _check_kernel_shape(data.shape, where + (" (pick one plane of a cube first)" if data.ndim > 2 else ""))
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{where}: the PSF contains NaN or inf pixels; fill them or crop the kernel.")
    return normalize_psf(data)


def convolve_psf(image: Float[Array, "H W"], kernel: Float[Array, "ky kx"]) -> Float[Array, "H W"]:
    """Convolves one image with a pixelated PSF kernel by FFT; the output has the image's shape.

    Zero padding outside the image (no wrap-around), aligned like ``scipy.signal.fftconvolve(...,
    mode="same")`` for an odd kernel, which is what lenstronomy uses. The kernel is used as given;
    pass it through ``normalize_psf`` to conserve flux. Batch with ``jax.vmap``.
    """
    image, kernel = jnp.asarray(image), jnp.asarray(kernel)
    if image.ndim != 2:
        raise ValueError(
            f"convolve_psf: image must be 2-D (H, W), got shape {image.shape}; vmap over batches."
        )
    _check_kernel_shape(kernel.shape, "convolve_psf")
    return jsp_signal.fftconvolve(image, kernel, mode="same")
