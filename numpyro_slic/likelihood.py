"""ScoreLikelihood: an additive-noise likelihood p(d | theta) = Q_t(d - M(theta)) as a NumPyro distribution.

Usage inside any NumPyro model::

    numpyro.sample("obs", ScoreLikelihood(noise, simulator(theta)), obs=d)

Gradients. d/dloc log p = -s(d - loc, t) and d/dvalue log p = +s(d - loc, t), where s is the noise
model's score. They are supplied through ``jax.custom_jvp``, so a gradient costs one score evaluation
plus the simulator's vector-Jacobian product (never a Jacobian), in reverse mode and in forward mode
(``NUTS(forward_mode_differentiation=True)``). With energy "line", "ode" or "none" these are the
only derivatives: differentiating in the noise model's parameters, ``t`` or ``reference`` raises a
ValueError (a score is d/dr log Q_t only, and the "line" value leaves out Q_t's normalisation, which
depends on them). Hold them fixed, or use energy="exact", which is plain autodiff in everything.

Value. NUTS and HMC use the potential's value as well as its gradient (tree weights, divergence test,
step-size adaptation, Metropolis test), so the value must be a consistent log-density up to a constant
(docs/design.md section 2). ``energy`` chooses how it is computed:

- ``"exact"``: the noise model's own ``log_prob`` (analytic models, energy networks).
- ``"line"``: log Q_t(r) - log Q_t(r_ref) as the line integral of the score from a fixed reference
  residual r_ref to r, by a K-node Gauss-Radau rule whose last node is r itself; the K score calls
  run as one vmapped batch and the node at r doubles as the gradient. Exact for an exact score
  (polynomial integrands of degree <= 2K - 2 are integrated exactly).
- ``"ode"``: the probability-flow ODE log-density (slow; for validation and evidence).
- ``"none"``: value 0 with the right gradient. Only for gradient-only samplers (Langevin): NUTS and
  HMC give WRONG posteriors with it (tests/test_likelihood.py measures by how much).
"""

from __future__ import annotations

from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray
from numpyro.distributions import Distribution, constraints
from numpyro.util import not_jax_tracer

from .noise.base import NoiseModel, as_noise_model
from .quadrature import gauss_radau

__all__ = ["ScoreLikelihood", "perturb_observation", "level_for_sigma", "ENERGIES", "PATHS"]

ENERGIES = ("exact", "line", "ode", "none")
PATHS = ("linear", "arc")


def gauss_radau_nodes(k: int) -> tuple[np.ndarray, np.ndarray]:
    """K-point Gauss-Radau rule on [0, 1] whose last node is u = 1 (``quadrature.gauss_radau``).

    Returns nodes (K,) ascending and weights (K,). Integrates polynomials of degree <= 2K - 2 exactly.
    """
    if k < 2:
        raise ValueError(f"the line integral needs at least 2 nodes, got nodes={k}.")
    return gauss_radau(k)


def _path(path: str, r_ref, r, u):
    """Point gamma(u) and velocity gamma'(u) of the integration path from r_ref (u=0) to r (u=1)."""
    if path == "linear":
        return r_ref + u * (r - r_ref), r - r_ref
    # "arc": a quarter circle. Between two independent noise draws it keeps the variance of noise at
    # every u (exactly for Gaussian noise), so a learned score is never asked about the shrunken
    # residuals that the straight line's midpoint is.
    c, s = jnp.cos(0.5 * jnp.pi * u), jnp.sin(0.5 * jnp.pi * u)
    return c * r_ref + s * r, 0.5 * jnp.pi * (c * r - s * r_ref)


def _line_value_and_score(noise, r, t, r_ref, nodes, path):
    u, w = gauss_radau_nodes(nodes)
    u = jnp.asarray(u, dtype=r.dtype)
    w = jnp.asarray(w, dtype=r.dtype)
    points, velocities = jax.vmap(lambda ui: _path(path, r_ref, r, ui))(u)
    scores = jax.vmap(lambda x: noise.score(x, t))(points)
    axes = tuple(range(1, scores.ndim))
    value = jnp.sum(w * jnp.sum(scores * velocities, axis=axes))
    return value, scores[-1]  # the last node is r itself


