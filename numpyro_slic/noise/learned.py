"""Learned noise models: a U-Net score or energy in the VE form of the noise-model protocol.

``LearnedNoise`` wraps a ``UNet`` F (trained by ``training.train_noise_model``) as a NoiseModel in
trained units. With sigma = ``sde.ve_sigma(t)`` and the input preconditioning
c_in = 1 / sqrt(1 + sigma^2) (trained units have unit variance, so c_in y has unit variance at
every level):

- ``"score"``: s(y, t) = F(c_in y, log sigma) / sigma + s_b(y, t)
- ``"energy"``: E(y, t) = -<y, F(c_in y, log sigma)> / sigma + E_b(y, t) and s = -grad_y E
  (Salimans & Ho 2021), so ``log_prob`` = -E is exact up to a constant in y and ``has_log_prob``
  is True.

s_b / E_b is the optional backbone, a density fitted to the training patches whose exact score at
every level is added so that F learns only the rest: ``GaussianBackbone``, a stationary Gaussian
(right correlations, Gaussian tails), or ``MixtureBackbone``, i.i.d. pixels from a Gaussian mixture
(right marginal tails, no correlations: for nearly white noise with rare outliers, such as a raw
CCD's cosmic rays and hot pixels, which a net sees too rarely to learn), or
``CorrelatedMixtureBackbone``, both at once (a stationary filter of i.i.d. mixture pixels: a raw
CCD's background variations and its hits); without one s_b = E_b = 0. A fresh net has F = 0
(zero-initialised output), i.e. it starts as the backbone.

A model may also be its backbone alone (``net=None``, ``training.fit_backbone_model``): a density
normalised at every level with an exact ``log_prob`` (``has_log_prob``) and exact draws, at the
cost of an FFT, for noise where no net trained on the data at hand beats its backbone (JWST
F150W's 183 patches: docs/noise_validation.md). Its levels are the backbone's own widening, exact
for Gaussian and mixture backbones and, for a correlated mixture, exact at width 0 only (above).

VP schedules: c_in y = alpha(t) y is exactly the VP state x_t, and F / sigma_VE = alpha F / sigma_VP
= alpha s_VP(alpha y, t), so a VP-trained net is the VE-form score s_VE(y, t) = alpha s_VP(alpha y, t)
at width sigma_VE = sigma_VP / alpha; the same formula serves both schedules.
"""

from __future__ import annotations

import copy
import math
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .analytic import (
    StationaryGaussianNoise,
    fit_pixel_mixture,
    mixture_component_logpdf,
    spectral_gaussian_log_prob,
    spectral_gaussian_score,
)
from .base import NoiseModel
from .networks import UNet
from .sde import VESDE, VPSDE

__all__ = [
    "Backbone",
    "CorrelatedMixtureBackbone",
    "GaussianBackbone",
    "GaussianCopulaBackbone",
    "LearnedNoise",
    "MixtureBackbone",
    "Parameterisation",
]

Parameterisation = Literal["score", "energy"]


