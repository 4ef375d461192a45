"""Ready-made NumPyro problems: models, priors and their data preparation, built from the parts.

- ``lens_model`` / ``lens_priors`` / ``likelihood_noise`` / ``anchored_reference`` / ``LIKELIHOODS``
  (``problems.lens``): a strong-lens model (SIE + shear + Sersic source, optional Sersic lens
  light) with a prior for every parameter and any noise model as likelihood.
- ``WhitenedSimulator`` / ``fill_masked`` / ``wrapped_stationary_noise`` (``problems.whitening``):
  fitting real data in a noise model's whitened units: data and model divided by a noise map, masked
  pixels filled with real sky noise, the correlated-Gaussian baseline on grids larger than its patches.

Dependencies point one way: problems -> likelihood, noise, lensing; nothing in likelihood, noise,
lensing or infer imports problems (docs/design.md section 4).
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "LIKELIHOODS": ".lens",
    "anchored_reference": ".lens",
    "lens_model": ".lens",
    "lens_priors": ".lens",
    "likelihood_noise": ".lens",
    "WhitenedSimulator": ".whitening",
    "fill_masked": ".whitening",
    "wrapped_stationary_noise": ".whitening",
}

__all__ = [*_EXPORTS, "lens", "whitening"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, ["lens", "whitening"])

if TYPE_CHECKING:
    from . import lens, whitening
    from .lens import LIKELIHOODS, anchored_reference, lens_model, lens_priors, likelihood_noise
    from .whitening import WhitenedSimulator, fill_masked, wrapped_stationary_noise
