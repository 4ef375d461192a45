"""Cutting normalised sky-noise patches out of images and FITS files."""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from jaxtyping import Bool, Float

from .fits import load_fits_image
from .masking import mask_sources
from .patchset import PatchSet, concatenate_patch_sets, make_provenance
from .regions import Region, interleaved_zones, split_regions
from .stats import robust_sigma, sky_background

__all__ = ["extract_sky_patches", "extract_sky_patches_from_fits", "train_val_patches"]


def _window_counts(bad: np.ndarray, size: int) -> np.ndarray:
    """Number of ``True`` pixels in every ``size x size`` window; entry (r, c) is the window at (r, c)."""
    table = np.zeros((bad.shape[0] + 1, bad.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = np.cumsum(np.cumsum(bad, axis=0), axis=1)
    return table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]


def _check_image(name: str, array, shape=None) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D image, got shape {array.shape}.")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}, the image has {shape}.")
    return array


def extract_sky_patches(
    image: Float[np.ndarray, "H W"],
    *,
    patch_size: int,
    stride: int,
    mask: Bool[np.ndarray, "H W"] | None = None,
    max_masked_fraction: float = 0.0,
    region: Region | None = None,
    normalise: bool = True,
    subtract_background: bool = True,
    background: float | None = None,
    sigma: float | None = None,
    noise_map: Float[np.ndarray, "H W"] | None = None,
    source: str | Mapping[str, Any] | None = None,
    fill_seed: int = 0,
    notes: Any = None,
) -> PatchSet:
    """Square sky patches on a regular grid, with masked areas rejected, in normalised units.

    Patch origins (first pixels) are ``(region.row0 + i * stride, region.col0 + j * stride)``, and
    every patch lies wholly inside ``region``. A patch is kept when at most ``max_masked_fraction``
    of its pixels are masked.
    With the default 0 every kept pixel is real sky. With a positive fraction, each masked pixel of a
    kept patch takes the value of the same pixel of a randomly chosen fully unmasked patch of the
    same image (seeded by ``fill_seed``): the filled pixels then have the sky's marginal distribution
    and correlations among themselves, but the seams between filled and real pixels are not real
    noise, so keep the fraction small.

    Units: ``x = (image - background) / sigma``, or ``(image - background) / noise_map / sigma`` when
    ``noise_map`` (per-pixel noise rms, same units as the image) is given, which takes out known
    changes of the noise level across the image before the patches are pooled. ``background`` is the
    sigma-clipped median and ``sigma`` the robust sigma (1.4826 MAD) of the unmasked pixels that the
    kept patches cover, so that sky has unit robust sigma; give both to use other values (e.g. the
    training set's, to put a validation set in the same units).

    Args:
        image: ``(H, W)`` image; non-finite pixels are masked.
        patch_size: side ``P`` of the square patches, pixels.
        stride: step between patch origins, pixels (``stride < patch_size`` makes overlapping patches).
        mask: bool ``(H, W)``, ``True`` where a pixel is not sky (see ``mask_sources``). ``None``
            masks only non-finite pixels: mask the sources yourself first.
        max_masked_fraction: largest masked fraction of a kept patch, in ``[0, 1)``.
        region: the part of the image to use (default: all of it).
        normalise: divide by ``sigma`` (else ``sigma`` is recorded as 1).
        subtract_background: subtract ``background`` (else it is recorded as 0).
        background: fixed values instead of estimates (image units; ``sigma`` in units of the
            whitened image when ``noise_map`` is given).
        sigma: as ``background``.
        noise_map: optional ``(H, W)`` per-pixel noise rms; pixels where it is not positive and finite
            are masked.
        source: what the image is, for the provenance: a label (e.g. the file name) or a
            JSON-serialisable dict (file, HDU, mask settings, ...).
        fill_seed: seed of the donor-patch choice when ``max_masked_fraction > 0``.
        notes: anything JSON-serialisable to record as ``provenance["notes"]``.

    Returns:
        A PatchSet of float32 ``(N, P, P)`` patches, in raster order of their origins.

    Raises:
        ValueError: bad shapes or settings, or no patch passes the mask test.
    """
    image = _check_image("image", image).astype(np.float64)
    patch_size, stride = int(patch_size), int(stride)
    if patch_size < 2 or stride < 1:
        raise ValueError(f"Need patch_size >= 2 and stride >= 1, got {patch_size} and {stride}.")
    if not 0.0 <= max_masked_fraction < 1.0:
        raise ValueError(f"max_masked_fraction must lie in [0, 1), got {max_masked_fraction!r}.")
    region = Region.full(image.shape) if region is None else region
    if not isinstance(region, Region):
        raise TypeError(f"region must be a Region or None, got {type(region).__name__}.")
    if not region.fits_in(image.shape):
        raise ValueError(f"Region {region.as_tuple()} does not fit in an image of shape {image.shape}.")
    if min(region.shape) < patch_size:
        # Name the fix: which patch size fits, or that the image (region) must be larger.
        raise ValueError(
            f"Region of shape {region.shape} is smaller than one {patch_size}x{patch_size} patch: use "
            f"patch_size <= {min(region.shape)}, or a larger image or region."
        )

    bad = ~np.isfinite(image)
    if mask is not None:
        bad |= _check_image("mask", mask, image.shape).astype(bool)
    if noise_map is not None:
        noise_map = _check_image("noise_map", noise_map, image.shape).astype(np.float64)
        with np.errstate(invalid="ignore"):
            bad |= ~(np.isfinite(noise_map) & (noise_map > 0))
    sub, sub_bad = image[region.slices], bad[region.slices]
    if sub_bad.all():
        raise ValueError(f"Every pixel of region {region.as_tuple()} is masked.")

    # Kept windows first, so that the background and sigma come from the sky the patches hold.
    counts = _window_counts(sub_bad, patch_size)
    rows, cols = np.nonzero(counts[::stride, ::stride] <= max_masked_fraction * patch_size**2)
    rows, cols = rows * stride, cols * stride
    if rows.size == 0:
        raise ValueError(
            f"No {patch_size}x{patch_size} patch of region {region.as_tuple()} has a masked fraction "
            f"<= {max_masked_fraction} ({sub_bad.mean():.1%} of the region is masked): use smaller "
            "patches, a larger region, a smaller stride or a looser mask."
        )
    covered = np.zeros_like(sub_bad)
    for r, c in zip(rows, cols):
        covered[r : r + patch_size, c : c + patch_size] = True
    sky = covered & ~sub_bad

    estimated = []  # which of background / sigma come from this image rather than the caller
    if not subtract_background:
        background = 0.0
    elif background is None:
        background = sky_background(sub, ~sky)
        estimated.append("background")
    x = sub - background
    if noise_map is not None:
        x = np.where(sub_bad, 0.0, x / np.where(sub_bad, 1.0, noise_map[region.slices]))
    if not normalise:
        sigma = 1.0
    elif sigma is None:
        sigma = robust_sigma(x, ~sky)
        estimated.append("sigma")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be positive and finite, got {sigma!r}.")
    x = x / sigma
    patches = np.stack([x[r : r + patch_size, c : c + patch_size] for r, c in zip(rows, cols)])

    n_filled = 0
    if max_masked_fraction > 0:
        patch_bad = np.stack([sub_bad[r : r + patch_size, c : c + patch_size] for r, c in zip(rows, cols)])
        n_filled = int(patch_bad.sum())
        if n_filled:
            # Donors: every fully unmasked window (any offset), so a few clean areas suffice.
            donor_rows, donor_cols = np.nonzero(counts == 0)
            if donor_rows.size == 0:
                raise ValueError(
                    f"No fully unmasked {patch_size}x{patch_size} window to fill masked pixels from: "
                    "use max_masked_fraction=0 with smaller patches."
                )
            rng = np.random.default_rng(fill_seed)
            for i in np.nonzero(patch_bad.any(axis=(1, 2)))[0]:
                j = rng.integers(donor_rows.size)
                r, c = donor_rows[j], donor_cols[j]
                donor = x[r : r + patch_size, c : c + patch_size]
                patches[i][patch_bad[i]] = donor[patch_bad[i]]

    info = {"source": source} if source is None or isinstance(source, str) else dict(source)
    whitened = noise_map is not None
    info.update(
        image_shape=list(image.shape),
        region=list(region.as_tuple()),
        stride=stride,
        max_masked_fraction=float(max_masked_fraction),
        masked_fraction_of_region=float(sub_bad.mean()),
        n_filled_pixels=n_filled,
        background=float(background),
        sigma=float(sigma),
        estimated_from_kept_patches=estimated,
        whitened_by_noise_map=whitened,
        units="(image - background) / noise_map / sigma" if whitened else "(image - background) / sigma",
        n_patches=int(rows.size),
    )
    positions = np.stack([np.zeros_like(rows), rows + region.row0, cols + region.col0], axis=1)
    provenance = make_provenance(patch_size, rows.size, [info], notes)
    return PatchSet(patches.astype(np.float32), positions, provenance)