def _event_log_prob(noise, r, t, r_ref, *, energy, nodes, path):
    """log Q_t(r) (up to a constant for "line"/"none") for ONE event r, with d/dr = score."""
    if energy == "exact":
        return noise.log_prob(r, t)

    dynamic, static = eqx.partition((noise, t, r_ref), eqx.is_array)

    def value_and_score(r, dynamic):
        noise, t, r_ref = eqx.combine(dynamic, static)
        if energy == "line":
            return _line_value_and_score(noise, r, t, r_ref, nodes, path)
        score = noise.score(r, t)
        if energy == "none":
            return jnp.zeros((), r.dtype), score
        from .noise.flow import ode_log_prob  # energy == "ode"; imported late: diffrax is heavy

        return ode_log_prob(noise, r, t), score

    # The custom rule differentiates in r only: the score is d/dr log Q_t, and nothing here gives the
    # derivative in the noise model's parameters, t or r_ref (for "line" not even the value would:
    # it leaves out the normalisation of Q_t, which depends on them). With symbolic zeros a tangent
    # that is not differentiated arrives as a SymbolicZero, so a real one is an error, never a
    # silent zero.
    @jax.custom_jvp
    def log_density(r, dynamic):
        return value_and_score(r, dynamic)[0]

    @partial(log_density.defjvp, symbolic_zeros=True)
    def _(primals, tangents):
        r, dynamic = primals
        dr, ddynamic = tangents
        if not all(isinstance(d, SymbolicZero) for d in jax.tree.leaves(ddynamic)):
            raise ValueError(
                f"ScoreLikelihood(energy={energy!r}) is differentiated with respect to the noise model's "
                "parameters, t or reference, but its gradient is the score, d/dr log Q_t(r), only. Use "
                "energy='exact' (a noise model with an exact log_prob) to learn noise parameters, or "
                "hold the noise model, t and reference fixed (constants, or jax.lax.stop_gradient)."
            )
        value, score = value_and_score(r, dynamic)
        if isinstance(dr, SymbolicZero):
            return value, jnp.zeros_like(value)
        return value, jnp.sum(score * dr)

    return log_density(r, dynamic)


_FIX_DATA = (
    "Mask them before inference: replace them with noise-like values (e.g. a noise-model draw) and "
    "exclude them from the model, or crop them out."
)


def _check_finite(name: str, x, fix: str = _FIX_DATA) -> None:
    """ValueError when a concrete ``x`` has a NaN or inf; tracers (under jit, grad, vmap) pass unchecked."""
    if not_jax_tracer(x) and not np.all(np.isfinite(np.asarray(x))):
        bad = int(np.sum(~np.isfinite(np.asarray(x))))
        raise ValueError(f"ScoreLikelihood: the {name} has {bad} NaN or inf pixel(s). {fix}")


