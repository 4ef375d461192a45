"""Diagnostics: the ArviZ bridge (conversion, summaries, ESS per gradient evaluation) and figures."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "ess_per_gradient": ".arviz_io",
    "summary": ".arviz_io",
    "to_inference_data": ".arviz_io",
    "corner_plot": ".plots",
    "noise_comparison_plot": ".plots",
    "noise_spectra_plot": ".plots",
    "pixel_histogram_plot": ".plots",
    "residual_plot": ".plots",
    "sbc_ecdf_plot": ".plots",
    "tarp_plot": ".plots",
}

__all__ = [
    "to_inference_data",
    "summary",
    "ess_per_gradient",
    "corner_plot",
    "residual_plot",
    "noise_comparison_plot",
    "noise_spectra_plot",
    "pixel_histogram_plot",
    "tarp_plot",
    "sbc_ecdf_plot",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, [])

if TYPE_CHECKING:
    from .arviz_io import ess_per_gradient, summary, to_inference_data
    from .plots import (corner_plot, noise_comparison_plot, noise_spectra_plot, pixel_histogram_plot, residual_plot,
                        sbc_ecdf_plot, tarp_plot)
