"""Test doubles shared by several test files (real package objects underneath, no mocks)."""

import equinox as eqx

from numpyro_slic.noise import NoiseModel


class Levels(NoiseModel):
    """An analytic model valid only on [t_min, t_max], as a learned model is."""

    base: NoiseModel
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)

    def __init__(self, base, t_min, t_max=1.0):
        self.base, self.t_min, self.t_max = base, t_min, t_max

    scale = property(lambda self: self.base.scale)
    event_shape = property(lambda self: self.base.event_shape)
    event_ndim = property(lambda self: self.base.event_ndim)

    def unit_score(self, u, t):
        return self.base.unit_score(u, t)

    def unit_sigma(self, t):
        return self.base.unit_sigma(t)