class ScoreLikelihood(Distribution):
    """Likelihood of an observation d = loc + n with n ~ Q_t, from a noise model's score.

    Args:
        noise: a NoiseModel, or a callable ``x -> grad_x log Q(x)`` (one event, physical units).
        loc: the noise-free model image M(theta), shape ``batch_shape + event_shape`` (physical units).
            Leading dimensions are independent events (exposures, bands) sharing the noise model.
        energy: how the log-density value is computed: "exact", "line", "ode" or "none" (module
            docstring). Default "exact" when the noise model has an exact ``log_prob``, else "line".
        t: diffusion level of the score (0 = the clean density). At t > 0 this is the exact likelihood
            of an observation perturbed once with ``perturb_observation`` (docs/design.md section 1).
        nodes: number K of Gauss-Radau nodes for energy="line" (K score calls per value+gradient).
        reference: the fixed residual r_ref where the line integral starts, shape ``event_shape``;
            default ``noise.reference()`` (zero for analytic models, a held-out real patch for learned
            ones). Values from two references differ by a constant only.
        path: "linear" or "arc" (a quarter circle from r_ref to r; keeps the path noise-like when
            r_ref is a noise draw).
    """

    arg_constraints = {"loc": constraints.real}
    reparametrized_params = ["loc"]
    pytree_data_fields = ("noise", "loc", "t", "reference")
    pytree_aux_fields = ("energy", "nodes", "path")

    def __init__(
        self,
        noise: NoiseModel,
        loc: Float[ArrayLike, "*batch *event"],
        *,
        energy: str | None = None,
        t: float | Float[ArrayLike, ""] = 0.0,
        nodes: int = 8,
        reference: Float[ArrayLike, "*event"] | None = None,
        path: str = "linear",
        validate_args: bool | None = None,
    ):
        noise = as_noise_model(noise)
        loc = jnp.asarray(loc)
        if not jnp.issubdtype(loc.dtype, jnp.floating):
            loc = loc.astype(jnp.result_type(float))

        event_ndim = noise.event_ndim if noise.event_ndim is not None else loc.ndim
        if noise.event_shape is None and loc.ndim < event_ndim:
            raise ValueError(
                f"ScoreLikelihood: loc has shape {loc.shape} but {type(noise).__name__} takes "
                f"{event_ndim}-d events; pass loc with at least {event_ndim} dimensions."
            )
        event_shape = (
            tuple(noise.event_shape) if noise.event_shape is not None else loc.shape[loc.ndim - event_ndim :]
        )
        if loc.shape[loc.ndim - len(event_shape) :] != event_shape:
            raise ValueError(
                f"ScoreLikelihood: loc has shape {loc.shape}, which does not end in the noise model's "
                f"event shape {event_shape}. Make the simulator return images of shape {event_shape} "
                "(with any leading batch dimensions), or build the noise model for the image size."
            )
        noise = noise.with_event_shape(event_shape)

        if energy is None:
            energy = "exact" if noise.has_log_prob else "line"
        if energy not in ENERGIES:
            raise ValueError(f"ScoreLikelihood: unknown energy={energy!r}; choose one of {ENERGIES}.")
        if energy == "exact" and not noise.has_log_prob:
            raise ValueError(
                f"ScoreLikelihood: energy='exact' needs a noise model with an exact log_prob, and "
                f"{type(noise).__name__} has none; use energy='line' (default) or 'ode'."
            )
        if energy == "ode" and not noise.t_max > noise.t_min:
            raise ValueError(
                f"ScoreLikelihood: energy='ode' integrates the score over diffusion levels, and "
                f"{type(noise).__name__} has none (t only in [{noise.t_min}, {noise.t_max}]); use energy='line'."
            )
        if path not in PATHS:
            raise ValueError(f"ScoreLikelihood: unknown path={path!r}; choose one of {PATHS}.")
        if int(nodes) != nodes or nodes < 2:
            raise ValueError(f"ScoreLikelihood: nodes must be an integer >= 2, got {nodes!r}.")

        if not_jax_tracer(t):
            t_val = float(np.asarray(t))
            if not (noise.t_min <= t_val <= noise.t_max):
                raise ValueError(
                    f"ScoreLikelihood: t={t_val} is outside {type(noise).__name__}'s valid range "
                    f"[{noise.t_min}, {noise.t_max}]; pick t in that range (a learned model is not valid "
                    "at t = 0: use t >= t_min and perturb the data with perturb_observation)."
                )
        if reference is None:
            reference = noise.reference() if energy == "line" else jnp.zeros(event_shape, loc.dtype)
        reference = jnp.asarray(reference, dtype=loc.dtype)
        if reference.shape != event_shape:
            raise ValueError(
                f"ScoreLikelihood: reference has shape {reference.shape}; it must be one residual of the "
                f"event shape {event_shape}."
            )
        _check_finite("reference residual", reference)

        # A non-finite model image is a simulator bug at these parameters. numpyro's argument
        # validation (on by default) would reject it as "invalid loc parameter", which names neither
        # the pixels nor the cause; say both, under the same switch (validate_args).
        if Distribution._validate_args if validate_args is None else validate_args:
            _check_finite(
                "model image (loc)",
                loc,
                "The simulator returned non-finite values at these parameters (an overflow, a division "
                "by zero, a NaN parameter?): fix it or bound its parameters with the priors.",
            )

        self.noise = noise
        self.loc = loc
        self.t = jnp.asarray(t, dtype=loc.dtype)
        self.reference = reference
        self.energy = energy
        self.nodes = int(nodes)
        self.path = path
        batch_shape = loc.shape[: loc.ndim - len(event_shape)]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @property
    def support(self) -> constraints.Constraint:
        return constraints.independent(constraints.real, len(self.event_shape))

    def log_prob(self, value: Float[ArrayLike, "*sample *batch *event"]) -> Float[Array, "*sample *batch"]:
        """log p(value | loc) in nats (up to a loc-independent constant unless energy="exact")."""
        value = jnp.asarray(value, dtype=self.loc.dtype)
        nd = len(self.event_shape)
        if value.ndim < nd or value.shape[value.ndim - nd :] != self.event_shape:
            raise ValueError(
                f"ScoreLikelihood: the observation has shape {value.shape}, which does not end in the event "
                f"shape {self.event_shape} of the model image (loc {self.loc.shape}). Crop or resample the "
                "data to the simulator's grid, or build the simulator on the data's grid."
            )
        _check_finite("observation", value)
        residual = value - self.loc
        batch = residual.shape[: residual.ndim - nd]
        flat = residual.reshape((-1,) + self.event_shape)
        per_event = jax.vmap(
            lambda r: _event_log_prob(
                self.noise, r, self.t, self.reference, energy=self.energy, nodes=self.nodes, path=self.path
            )
        )(flat)
        return per_event.reshape(batch)

    def sample(self, key: PRNGKeyArray, sample_shape: tuple[int, ...] = ()) -> Array:
        """Draws of loc + n_t, n_t ~ Q_t, shape ``sample_shape + batch_shape + event_shape``."""
        if not self.noise.can_sample:
            raise ValueError(
                f"ScoreLikelihood.sample: {type(self.noise).__name__} cannot draw noise (a plain score "
                "function has no sampler); use a noise model with sample(), e.g. a learned model or "
                "StationaryGaussianNoise.from_patches(...)."
            )
        shape = tuple(sample_shape) + self.batch_shape
        key_noise, key_level = jax.random.split(key)
        draws = self.noise.sample(key_noise, shape)
        level = self.noise.sigma(self.t) * jax.random.normal(key_level, draws.shape, draws.dtype)
        return self.loc + draws + level

    def with_level(self, t: float | Float[ArrayLike, ""]) -> "ScoreLikelihood":
        """The same likelihood at diffusion level ``t`` (used by annealing samplers)."""
        return ScoreLikelihood(
            self.noise,
            self.loc,
            energy=self.energy,
            t=t,
            nodes=self.nodes,
            reference=self.reference,
            path=self.path,
            validate_args=self._validate_args,
        )


