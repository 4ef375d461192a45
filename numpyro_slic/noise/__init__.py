"""Noise models: the protocol, analytic densities, learned networks (training, bundles), sampling,
probability-flow log-density and Stein calibration."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "GaussianMixtureNoise": ".analytic",
    "StationaryGaussianNoise": ".analytic",
    "WhiteGaussianNoise": ".analytic",
    "fit_pixel_mixture": ".analytic",
    "NoiseModel": ".base",
    "ScoreFunction": ".base",
    "as_noise_model": ".base",
    "CalibratedNoise": ".calibration",
    "ScoreCalibration": ".calibration",
    "SteinDiagnostics": ".calibration",
    "fit_calibration": ".calibration",
    "stein_diagnostics": ".calibration",
    "load_noise_model": ".bundle",
    "read_bundle_metadata": ".bundle",
    "save_noise_model": ".bundle",
    "shipped_models": ".bundle",
    "ode_log_prob": ".flow",
    "CorrelatedMixtureBackbone": ".backbones",
    "GaussianBackbone": ".backbones",
    "GaussianCopulaBackbone": ".backbones",
    "MixtureBackbone": ".backbones",
    "LearnedNoise": ".learned",
    "UNet": ".networks",
    "UNetConfig": ".networks",
    "sample_noise": ".sampling",
    "sample_noise_unit": ".sampling",
    "VESDE": ".sde",
    "VPSDE": ".sde",
    "TrainConfig": ".training",
    "train_noise_model": ".training",
    "fit_backbone_model": ".training",
    "validation_loss": ".training",
    "BiasedScore": ".miscalibrated",
}

__all__ = [
    "NoiseModel",
    "ScoreFunction",
    "as_noise_model",
    "VESDE",
    "VPSDE",
    "LearnedNoise",
    "CorrelatedMixtureBackbone",
    "GaussianBackbone",
    "GaussianCopulaBackbone",
    "MixtureBackbone",
    "UNet",
    "UNetConfig",
    "TrainConfig",
    "train_noise_model",
    "fit_backbone_model",
    "validation_loss",
    "save_noise_model",
    "load_noise_model",
    "read_bundle_metadata",
    "shipped_models",
    "WhiteGaussianNoise",
    "StationaryGaussianNoise",
    "GaussianMixtureNoise",
    "fit_pixel_mixture",
    "sample_noise",
    "sample_noise_unit",
    "ode_log_prob",
    "stein_diagnostics",
    "SteinDiagnostics",
    "fit_calibration",
    "ScoreCalibration",
    "CalibratedNoise",
    "BiasedScore",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, [])

if TYPE_CHECKING:
    from .analytic import GaussianMixtureNoise, StationaryGaussianNoise, WhiteGaussianNoise, fit_pixel_mixture
    from .base import NoiseModel, ScoreFunction, as_noise_model
    from .calibration import CalibratedNoise, ScoreCalibration, SteinDiagnostics, fit_calibration, stein_diagnostics
    from .bundle import load_noise_model, read_bundle_metadata, save_noise_model, shipped_models
    from .flow import ode_log_prob
    from .backbones import CorrelatedMixtureBackbone, GaussianBackbone, GaussianCopulaBackbone, MixtureBackbone
    from .learned import LearnedNoise
    from .networks import UNet, UNetConfig
    from .sampling import sample_noise, sample_noise_unit
    from .sde import VESDE, VPSDE
    from .miscalibrated import BiasedScore
    from .training import TrainConfig, fit_backbone_model, train_noise_model, validation_loss
