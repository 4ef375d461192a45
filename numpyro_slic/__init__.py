"""numpyro-slic: score-based likelihood characterization (SLIC) as a NumPyro distribution."""

from .noise import (
    GaussianMixtureNoise,
    NoiseModel,
    ScoreFunction,
    StationaryGaussianNoise,
    VESDE,
    WhiteGaussianNoise,
)

__version__ = "0.1.0"
