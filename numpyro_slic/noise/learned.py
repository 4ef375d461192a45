"""Learned noise models: a U-Net score or energy in the VE form of the noise-model protocol.

``LearnedNoise`` wraps a ``UNet`` F (trained by ``training.train_noise_model``) as a NoiseModel in
trained units. With sigma = ``sde.ve_sigma(t)`` and the input preconditioning
c_in = 1 / sqrt(1 + sigma^2) (trained units have unit variance, so c_in y has unit variance at
every level):

- ``"score"``: s(y, t) = F(c_in y, log sigma) / sigma + s_b(y, t)
- ``"energy"``: E(y, t) = -<y, F(c_in y, log sigma)> / sigma + E_b(y, t) and s = -grad_y E
  (Salimans & Ho 2021), so ``log_prob`` = -E is exact up to a constant in y and ``has_log_prob``
  is True.

s_b / E_b is the optional backbone (``backbones.py``), a density fitted to the training patches
whose exact score at every level is added so that F learns only the rest; without one s_b = E_b = 0.
A fresh net has F = 0 (zero-initialised output), i.e. it starts as the backbone.

A model may also be its backbone alone (``net=None``, ``training.fit_backbone_model``): a density
normalised at every level with an exact ``log_prob`` (``has_log_prob``) and exact draws, at the
cost of an FFT, for noise where no net trained on the data at hand beats its backbone (JWST
F150W's 183 patches: docs/noise_validation.md). Its levels are the backbone's own widening, exact
for Gaussian and mixture backbones and, for a correlated mixture or a copula, exact at width 0 only.

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

from .backbones import _BACKBONES, Backbone
from .base import NoiseModel
from .networks import UNet
from .sde import VESDE, VPSDE

__all__ = ["LearnedNoise", "Parameterisation"]

Parameterisation = Literal["score", "energy"]


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
