"""numpyro-slic: score-based likelihood characterization (SLIC) as a NumPyro distribution."""

from . import data, infer, lensing
from .data import PatchSet, extract_sky_patches, load_patch_set, load_shipped, save_patch_set
from .infer import MALA, AnnealedLangevin, diffusion_level, geometric_levels
from .lensing import LensSimulator, PixelGrid, gaussian_psf_kernel, load_psf_fits
from .likelihood import ScoreLikelihood, level_for_sigma, perturb_observation
from .noise import (
    GaussianMixtureNoise,
    NoiseModel,
    ScoreFunction,
    StationaryGaussianNoise,
    VESDE,
    WhiteGaussianNoise,
    load_noise_model,
    train_noise_model,
)

__version__ = "0.1.0"
