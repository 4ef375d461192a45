"""PatchSet: a stack of normalised sky-noise patches and where they came from."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
from collections.abc import Sequence
from typing import Any

import numpy as np
from jaxtyping import Float, Int

__all__ = ["PatchSet", "concatenate_patch_sets"]

FORMAT = "numpyro-slic-patchset"
FORMAT_VERSION = 1


def package_version() -> str:
    try:
        return importlib.metadata.version("numpyro-slic")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass(frozen=True, eq=False)
class PatchSet:
    """Sky-noise patches in normalised units, with their provenance.

    A plain frozen dataclass of numpy arrays (not an equinox Module): it is a data container that
    lives on the host and is saved to disk, never passed through ``jit``; convert the patches with
    ``jnp.asarray(ps.patches)`` for training.

    Attributes:
        patches: float32 ``(N, P, P)`` patches. Their units are given per source image by
            ``provenance["sources"][i]["units"]``, usually ``(image - background) / sigma``, so a
            noise model trained on them has ``scale = sigma`` in the image's units.
        positions: int64 ``(N, 3)``: for each patch, the index of its source image in
            ``provenance["sources"]`` and the (row, col) of its first pixel in that image.
        provenance: JSON-serialisable dict with ``format``, ``format_version``, ``created`` (UTC),
            ``package_version``, ``patch_size``, ``n_patches``, ``sources`` (one dict per source
            image: what it is, its shape, the region used, stride, background, sigma, masking, ...)
            and optionally ``notes``.
    """

    patches: Float[np.ndarray, "N P P"]
    positions: Int[np.ndarray, "N 3"]
    provenance: dict[str, Any]

    def __post_init__(self):
        patches = np.asarray(self.patches)
        if patches.ndim != 3 or patches.shape[1] != patches.shape[2]:
            raise ValueError(f"PatchSet.patches must have shape (N, P, P), got {patches.shape}.")
        if not np.issubdtype(patches.dtype, np.floating):
            raise TypeError(f"PatchSet.patches must be floating point, got {patches.dtype}.")
        positions = np.asarray(self.positions)
        if positions.shape != (patches.shape[0], 3) or not np.issubdtype(positions.dtype, np.integer):
            raise ValueError(
                f"PatchSet.positions must be integers of shape (N, 3) = ({patches.shape[0]}, 3), got "
                f"{positions.dtype} {positions.shape}."
            )
        if not isinstance(self.provenance, dict) or not isinstance(self.provenance.get("sources"), list):
            raise TypeError("PatchSet.provenance must be a dict with a 'sources' list.")
        n_sources = len(self.provenance["sources"])
        if positions.size and not (0 <= positions[:, 0].min() and positions[:, 0].max() < n_sources):
            raise ValueError(
                f"PatchSet.positions refer to source images outside the {n_sources} in provenance['sources']."
            )
        object.__setattr__(self, "patches", np.ascontiguousarray(patches, dtype=np.float32))
        object.__setattr__(self, "positions", positions.astype(np.int64))

    def __len__(self) -> int:
        return self.patches.shape[0]

    @property
    def patch_size(self) -> int:
        return self.patches.shape[1]

    def __repr__(self) -> str:
        names = [s.get("source", "?") for s in self.provenance["sources"]]
        return f"PatchSet({len(self)} patches of {self.patch_size}x{self.patch_size} from {names})"


def concatenate_patch_sets(sets: Sequence[PatchSet], *, notes: Any = None) -> PatchSet:
    """One PatchSet holding the patches of several (of equal patch size), sources listed in order."""
    sets = list(sets)
    if not sets:
        raise ValueError("concatenate_patch_sets needs at least one PatchSet.")
    sizes = {ps.patch_size for ps in sets}
    if len(sizes) != 1:
        raise ValueError(f"Cannot concatenate patch sets of different patch sizes {sorted(sizes)}.")
    sources, positions, offset = [], [], 0
    for ps in sets:
        pos = ps.positions.copy()
        pos[:, 0] += offset
        positions.append(pos)
        sources.extend(ps.provenance["sources"])
        offset += len(ps.provenance["sources"])
    patches = np.concatenate([ps.patches for ps in sets])
    provenance = make_provenance(sets[0].patch_size, len(patches), sources, notes)
    return PatchSet(patches, np.concatenate(positions), provenance)


def make_provenance(patch_size: int, n_patches: int, sources: list[dict], notes: Any = None) -> dict:
    provenance = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": utc_now(),
        "package_version": package_version(),
        "patch_size": int(patch_size),
        "n_patches": int(n_patches),
        "sources": sources,
    }
    if notes is not None:
        provenance["notes"] = notes
    return provenance