def perturb_observation(
    key: PRNGKeyArray, obs: Float[ArrayLike, "*shape"], noise: NoiseModel, t: float
) -> Float[Array, "*shape"]:
    """obs + sigma(t) z, z ~ N(0, I): the data for which ScoreLikelihood(noise, ., t=t) is exact.

    Perturb ONCE (a fixed seed) and keep the perturbed data for the whole inference: the score at
    level t is the exact score of Q_t, which is the noise distribution of the perturbed data
    (docs/design.md section 1.2). Costs a little information (the noise variance grows by sigma(t)^2).
    """
    obs = jnp.asarray(obs)
    _check_finite("observation", obs)
    noise = as_noise_model(noise)
    return obs + noise.sigma(t) * jax.random.normal(key, obs.shape, obs.dtype)


def level_for_sigma(noise: NoiseModel, sigma: float, *, tol: float = 1e-7) -> float:
    """The diffusion level t with noise.sigma(t) = sigma (physical units), by bisection.

    For example ``level_for_sigma(noise, 0.13 * noise_sd)`` is the level of the SLIC GW follow-up.
    """
    noise = as_noise_model(noise)
    lo, hi = float(noise.t_min), float(noise.t_max)
    s_lo, s_hi = float(noise.sigma(lo)), float(noise.sigma(hi))
    if not (s_lo <= sigma <= s_hi):
        raise ValueError(
            f"level_for_sigma: sigma={sigma} is outside what {type(noise).__name__} covers "
            f"([{s_lo:.4g}, {s_hi:.4g}] physical units on t in [{lo}, {hi}])."
        )
    for _ in range(200):
        if hi - lo < tol:
            break
        mid = 0.5 * (lo + hi)
        if float(noise.sigma(mid)) < sigma:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
