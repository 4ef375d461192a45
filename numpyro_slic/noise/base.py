"""The noise-model protocol.

A noise model is a density Q over one event (an image ``(H, W)`` or a 1-D signal ``(N,)``) and its
diffusion family Q_t = Q * N(0, sigma(t)^2 I). Every model is written in the units it was trained in
("unit" methods) and carries a ``scale``: physical = scale * unit. The public methods convert, so

    score(x, t)    = unit_score(x / scale, t) / scale
    log_prob(x, t) = unit_log_prob(x / scale, t) - D log(scale)        (D = number of pixels)
    sigma(t)       = scale * unit_sigma(t)
    sample(key)    = scale * unit_sample(key)

all in physical units. Every method takes and returns a single event: batches are the caller's
``jax.vmap`` (ScoreLikelihood does that for its batch dimensions).

``t = 0`` is the clean density Q wherever a model allows it; learned models are valid on
``[t_min, t_max]`` only and say so through those two fields.
"""

# No `from __future__ import annotations`: equinox needs AbstractVar annotations as objects.

import copy
import math
from typing import Callable, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray
from numpyro.util import not_jax_tracer

__all__ = ["NoiseModel", "ScoreFunction", "as_noise_model", "is_concrete"]


def is_concrete(x) -> bool:
    """True when ``x`` holds values we can inspect now (not a tracer inside jit/grad/vmap)."""
    return not_jax_tracer(x)


