"""Noise models: the protocol, analytic densities, learned networks (training, bundles), sampling,
probability-flow log-density and Stein calibration."""

from .analytic import GaussianMixtureNoise, StationaryGaussianNoise, WhiteGaussianNoise
from .base import NoiseModel, ScoreFunction, as_noise_model
from .calibration import CalibratedNoise, ScoreCalibration, SteinDiagnostics, fit_calibration, stein_diagnostics
from .bundle import load_noise_model, read_bundle_metadata, save_noise_model, shipped_models
from .flow import ode_log_prob
from .learned import GaussianBackbone, LearnedNoise
from .networks import UNet, UNetConfig
from .sampling import sample_noise, sample_noise_unit
from .sde import VESDE, VPSDE
from .training import TrainConfig, train_noise_model, validation_loss

__all__ = [
    "NoiseModel",
    "ScoreFunction",
    "as_noise_model",
    "VESDE",
    "VPSDE",
    "LearnedNoise",
    "GaussianBackbone",
    "UNet",
    "UNetConfig",
    "TrainConfig",
    "train_noise_model",
    "validation_loss",
    "save_noise_model",
    "load_noise_model",
    "read_bundle_metadata",
    "shipped_models",
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
