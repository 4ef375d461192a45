"""Noise models with exact densities: baselines for real data and oracles for tests.

All three have exact ``score``, ``log_prob`` and ``sample`` at every diffusion level t, because a
Gaussian (or a mixture of Gaussians) convolved with N(0, sigma(t)^2 I) stays one.
"""

# No `from __future__ import annotations`: equinox needs AbstractVar annotations as objects.

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .base import NoiseModel, is_concrete
from .sde import VESDE

__all__ = [
    "WhiteGaussianNoise",
    "StationaryGaussianNoise",
    "GaussianMixtureNoise",
    "fit_pixel_mixture",
    "mixture_component_logpdf",
    "mean_periodogram",
    "spectral_gaussian_log_prob",
    "spectral_gaussian_score",
]

_LOG_2PI = float(np.log(2 * np.pi))


class _AnalyticNoise(NoiseModel):
    """Shared parts: a VE schedule, validity on t in [0, 1], exact log_prob and sampling."""

    sde: eqx.AbstractVar[VESDE]
    t_min: float = eqx.field(static=True, default=0.0, kw_only=True)
    t_max: float = eqx.field(static=True, default=1.0, kw_only=True)

    has_log_prob: ClassVar[bool] = True
    can_sample: ClassVar[bool] = True

    def unit_sigma(self, t):
        return self.sde.sigma(t)


class WhiteGaussianNoise(_AnalyticNoise):
    """I.i.d. N(0, sigma^2) pixels.

    Args:
        sigma: per-pixel standard deviation (trained units; physical when ``scale`` is 1).
        event_shape: fixed event shape, or None to take the observation's (``event_ndim`` dims).
    """

    sigma_pixel: Float[Array, ""]
    event_shape: tuple[int, ...] | None = eqx.field(static=True)
    event_ndim: int | None = eqx.field(static=True)
    scale: float | Float[Array, ""]
    sde: VESDE

    def __init__(self, sigma, event_shape=None, *, event_ndim=2, scale=1.0, sde=VESDE()):
        if is_concrete(sigma) and not float(np.asarray(sigma)) > 0:
            raise ValueError(f"WhiteGaussianNoise: sigma must be positive, got {sigma!r}.")
        self.sigma_pixel = jnp.asarray(sigma, dtype=float)
        self.event_shape = None if event_shape is None else tuple(int(n) for n in event_shape)
        self.event_ndim = len(self.event_shape) if self.event_shape is not None else event_ndim
        self.scale = scale
        self.sde = sde

    def _variance(self, t):
        return self.sigma_pixel**2 + self.sde.sigma(t) ** 2

    def unit_log_prob(self, u, t):
        var = self._variance(t)
        return -0.5 * jnp.sum(u**2) / var - 0.5 * u.size * (_LOG_2PI + jnp.log(var))

    def unit_score(self, u, t):
        return -u / self._variance(t)

    def unit_sample(self, key, sample_shape):
        return self.sigma_pixel * jax.random.normal(key, sample_shape + self.event_shape)


def _fft_axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(-ndim, 0))


# ---- the stationary Gaussian in Fourier space: one formula for every model that uses it ----------
# StationaryGaussianNoise, the learned models' GaussianBackbone and the validation script's spectra
# all go through these three functions.


def spectral_gaussian_log_prob(u: Float[Array, "*event"], power: Float[Array, "*event"]) -> Float[Array, ""]:
    """log N(u; 0, C) for one event u with C = F^-1 diag(power) F (periodic stationary Gaussian).

    With U = fftn(u) (unnormalised) over all of u's axes and D = u.size,

        log N = -1/2 sum_k |U_k|^2 / (D P_k) - 1/2 sum_k log(2 pi P_k).

    ``power`` is P_k in ``numpy.fft.fftn`` order, at the level wanted (P_k + sigma(t)^2 for Q_t).
    """
    uk = jnp.fft.fftn(u, axes=_fft_axes(power.ndim))
    quad = jnp.sum((uk.real**2 + uk.imag**2) / power) / u.size
    return -0.5 * quad - 0.5 * jnp.sum(_LOG_2PI + jnp.log(power))


def spectral_gaussian_score(u: Float[Array, "*event"], power: Float[Array, "*event"]) -> Float[Array, "*event"]:
    """grad_u of ``spectral_gaussian_log_prob``: -C^-1 u = -ifftn(fftn(u) / P_k)."""
    axes = _fft_axes(power.ndim)
    return -jnp.fft.ifftn(jnp.fft.fftn(u, axes=axes) / power, axes=axes).real