class NoiseModel(eqx.Module):
    """Abstract noise density Q in physical units, built on a density in trained units.

    Subclasses implement ``unit_score`` and ``unit_sigma`` (and ``unit_log_prob`` / ``unit_sample``
    when they can), and set the fields below.

    Attributes:
        scale: physical units per trained unit (> 0). A model trained on noise divided by its robust
            sigma has ``scale`` = that sigma.
        event_shape: the shape of one event, or ``None`` for models that apply to any shape of
            ``event_ndim`` dimensions (i.i.d. and fully convolutional models); fix it with
            ``with_event_shape``.
        event_ndim: number of event dimensions, or ``None`` for "all of the observation's".
        t_min, t_max: the diffusion levels at which ``score`` is valid.
    """

    scale: eqx.AbstractVar[float | Float[Array, ""]]
    event_shape: eqx.AbstractVar[tuple[int, ...] | None]
    event_ndim: eqx.AbstractVar[int | None]
    t_min: eqx.AbstractVar[float]
    t_max: eqx.AbstractVar[float]

    # Whether ``log_prob`` is an exact density (analytic models, energy networks).
    has_log_prob: ClassVar[bool] = False
    # Whether ``sample`` is available.
    can_sample: ClassVar[bool] = False

    def __check_init__(self):
        if is_concrete(self.scale):
            s = np.asarray(self.scale)
            if s.ndim != 0 or not np.isfinite(s) or s <= 0:
                raise ValueError(
                    f"{type(self).__name__}: scale must be a positive finite number (physical units "
                    f"per trained unit), got {self.scale!r}."
                )
        if self.event_shape is not None and self.event_ndim is not None:
            if len(self.event_shape) != self.event_ndim:
                raise ValueError(
                    f"{type(self).__name__}: event_shape {self.event_shape} has {len(self.event_shape)} "
                    f"dimensions but event_ndim is {self.event_ndim}."
                )

    # ---- to implement -------------------------------------------------------------------------
    def unit_score(self, u: Float[Array, "*event"], t: Float[ArrayLike, ""]) -> Float[Array, "*event"]:
        """grad_u log Q_t(u) in trained units, for one event ``u``."""
        raise NotImplementedError

    def unit_sigma(self, t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """Standard deviation (trained units) of the Gaussian that Q_t adds to Q."""
        raise NotImplementedError

    def unit_log_prob(self, u: Float[Array, "*event"], t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        raise NotImplementedError(
            f"{type(self).__name__} has no exact log_prob; use ScoreLikelihood(energy='line') or "
            "energy='ode'."
        )

    def unit_sample(self, key: PRNGKeyArray, sample_shape: tuple[int, ...]) -> Array:
        raise NotImplementedError(f"{type(self).__name__} cannot draw samples.")

    # ---- public, physical units ---------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of pixels D in one event (needs a fixed ``event_shape``)."""
        return math.prod(self._require_event_shape("size"))

    def sigma(self, t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """Diffusion standard deviation at level ``t`` in physical units; ``sigma(0) = 0``."""
        return self.scale * self.unit_sigma(t)

    def score(self, x: Float[Array, "*event"], t: Float[ArrayLike, ""] = 0.0) -> Float[Array, "*event"]:
        """grad_x log Q_t(x) for one event ``x`` in physical units (1 / physical units)."""
        return self.unit_score(x / self.scale, t) / self.scale

    def log_prob(self, x: Float[Array, "*event"], t: Float[ArrayLike, ""] = 0.0) -> Float[Array, ""]:
        """log Q_t(x) for one event ``x`` in physical units (nats)."""
        return self.unit_log_prob(x / self.scale, t) - x.size * jnp.log(self.scale)

    def sample(self, key: PRNGKeyArray, sample_shape: tuple[int, ...] = ()) -> Float[Array, "..."]:
        """Draws of Q (t = 0), shape ``sample_shape + event_shape``, physical units."""
        self._require_event_shape("sample")
        return self.scale * self.unit_sample(key, tuple(sample_shape))

    def reference(self) -> Float[Array, "*event"]:
        """A fixed residual, typical of Q, where ScoreLikelihood's line integral starts.

        Only differences of the line-integral log-density matter, so any fixed point is correct for
        an exact score; with a learned score a point inside the training data keeps the path where
        the network is accurate. The default is zero; learned models override it.
        """
        return jnp.zeros(self._require_event_shape("reference"))

    def with_event_shape(self, event_shape: tuple[int, ...]) -> "NoiseModel":
        """This model with its event shape fixed (a no-op check when it is fixed already)."""
        event_shape = tuple(int(n) for n in event_shape)
        if self.event_shape is not None:
            if tuple(self.event_shape) != event_shape:
                raise ValueError(
                    f"{type(self).__name__} is defined on events of shape {tuple(self.event_shape)}, "
                    f"not {event_shape}: make loc/value end in {tuple(self.event_shape)}, or build the "
                    "noise model for the new shape."
                )
            return self
        if self.event_ndim is not None and len(event_shape) != self.event_ndim:
            raise ValueError(
                f"{type(self).__name__} takes {self.event_ndim}-d events, got shape {event_shape}."
            )
        # Both fields are static (they fix array shapes), which eqx.tree_at cannot touch.
        fixed = copy.copy(self)
        object.__setattr__(fixed, "event_shape", event_shape)
        object.__setattr__(fixed, "event_ndim", len(event_shape))
        return fixed

    def _require_event_shape(self, what: str) -> tuple[int, ...]:
        if self.event_shape is None:
            raise ValueError(
                f"{type(self).__name__}.{what} needs a fixed event shape: build the model with "
                "event_shape=... or call .with_event_shape(shape)."
            )
        return tuple(self.event_shape)


class ScoreFunction(NoiseModel):
    """Wraps a plain callable ``x -> grad_x log Q(x)`` (physical units, one event, no t).

    It has no diffusion level (only t = 0), no log_prob and no sampler, so ScoreLikelihood uses it
    with energy="line" or "none".
    """

    fn: Callable
    event_shape: tuple[int, ...] | None = eqx.field(static=True)
    event_ndim: int | None = eqx.field(static=True)
    scale: float
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)

    def __init__(self, fn: Callable, event_shape: tuple[int, ...] | None = None):
        self.fn = fn
        self.event_shape = None if event_shape is None else tuple(int(n) for n in event_shape)
        self.event_ndim = None if event_shape is None else len(self.event_shape)
        self.scale = 1.0
        self.t_min = self.t_max = 0.0

    def unit_score(self, u, t):
        return self.fn(u)

    def unit_sigma(self, t):
        return jnp.zeros_like(jnp.asarray(t, dtype=float))


def as_noise_model(noise) -> NoiseModel:
    """Returns ``noise`` if it is a NoiseModel, wraps a callable score in ScoreFunction, else errors."""
    if isinstance(noise, NoiseModel):
        return noise
    if callable(noise):
        return ScoreFunction(noise)
    raise TypeError(
        f"Expected a NoiseModel or a callable x -> score(x), got {type(noise).__name__}."
    )
