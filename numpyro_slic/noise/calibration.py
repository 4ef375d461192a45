"""Checking and correcting a score model with Stein identities.

For any density Q_t (with tails that vanish fast enough), integration by parts gives

    E_{Q_t}[s(x, t)] = 0        and        E_{Q_t}[s(x, t) x^T] = -I.

Both need only noise samples, not the density, so they test a learned score on real noise. In
Fourier space (X = fftn(x), S = fftn(s), unnormalised, D pixels) the diagonal of the second reads
E[Re(S_k conj(X_k))] = -D for every mode k, for any density; for stationary noise the off-diagonal
part vanishes too, so one gain per mode restores the whole identity. By Cauchy-Schwarz the same
identity bounds the score power: E|S_k|^2 / D >= D / E|X_k|^2 (= 1 / P_k(t) for Gaussian noise,
where it holds with equality). A trained network's typical errors, a constant score offset and a
mis-scaled large-scale mode, break these at k = 0 and low k, where they bias a likelihood gradient
most (docs/design.md section 6).

``stein_diagnostics`` measures the violations with standard errors; ``fit_calibration`` estimates
the corrections (mean map, optional per-mode gains) at a few levels; ``CalibratedNoise`` applies
them to any NoiseModel.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .base import NoiseModel, is_concrete

__all__ = ["SteinDiagnostics", "stein_diagnostics", "ScoreCalibration", "fit_calibration", "CalibratedNoise"]


class SteinDiagnostics(eqx.Module):
    """Stein-identity checks of a score at one level, with standard errors (numpy arrays).

    Scores are in 1 / physical units, ``x`` the noise perturbed at level ``t``. Every standard error
    (``*_se``) is the sample sd over the N patches of a per-patch quantity, divided by sqrt(N), so it
    accounts for correlations between pixels and modes. Fourier arrays are in ``numpy.fft.fftn``
    order; mode (0, ..., 0) is k = 0.

    Attributes:
        t, sigma: the level and its width (physical units); n: number of patches.
        mean_score, mean_score_se: E[s] per pixel (identity 1: zero), shape ``event_shape``.
        spatial_mean, spatial_mean_se: its average over pixels.
        stein_ratio, stein_ratio_se: E[Re(S_k conj(X_k))] / (-D) per mode (identity 2: one).
        k_radial, stein_ratio_radial, stein_ratio_radial_se: the same averaged over rings of
            integer |k| (k in cycles per event side), shape (B,).
        score_power, score_power_se: E|S_k|^2 / D per mode.
        score_power_implied: D / E|X_k|^2, the least score power identity 2 allows (1 / P_k(t),
            reached by Gaussian noise).
        rel_error: ||s - s_exact|| / ||s_exact|| over all patches (with ``exact``), else None.
        rel_error_modes: the same per Fourier mode, else None.
    """

    t: float
    sigma: float
    n: int
    mean_score: np.ndarray
    mean_score_se: np.ndarray
    spatial_mean: float
    spatial_mean_se: float
    stein_ratio: np.ndarray
    stein_ratio_se: np.ndarray
    k_radial: np.ndarray
    stein_ratio_radial: np.ndarray
    stein_ratio_radial_se: np.ndarray
    score_power: np.ndarray
    score_power_se: np.ndarray
    score_power_implied: np.ndarray
    rel_error: float | None = None
    rel_error_modes: np.ndarray | None = None

    def summary(self) -> str:
        """A few lines for a log: each violation in standard errors."""
        k0 = (0,) * self.stein_ratio.ndim
        z = (self.stein_ratio - 1) / self.stein_ratio_se
        lines = [
            f"Stein diagnostics at t = {self.t:.4g} (sigma = {self.sigma:.4g}), {self.n} patches",
            f"  E[s] spatial mean {self.spatial_mean:.4g} +- {self.spatial_mean_se:.2g} "
            f"({self.spatial_mean / self.spatial_mean_se:+.1f} se; identity: 0)",
            f"  k = 0 ratio {self.stein_ratio[k0]:.4f} +- {self.stein_ratio_se[k0]:.2g} (identity: 1); "
            f"all modes: max |z| {np.max(np.abs(z)):.1f}, mean z^2 {np.mean(z**2):.2f}",
            f"  k = 0 score power {self.score_power[k0]:.4g} +- {self.score_power_se[k0]:.2g}, "
            f"least allowed {self.score_power_implied[k0]:.4g}",
        ]
        if self.rel_error is not None:
            lines.append(
                f"  relative score error {self.rel_error:.4f} (k = 0: {self.rel_error_modes[k0]:.4f})"
            )
        return "\n".join(lines)


def stein_diagnostics(
    model: NoiseModel,
    noise: Float[ArrayLike, "n *event"],
    t: float,
    *,
    key: PRNGKeyArray,
    exact: NoiseModel | None = None,
    batch_size: int = 256,
) -> SteinDiagnostics:
    """Checks both Stein identities of ``model``'s score at level ``t`` on real noise.

    Args:
        model: any NoiseModel.
        noise: noise patches (N, *event_shape) in physical units, drawn from Q (t = 0). They are
            perturbed here with fresh N(0, sigma(t)^2) noise drawn from ``key``.
        t: the diffusion level, in [model.t_min, model.t_max].
        exact: a reference NoiseModel (the truth) for the relative score error.
        batch_size: patches scored at once (memory).
    """
    x, model = _perturbed(model, noise, t, key, physical=True)
    n = x.shape[0]
    s = _scores(model.score, x, t, batch_size)
    d = int(np.prod(x.shape[1:]))
    axes = tuple(range(1, x.ndim))

    spatial = s.mean(axis=axes)
    sk, xk = np.fft.fftn(s, axes=axes), np.fft.fftn(x, axes=axes)
    ratio = (sk * xk.conj()).real / -d
    power = np.abs(sk) ** 2 / d
    bins, k_radial = _radial_bins(x.shape[1:])
    onehot = np.eye(len(k_radial))[bins.ravel()]
    ratio_radial = ratio.reshape(n, -1) @ onehot / onehot.sum(axis=0)

    rel_error = rel_error_modes = None
    if exact is not None:
        exact = exact.with_event_shape(x.shape[1:])
        s_exact = _scores(exact.score, x, t, batch_size)
        rel_error = float(np.sqrt(np.sum((s - s_exact) ** 2) / np.sum(s_exact**2)))
        sk_exact = np.fft.fftn(s_exact, axes=axes)
        rel_error_modes = np.sqrt(np.sum(np.abs(sk - sk_exact) ** 2, 0) / np.sum(np.abs(sk_exact) ** 2, 0))

    return SteinDiagnostics(
        t=float(t),
        sigma=float(model.sigma(t)),
        n=n,
        mean_score=s.mean(0),
        mean_score_se=_se(s),
        spatial_mean=float(spatial.mean()),
        spatial_mean_se=float(_se(spatial)),
        stein_ratio=ratio.mean(0),
        stein_ratio_se=_se(ratio),
        k_radial=k_radial,
        stein_ratio_radial=ratio_radial.mean(0),
        stein_ratio_radial_se=_se(ratio_radial),
        score_power=power.mean(0),
        score_power_se=_se(power),
        score_power_implied=d / np.mean(np.abs(xk) ** 2, axis=0),
        rel_error=rel_error,
        rel_error_modes=rel_error_modes,
    )


class ScoreCalibration(eqx.Module):
    """Stein corrections of a score at a few levels, in trained units.

    The corrected score is s -> ifftn(g_k fftn(s - m)) (just s - m without gains), with the mean
    map m and gains g at level t interpolated linearly in sigma(t) between the two nearest fitted
    levels, and held at the end levels' values outside them (no extrapolation).

    Attributes:
        levels: fitted levels t, increasing, shape (L,).
        sigmas: unit_sigma at those levels, shape (L,).
        mean: mean score maps E[s] (1 / trained units), shape (L, *event).
        gains: per-mode gains -D / E[Re(S_k conj(X_k))] after mean removal, real and symmetric
            (g_k = g_-k), shape (L, *event); or None.
    """

    levels: Float[Array, " L"]
    sigmas: Float[Array, " L"]
    mean: Float[Array, "L *event"]
    gains: Float[Array, "L *event"] | None = None

    def __check_init__(self):
        n = self.levels.shape[0] if self.levels.ndim == 1 else -1
        if self.sigmas.shape != (n,) or self.mean.ndim < 2 or self.mean.shape[0] != n:
            raise ValueError(
                f"ScoreCalibration: levels (L,), sigmas (L,) and mean (L, *event) must agree, got "
                f"{self.levels.shape}, {self.sigmas.shape}, {self.mean.shape}."
            )
        if self.gains is not None and self.gains.shape != self.mean.shape:
            raise ValueError(
                f"ScoreCalibration: gains must have the mean's shape {self.mean.shape}, got "
                f"{self.gains.shape}."
            )
        if is_concrete(self.sigmas) and np.any(np.diff(np.asarray(self.sigmas)) <= 0):
            raise ValueError(
                "ScoreCalibration: sigmas must increase with the levels (interpolation needs it)."
            )

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.mean.shape[1:])

    def apply(self, s: Float[Array, "*event"], sigma: Float[ArrayLike, ""]) -> Float[Array, "*event"]:
        """The corrected score for one event's score ``s`` at width ``sigma`` (trained units)."""
        if tuple(s.shape) != self.event_shape:
            raise ValueError(
                f"This ScoreCalibration was fitted on events of shape {self.event_shape}, not "
                f"{tuple(s.shape)}: fit one on noise patches of the new shape."
            )
        # jnp.interp on each one-hot column gives the interpolation weights over the L levels.
        eye = jnp.eye(self.levels.shape[0], dtype=self.mean.dtype)
        w = jax.vmap(lambda col: jnp.interp(sigma, self.sigmas, col))(eye)
        s = s - jnp.tensordot(w, self.mean, axes=1)
        if self.gains is None:
            return s
        axes = tuple(range(-s.ndim, 0))
        gains = jnp.tensordot(w, self.gains, axes=1)
        return jnp.fft.ifftn(gains * jnp.fft.fftn(s, axes=axes), axes=axes).real


