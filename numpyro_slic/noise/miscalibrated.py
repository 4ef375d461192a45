"""A known miscalibration: an exact noise model's score with a trained net's typical coherent errors.

Score error is not posterior error (docs/design.md section 6): a constant score offset and a mis-scaled
large-scale mode bias posteriors while barely showing in a relative score error. ``BiasedScore``
puts exactly those errors on an exact model's score, so a calibration (``fit_calibration``), a
diagnostic (``stein_diagnostics``) or a coverage test can be shown to flag and correct a known
error before it is trusted with a trained network (docs/design.md section 7: a diagnostic is only as
good as its power). The package's tests and benchmarks/calibration_posterior.py use it.
"""

# No `from __future__ import annotations`: equinox reads the field annotations.

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool

from .base import NoiseModel

__all__ = ["BiasedScore"]


class BiasedScore(NoiseModel):
    """``exact``'s score plus a constant ``offset`` (1 / trained units), with the k = 0 and |k| = 1
    Fourier modes scaled by ``gain``; for any 2-d event shape.

    The score is linear in the residual with a symmetric operator, hence a gradient: the line
    integral's value (``ScoreLikelihood(energy="line")``) is exact for it. There is no log_prob and
    no sampler (draw the data from ``exact``).

    Args:
        exact: the true noise model (2-d events), e.g. a ``StationaryGaussianNoise``.
        offset: constant added to the unit score.
        gain: factor on the k = 0 and |k| = 1 modes of the unit score.
    """

    exact: NoiseModel
    offset: float
    gain: float
    low_k: Bool[Array, "H W"]

    def __init__(self, exact: NoiseModel, offset: float = 0.3, gain: float = 2.0):
        self.exact, self.offset, self.gain = exact, offset, gain
        h, w = exact.event_shape
        k2 = np.add.outer((np.fft.fftfreq(h) * h) ** 2, (np.fft.fftfreq(w) * w) ** 2)
        self.low_k = jnp.asarray(k2 <= 1)

    scale = property(lambda self: self.exact.scale)
    event_shape = property(lambda self: self.exact.event_shape)
    event_ndim = property(lambda self: self.exact.event_ndim)
    t_min = property(lambda self: self.exact.t_min)
    t_max = property(lambda self: self.exact.t_max)

    def unit_sigma(self, t):
        return self.exact.unit_sigma(t)

    def unit_score(self, u, t):
        sk = jnp.fft.fft2(self.exact.unit_score(u, t)) * jnp.where(self.low_k, self.gain, 1.0)
        return jnp.fft.ifft2(sk).real + self.offset
