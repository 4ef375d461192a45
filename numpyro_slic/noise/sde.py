"""Diffusion schedules and denoising score matching.

Every schedule is used through its variance-exploding (VE) form, because that is the form of the
noise-model protocol: Q_t = Q * N(0, sigma(t)^2 I), i.e. y_t = x_0 + ve_sigma(t) z.

VE (Song et al. 2021): x_t = x_0 + sigma(t) z, sigma(t) = sigma_min (sigma_max / sigma_min)^t for
t > 0. We set sigma(0) = 0 so that t = 0 names the clean density exactly; learned models are only
valid for t >= their t_min > 0, where the geometric schedule applies.

VP (Ho et al. 2020; Song et al. 2021): x_t = alpha(t) x_0 + sigma(t) z with
alpha(t) = exp(-t^2 (beta_max - beta_min) / 4 - t beta_min / 2) and sigma(t) = sqrt(1 - alpha(t)^2).
Dividing by alpha gives the VE form y_t = x_t / alpha(t) = x_0 + (sigma(t) / alpha(t)) z, so a VP
level t is the VE level ve_sigma(t) = sigma(t) / alpha(t), and the scores are related by
s_VE(y, t) = alpha(t) s_VP(alpha(t) y, t).

Denoising score matching (Vincent 2011) with the weighting lambda(t) = ve_sigma(t)^2 reads, in VE
form, E || ve_sigma(t) s(x_0 + ve_sigma(t) z, t) + z ||^2. With the VP weighting lambda = sigma_VP^2
the VP loss is the same number (sigma_VP s_VP = ve_sigma s_VE), so one loss serves both schedules;
they differ only in how t, hence the noise level, is distributed during training: t ~ U[t_min, 1]
is log-uniform in sigma for VE and concentrates on large sigma for VP.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

__all__ = ["VESDE", "VPSDE", "sde_from_dict", "sample_t", "dsm_loss"]


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

    def alpha(self, t: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        """Signal scaling of the native perturbation: 1 for VE."""
        return jnp.ones_like(jnp.asarray(t, dtype=float))

    def ve_sigma(self, t: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        """Width of the VE-form kernel y_t = x_0 + ve_sigma(t) z (equal to ``sigma`` for VE)."""
        return self.sigma(t)

    def t_of_ve_sigma(self, sigma: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        return self.t_of_sigma(sigma)

    def perturb(self, x0: Array, t: Float[ArrayLike, ""], z: Array) -> Array:
        """Native perturbation kernel: a draw of x_t given x_0 and standard normal ``z``."""
        return x0 + self.sigma(t) * z

    def to_dict(self) -> dict:
        return {"kind": "ve", "sigma_min": float(self.sigma_min), "sigma_max": float(self.sigma_max)}


class VPSDE(eqx.Module):
    """Variance-preserving schedule with a linear beta(t) = beta_min + t (beta_max - beta_min).

    ``sigma`` is the VP width sqrt(1 - alpha^2); learned models expose the VE-form width
    ``ve_sigma`` = sigma / alpha to the noise-model protocol.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __check_init__(self):
        if not (0 < self.beta_min < self.beta_max):
            raise ValueError(
                f"VPSDE needs 0 < beta_min < beta_max, got {self.beta_min}, {self.beta_max}."
            )

    def _log_alpha(self, t):
        t = jnp.asarray(t, dtype=float)
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def alpha(self, t: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        return jnp.exp(self._log_alpha(t))

    def sigma(self, t: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        # -expm1(2 log alpha) = 1 - alpha^2 without cancellation at small t.
        return jnp.sqrt(-jnp.expm1(2.0 * self._log_alpha(t)))

    def ve_sigma(self, t: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        """sigma(t) / alpha(t) = sqrt(exp(-2 log alpha) - 1)."""
        return jnp.sqrt(jnp.expm1(-2.0 * self._log_alpha(t)))

    def t_of_ve_sigma(self, sigma: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        """Inverse of ``ve_sigma`` (positive root of the quadratic in t)."""
        sigma = jnp.asarray(sigma, dtype=float)
        c = 0.5 * jnp.log1p(sigma**2)  # = -log alpha
        a = 0.25 * (self.beta_max - self.beta_min)
        b = 0.5 * self.beta_min
        return (-b + jnp.sqrt(b**2 + 4 * a * c)) / (2 * a)

    def perturb(self, x0: Array, t: Float[ArrayLike, ""], z: Array) -> Array:
        """Native perturbation kernel: alpha(t) x_0 + sigma(t) z."""
        return self.alpha(t) * x0 + self.sigma(t) * z

    def to_dict(self) -> dict:
        return {"kind": "vp", "beta_min": float(self.beta_min), "beta_max": float(self.beta_max)}


def sde_from_dict(d: dict) -> VESDE | VPSDE:
    """Rebuilds a schedule from ``to_dict`` output (model bundles store it that way)."""
    kind = d.get("kind")
    if kind == "ve":
        return VESDE(sigma_min=float(d["sigma_min"]), sigma_max=float(d["sigma_max"]))
    if kind == "vp":
        return VPSDE(beta_min=float(d["beta_min"]), beta_max=float(d["beta_max"]))
    raise ValueError(f"Unknown SDE kind {kind!r}; expected 've' or 'vp'.")


def sample_t(key: PRNGKeyArray, shape: tuple[int, ...], t_min: float, t_max: float = 1.0) -> Array:
    """Training levels t ~ U[t_min, t_max] (log-uniform in sigma for VE)."""
    return jax.random.uniform(key, shape, minval=t_min, maxval=t_max)


def dsm_loss(
    score_fn: Callable[[Array, Array], Array],
    sigma: Float[ArrayLike, ""],
    x0: Float[Array, "*event"],
    t: Float[ArrayLike, ""],
    z: Float[Array, "*event"],
) -> Float[Array, ""]:
    """Denoising score matching loss of one example, lambda(t) = sigma^2 weighting (VE form).

    Args:
        score_fn: VE-form score ``(y, t) -> grad_y log Q_t(y)`` of one event (trained units).
        sigma: the VE-form width at ``t`` (``sde.ve_sigma(t)``, or a NoiseModel's ``unit_sigma``).
        x0: a clean example, trained units.
        t: diffusion level.
        z: standard normal draw, shape of ``x0``.

    Returns:
        mean over pixels of (sigma s(x0 + sigma z, t) + z)^2. Its minimum over s, reached by the
        true score of Q_t, is 1 - sigma^2 E|grad log Q_t|^2 / D, not 0.
    """
    s = score_fn(x0 + sigma * z, t)
    return jnp.mean((sigma * s + z) ** 2)