def mean_periodogram(x: Float[ArrayLike, "n *event"]) -> np.ndarray:
    """Mean |fftn(x_i)|^2 / D over the first axis (NumPy, float64): the estimate of P_k from patches.

    For zero-mean stationary noise its expectation is the power P_k (the covariance's eigenvalue per
    Fourier mode, ``numpy.fft.fftn`` order); white noise of sd s has P_k = s^2.
    """
    x = np.asarray(x, dtype=np.float64)
    axes = tuple(range(1, x.ndim))
    return np.mean(np.abs(np.fft.fftn(x, axes=axes)) ** 2, axis=0) / np.prod(x.shape[1:])


class StationaryGaussianNoise(_AnalyticNoise):
    """Stationary (translation-invariant, periodic) Gaussian noise, diagonal in Fourier space.

    With X = fftn(x) (unnormalised) and covariance C = F^-1 diag(P) F,

        log Q_t(x) = -1/2 sum_k |X_k|^2 / (D (P_k + sigma(t)^2)) - 1/2 sum_k log(2 pi (P_k + sigma(t)^2)),

    so score and log_prob cost one FFT pair. ``P`` is the covariance's eigenvalue per Fourier mode
    (the DFT of the autocovariance); white noise of sd s has P = s^2 everywhere.

    Args:
        power: P_k on the event grid, shape ``event_shape`` (trained units squared), in
            ``numpy.fft.fftn`` order, real-symmetric (P_k = P_-k) and positive.
    """

    power: Float[Array, "*event"]
    scale: float | Float[Array, ""]
    sde: VESDE
    # Static copies of power's shape (not properties): pytree tools that swap array leaves for
    # placeholders, such as numpyro's MCMC argument cache, must still be able to read them.
    event_shape: tuple[int, ...] = eqx.field(static=True)
    event_ndim: int = eqx.field(static=True)

    def __init__(self, power, *, scale=1.0, sde=VESDE()):
        self.power = jnp.asarray(power, dtype=jnp.result_type(float))
        self.scale = scale
        self.sde = sde
        self.event_shape = tuple(self.power.shape)
        self.event_ndim = self.power.ndim

    def __check_init__(self):
        if is_concrete(self.power):
            p = np.asarray(self.power)
            if not np.all(np.isfinite(p)) or np.any(p <= 0):
                raise ValueError(
                    "StationaryGaussianNoise: power must be finite and positive in every mode; floor "
                    "it (from_patches(..., floor=...) does) before building the model."
                )

    def _fft(self, u):
        return jnp.fft.fftn(u, axes=_fft_axes(self.power.ndim))

    def _ifft(self, uk):
        return jnp.fft.ifftn(uk, axes=_fft_axes(self.power.ndim)).real

    def unit_log_prob(self, u, t):
        return spectral_gaussian_log_prob(u, self.power + self.sde.sigma(t) ** 2)

    def unit_score(self, u, t):
        return spectral_gaussian_score(u, self.power + self.sde.sigma(t) ** 2)

    def unit_sample(self, key, sample_shape):
        z = jax.random.normal(key, sample_shape + self.event_shape)
        return self._ifft(jnp.sqrt(self.power) * self._fft(z))

    @classmethod
    def from_patches(
        cls,
        patches: Float[ArrayLike, "n *event"],
        *,
        floor: float = 1e-6,
        scale: float = 1.0,
        sde: VESDE = VESDE(),
    ) -> "StationaryGaussianNoise":
        """Estimates P_k as the mean periodogram of zero-mean noise patches ``(N, H, W)``.

        Each mode's estimate has relative standard error about 1 / sqrt(N) (half that where P_k and
        P_-k are averaged). Patches are assumed sky-subtracted; their common mean is not removed.
        ``floor`` (relative to the mean power) keeps every mode positive.
        """
        x = np.asarray(patches, dtype=np.float64)
        if x.ndim < 2:
            raise ValueError(
                f"from_patches needs an array of patches (N, *event_shape), got shape {x.shape}."
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("from_patches: patches contain NaN or inf; mask or drop those patches.")
        power = mean_periodogram(x)
        # Enforce P_k = P_-k exactly (true of every real field, and what makes samples real).
        mirrored = np.flip(np.roll(power, -1, axis=tuple(range(power.ndim))), axis=tuple(range(power.ndim)))
        power = 0.5 * (power + mirrored)
        power = np.maximum(power, floor * power.mean())
        return cls(power, scale=scale, sde=sde)

    def covariance(self) -> Float[Array, "d d"]:
        """The dense D x D covariance (trained units); for tests and small grids only."""
        d = self.power.size
        eye = jnp.eye(d).reshape((d,) + self.event_shape)
        cols = jax.vmap(lambda e: self._ifft(self.power * self._fft(e)))(eye)
        return cols.reshape(d, d)


def mixture_component_logpdf(
    u: Float[Array, "*event"],
    log_weights: Float[Array, " J"],
    means: Float[Array, " J"],
    var: Float[Array, " J"],
) -> Float[Array, "*event J"]:
    """log w_j + log N(u; m_j, var_j) for every pixel and component (the per-pixel mixture's terms)."""
    d = u[..., None] - means
    return log_weights - 0.5 * (d**2 / var + _LOG_2PI + jnp.log(var))


def _binned(v: np.ndarray, centre: float, core: float, width: float, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Values within ``reach`` core sds of the centre pooled into bins ``width`` core sds wide (each
    bin represented by its values' mean, weighted by its count); the rest kept one by one."""
    inside = np.abs(v - centre) <= reach * core
    edges = centre + core * np.arange(-reach, reach + width, width)
    which = np.clip(np.searchsorted(edges, v[inside]) - 1, 0, len(edges) - 2)
    counts = np.bincount(which, minlength=len(edges) - 1).astype(np.float64)
    sums = np.bincount(which, weights=v[inside], minlength=len(edges) - 1)
    keep = counts > 0
    values = np.concatenate([sums[keep] / counts[keep], v[~inside]])
    return values, np.concatenate([counts[keep], np.ones(int(np.sum(~inside)))])


def fit_pixel_mixture(
    x: Float[ArrayLike, "..."],
    components: int = 3,
    *,
    iterations: int = 500,
    tol: float = 1e-9,
    min_sigma: float = 1e-3,
    bin_width: float | None = 0.005,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum-likelihood weights, means and sds of a 1-d Gaussian mixture for all values of ``x``.

    Expectation-maximisation in float64 from a robust start: one core component at the median with
    the robust (1.4826 MAD) sd and weight 1 - 0.01 (J - 1), and J - 1 broad components of sd 3, 9,
    27, ... x the core's, centred on the mean of the values beyond 3 robust sds (0 if none), which
    is where rare outliers such as cosmic-ray hits and hot pixels sit.

    EM converges slowly where components overlap (hundreds of iterations), so values within 8 core
    sds are pooled into bins ``bin_width`` core sds wide (a bin enters with its values' mean and
    its count; rarer values, the outliers, enter one by one): the E and M steps then cost thousands
    of weighted points instead of every pixel (the fit then no longer grows with the number of
    pixels), and the bins' spread adds at most ``bin_width``^2 / 12 of the core variance (2e-6 of
    it at the default). ``bin_width=None`` runs EM on every value.

    Args:
        x: any array of noise values (e.g. ``(N, H, W)`` patches), trained units; NaNs are refused.
        components: J >= 1.
        iterations: most EM iterations.
        tol: stop when the mean log-likelihood per value improves by less than this.
        min_sigma: floor on every component's sd (a component cannot collapse onto one value).
        bin_width: bin width in core sds, or None for no binning.

    Returns:
        ``(weights, means, sigmas)``, each ``(J,)``; the weights sum to 1.
    """
    v = np.asarray(x, dtype=np.float64).ravel()
    if v.size < 10 * components or not np.all(np.isfinite(v)):
        raise ValueError(
            f"fit_pixel_mixture needs at least {10 * components} finite values, got {v.size} "
            f"({int(np.sum(~np.isfinite(v)))} not finite): mask or drop NaN/inf first."
        )
    if int(components) != components or components < 1:
        raise ValueError(f"fit_pixel_mixture: components must be a positive integer, got {components!r}.")
    centre = np.median(v)
    core = max(1.4826 * np.median(np.abs(v - centre)), min_sigma)
    far = v[np.abs(v - centre) > 3 * core]
    weights = np.array([1.0 - 0.01 * (components - 1)] + [0.01] * (components - 1))
    means = np.array([centre] + [far.mean() if far.size else centre] * (components - 1))
    sigmas = core * 3.0 ** np.arange(components)
    values, counts = (v, np.ones_like(v)) if bin_width is None else _binned(v, centre, core, bin_width, 8.0)
    total = counts.sum()
    previous = -np.inf
    for _ in range(int(iterations)):
        var = sigmas**2
        logpdf = np.log(weights) - 0.5 * ((values[:, None] - means) ** 2 / var + _LOG_2PI + np.log(var))
        top = logpdf.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logpdf - top).sum(axis=1))
        resp = counts[:, None] * np.exp(logpdf - log_norm[:, None])
        mean_loglik = np.dot(counts, log_norm) / total
        n_j = np.maximum(resp.sum(axis=0), 1e-12)
        weights = n_j / total
        means = (resp * values[:, None]).sum(axis=0) / n_j
        sigmas = np.maximum(np.sqrt((resp * (values[:, None] - means) ** 2).sum(axis=0) / n_j), min_sigma)
        if mean_loglik - previous < tol:
            break
        previous = mean_loglik
    order = np.argsort(sigmas)
    return weights[order], means[order], sigmas[order]


class GaussianMixtureNoise(_AnalyticNoise):
    """I.i.d. pixels from a mixture of Gaussians: a core plus broad (possibly one-sided) outliers.

    The default, 95% N(0, 1) + 5% N(0, 5^2), has excess kurtosis about 17 and mimics cosmic-ray and
    hot-pixel residuals; ``from_patches`` fits one to real noise (cosmic rays and hot pixels are
    positive, so the broad components get their own means). At level t every component widens to
    s_j^2 + sigma(t)^2, so score and log_prob stay exact.

    Args:
        weights: mixture weights (normalised here), shape ``(J,)``.
        sigmas: component standard deviations (trained units), shape ``(J,)``.
        means: component means (trained units), shape ``(J,)``; default all 0.
    """

    log_weights: Float[Array, " J"]
    sigmas: Float[Array, " J"]
    means: Float[Array, " J"]
    event_shape: tuple[int, ...] | None = eqx.field(static=True)
    event_ndim: int | None = eqx.field(static=True)
    scale: float | Float[Array, ""]
    sde: VESDE

    def __init__(
        self,
        weights=(0.95, 0.05),
        sigmas=(1.0, 5.0),
        event_shape=None,
        *,
        means=None,
        event_ndim=2,
        scale=1.0,
        sde=VESDE(),
    ):
        w = np.asarray(weights, dtype=np.float64)
        s = np.asarray(sigmas, dtype=np.float64)
        m = np.zeros_like(s) if means is None else np.asarray(means, dtype=np.float64)
        if w.shape != s.shape or w.ndim != 1 or m.shape != s.shape:
            raise ValueError(
                f"GaussianMixtureNoise: weights {w.shape}, sigmas {s.shape} and means {m.shape} must be 1-d "
                "of equal length."
            )
        if np.any(w <= 0) or np.any(s <= 0):
            raise ValueError("GaussianMixtureNoise: weights and sigmas must all be positive.")
        if not np.all(np.isfinite(m)):
            raise ValueError(f"GaussianMixtureNoise: means must be finite, got {m}.")
        self.log_weights = jnp.asarray(np.log(w / w.sum()), dtype=float)
        self.sigmas = jnp.asarray(s, dtype=float)
        self.means = jnp.asarray(m, dtype=float)
        self.event_shape = None if event_shape is None else tuple(int(n) for n in event_shape)
        self.event_ndim = len(self.event_shape) if self.event_shape is not None else event_ndim
        self.scale = scale
        self.sde = sde

    @classmethod
    def from_patches(
        cls, patches: Float[ArrayLike, "n *event"], components: int = 3, *, scale: float = 1.0, sde=VESDE()
    ) -> "GaussianMixtureNoise":
        """The maximum-likelihood i.i.d. mixture (``fit_pixel_mixture``) of noise patches in trained
        units; ``event_shape`` is left free (any shape of the patches' number of dimensions)."""
        x = np.asarray(patches)
        weights, means, sigmas = fit_pixel_mixture(x, components)
        return cls(weights, sigmas, means=means, event_ndim=x.ndim - 1, scale=scale, sde=sde)

    def _component_logpdf(self, u, t):
        var = self.sigmas**2 + self.sde.sigma(t) ** 2  # (J,)
        return mixture_component_logpdf(u, self.log_weights, self.means, var), var

    def unit_log_prob(self, u, t):
        logpdf, _ = self._component_logpdf(u, t)
        return jnp.sum(jax.nn.logsumexp(logpdf, axis=-1))

    def unit_score(self, u, t):
        logpdf, var = self._component_logpdf(u, t)
        resp = jax.nn.softmax(logpdf, axis=-1)
        return jnp.sum(resp * (self.means - u[..., None]) / var, axis=-1)

    def unit_sample(self, key, sample_shape):
        shape = sample_shape + self.event_shape
        k_comp, k_norm = jax.random.split(key)
        comp = jax.random.categorical(k_comp, self.log_weights, shape=shape)
        return self.means[comp] + self.sigmas[comp] * jax.random.normal(k_norm, shape)

    @property
    def variance(self) -> Float[Array, ""]:
        """Per-pixel variance of Q (trained units squared)."""
        w = jnp.exp(self.log_weights)
        mean = jnp.sum(w * self.means)
        return jnp.sum(w * (self.sigmas**2 + (self.means - mean) ** 2))