def fit_calibration(
    model: NoiseModel,
    noise: Float[ArrayLike, "n *event"],
    levels: Float[ArrayLike, " L"],
    *,
    key: PRNGKeyArray,
    per_mode_gains: bool = False,
    batch_size: int = 256,
) -> ScoreCalibration:
    """Estimates Stein corrections of ``model``'s score on noise perturbed at each level.

    At each level t_l the patches are perturbed with fresh N(0, sigma(t_l)^2) noise; the mean
    score map is E[s] (identity 1), and with ``per_mode_gains`` the gain of mode k is
    g_k = -D / E[Re((S - M)_k conj(X_k))], which makes identity 2 hold per mode (the whole
    identity for stationary noise). Each estimate's relative error is about 1 / sqrt(N) per pixel
    or mode, so use patches the model was not trained on, as many as you can (1000 or more).

    Args:
        model: any NoiseModel.
        noise: noise patches (N, *event_shape), physical units, drawn from Q (t = 0).
        levels: diffusion levels to fit, increasing, within [t_min, t_max]; the levels where the
            model will be used (or a grid around them).
        key: PRNG key for the perturbations.
        per_mode_gains: also fit one gain per Fourier mode.
        batch_size: patches scored at once (memory).
    """
    levels_np = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    if levels_np.ndim != 1 or np.any(np.diff(levels_np) <= 0):
        raise ValueError(f"fit_calibration: levels must be 1-d and increasing, got {levels_np}.")
    keys = jax.random.split(key, len(levels_np))
    means, gains = [], []
    for t, k in zip(levels_np, keys):
        x, model = _perturbed(model, noise, float(t), k, physical=False)
        s = _scores(model.unit_score, x, float(t), batch_size)
        m = s.mean(0)
        means.append(m)
        if per_mode_gains:
            axes = tuple(range(1, x.ndim))
            cross = np.mean((np.fft.fftn(s - m, axes=axes) * np.fft.fftn(x, axes=axes).conj()).real, 0)
            if np.any(cross >= 0):
                raise ValueError(
                    f"fit_calibration: at t = {t:.4g} the score is not anti-correlated with x in "
                    f"{int(np.sum(cross >= 0))} Fourier modes, so no gain can fix it; the model "
                    "is broken at this level (check its inputs' units and scale)."
                )
            gains.append(-x[0].size / cross)
    dtype = jnp.result_type(float)
    return ScoreCalibration(
        levels=jnp.asarray(levels_np, dtype=dtype),
        sigmas=jnp.asarray([float(model.unit_sigma(t)) for t in levels_np], dtype=dtype),
        mean=jnp.asarray(np.stack(means), dtype=dtype),
        gains=jnp.asarray(np.stack(gains), dtype=dtype) if per_mode_gains else None,
    )


