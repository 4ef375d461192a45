"""Diffusion schedules: the map from diffusion level t to the Gaussian width sigma(t).

VE (Song et al. 2021): x_t = x_0 + sigma(t) z, sigma(t) = sigma_min (sigma_max / sigma_min)^t for
t > 0. We set sigma(0) = 0 so that t = 0 names the clean density exactly; learned models are only
valid for t >= their t_min > 0, where the geometric schedule applies.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["VESDE"]


class VESDE(eqx.Module):
    """Variance-exploding schedule (widths in trained units)."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def __check_init__(self):
        if not (0 < self.sigma_min < self.sigma_max):
            raise ValueError(
                f"VESDE needs 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}."
            )

    def sigma(self, t: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        t = jnp.asarray(t, dtype=float)
        geometric = self.sigma_min * (self.sigma_max / self.sigma_min) ** t
        return jnp.where(t > 0, geometric, 0.0)

    def t_of_sigma(self, sigma: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        """Inverse of ``sigma``: sigma = 0 maps to t = 0; sigma < sigma_min gives t < 0 (invalid)."""
        sigma = jnp.asarray(sigma, dtype=float)
        safe = jnp.where(sigma > 0, sigma, self.sigma_min)
        t = jnp.log(safe / self.sigma_min) / jnp.log(self.sigma_max / self.sigma_min)
        return jnp.where(sigma > 0, t, 0.0)
