"""Real telescope noise as training data: FITS images to normalised sky-noise patch sets.

Pipeline: ``load_fits_image`` (raw CCD frames: ``load_ccd_frame``) -> ``mask_sources`` -> ``extract_sky_patches`` (or
``train_val_patches`` for disjoint training / validation bands or interleaved cells) -> ``save_patch_set``; augment
with ``random_translations``. Shipped real data: ``load_shipped``.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# augment() shares its name with its module: a lazy attribute would be shadowed by the
# submodule once anything imports numpyro_slic.data.augment, so it is bound here (jax only).
from .augment import augment, random_flips, random_rot90, random_rot180, random_translations

_EXPORTS = {
    "CCDFrame": ".ccd",
    "find_low_rows": ".ccd",
    "load_ccd_frame": ".ccd",
    "overscan_level": ".ccd",
    "reduce_ccd_frame": ".ccd",
    "load_fits_image": ".fits",
    "load_patch_set": ".io",
    "load_patch_sets": ".shipped",
    "save_patch_set": ".io",
    "mask_sources": ".masking",
    "extract_sky_patches": ".patches",
    "extract_sky_patches_from_fits": ".patches",
    "train_val_patches": ".patches",
    "PatchSet": ".patchset",
    "concatenate_patch_sets": ".patchset",
    "Region": ".regions",
    "interleaved_zones": ".regions",
    "split_regions": ".regions",
    "Cutout": ".shipped",
    "PSFImage": ".shipped",
    "load_shipped": ".shipped",
    "shipped_names": ".shipped",
    "shipped_path": ".shipped",
    "noise_statistics": ".stats",
    "lag_correlation": ".stats",
    "noise_step_map": ".stats",
    "robust_sigma": ".stats",
    "sky_background": ".stats",
}

__all__ = [
    "load_fits_image",
    "load_ccd_frame",
    "reduce_ccd_frame",
    "overscan_level",
    "find_low_rows",
    "CCDFrame",
    "mask_sources",
    "robust_sigma",
    "sky_background",
    "noise_statistics",
    "lag_correlation",
    "noise_step_map",
    "Region",
    "split_regions",
    "interleaved_zones",
    "PatchSet",
    "concatenate_patch_sets",
    "extract_sky_patches",
    "extract_sky_patches_from_fits",
    "train_val_patches",
    "save_patch_set",
    "load_patch_set",
    "load_patch_sets",
    "random_translations",
    "random_flips",
    "random_rot90",
    "random_rot180",
    "augment",
    "load_shipped",
    "shipped_names",
    "shipped_path",
    "PSFImage",
    "Cutout",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, [])

if TYPE_CHECKING:
    from .ccd import CCDFrame, find_low_rows, load_ccd_frame, overscan_level, reduce_ccd_frame
    from .fits import load_fits_image
    from .io import load_patch_set, save_patch_set
    from .masking import mask_sources
    from .patches import extract_sky_patches, extract_sky_patches_from_fits, train_val_patches
    from .patchset import PatchSet, concatenate_patch_sets
    from .regions import Region, interleaved_zones, split_regions
    from .shipped import Cutout, PSFImage, load_patch_sets, load_shipped, shipped_names, shipped_path
    from .stats import lag_correlation, noise_statistics, noise_step_map, robust_sigma, sky_background