class CalibratedNoise(NoiseModel):
    """A NoiseModel whose score is ``base``'s, corrected by a ScoreCalibration.

    Scale, event shape, levels, sigma, sampling and reference are ``base``'s. The event shape is
    the calibration's: another shape raises ValueError (mean maps and gains are per pixel and per
    mode). There is no log_prob, even when ``base`` has one, because the corrected score is no
    longer its gradient: use ScoreLikelihood(energy="line") or ``ode_log_prob``. ``sample`` draws
    from ``base`` (uncorrected).
    """

    base: NoiseModel
    calibration: ScoreCalibration

    has_log_prob: ClassVar[bool] = False

    def __init__(self, base: NoiseModel, calibration: ScoreCalibration):
        if not isinstance(base, NoiseModel):
            raise TypeError(f"CalibratedNoise: base must be a NoiseModel, got {type(base).__name__}.")
        if not isinstance(calibration, ScoreCalibration):
            raise TypeError(
                f"CalibratedNoise: calibration must be a ScoreCalibration (from fit_calibration), "
                f"got {type(calibration).__name__}."
            )
        self.base = base.with_event_shape(calibration.event_shape)
        self.calibration = calibration

    @property
    def scale(self):
        return self.base.scale

    @property
    def event_shape(self) -> tuple[int, ...]:
        return self.calibration.event_shape

    @property
    def event_ndim(self) -> int:
        return len(self.calibration.event_shape)

    @property
    def t_min(self) -> float:
        return self.base.t_min

    @property
    def t_max(self) -> float:
        return self.base.t_max

    @property
    def can_sample(self) -> bool:
        return self.base.can_sample

    def unit_score(self, u, t):
        return self.calibration.apply(self.base.unit_score(u, t), self.base.unit_sigma(t))

    def unit_sigma(self, t):
        return self.base.unit_sigma(t)

    def unit_log_prob(self, u, t):
        raise NotImplementedError(
            "CalibratedNoise has no exact log_prob: the calibrated score is not the gradient of the "
            "base model's log_prob. Use ScoreLikelihood(energy='line') or noise.flow.ode_log_prob."
        )

    def unit_sample(self, key, sample_shape):
        return self.base.unit_sample(key, sample_shape)

    def reference(self):
        return self.base.reference()


