"""Real data shipped with the package: held-out sky-noise patches, a PSF and a lens cutout.

Everything here was made by ``scripts/make_shipped_data.py`` from public JWST, HST and
ground-based CCD images; what
each file is, where it came from and the exact command are in ``shipped/PROVENANCE.md``.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import os
import pathlib
from typing import Any, Sequence

import numpy as np
from jaxtyping import Bool, Float

from .io import load_patch_set
from .patchset import PatchSet, concatenate_patch_sets

__all__ = ["Cutout", "PSFImage", "load_shipped", "load_patch_sets", "shipped_names", "shipped_path"]


@dataclasses.dataclass(frozen=True, eq=False)
class PSFImage:
    """A pixelised PSF.

    Attributes:
        kernel: float32 ``(K, K)``, odd ``K``, centred on the middle pixel, normalised to unit sum.
        pixel_scale: arcsec per pixel.
        provenance: JSON-serialisable dict (source file, original sum, ...).
    """

    kernel: Float[np.ndarray, "K K"]
    pixel_scale: float
    provenance: dict[str, Any]


@dataclasses.dataclass(frozen=True, eq=False)
class Cutout:
    """An observed image cutout with what a fit needs.

    Attributes:
        data: float32 ``(H, W)`` image, in the survey's units (no background subtracted).
        noise_map: float32 ``(H, W)`` per-pixel noise rms estimate, same units.
        mask: bool ``(H, W)``, ``True`` at pixels to leave out of a fit (other galaxies).
        psf: the PSF of the image.
        pixel_scale: arcsec per pixel.
        origin: ``(row, col)`` of the cutout's first pixel in the original image.
        provenance: JSON-serialisable dict.
    """

    data: Float[np.ndarray, "H W"]
    noise_map: Float[np.ndarray, "H W"]
    mask: Bool[np.ndarray, "H W"]
    psf: PSFImage
    pixel_scale: float
    origin: tuple[int, int]
    provenance: dict[str, Any]


# name -> (file in shipped/, what it holds)
_SHIPPED = {
    "jwst-f150w-sky-val": ("jwst_f150w_sky_val.npz", "patches"),
    "jwst-f115w-sky-val": ("jwst_f115w_sky_val.npz", "patches"),
    "jwst-f150w-smoothed-sky-val": ("jwst_f150w_smoothed_sky_val.npz", "patches"),
    "jwst-f277w-sky-val": ("jwst_f277w_sky_val.npz", "patches"),
    "jwst-f444w-sky-val": ("jwst_f444w_sky_val.npz", "patches"),
    "hst-f814w-sky-val": ("hst_f814w_sky_val.npz", "patches"),
    "ground-ccd-sky-val": ("ground_ccd_sky_val.npz", "patches"),
    "ground-ccd-sky-train": ("ground_ccd_sky_train.npz", "patches"),
    "jwst-f150w-psf": ("jwst_f150w_psf.npz", "psf"),
    "cosmos-web-ring-f150w": ("cosmos_web_ring_f150w.npz", "cutout"),
    "ground-ccd-fits": ("ground_ccd_raw_cutout.fits", "file"),
}


def shipped_names() -> list[str]:
    """The names ``load_shipped`` knows."""
    return sorted(_SHIPPED)


def shipped_path(name: str) -> pathlib.Path:
    """The path of a shipped file on disk, for readers that take a file name (``load_ccd_frame``).

    Raises:
        ValueError: an unknown name, or a package installed where its data are not plain files (a
            zip import).
    """
    if name not in _SHIPPED:
        raise ValueError(f"Unknown shipped data {name!r}; known: {', '.join(shipped_names())}.")
    resource = importlib.resources.files(__package__).joinpath("shipped", _SHIPPED[name][0])
    path = pathlib.Path(str(resource))
    if not path.is_file():
        raise ValueError(f"The shipped file {name!r} is not a plain file here ({resource!r}).")
    return path


def _psf_from(npz, prefix: str = "") -> PSFImage:
    return PSFImage(
        kernel=np.asarray(npz[prefix + "kernel"], dtype=np.float32),
        pixel_scale=float(npz["pixel_scale"]),
        provenance=json.loads(str(npz[prefix + "provenance"])),
    )


def load_shipped(name: str) -> PatchSet | PSFImage | Cutout | pathlib.Path:
    """Loads a shipped data product by name.

    * ``"jwst-f150w-sky-val"``: PatchSet of held-out JWST NIRCam F150W sky patches (64 x 64).
    * ``"jwst-f115w-sky-val"``: the same for F115W (64 x 64, 0.03 arcsec/pixel), whitened by the
      median-filtered noise map.
    * ``"jwst-f150w-smoothed-sky-val"``: the F150W set's patches (same windows) whitened like F115W's,
      by the median-filtered noise map (the upstream map holds each pixel's own Poisson term, which
      skews sky divided by it); the held-out set of ``jwst-nircam-sw`` with F115W's.
    * ``"jwst-f277w-sky-val"``, ``"jwst-f444w-sky-val"``: the same for F277W and F444W (32 x 32 at
      0.06 arcsec/pixel, the sky of a 64 x 64 patch at 0.03), whitened by a two-level map of the
      image's depth step (``noise_step_map``): their upstream noise maps are floored at a constant.
    * ``"hst-f814w-sky-val"``: PatchSet of held-out HST ACS F814W sky patches (32 x 32).
    * ``"ground-ccd-sky-val"``: PatchSet of held-out sky patches (32 x 32) of a raw ground-based CCD
      frame (SAAO 1.0 m), strongly non-Gaussian: cosmic-ray hits and hot pixels kept.
    * ``"ground-ccd-sky-train"``: the same frame's training patches (a disjoint band of columns).
    * ``"jwst-f150w-psf"``: PSFImage, the 31 x 31 F150W PSF at 0.03 arcsec/pixel.
    * ``"cosmos-web-ring-f150w"``: Cutout of the COSMOS-Web Einstein ring in F150W (128 x 128).
    * ``"ground-ccd-fits"``: the path (``shipped_path``) of a raw 240 x 216 int16 FITS cutout of the
      same SAAO CCD frame, overscan included, with BIASSEC / TRIMSEC for ``load_ccd_frame``.

    Their units, regions and measured statistics are in ``docs/data.md`` and ``shipped/PROVENANCE.md``;
    the noise of every source, and which flips and rotations it allows, in ``docs/noise_sources.md``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name not in _SHIPPED:
        raise ValueError(f"Unknown shipped data {name!r}; known: {', '.join(shipped_names())}.")
    filename, kind = _SHIPPED[name]
    if kind == "file":
        return shipped_path(name)
    resource = importlib.resources.files(__package__).joinpath("shipped", filename)
    with importlib.resources.as_file(resource) as path:
        if kind == "patches":
            return load_patch_set(path)
        with np.load(path, allow_pickle=False) as npz:
            if kind == "psf":
                return _psf_from(npz)
            return Cutout(
                data=np.asarray(npz["data"], dtype=np.float32),
                noise_map=np.asarray(npz["noise_map"], dtype=np.float32),
                mask=np.asarray(npz["mask"], dtype=bool),
                psf=_psf_from(npz, "psf_"),
                pixel_scale=float(npz["pixel_scale"]),
                origin=tuple(int(v) for v in npz["origin"]),
                provenance=json.loads(str(npz["provenance"])),
            )


def load_patch_sets(specs: str | os.PathLike | Sequence[str | os.PathLike]) -> PatchSet:
    """One patch set, or several pooled into one (``concatenate_patch_sets``: one patch size,
    sources listed in order), e.g. two bands whose noise is the same. Each spec is a shipped
    patch-set name (``shipped_names()``) or a file written by ``save_patch_set``; one spec gives
    its set unchanged.

    Raises:
        ValueError: no spec, a shipped name that is not a patch set, or patch sets of two sizes.
        FileNotFoundError: a path with no file.
    """
    specs = [specs] if isinstance(specs, (str, os.PathLike)) else list(specs)
    if not specs:
        raise ValueError("load_patch_sets needs at least one patch set.")
    sets = []
    for spec in specs:
        loaded = load_shipped(spec) if isinstance(spec, str) and spec in _SHIPPED else load_patch_set(spec)
        if not isinstance(loaded, PatchSet):
            raise ValueError(f"load_patch_sets: the shipped {spec!r} is not a patch set.")
        sets.append(loaded)
    return sets[0] if len(sets) == 1 else concatenate_patch_sets(sets)