class GaussianBackbone(eqx.Module):
    """Stationary Gaussian noise given by a short-range autocovariance, on any grid.

    The covariance between pixels a lag (dy, dx) apart is ``kernel[R + dy, R + dx]`` for
    |dy|, |dx| <= R and 0 beyond. On an ``(H, W)`` grid the kernel is wrapped periodically and its
    DFT is the power P_k of a periodic stationary Gaussian (as in ``StationaryGaussianNoise``), so a
    backbone fitted on 64 x 64 patches scores 100 x 100 or 256 x 256 residuals too. Modes where
    truncation made P_k small are floored at ``floor * kernel[R, R]``.

    Attributes:
        kernel: autocovariance, ``(2R + 1, 2R + 1)``, trained units squared.
    """

    kernel: Float[Array, "k k"]
    floor: float = eqx.field(static=True, default=1e-3)

    def __check_init__(self):
        k = self.kernel
        if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 != 1:
            raise ValueError(f"GaussianBackbone: kernel must be square with odd side, got {k.shape}.")

    @classmethod
    def from_patches(cls, patches: Float[ArrayLike, "n H W"], radius: int = 16) -> "GaussianBackbone":
        """Fits the autocovariance out to lag ``radius`` from noise patches (trained units).

        The mean periodogram (``StationaryGaussianNoise.from_patches``) is transformed to the
        autocovariance, cut to lags <= radius and multiplied by a cosine taper that goes from 1 at
        lag 0 to 0 beyond ``radius`` (a smooth cut keeps P_k positive on other grids).
        """
        x = np.asarray(patches, dtype=np.float64)
        if x.ndim != 3:
            raise ValueError(f"GaussianBackbone.from_patches takes (N, H, W) patches, got {x.shape}.")
        radius = int(min(radius, (min(x.shape[1:]) - 1) // 2))
        if radius < 1:
            raise ValueError(f"GaussianBackbone.from_patches: patches {x.shape[1:]} are too small.")
        power = np.asarray(StationaryGaussianNoise.from_patches(x).power)
        acov = np.fft.fftshift(np.fft.ifft2(power).real)
        cy, cx = acov.shape[0] // 2, acov.shape[1] // 2
        kernel = acov[cy - radius: cy + radius + 1, cx - radius: cx + radius + 1]
        lag = np.hypot(*np.meshgrid(np.arange(-radius, radius + 1), np.arange(-radius, radius + 1),
                                    indexing="ij"))
        taper = np.where(lag <= radius, 0.5 * (1 + np.cos(np.pi * lag / (radius + 1))), 0.0)
        return cls(jnp.asarray(kernel * taper, dtype=jnp.float32))

    def missing_level(self, patches: Float[ArrayLike, "n H W"]) -> float:
        """The k = 0 power the tapered kernel misses on the patches' grid (their mean periodogram's
        k = 0 mode minus the kernel's, if positive), as the variance of a level common to the whole
        grid over the pixel variance: ``CorrelatedMixtureBackbone``'s ``background``."""
        x = np.asarray(patches, dtype=np.float64)
        shape = x.shape[1:]
        sums = (x - x.mean()).sum(axis=(1, 2))  # the patches' k = 0 modes
        missing = float(np.mean(sums**2)) / np.prod(shape) - float(self.power(shape)[0, 0])
        return float(max(missing, 0.0) / float(self.variance) / np.prod(shape))

    @property
    def variance(self) -> Float[Array, ""]:
        """The per-pixel variance, kernel[R, R] (trained units squared)."""
        r = self.kernel.shape[0] // 2
        return self.kernel[r, r]

    def power(self, shape: tuple[int, int]) -> Float[Array, "H W"]:
        """P_k on an ``(H, W)`` grid in ``numpy.fft`` order (trained units squared)."""
        r = self.kernel.shape[0] // 2
        lags = jnp.arange(-r, r + 1)
        rows = (lags % shape[0])[:, None]
        cols = (lags % shape[1])[None, :]
        grid = jnp.zeros(shape, self.kernel.dtype).at[rows, cols].add(self.kernel)
        p = jnp.fft.fft2(grid).real
        return jnp.maximum(p, self.floor * self.variance)

    def sample(self, key: PRNGKeyArray, shape: tuple[int, int], n: int = 1) -> Float[Array, "n H W"]:
        """``n`` exact draws on a periodic ``(H, W)`` grid at width 0 (trained units)."""
        white = jax.random.normal(key, (n, *shape))
        return jnp.fft.ifft2(jnp.fft.fft2(white) * jnp.sqrt(self.power(tuple(shape)))).real

    def score(self, u: Float[Array, "H W"], sigma: Float[ArrayLike, ""]) -> Float[Array, "H W"]:
        return spectral_gaussian_score(u, self.power(u.shape) + sigma**2)

    def energy(self, u: Float[Array, "H W"], sigma: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """-log density (with its normalising constant) of the backbone at width ``sigma``."""
        return -spectral_gaussian_log_prob(u, self.power(u.shape) + sigma**2)


class MixtureBackbone(eqx.Module):
    """I.i.d. pixels from a 1-d Gaussian mixture: the marginal tails of the noise, exact at every width.

    At width sigma each component j widens to sigmas_j^2 + sigma^2, so score and energy stay exact
    (as in ``GaussianMixtureNoise``). Any grid.

    Attributes:
        log_weights, means, sigmas: ``(J,)`` mixture parameters, trained units.
    """

    log_weights: Float[Array, " J"]
    means: Float[Array, " J"]
    sigmas: Float[Array, " J"]

    def __check_init__(self):
        if not (self.log_weights.ndim == self.means.ndim == self.sigmas.ndim == 1
                and self.log_weights.shape == self.means.shape == self.sigmas.shape):
            raise ValueError(
                f"MixtureBackbone: log_weights {self.log_weights.shape}, means {self.means.shape} and "
                f"sigmas {self.sigmas.shape} must be 1-d of equal length."
            )

    @classmethod
    def from_patches(cls, patches: Float[ArrayLike, "n H W"], components: int = 3) -> "MixtureBackbone":
        """The maximum-likelihood mixture of all pixel values of the patches (``fit_pixel_mixture``)."""
        x = np.asarray(patches, dtype=np.float64)
        if x.ndim != 3:
            raise ValueError(f"MixtureBackbone.from_patches takes (N, H, W) patches, got {x.shape}.")
        weights, means, sigmas = fit_pixel_mixture(x, components)
        return cls(jnp.asarray(np.log(weights), jnp.float32), jnp.asarray(means, jnp.float32),
                   jnp.asarray(sigmas, jnp.float32))

    def _logpdf(self, u, sigma):
        var = self.sigmas**2 + sigma**2
        return mixture_component_logpdf(u, self.log_weights, self.means, var), var

    def score(self, u: Float[Array, "H W"], sigma: Float[ArrayLike, ""]) -> Float[Array, "H W"]:
        logpdf, var = self._logpdf(u, sigma)
        return jnp.sum(jax.nn.softmax(logpdf, axis=-1) * (self.means - u[..., None]) / var, axis=-1)

    def energy(self, u: Float[Array, "H W"], sigma: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """-log density (with its normalising constant) of the backbone at width ``sigma``."""
        logpdf, _ = self._logpdf(u, sigma)
        return -jnp.sum(jax.nn.logsumexp(logpdf, axis=-1))

    def sample(self, key: PRNGKeyArray, shape: tuple[int, int], n: int = 1) -> Float[Array, "n H W"]:
        """``n`` exact draws of i.i.d. ``(H, W)`` pixels at width 0 (trained units)."""
        k_comp, k_noise = jax.random.split(key)
        full = (n, *shape)
        j = jax.random.categorical(k_comp, self.log_weights, shape=full)
        return self.means[j] + self.sigmas[j] * jax.random.normal(k_noise, full)


def _relative_power(core: GaussianBackbone, background: float, shape: tuple[int, int]) -> Float[Array, "H W"]:
    """A_k^2 of a ``CorrelatedMixtureBackbone`` at width 0 on an ``(H, W)`` grid: the core's power
    over its pixel variance, plus the background level at k = 0."""
    a2 = core.power(shape) / core.variance
    return a2.at[0, 0].add(background * shape[0] * shape[1])


class CorrelatedMixtureBackbone(eqx.Module):
    """A stationary Gaussian core's correlations and a pixel mixture's tails in one exact density.

    The noise is modelled as a linear stationary filter L of i.i.d. mixture pixels, u = L y: with
    P_k the core's power (``core``) and c^2 the mixture's core variance (its heaviest component),
    L has transfer function A_k = sqrt(P_k / kernel[R, R]), and

        -E(u) = log Q(u) = sum_i log m(y_i) - 1/2 sum_k log A_k^2,   y = F^-1[F(u) / A_k],

    a normalised density for any mixture m (change of variables). So the core has the stationary
    Gaussian's correlations (covariance c^2 A_k^2 per mode) and single-pixel hits keep the
    mixture's marginal tails. ``background`` adds b to A_0^2 per pixel of the grid (b H W on an
    H x W grid): a covariance b c^2 shared by every pair of pixels, i.e. a level common to the whole
    grid, for a sky background that varies on scales beyond the core's lags (a raw CCD's: its 32 x 32
    tiles' k = 0 mode has 8.4 times the white power, of which a 15-pixel tapered kernel holds 2.9).
    At width sigma the Gaussian core must widen to c^2 A_k^2 + sigma^2: A_k^2 becomes (c^2 A_k^2 +
    sigma^2) / (c^2 + sigma^2) and every mixture component widens by sigma^2. That is exact at sigma
    = 0 and for a one-component mixture (then this is a stationary Gaussian) at every width, and
    approximate in between for the outlier components (the net learns the rest). For noise such as a
    raw CCD frame's: low-k power (the sky background varying across the frame) plus cosmic-ray and
    hot-pixel hits, which neither ``GaussianBackbone`` nor ``MixtureBackbone`` has alone.

    Attributes:
        core: the core's autocovariance (fitted with hits clipped), any grid.
        mixture: the pixel mixture of the whitened training patches y.
        background: the grid-wide level's variance over the core's pixel variance (>= 0; 0 = none).
    """

    core: GaussianBackbone
    mixture: MixtureBackbone
    background: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        if not (np.isfinite(self.background) and self.background >= 0):
            raise ValueError(f"CorrelatedMixtureBackbone: background must be finite and >= 0, got {self.background}.")

    @classmethod
    def from_patches(
        cls,
        patches: Float[ArrayLike, "n H W"],
        components: int = 3,
        radius: int = 16,
        clip: float = 5.0,
        background: bool = False,
    ) -> "CorrelatedMixtureBackbone":
        """Fits the core and the mixture to noise patches (trained units).

        1. An i.i.d. mixture of the raw pixels gives the core's centre and sd; pixels beyond
           ``clip`` core sds are set to the centre, so that hits do not add white power to P_k.
        2. ``GaussianBackbone.from_patches`` of the clipped patches (lags <= ``radius``).
        3. With ``background``, the k = 0 power the tapered kernel misses on the patches' grid
           (mean periodogram of the clipped patches minus the kernel's, if positive) becomes the
           grid-wide level's variance.
        4. The patches are whitened by that core on their own grid and the ``components``-component
           mixture is fitted by EM to the whitened pixels.
        """
        x = np.asarray(patches, dtype=np.float64)
        if x.ndim != 3:
            raise ValueError(f"CorrelatedMixtureBackbone.from_patches takes (N, H, W) patches, got {x.shape}.")
        weights, means, sigmas = fit_pixel_mixture(x, components)
        centre, sd = means[np.argmax(weights)], sigmas[np.argmax(weights)]
        clipped = np.where(np.abs(x - centre) > clip * sd, centre, x)
        core = GaussianBackbone.from_patches(clipped, radius)
        level = core.missing_level(clipped) if background else 0.0
        transfer = np.sqrt(np.asarray(_relative_power(core, level, x.shape[1:]), np.float64))
        whitened = np.fft.ifft2(np.fft.fft2(x) / transfer).real
        return cls(core, MixtureBackbone.from_patches(whitened, components), level)

    def _relative_power(self, shape: tuple[int, int]) -> Float[Array, "H W"]:
        return _relative_power(self.core, self.background, shape)

    def _transfer(self, shape: tuple[int, int], sigma) -> Float[Array, "H W"]:
        """A_k at width sigma on an ``(H, W)`` grid (see the class docstring)."""
        c2 = self.mixture.sigmas[jnp.argmax(self.mixture.log_weights)] ** 2
        return jnp.sqrt((c2 * self._relative_power(shape) + sigma**2) / (c2 + sigma**2))

    def sample(self, key: PRNGKeyArray, shape: tuple[int, int], n: int = 1) -> Float[Array, "n H W"]:
        """``n`` exact draws on a periodic ``(H, W)`` grid at width 0 (trained units): i.i.d.
        mixture pixels y, filtered, u = F^-1[A_k F(y)]. What the backbone alone believes the
        noise looks like, e.g. to compare its tails with real noise."""
        y = self.mixture.sample(key, shape, n)
        return jnp.fft.ifft2(jnp.fft.fft2(y) * self._transfer(tuple(shape), 0.0)).real

    def score(self, u: Float[Array, "H W"], sigma: Float[ArrayLike, ""]) -> Float[Array, "H W"]:
        # log Q = sum log m(W u) + const with W = L^-1 symmetric, so grad_u = W psi(W u).
        a = self._transfer(u.shape, sigma)
        y = jnp.fft.ifft2(jnp.fft.fft2(u) / a).real
        return jnp.fft.ifft2(jnp.fft.fft2(self.mixture.score(y, sigma)) / a).real

    def energy(self, u: Float[Array, "H W"], sigma: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """-log density (with its normalising constant) of the backbone at width ``sigma``."""
        a = self._transfer(u.shape, sigma)
        y = jnp.fft.ifft2(jnp.fft.fft2(u) / a).real
        return self.mixture.energy(y, sigma) + jnp.sum(jnp.log(a))


# The z of a value whose marginal tail probability is below this is held at |z| = 11.3 (see
# GaussianCopulaBackbone): float32 cannot carry a smaller probability through ndtri, and a datum
# that improbable under the fitted marginal is an outlier the marginal's own density still prices.
_LOG_P_MIN = math.log(1e-29)
_COPULA_CLIP_Z = 3.5  # |z| beyond this is set to 0 before the copula's correlations are fitted


class GaussianCopulaBackbone(eqx.Module):
    """A pixel mixture's marginal, exactly, with a stationary Gaussian's correlations: a Gaussian copula.

    Each pixel is gaussianised by the mixture's CDF F, z_i = Phi^-1(F(u_i)), and z is a periodic
    stationary Gaussian with unit variance and correlation C (power per mode c_k, mean 1):

        log Q(u) = log N(z; 0, C) - sum_i log phi(z_i) + sum_i log f(u_i)

    (a change of variables, normalised). Every pixel's marginal is the mixture f exactly, whatever
    C, which ``CorrelatedMixtureBackbone`` (a filter of i.i.d. mixture pixels) is only approximately:
    its draws re-filter the ringing that whitening put around each real hit, and overshoot the
    tails of the sky they were fitted to (docs/noise_validation.md, cross-validated). The price is
    correlated hits: a hit spread over neighbouring pixels (drizzled HST) is many improbable z
    here, and one improbable innovation there.

    At width sigma each mixture component widens by sigma^2 and C's power becomes (c2 c_k + sigma^2)
    / (c2 + sigma^2), with c2 the mixture's core variance (its heaviest component): exact at width 0
    and, as the noise turns Gaussian, in the wide limit; approximate in between (the net learns the
    rest). Values whose tail probability under the widened marginal is below 1e-29 (beyond 11.3
    sigma of a Gaussian) keep |z| = 11.3; their density there is the marginal's times a constant.

    Attributes:
        marginal: the pixel mixture of the training patches (its ``score`` and ``energy`` are the
            i.i.d. marginal's).
        core: the autocovariance of the training z (hits, |z| > 3.5, set to 0), any grid.
        background: the grid-wide level of z's correlation, as ``CorrelatedMixtureBackbone``'s.
    """

    marginal: MixtureBackbone
    core: GaussianBackbone
    background: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        if not (np.isfinite(self.background) and self.background >= 0):
            raise ValueError(f"GaussianCopulaBackbone: background must be finite and >= 0, got {self.background}.")

    @classmethod
    def from_patches(
        cls,
        patches: Float[ArrayLike, "n H W"],
        components: int = 4,
        radius: int = 16,
        background: bool = False,
    ) -> "GaussianCopulaBackbone":
        """Fits the marginal, then the correlation of the gaussianised patches (trained units).

        1. ``MixtureBackbone.from_patches``: the ``components``-component mixture of all pixels.
        2. z = Phi^-1(F(u)) of every patch, |z| > 3.5 set to 0 so that hits do not add white power.
        3. ``GaussianBackbone.from_patches`` of z (lags <= ``radius``), and with ``background`` the
           k = 0 power it misses (``GaussianBackbone.missing_level``).
        """
        x = np.asarray(patches, dtype=np.float64)
        if x.ndim != 3:
            raise ValueError(f"GaussianCopulaBackbone.from_patches takes (N, H, W) patches, got {x.shape}.")
        marginal = MixtureBackbone.from_patches(x, components)
        z = np.asarray(jax.vmap(lambda u: _gaussianised(marginal, u, 0.0))(jnp.asarray(x, jnp.float32)), np.float64)
        z = np.where(np.abs(z) > _COPULA_CLIP_Z, 0.0, z)
        core = GaussianBackbone.from_patches(z, radius)
        return cls(marginal, core, core.missing_level(z) if background else 0.0)

    def _correlation_power(self, shape: tuple[int, int], sigma) -> Float[Array, "H W"]:
        """c_k at width sigma on an ``(H, W)`` grid: unit variance at width 0, widened as above."""
        a2 = _relative_power(self.core, self.background, shape)
        c2 = self.marginal.sigmas[jnp.argmax(self.marginal.log_weights)] ** 2
        return (c2 * a2 / jnp.mean(a2) + sigma**2) / (c2 + sigma**2)

    def energy(self, u: Float[Array, "H W"], sigma: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """-log density (with its normalising constant) of the backbone at width ``sigma``."""
        z = _gaussianised(self.marginal, u, sigma)
        copula = spectral_gaussian_log_prob(z, self._correlation_power(u.shape, sigma))
        standard = jnp.sum(jax.scipy.stats.norm.logpdf(z))
        return self.marginal.energy(u, sigma) - copula + standard

    def score(self, u: Float[Array, "H W"], sigma: Float[ArrayLike, ""]) -> Float[Array, "H W"]:
        return -jax.grad(self.energy)(u, sigma)

    def sample(self, key: PRNGKeyArray, shape: tuple[int, int], n: int = 1) -> Float[Array, "n H W"]:
        """``n`` exact draws on a periodic ``(H, W)`` grid at width 0 (trained units): z by FFT, then
        u = F^-1(Phi(z)) by bisection, in the tail nearer to u (log probabilities: no cancellation)."""
        white = jax.random.normal(key, (n, *shape))
        z = jnp.fft.ifft2(jnp.fft.fft2(white) * jnp.sqrt(self._correlation_power(tuple(shape), 0.0))).real
        target = jax.scipy.special.log_ndtr(-jnp.abs(z))  # log of the smaller tail probability
        m = self.marginal
        span = 60.0 * jnp.max(m.sigmas)
        lo = jnp.full(z.shape, jnp.min(m.means) - span)
        hi = jnp.full(z.shape, jnp.max(m.means) + span)

        def halve(_, bracket):
            lo, hi = bracket
            mid = 0.5 * (lo + hi)
            log_cdf, log_sf = _log_tails(m, mid, 0.0)
            # Below the solution when its lower tail is still too light (z < 0) or its upper tail
            # still too heavy (z >= 0).
            below = jnp.where(z < 0, log_cdf < target, log_sf > target)
            return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

        # 120 sds of bracket halved 40 times: below float32's resolution of the value.
        lo, hi = jax.lax.fori_loop(0, 40, halve, (lo, hi))
        return 0.5 * (lo + hi)


def _log_tails(mixture: MixtureBackbone, u, sigma):
    """log F(u) and log (1 - F(u)) of the mixture widened by ``sigma``, each from its own tail."""
    t = (u[..., None] - mixture.means) / jnp.sqrt(mixture.sigmas**2 + sigma**2)
    log_w = jax.nn.log_softmax(mixture.log_weights)
    lower = jax.nn.logsumexp(log_w + jax.scipy.special.log_ndtr(t), axis=-1)
    upper = jax.nn.logsumexp(log_w + jax.scipy.special.log_ndtr(-t), axis=-1)
    return lower, upper


def _gaussianised(mixture: MixtureBackbone, u, sigma):
    """z = Phi^-1(F(u)) under the mixture widened by ``sigma``, from the smaller tail probability
    (held at 1e-29, see ``_LOG_P_MIN``); one ndtri of a probability <= 1/2, so no branch divides by
    a vanishing density in the gradient."""
    lower, upper = _log_tails(mixture, u, sigma)
    p = jnp.exp(jnp.maximum(jnp.minimum(lower, upper), _LOG_P_MIN))
    return jnp.where(lower < upper, 1.0, -1.0) * jax.scipy.special.ndtri(p)


Backbone = GaussianBackbone | MixtureBackbone | CorrelatedMixtureBackbone | GaussianCopulaBackbone
_BACKBONES = (GaussianBackbone, MixtureBackbone, CorrelatedMixtureBackbone, GaussianCopulaBackbone)
# The names of the backbone kinds in TrainConfig and in bundles' model.json, in _BACKBONES' order.
BACKBONE_KINDS = ("gaussian", "mixture", "correlated-mixture", "gaussian-copula")


def backbone_kind(backbone: Backbone | None) -> str | None:
    """The ``BACKBONE_KINDS`` name of a backbone (None for none)."""
    return None if backbone is None else BACKBONE_KINDS[_BACKBONES.index(type(backbone))]


class LearnedNoise(NoiseModel):
    """A learned noise model: a trained U-Net (on an optional fitted backbone), or a fitted backbone
    alone (see the module docstring for the formulas).

    Attributes:
        net: the U-Net F, or None for the backbone alone (then ``backbone`` is required).
        sde: the schedule it was trained with (``VESDE`` or ``VPSDE``); ``unit_sigma`` is its
            VE-form width.
        parameterisation: ``"score"`` or ``"energy"``.
        backbone: ``GaussianBackbone``, ``MixtureBackbone``, ``CorrelatedMixtureBackbone`` or None.
        reference_patch: a held-out real noise patch (trained units) where ScoreLikelihood's line
            integral starts, or None (then ``reference`` is zero).
        scale: physical units per trained unit.
        t_min, t_max: the trained range of t; traced levels outside it are clipped into it (concrete
            ones are refused by ScoreLikelihood and AnnealedLangevin).
        event_shape: None (any ``(H, W)``) until fixed with ``with_event_shape``.
    """

    net: UNet | None
    sde: VESDE | VPSDE
    backbone: Backbone | None
    reference_patch: Float[Array, "h w"] | None
    parameterisation: str = eqx.field(static=True)
    scale: float = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)
    event_shape: tuple[int, ...] | None = eqx.field(static=True)
    event_ndim: int | None = eqx.field(static=True)

    can_sample: ClassVar[bool] = True

    def __init__(
        self,
        net: UNet | None,
        sde: VESDE | VPSDE = VESDE(),
        *,
        parameterisation: Parameterisation = "score",
        backbone: Backbone | None = None,
        reference_patch: Float[ArrayLike, "h w"] | None = None,
        scale: float = 1.0,
        t_min: float = 1e-3,
        t_max: float = 1.0,
        event_shape: tuple[int, int] | None = None,
    ):
        if net is not None and not isinstance(net, UNet):
            raise TypeError(f"LearnedNoise takes a UNet or None, got {type(net).__name__}.")
        if net is None and backbone is None:
            raise ValueError(
                "LearnedNoise without a net is its backbone alone: pass a backbone (e.g. "
                "CorrelatedMixtureBackbone.from_patches(patches)) or a UNet."
            )
        if not isinstance(sde, (VESDE, VPSDE)):
            raise TypeError(f"LearnedNoise takes a VESDE or VPSDE, got {type(sde).__name__}.")
        if parameterisation not in ("score", "energy"):
            raise ValueError(f"parameterisation must be 'score' or 'energy', got {parameterisation!r}.")
        if backbone is not None and not isinstance(backbone, _BACKBONES):
            raise TypeError(
                "backbone must be a GaussianBackbone, MixtureBackbone, CorrelatedMixtureBackbone, "
                "GaussianCopulaBackbone or None, "
                f"got {type(backbone).__name__}."
            )
        if not 0 < t_min < t_max <= 1:
            raise ValueError(f"LearnedNoise needs 0 < t_min < t_max <= 1, got {t_min}, {t_max}.")
        self.net = net
        self.sde = sde
        self.parameterisation = parameterisation
        self.backbone = backbone
        if reference_patch is not None:
            reference_patch = jnp.asarray(reference_patch, dtype=jnp.float32)
            if reference_patch.ndim != 2:
                raise ValueError(f"reference_patch must be one (h, w) image, got {reference_patch.shape}.")
        self.reference_patch = reference_patch
        self.scale = float(scale)
        self.t_min = float(t_min)
        self.t_max = float(t_max)
        self.event_shape = None if event_shape is None else tuple(int(n) for n in event_shape)
        self.event_ndim = 2

    @property
    def has_log_prob(self) -> bool:  # type: ignore[override]
        """True for energy models (log_prob = -E is exact up to a constant in x) and for a backbone
        alone (exact and normalised)."""
        return self.parameterisation == "energy" or self.net is None

    # ---- the protocol, trained units --------------------------------------------------------------
    def unit_sigma(self, t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        return self.sde.ve_sigma(self._clip(t))

    def unit_score(self, u: Float[Array, "H W"], t: Float[ArrayLike, ""]) -> Float[Array, "H W"]:
        self._check_event(u)
        sigma = self.unit_sigma(t)
        if self.net is None:
            return self.backbone.score(u, sigma)
        if self.parameterisation == "energy":
            return -jax.grad(self.unit_energy)(u, t)
        s = self.net(u / jnp.sqrt(1 + sigma**2), jnp.log(sigma)) / sigma
        if self.backbone is not None:
            s = s + self.backbone.score(u, sigma)
        return s

    def unit_energy(self, u: Float[Array, "H W"], t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """E(u, t) = -log Q_t(u) + const (energy models and backbones alone), trained units."""
        if not self.has_log_prob:
            raise ValueError(
                "unit_energy needs an energy-parameterised model; this one is score-parameterised "
                "(use ScoreLikelihood(energy='line') or train with parameterisation='energy')."
            )
        self._check_event(u)
        sigma = self.unit_sigma(t)
        if self.net is None:
            return self.backbone.energy(u, sigma)
        e = -jnp.sum(u * self.net(u / jnp.sqrt(1 + sigma**2), jnp.log(sigma))) / sigma
        if self.backbone is not None:
            e = e + self.backbone.energy(u, sigma)
        return e

    def unit_log_prob(self, u: Float[Array, "H W"], t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        if not self.has_log_prob:
            return super().unit_log_prob(u, t)
        return -self.unit_energy(u, t)

    @property
    def exact_sampler(self) -> bool:
        """True when ``unit_sample`` draws exactly (a backbone alone), not by the reverse SDE."""
        return self.net is None

    def unit_sample(self, key: PRNGKeyArray, sample_shape: tuple[int, ...]) -> Array:
        """Draws of Q_{t_min}, shape ``sample_shape + event_shape``: a backbone alone draws exactly
        (its width-0 draw plus sigma(t_min) white noise); a net by the reverse SDE (predictor-
        corrector, ``sampling.sample_noise_unit``)."""
        from .sampling import sample_noise_unit

        if self.net is None:
            shape = self._require_event_shape("unit_sample")
            n = math.prod(sample_shape)
            k_backbone, k_width = jax.random.split(key)
            u = self.backbone.sample(k_backbone, shape, n)
            u = u + self.unit_sigma(self.t_min) * jax.random.normal(k_width, u.shape, u.dtype)
            return u.reshape(*sample_shape, *shape)

        # Trained units have unit variance, which sets the width the reverse SDE starts from.
        return sample_noise_unit(self, key, sample_shape, data_variance=1.0)

    def reference(self) -> Float[Array, "H W"]:
        """The stored held-out noise patch, centre-cropped (or mirror-extended) to the event shape.

        Physical units. Larger events than the stored patch are filled by mirror images of it
        (``numpy.pad`` mode "symmetric"): every pixel is real noise, only the mirror seams are not.
        """
        shape = self._require_event_shape("reference")
        if self.reference_patch is None:
            return jnp.zeros(shape)
        ref = self.reference_patch
        pads = []
        for n, m in zip(shape, ref.shape):
            extra = max(n - m, 0)
            pads.append((extra // 2, extra - extra // 2))
        ref = jnp.pad(ref, pads, mode="symmetric")
        r0 = (ref.shape[0] - shape[0]) // 2
        c0 = (ref.shape[1] - shape[1]) // 2
        return self.scale * ref[r0: r0 + shape[0], c0: c0 + shape[1]]

    def with_scale(self, scale: float) -> "LearnedNoise":
        """This model with another ``scale`` (physical units per trained unit).

        A model trained on noise normalised by its robust sigma applies to another image whose noise
        looks the same up to its level: pass that image's robust sigma of the sky.
        """
        scale = float(scale)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"with_scale: scale must be a positive finite number, got {scale!r}.")
        # scale is static (it is metadata of the bundle), which eqx.tree_at cannot touch.
        out = copy.copy(self)
        object.__setattr__(out, "scale", scale)
        return out

    # ---- helpers ---------------------------------------------------------------------------------
    def _clip(self, t):
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        # Not jnp.clip alone: its derivative at the bounds is 1/2 (max/min split ties), which halved
        # g(t)^2 = d sigma(t)^2 / dt at t_min and t_max, where the reverse SDE and the probability-flow
        # ODE start and end. On the closed range t passes through (the schedule's own derivative);
        # only outside it is t held at the bound.
        inside = (t >= self.t_min) & (t <= self.t_max)
        return jnp.where(inside, t, jnp.clip(t, self.t_min, self.t_max))

    def _check_event(self, u):
        if u.ndim != 2:
            raise ValueError(
                f"LearnedNoise scores one image (H, W) at a time, got shape {u.shape}; vmap over batches."
            )