def train_val_patches(
    image: Float[np.ndarray, "H W"],
    *,
    patch_size: int,
    stride: int,
    val_fraction: float = 0.2,
    axis: int = 0,
    gap: int = 0,
    val_at_end: bool = True,
    val_stride: int | None = None,
    split: str = "band",
    cell: int | None = None,
    fold: int = 0,
    **kwargs,
) -> tuple[PatchSet, PatchSet]:
    """Training and validation PatchSets from two disjoint parts of one image.

    ``split`` picks the parts (``k = round(1 / val_fraction)`` for the two cross-validation kinds):

    * ``"band"``: one band held out, ``split_regions(image.shape, val_fraction, axis=axis, gap=gap,
      val_at_end=val_at_end)``.
    * ``"stripes"``: ``k`` contiguous bands across ``axis``, ``gap`` pixels apart; fold ``fold``
      holds out one of them (``interleaved_zones`` with cells as long as the image).
    * ``"cells"``: square cells of side ``cell`` (default ``2 * patch_size``), one in ``k`` held
      out along diagonals, fold ``fold`` picking which (``interleaved_zones``); the gap is widened
      to keep the cells on both strides' grids. Both sets then sample every part of the image.

    For the last two, folds ``0 .. k - 1`` hold out every part once (a ``k``-fold cross-validation)
    and ``val_at_end`` is unused; every patch lies wholly in one part, so parts much larger than a
    patch lose fewer windows. Either way no pixel is in both sets. Background and sigma are
    estimated on the training part (unless given) and applied to both, so both sets are in the
    same units.

    Args:
        val_stride: stride of the validation patches (default: ``stride``).
        split: ``"band"``, ``"stripes"`` or ``"cells"``.
        cell: side of a cell, pixels (``split="cells"``).
        fold: which part is held out, ``0 .. k - 1`` (``"stripes"``, ``"cells"``).
        **kwargs: passed to ``extract_sky_patches`` (mask, max_masked_fraction, noise_map, ...).

    Returns:
        ``(train, val)``.
    """
    if "region" in kwargs:
        raise TypeError("train_val_patches splits the whole image; crop the image instead of passing region.")
    image = _check_image("image", image)
    extra = {} if (notes := kwargs.pop("notes", None)) is None else {"notes": notes}
    val_stride = stride if val_stride is None else val_stride
    if split != "cells" and cell is not None:
        raise ValueError(f"cell is a setting of split='cells', not of split={split!r}.")
    if split == "band" and fold != 0:
        raise ValueError("split='band' holds out one band: fold is a setting of split='stripes' or 'cells'.")
    if split == "band":
        train_region, val_region = split_regions(
            image.shape, val_fraction, axis=axis, gap=gap, val_at_end=val_at_end
        )
        where = {"train": {"region": train_region}, "val": {"region": val_region}}
        layout = {"train_region": list(train_region.as_tuple()), "val_region": list(val_region.as_tuple())}
    elif split in ("stripes", "cells"):
        if not 0.0 < val_fraction <= 0.5:
            raise ValueError(f"split={split!r} holds out 1 part in round(1 / val_fraction): val_fraction must "
                             f"lie in (0, 0.5], got {val_fraction!r}.")
        val_every = round(1.0 / val_fraction)
        if split == "stripes":
            if axis not in (0, 1):
                raise ValueError(f"axis must be 0 (bands of rows) or 1 (bands of columns), got {axis!r}.")
            width = (image.shape[axis] - (val_every - 1) * int(gap)) // val_every
            cells = (image.shape[0], width) if axis == 1 else (width, image.shape[1])
            pitch = width + int(gap)
        else:
            width = 2 * int(patch_size) if cell is None else int(cell)
            grid = math.lcm(int(stride), int(val_stride))
            pitch = -(-(width + int(gap)) // grid) * grid  # cells start on both strides' grids
            cells = (width, width)
        if width < patch_size:
            raise ValueError(f"A part {width} pixels wide cannot hold a {patch_size}-pixel patch: use "
                             f"{'a larger val_fraction' if split == 'stripes' else 'cell >= patch_size'}.")
        zones = interleaved_zones(image.shape, cells, gap=pitch - width, val_every=val_every, fold=fold)
        mask = kwargs.pop("mask", None)
        mask = np.zeros(image.shape, bool) if mask is None else _check_image("mask", mask, image.shape).astype(bool)
        # Outside its own parts the image is masked for each set; the default max_masked_fraction 0
        # then keeps each patch wholly inside one part.
        where = {role: {"mask": mask | ~zone} for role, zone in zip(("train", "val"), zones)}
        layout = {"split": split, "cell": list(cells), "pitch": pitch, "val_every": val_every, "fold": int(fold)}
    else:
        raise ValueError(f"split must be 'band', 'stripes' or 'cells', got {split!r}.")
    train = extract_sky_patches(
        image,
        patch_size=patch_size,
        stride=stride,
        notes={"role": "train"} | layout | extra,
        **where["train"],
        **kwargs,
    )
    fixed = {key: train.provenance["sources"][0][key] for key in ("background", "sigma")}
    try:
        val = extract_sky_patches(
            image,
            patch_size=patch_size,
            stride=val_stride,
            notes={"role": "val"} | layout | extra,
            **where["val"],
            **(fixed | kwargs),
        )
    except ValueError as err:
        if split == "band":
            raise
        raise ValueError(f"train_val_patches(split={split!r}, fold={fold}): the held-out parts keep no patch "
                         f"({err}) Use smaller patches or larger cells, or another split.") from err
    return train, val


def _mask_settings(mask_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The full keyword settings of ``mask_sources`` that a call with ``mask_kwargs`` uses."""
    params = inspect.signature(mask_sources).parameters
    unknown = set(mask_kwargs) - {k for k, p in params.items() if p.kind is p.KEYWORD_ONLY and k != "mask"}
    if unknown:
        raise TypeError(f"Unknown mask_sources settings {sorted(unknown)}.")
    defaults = {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY and k != "mask"}
    return defaults | dict(mask_kwargs)


def extract_sky_patches_from_fits(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    patch_size: int,
    stride: int,
    hdu: int | str | None = None,
    mask_kwargs: Mapping[str, Any] | None = None,
    region: Region | None = None,
    **kwargs,
) -> PatchSet:
    """``extract_sky_patches`` on one or more FITS images, each source-masked with ``mask_sources``.

    Each image is read with ``load_fits_image(path, hdu)``, masked with
    ``mask_sources(image, **mask_kwargs)`` (plus its non-finite pixels), and normalised by its own
    background and sigma; the patch sets are concatenated in the order of ``paths``. The file, HDU and
    the full mask settings are recorded for each source.

    Args:
        paths: one path or a sequence of paths.
        hdu: the HDU to read from every file (see ``load_fits_image``).
        mask_kwargs: keyword settings for ``mask_sources``.
        region: the region to use in every image (default: whole images).
        **kwargs: passed to ``extract_sky_patches``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ValueError("extract_sky_patches_from_fits needs at least one path.")
    settings = _mask_settings(mask_kwargs or {})
    notes = kwargs.pop("notes", None)
    sets = []
    for path in paths:
        image, bad = load_fits_image(path, hdu)
        mask = mask_sources(image, mask=bad, **settings)
        source = {"source": os.fspath(path), "hdu": hdu, "mask": {"function": "mask_sources", **settings}}
        sets.append(
            extract_sky_patches(
                image, patch_size=patch_size, stride=stride, mask=mask, region=region, source=source, **kwargs
            )
        )
    return concatenate_patch_sets(sets, notes=notes)
