"""Noise models: the protocol, analytic densities and diffusion schedules."""

from .analytic import GaussianMixtureNoise, StationaryGaussianNoise, WhiteGaussianNoise
from .base import NoiseModel, ScoreFunction, as_noise_model
from .sde import VESDE

__all__ = [
    "NoiseModel",
    "ScoreFunction",
    "as_noise_model",
    "VESDE",
    "WhiteGaussianNoise",
    "StationaryGaussianNoise",
    "GaussianMixtureNoise",
]
