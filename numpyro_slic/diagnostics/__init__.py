"""Diagnostics: the ArviZ bridge (conversion, summaries, ESS per gradient evaluation) and figures."""

from .arviz_io import ess_per_gradient, summary, to_inference_data
from .plots import corner_plot, noise_comparison_plot, residual_plot, sbc_ecdf_plot, tarp_plot

__all__ = [
    "to_inference_data",
    "summary",
    "ess_per_gradient",
    "corner_plot",
    "residual_plot",
    "noise_comparison_plot",
    "tarp_plot",
    "sbc_ecdf_plot",
]
