"""numpyro-slic: score-based likelihood characterization (SLIC) as a NumPyro distribution.

The names below are imported on first use (``_lazy``): ``import numpyro_slic`` is cheap, and using
only ``ScoreLikelihood`` with an analytic noise model never loads diffrax, optax or astropy.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    **dict.fromkeys(["PatchSet", "extract_sky_patches", "load_patch_set", "load_shipped", "save_patch_set"], ".data"),
    **dict.fromkeys(["MALA", "AnnealedLangevin", "diffusion_level", "geometric_levels"], ".infer"),
    **dict.fromkeys(["LensSimulator", "PixelGrid", "gaussian_psf_kernel", "load_psf_fits"], ".lensing"),
    **dict.fromkeys(["ScoreLikelihood", "level_for_sigma", "perturb_observation"], ".likelihood"),
    **dict.fromkeys(
        [
            "GaussianMixtureNoise",
            "NoiseModel",
            "ScoreFunction",
            "StationaryGaussianNoise",
            "VESDE",
            "WhiteGaussianNoise",
            "load_noise_model",
            "train_noise_model",
        ],
        ".noise",
    ),
}
_SUBMODULES = [
    "coverage", "data", "diagnostics", "infer", "lensing", "likelihood", "noise", "problems", "quadrature", "demo", "cli",
]

__all__ = [*_EXPORTS, "coverage", "data", "infer", "lensing", "problems"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

if TYPE_CHECKING:
    from . import data, infer, lensing, problems
    from .data import PatchSet, extract_sky_patches, load_patch_set, load_shipped, save_patch_set
    from .infer import MALA, AnnealedLangevin, diffusion_level, geometric_levels
    from .lensing import LensSimulator, PixelGrid, gaussian_psf_kernel, load_psf_fits
    from .likelihood import ScoreLikelihood, level_for_sigma, perturb_observation
    from .noise import (
        VESDE,
        GaussianMixtureNoise,
        NoiseModel,
        ScoreFunction,
        StationaryGaussianNoise,
        WhiteGaussianNoise,
        load_noise_model,
        train_noise_model,
    )
