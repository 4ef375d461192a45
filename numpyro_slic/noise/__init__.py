"""Noise models: the protocol, analytic densities and diffusion schedules."""

from .analytic import GaussianMixtureNoise, StationaryGaussianNoise, WhiteGaussianNoise
from .base import NoiseModel, ScoreFunction, as_noise_model
from .calibration import CalibratedNoise, ScoreCalibration, SteinDiagnostics, fit_calibration, stein_diagnostics
from .flow import ode_log_prob
from .sampling import sample_noise, sample_noise_unit
from .sde import VESDE

__all__ = [
    "NoiseModel",
    "ScoreFunction",
    "as_noise_model",
    "VESDE",
    "WhiteGaussianNoise",
    "StationaryGaussianNoise",
    "GaussianMixtureNoise",
    "sample_noise",
    "sample_noise_unit",
    "ode_log_prob",
    "stein_diagnostics",
    "SteinDiagnostics",
    "fit_calibration",
    "ScoreCalibration",
    "CalibratedNoise",
]
