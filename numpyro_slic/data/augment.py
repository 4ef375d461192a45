"""Augmenting noise patches without changing the noise's statistics.

Stationary noise has the same distribution at every position, so moving the patch window
(``random_translations``) gives new, equally valid draws. Flips and 90-degree rotations are only
valid for noise with those symmetries: real detector noise often lacks them (JWST NIRCam has
vertical 1/f stripes, and the shipped JWST / HST patches have different lag-1 correlations along
x and y), so they are never applied unless asked for. A 180-degree turn (``random_rot180``) keeps
every second-order statistic of any stationary noise; which of the others each real source allows
is measured in docs/noise_sources.md.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

__all__ = ["random_translations", "random_flips", "random_rot180", "random_rot90", "augment"]


def _as_stack(patches: ArrayLike, what: str) -> Array:
    patches = jnp.asarray(patches)
    if patches.ndim != 3:
        raise ValueError(f"{what} takes a stack of patches (N, H, W), got shape {patches.shape}.")
    return patches


def random_translations(
    key: PRNGKeyArray,
    patches: Float[ArrayLike, "N H W"],
    *,
    size: int | tuple[int, int] | None = None,
    mode: Literal["crop", "roll"] = "crop",
) -> Float[Array, "N h w"]:
    """Moves each patch's window by an independent random offset.

    * ``mode="crop"`` (preferred): a uniformly random ``size`` window of each (larger) patch, so
      extract patches a little larger than the training size (e.g. 72 for 64) and crop them here.
      Every output pixel is a real, contiguous sky pixel.
    * ``mode="roll"``: a uniformly random cyclic shift of each patch (same shape; ``size`` must be
      None). The pixels that wrap around meet pixels they were never next to, so the seam is not
      real noise (correlations across it are lost); use only for noise known to be periodic.

    Args:
        key: JAX PRNG key.
        patches: ``(N, H, W)``.
        size: output ``h`` (square) or ``(h, w)``, at most ``(H, W)``; ``mode="crop"`` only.
        mode: ``"crop"`` or ``"roll"``.

    Returns:
        ``(N, h, w)`` crops, or ``(N, H, W)`` shifted patches.
    """
    patches = _as_stack(patches, "random_translations")
    n, h, w = patches.shape
    key_rows, key_cols = jax.random.split(key)
    if mode == "roll":
        if size is not None:
            raise ValueError("mode='roll' keeps the patch shape; use size only with mode='crop'.")
        rows = jax.random.randint(key_rows, (n,), 0, h)
        cols = jax.random.randint(key_cols, (n,), 0, w)
        return jax.vmap(lambda p, r, c: jnp.roll(p, (r, c), axis=(0, 1)))(patches, rows, cols)
    if mode != "crop":
        raise ValueError(f"mode must be 'crop' or 'roll', got {mode!r}.")
    if size is None:
        raise ValueError("mode='crop' needs size=(h, w) or an int: the crop is smaller than the patches.")
    sh, sw = (size, size) if isinstance(size, int) else tuple(size)
    if not (0 < sh <= h and 0 < sw <= w):
        raise ValueError(f"Crop size {(sh, sw)} must be positive and at most the patch shape {(h, w)}.")
    rows = jax.random.randint(key_rows, (n,), 0, h - sh + 1)
    cols = jax.random.randint(key_cols, (n,), 0, w - sw + 1)
    return jax.vmap(lambda p, r, c: jax.lax.dynamic_slice(p, (r, c), (sh, sw)))(patches, rows, cols)


def random_flips(
    key: PRNGKeyArray, patches: Float[ArrayLike, "N H W"], *, left_right: bool, up_down: bool
) -> Float[Array, "N H W"]:
    """Flips each patch left-right and/or up-down, independently with probability 1/2 each.

    Both switches are required keywords so a flip is always a deliberate choice. Valid only when the
    noise has the mirror symmetry: a left-right flip maps the correlation at lag ``(dy, dx)`` to
    ``(dy, -dx)``, so check that the diagonal correlations agree first.
    """
    patches = _as_stack(patches, "random_flips")
    key_lr, key_ud = jax.random.split(key)
    n = patches.shape[0]
    if left_right:
        flip = jax.random.bernoulli(key_lr, 0.5, (n, 1, 1))
        patches = jnp.where(flip, patches[:, :, ::-1], patches)
    if up_down:
        flip = jax.random.bernoulli(key_ud, 0.5, (n, 1, 1))
        patches = jnp.where(flip, patches[:, ::-1, :], patches)
    return patches


def random_rot180(key: PRNGKeyArray, patches: Float[ArrayLike, "N H W"]) -> Float[Array, "N H W"]:
    """Turns each patch by 180 degrees (both axes reversed together) with probability 1/2.

    The one orientation change that keeps every second-order statistic of any stationary noise: it
    maps the pair at lag ``(dy, dx)`` to the pair at ``(-dy, -dx)``, which is the same pair, so
    correlations and the power spectrum, stripes and tilted stripes included, are unchanged. Only
    directional higher-order structure (a trail that follows a bright pixel down a column, say) can
    tell. A single flip, by contrast, maps ``(dy, dx)`` to ``(dy, -dx)``: noise whose correlation at
    ``(2, 1)`` differs from ``(2, -1)`` (the JWST short-wavelength bands, docs/noise_sources.md) does
    not allow it. ``random_flips(left_right=True, up_down=True)`` flips each axis independently,
    which includes the single flips.
    """
    patches = _as_stack(patches, "random_rot180")
    turn = jax.random.bernoulli(key, 0.5, (patches.shape[0], 1, 1))
    return jnp.where(turn, patches[:, ::-1, ::-1], patches)


def random_rot90(key: PRNGKeyArray, patches: Float[ArrayLike, "N P P"]) -> Float[Array, "N P P"]:
    """Rotates each square patch by an independent uniformly random multiple of 90 degrees.

    Valid only for noise that looks the same along x and y (not JWST NIRCam's vertical stripes).
    """
    patches = _as_stack(patches, "random_rot90")
    if patches.shape[1] != patches.shape[2]:
        raise ValueError(f"random_rot90 needs square patches, got {patches.shape[1:]}.")
    turns = jax.random.randint(key, (patches.shape[0],), 0, 4)
    rotations = [lambda p, k=k: jnp.rot90(p, k) for k in range(4)]
    return jax.vmap(lambda p, k: jax.lax.switch(k, rotations, p))(patches, turns)


def augment(
    key: PRNGKeyArray,
    patches: Float[ArrayLike, "N H W"],
    *,
    size: int | tuple[int, int],
    flip_left_right: bool = False,
    flip_up_down: bool = False,
    rot90: bool = False,
    rot180: bool = False,
) -> Float[Array, "N h w"]:
    """Random crops of size ``size``, then (only if switched on) random flips and 90- or 180-degree turns.

    With the defaults this is ``random_translations(key, patches, size=size)``: the noise's
    orientation is left alone.
    """
    key_crop, key_flip, key_rot = jax.random.split(key, 3)
    out = random_translations(key_crop, patches, size=size, mode="crop")
    if flip_left_right or flip_up_down:
        out = random_flips(key_flip, out, left_right=flip_left_right, up_down=flip_up_down)
    if rot90:
        out = random_rot90(key_rot, out)
    elif rot180:  # rot90 already includes the half turns
        out = random_rot180(key_rot, out)
    return out