def _perturbed(model, noise, t, key, *, physical):
    """Noise (N, *event) perturbed at level t, physical or trained units, and the shape-fixed model."""
    if not isinstance(model, NoiseModel):
        raise TypeError(f"Expected a NoiseModel, got {type(model).__name__}.")
    x = np.asarray(noise, dtype=np.float64)
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(
            f"Stein checks need a stack of at least 2 noise patches (N, *event_shape), got shape {x.shape}."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("Noise patches contain NaN or inf; mask or drop those patches.")
    model = model.with_event_shape(x.shape[1:])
    if not model.t_min <= t <= model.t_max:
        raise ValueError(f"t = {t} is outside the model's levels [{model.t_min}, {model.t_max}].")
    sigma = float(model.sigma(t) if physical else model.unit_sigma(t))
    if not physical:
        x = x / float(model.scale)
    z = np.asarray(jax.random.normal(key, x.shape), dtype=np.float64)
    return x + sigma * z, model


def _scores(score_fn, x, t, batch_size):
    """score_fn(x_i, t) for every patch, float64 numpy (N, *event)."""
    xs = jnp.asarray(x, dtype=jnp.result_type(float))
    out = _map_score(score_fn, xs, jnp.asarray(t, dtype=xs.dtype), max(1, min(int(batch_size), len(x))))
    return np.asarray(out, dtype=np.float64)


@eqx.filter_jit
def _map_score(score_fn, xs, t, batch_size):
    return jax.lax.map(lambda xi: score_fn(xi, t), xs, batch_size=batch_size)


def _se(a: np.ndarray) -> np.ndarray:
    """Standard error of the mean over axis 0."""
    return a.std(axis=0, ddof=1) / np.sqrt(a.shape[0])


def _radial_bins(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Integer |k| per mode (k in cycles per event side), and the bin values 0..B-1."""
    grids = np.meshgrid(*[np.fft.fftfreq(n) * n for n in shape], indexing="ij")
    bins = np.rint(np.sqrt(sum(g**2 for g in grids))).astype(int)
    return bins, np.arange(bins.max() + 1)
