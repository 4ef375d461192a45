"""Backbones: exact densities of noise patches, fitted in seconds, that a learned model builds on.

Each is an ``eqx.Module`` with ``energy(u, sigma)`` (-log density of one ``(H, W)`` patch widened by
white noise of sd ``sigma``, normalising constant included), ``score(u, sigma)`` (its gradient's
negative, -grad_u energy) and ``sample(key, shape, n)`` (exact draws at width 0), all in trained
units and on any grid:

- ``GaussianBackbone``: a stationary Gaussian (right correlations, Gaussian tails);
- ``MixtureBackbone``: i.i.d. pixels from a Gaussian mixture (right marginal tails, no
  correlations: nearly white noise with rare outliers, such as a raw CCD's cosmic rays);
- ``CorrelatedMixtureBackbone``: a stationary filter of i.i.d. mixture pixels (both; hits filtered
  like the rest of the noise);
- ``GaussianCopulaBackbone``: the mixture as every pixel's exact marginal, joined by a stationary
  Gaussian copula (both; hits kept single pixels).

``LearnedNoise`` (``learned.py``) adds a U-Net to one (the net learns the rest) or is one alone.
"""

from __future__ import annotations

import math

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

__all__ = [
    "BACKBONE_KINDS",
    "Backbone",
    "CorrelatedMixtureBackbone",
    "GaussianBackbone",
    "GaussianCopulaBackbone",
    "MixtureBackbone",
    "backbone_kind",
]


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
        log_weights, means, sigmas: ``(J,)`` mixture parameters, trained units. The weights are
            normalised where they are used (``log_weights`` are logits), so that any log_weights,
            e.g. an optimiser's, give a normalised density.
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
        return mixture_component_logpdf(u, jax.nn.log_softmax(self.log_weights), self.means, var), var

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
        return _ungaussianised(self.marginal, z, 0.0)


def _log_tail(mixture: MixtureBackbone, u, sigma, upper):
    """log F(u) where ``upper`` is False and log (1 - F(u)) where it is True, of the mixture widened
    by ``sigma``: each from its own tail, so without cancellation far out in it."""
    side = jnp.where(upper, -1.0, 1.0)[..., None]
    t = side * (u[..., None] - mixture.means) / jnp.sqrt(mixture.sigmas**2 + sigma**2)
    log_w = jax.nn.log_softmax(mixture.log_weights)
    return jax.nn.logsumexp(log_w + jax.scipy.special.log_ndtr(t), axis=-1)


def _ungaussianised(mixture: MixtureBackbone, z, sigma):
    """u = F^-1(Phi(z)) under the mixture widened by ``sigma``, the inverse of ``_gaussianised``: 40
    bisections in log-probability space of the tail on z's side (no cancellation far out in it)."""
    target = jax.scipy.special.log_ndtr(-jnp.abs(z))  # log of the smaller tail probability
    span = 60.0 * jnp.max(jnp.sqrt(mixture.sigmas**2 + sigma**2))
    lo = jnp.full(jnp.shape(z), jnp.min(mixture.means) - span)
    hi = jnp.full(jnp.shape(z), jnp.max(mixture.means) + span)

    def halve(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        log_tail = _log_tail(mixture, mid, sigma, upper=z >= 0)
        # Below the solution when its lower tail is still too light (z < 0) or its upper tail
        # still too heavy (z >= 0).
        below = jnp.where(z < 0, log_tail < target, log_tail > target)
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    # 120 sds of bracket halved 40 times: below float32's resolution of the value.
    lo, hi = jax.lax.fori_loop(0, 40, halve, (lo, hi))
    return 0.5 * (lo + hi)


def _median(mixture: MixtureBackbone, sigma):
    """The median of the mixture widened by ``sigma``: where z = 0."""
    return _ungaussianised(mixture, jnp.zeros(()), sigma)


def _gaussianised(mixture: MixtureBackbone, u, sigma):
    """z = Phi^-1(F(u)) under the mixture widened by ``sigma``, from the tail on u's side of the
    median (its probability held at 1e-29, see ``_LOG_P_MIN``): one log-tail and one ndtri per pixel,
    neither cancelling far out, and no branch that divides by a vanishing density in the gradient.
    Either tail gives the same z; the median only picks the accurate one, so it needs no gradient."""
    upper = u > jax.lax.stop_gradient(_median(mixture, sigma))
    p = jnp.exp(jnp.maximum(_log_tail(mixture, u, sigma, upper), _LOG_P_MIN))
    return jnp.where(upper, -1.0, 1.0) * jax.scipy.special.ndtri(p)


Backbone = GaussianBackbone | MixtureBackbone | CorrelatedMixtureBackbone | GaussianCopulaBackbone
_BACKBONES = (GaussianBackbone, MixtureBackbone, CorrelatedMixtureBackbone, GaussianCopulaBackbone)
# The names of the backbone kinds in TrainConfig and in bundles' model.json, in _BACKBONES' order.
BACKBONE_KINDS = ("gaussian", "mixture", "correlated-mixture", "gaussian-copula")


def backbone_kind(backbone: Backbone | None) -> str | None:
    """The ``BACKBONE_KINDS`` name of a backbone (None for none)."""
    return None if backbone is None else BACKBONE_KINDS[_BACKBONES.index(type(backbone))]
