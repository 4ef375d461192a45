"""Training learned noise models by denoising score matching.

``train_noise_model`` fits a ``LearnedNoise`` to noise patches in trained units:

- loss: ``sde.dsm_loss`` (lambda(t) = sigma(t)^2, t ~ U[t_min, 1]) averaged over a batch;
- optimiser: optax AdamW (weight decay on conv/linear kernels only) with linear warmup and cosine
  decay, after global-norm gradient clipping; an exponential moving average (EMA) of the weights is
  kept, and the returned model uses EMA weights;
- augmentation: random translations (a random ``crop_size`` crop of a random patch), and only where
  the noise has those symmetries (``TrainConfig.rot180`` / ``flips``: docs/noise_sources.md measures
  which each real source allows; JWST short-wavelength stripes are vertical and slightly tilted, so
  180-degree turns only) random half turns or flips; never 90-degree rotations;
- determinism: step i's batch, crops, levels and noise come from ``fold_in(key, i)``, so a run
  resumed from a checkpoint continues exactly as an uninterrupted one;
- checkpoints: one file (JSON header + ``eqx.tree_serialise_leaves`` of step, weights, optimiser
  state, EMA and best weights), written atomically (``numpyro_slic.data.io.atomic_write``);
- early stopping: with validation patches, the EMA weights with the lowest validation loss are
  returned (``TrainConfig.keep_best``): a 0.9M-parameter net memorised the 120 000 JWST training
  pixels within a few thousand steps (docs/noise_models.md);
- validation: the DSM loss of the EMA model on held-out patches at fixed noise widths sigma and
  fixed noise (seed 0, whatever the training key), so runs with different seeds or schedules, and
  analytic baselines (``validation_loss`` takes any NoiseModel with an ``sde``), compare;
- data parallel: with several devices the batch is sharded over them (``jax.sharding``) and the
  weights are replicated; XLA inserts the gradient all-reduce.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import struct
import time
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..data.augment import random_flips, random_rot180
from ..data.io import atomic_write
from .._extras import require
from .backbones import (
    BACKBONE_KINDS,
    CorrelatedMixtureBackbone,
    GaussianBackbone,
    GaussianCopulaBackbone,
    MixtureBackbone,
    backbone_kind,
)
from .base import NoiseModel
from .learned import LearnedNoise, Parameterisation
from .networks import UNet, UNetConfig
from .sde import VESDE, VPSDE, dsm_loss, sample_t

optax = require("optax", "train")

__all__ = ["TrainConfig", "train_noise_model", "fit_backbone_model", "validation_loss", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.eqx"
_MAGIC = b"NSLICKPT"
# Validation uses this seed whatever the training key, so validation losses of runs compare.
_VAL_SEED = 0


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters (JSON-serialisable; stored in checkpoints and bundles).

    Attributes:
        batch_size: examples per step (a multiple of the device count for data parallelism).
        crop_size: side of the random crops (translation augmentation); None = the patch size
            (no augmentation). Must be a multiple of the net's ``UNetConfig.multiple``.
        rot180: turn each crop by 180 degrees with probability 1/2 (keeps every second-order
            statistic of stationary noise; allowed for every source surveyed).
        flips: flip each crop left-right and up-down, each with probability 1/2 (only for noise
            whose correlations are mirror-symmetric: not JWST F115W/F150W).
        learning_rate: peak AdamW learning rate.
        warmup_steps: linear warmup length; None = min(500, steps // 10).
        weight_decay: AdamW decoupled weight decay (kernels only).
        grad_clip: global gradient-norm clip.
        ema_decay: EMA decay, ramped as min(ema_decay, (1 + i) / (10 + i)).
        t_min: smallest training level; t ~ U[t_min, 1]. Also the model's ``t_min``.
        parameterisation: "score" or "energy".
        backbone: add a backbone fitted to the training patches (the net learns the rest).
        backbone_kind: "gaussian" (``GaussianBackbone``: the stationary Gaussian, right
            correlations), "mixture" (``MixtureBackbone``: i.i.d. Gaussian-mixture pixels, right
            marginal tails; for nearly white noise with rare outliers) or "correlated-mixture"
            (``CorrelatedMixtureBackbone``: both; for correlated noise with rare outliers) or
            "gaussian-copula" (``GaussianCopulaBackbone``: both, with the marginal exact; for
            outliers that are single pixels rather than filtered like the rest of the noise).
        backbone_radius: largest autocovariance lag of a backbone's correlations, pixels.
        backbone_components: components of a backbone's pixel mixture.
        backbone_background: give a correlated-mixture or copula backbone a grid-wide background level, with
            the k = 0 power its tapered kernel misses on the training patches (for sky backgrounds
            that vary on scales beyond ``backbone_radius``).
        val_sigmas: the VE-form widths (trained units) at which the validation loss is computed.
        val_max_patches: validation patches used (the first ones).
        val_every: steps between validations (and at the last step), when there are
            validation patches.
        keep_best: return the EMA weights of the validation with the lowest mean loss (early
            stopping: small data sets are memorised by long training); else the last EMA weights.
        log_every: steps between loss read-outs (each one waits for the device).
    """

    batch_size: int = 64
    crop_size: int | None = None
    rot180: bool = False
    flips: bool = False
    learning_rate: float = 3e-4
    warmup_steps: int | None = None
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    t_min: float = 1e-3
    parameterisation: Parameterisation = "score"
    backbone: bool = False
    backbone_kind: Literal["gaussian", "mixture", "correlated-mixture", "gaussian-copula"] = "gaussian"
    backbone_radius: int = 16
    backbone_components: int = 3
    backbone_background: bool = False
    val_sigmas: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
    val_max_patches: int = 256
    val_every: int = 500
    keep_best: bool = True
    log_every: int = 100

    def __post_init__(self):
        object.__setattr__(self, "val_sigmas", tuple(float(s) for s in self.val_sigmas))
        if self.batch_size < 1 or self.log_every < 1 or self.val_every < 1 or not self.val_sigmas:
            raise ValueError(
                "TrainConfig: batch_size, log_every and val_every must be >= 1, val_sigmas non-empty."
            )
        if self.parameterisation not in ("score", "energy"):
            raise ValueError(
                f"TrainConfig: parameterisation must be 'score' or 'energy', got {self.parameterisation!r}."
            )
        if self.backbone_kind not in BACKBONE_KINDS:
            raise ValueError(
                f"TrainConfig: backbone_kind must be one of {BACKBONE_KINDS}, got {self.backbone_kind!r}."
            )
        if self.backbone_background and self.backbone_kind not in ("correlated-mixture", "gaussian-copula"):
            raise ValueError(
                "TrainConfig: backbone_background needs backbone_kind='correlated-mixture' or 'gaussian-copula', got "
                f"{self.backbone_kind!r}."
            )
        if self.backbone_components < 1:
            raise ValueError(f"TrainConfig: backbone_components must be >= 1, got {self.backbone_components}.")
        if not 0 < self.t_min < 1:
            raise ValueError(f"TrainConfig: t_min must lie in (0, 1), got {self.t_min}.")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"TrainConfig: ema_decay must lie in [0, 1), got {self.ema_decay}.")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["val_sigmas"] = list(self.val_sigmas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**{k: (tuple(v) if k == "val_sigmas" else v) for k, v in d.items()})


def train_noise_model(
    patches,
    *,
    steps: int,
    key: PRNGKeyArray,
    net: UNetConfig = UNetConfig(),
    config: TrainConfig = TrainConfig(),
    sde: VESDE | VPSDE = VESDE(),
    scale: float | None = None,
    val_patches=None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    resume: bool = True,
    progress: bool = True,
    history: list | None = None,
    init: LearnedNoise | None = None,
) -> LearnedNoise:
    """Trains a ``LearnedNoise`` on noise patches by denoising score matching.

    Args:
        patches: ``(N, H, W)`` float patches in trained units (noise divided by its robust sigma),
            or a ``numpyro_slic.data.PatchSet``.
        steps: total optimisation steps (a resumed run counts the steps already done).
        key: PRNG key; it fixes the initial weights and every step's batch.
        net: U-Net architecture.
        config: training hyperparameters.
        sde: the diffusion schedule (VE or VP).
        scale: physical units per trained unit for the returned model; None takes the PatchSet's
            common ``sigma`` (1.0 for a plain array, or when the sources differ).
        val_patches: held-out patches ``(M, h, w)`` or a PatchSet, for the validation loss; its
            first patch becomes the model's ``reference_patch`` (else the first training patch).
        checkpoint_dir: where ``checkpoint.eqx`` is written every ``checkpoint_every`` steps and at
            the end; None writes none.
        resume: continue from a checkpoint in ``checkpoint_dir`` when one exists. It must come from
            the same data shape, configuration, steps and key, else ValueError.
        progress: show a tqdm bar (step, loss, it/s, ETA).
        history: a list to which one dict per read-out (every ``log_every`` steps, validation
            and checkpoint) is appended: step, train_loss (mean since the last read-out),
            patches_per_s (the first read-out includes compilation), and at validations val_loss
            (mean over levels), val_loss_per_level and best_step.
        init: start from this trained model's net instead of random weights, and keep its backbone
            (not refitted: the net learned what that backbone misses). For fine-tuning a shipped
            model on one's own noise, or continuing a run on a fresh learning-rate schedule. Its
            net, sde, parameterisation and backbone kind must be ``net``'s, ``sde``'s and
            ``config``'s, else ValueError naming the differences. The optimiser starts afresh
            (warmup, then cosine decay from ``config.learning_rate``: lower it for fine-tuning).

    Returns:
        The EMA-weighted ``LearnedNoise`` (``event_shape`` None, ``t_min`` = ``config.t_min``): the
        best-validated EMA weights with ``config.keep_best`` and validation patches, else the last.
    """
    data, data_scale = _as_patch_array(patches, "patches")
    val = None if val_patches is None else _as_patch_array(val_patches, "val_patches")[0]
    steps = int(steps)
    if steps < 1 or checkpoint_every < 1:
        raise ValueError(f"steps and checkpoint_every must be >= 1, got {steps} and {checkpoint_every}.")
    if not isinstance(net, UNetConfig) or not isinstance(config, TrainConfig):
        raise TypeError("net must be a UNetConfig and config a TrainConfig.")
    crop = _crop_size(config, net, data.shape)
    scale = data_scale if scale is None else float(scale)

    k_init, k_train = jax.random.split(key)
    if init is not None:
        _check_init(init, net, config, sde)
    model = LearnedNoise(
        UNet(net, key=k_init) if init is None else init.net,
        sde,
        parameterisation=config.parameterisation,
        backbone=_fit_backbone(data, config) if init is None else init.backbone,
        reference_patch=(val if val is not None else data)[0],
        scale=scale,
        t_min=config.t_min,
    )
    params, static = eqx.partition(model, _trainable_spec(model))
    optimiser = _optimiser(config, steps)
    opt_state = optimiser.init(params)
    # Training state: weights, optimiser, EMA, and the EMA weights with the best validation loss
    # so far (with that loss and its step), all saved in checkpoints so a resumed run is the same.
    state = (params, opt_state, params, params, jnp.asarray(jnp.inf), jnp.int32(0))
    start = 0

    run_id = _run_fingerprint(data, net, config, sde, steps, key, init)
    ckpt_path = None if checkpoint_dir is None else os.path.join(os.fspath(checkpoint_dir), CHECKPOINT_NAME)
    if ckpt_path is not None:
        os.makedirs(os.fspath(checkpoint_dir), exist_ok=True)
        if resume and os.path.exists(ckpt_path):
            start, state = _load_checkpoint(ckpt_path, run_id, state)

    sharding = _batch_sharding(config.batch_size)
    replicated = None if sharding is None else jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
    data_dev = jnp.asarray(data) if replicated is None else jax.device_put(jnp.asarray(data), replicated)
    if replicated is not None:
        state = jax.device_put(state, replicated)
    params, opt_state, ema, best, best_loss, best_step = state

    step_fn = partial(_train_step, static=static, optimiser=optimiser, config=config, crop=crop, sharding=sharding)
    val_fn = None if val is None else _validation(static, val, config.val_sigmas, config.val_max_patches)

    bar = _progress_bar(steps, start, progress)
    loss_sum, n_logged, t_last, step_last = jnp.zeros(()), 0, time.perf_counter(), start
    for i in range(start, steps):
        params, opt_state, ema, loss = step_fn(params, opt_state, ema, data_dev, k_train, jnp.int32(i))
        loss_sum, n_logged = loss_sum + loss, n_logged + 1
        done = i + 1
        at_checkpoint = ckpt_path is not None and (done % checkpoint_every == 0 or done == steps)
        at_validation = val_fn is not None and (done % config.val_every == 0 or done == steps)
        if done % config.log_every == 0 or done == steps or at_checkpoint or at_validation:
            record = {"step": done, "train_loss": float(loss_sum) / n_logged}
            now = time.perf_counter()
            record["patches_per_s"] = (done - step_last) * config.batch_size / (now - t_last)
            if at_validation:
                per_level = np.asarray(val_fn(ema))
                record["val_loss"] = float(per_level.mean())
                record["val_loss_per_level"] = [float(v) for v in per_level]
                if record["val_loss"] < float(best_loss):
                    best, best_loss, best_step = ema, jnp.asarray(record["val_loss"]), jnp.int32(done)
                record["best_step"] = int(best_step)
            if ckpt_path is not None and at_checkpoint:
                _save_checkpoint(ckpt_path, run_id, done, (params, opt_state, ema, best, best_loss, best_step))
            if history is not None:
                history.append(record)
            bar.set_postfix(loss=f"{record['train_loss']:.4f}", **(
                {"val": f"{record['val_loss']:.4f}"} if "val_loss" in record else {}))
            loss_sum, n_logged, t_last, step_last = jnp.zeros(()), 0, time.perf_counter(), done
        bar.update(1)
    bar.close()
    chosen = best if (config.keep_best and val_fn is not None) else ema
    return eqx.combine(jax.device_get(chosen), static)


def fit_backbone_model(
    patches,
    *,
    config: TrainConfig = TrainConfig(),
    sde: VESDE | VPSDE = VESDE(),
    scale: float | None = None,
    val_patches=None,
) -> LearnedNoise:
    """A ``LearnedNoise`` that is its backbone alone (``net=None``): fitted, not trained.

    The backbone of ``config`` (``backbone_kind``, ``backbone_components``, ``backbone_radius``,
    ``backbone_background``) fitted to ``patches`` as ``train_noise_model`` fits it, with no net:
    an exact normalised density with exact draws, as cheap as an FFT. For noise where every net
    trained on the data at hand is worse than its backbone on held-out patches (the JWST F150W
    set's 183 patches: docs/noise_validation.md). Arguments as ``train_noise_model``'s; the
    network and optimiser settings of ``config`` are not used.
    """
    if not config.backbone:
        raise ValueError("fit_backbone_model: config.backbone is False, so there is nothing to fit; "
                         "set backbone=True (and a backbone_kind).")
    data, data_scale = _as_patch_array(patches, "patches")
    val = None if val_patches is None else _as_patch_array(val_patches, "val_patches")[0]
    return LearnedNoise(
        None,
        sde,
        parameterisation="energy",
        backbone=_fit_backbone(data, config),
        reference_patch=(val if val is not None else data)[0],
        scale=data_scale if scale is None else float(scale),
        t_min=config.t_min,
    )


def _fit_backbone(data: np.ndarray, config: TrainConfig):
    """The backbone ``config`` asks for, fitted to the training patches (None without one)."""
    if not config.backbone:
        return None
    if config.backbone_kind == "gaussian":
        return GaussianBackbone.from_patches(data, config.backbone_radius)
    if config.backbone_kind == "mixture":
        return MixtureBackbone.from_patches(data, config.backbone_components)
    if config.backbone_kind == "gaussian-copula":
        return GaussianCopulaBackbone.from_patches(data, config.backbone_components, config.backbone_radius,
                                                   background=config.backbone_background)
    return CorrelatedMixtureBackbone.from_patches(data, config.backbone_components, config.backbone_radius,
                                                  background=config.backbone_background)


def validation_loss(
    model: NoiseModel,
    patches: Float[ArrayLike, "m h w"],
    *,
    sigmas: tuple[float, ...] = TrainConfig.val_sigmas,
    max_patches: int = 256,
) -> Float[Array, " levels"]:
    """Mean DSM loss of ``model`` on noise patches (trained units) at fixed widths ``sigmas``.

    Works for any NoiseModel with an ``sde`` (learned or analytic): level j is
    t_j = ``model.sde.t_of_ve_sigma(sigmas[j])``. The noise comes from a fixed seed, so numbers
    compare across models, runs and schedules; the Gaussian baseline
    ``StationaryGaussianNoise.from_patches(train)`` evaluated the same way shows what the net adds.
    """
    params, static = eqx.partition(model, eqx.is_array)
    val = _as_patch_array(patches, "patches")[0]
    return _validation(static, val, sigmas, max_patches)(params)


# ---- internals ------------------------------------------------------------------------------------


def _as_patch_array(patches, what: str) -> tuple[np.ndarray, float]:
    """(N, H, W) float32 array and the common scale of a PatchSet (1.0 for arrays)."""
    scale = 1.0
    if hasattr(patches, "patches") and hasattr(patches, "provenance"):  # a PatchSet
        sigmas = {float(s.get("sigma", 1.0)) for s in patches.provenance.get("sources", [])}
        scale = sigmas.pop() if len(sigmas) == 1 else 1.0
        patches = patches.patches
    x = np.asarray(patches, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] < 1:
        raise ValueError(f"{what} must have shape (N, H, W) with N >= 1, got {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contain NaN or inf; drop or fill those patches first.")
    return x, scale


def _crop_size(config: TrainConfig, net: UNetConfig, shape) -> int:
    crop = min(shape[1:]) if config.crop_size is None else int(config.crop_size)
    if crop > min(shape[1:]):
        raise ValueError(f"crop_size {crop} exceeds the patch size {shape[1:]}.")
    if crop % net.multiple:
        raise ValueError(
            f"crop_size {crop} is not a multiple of {net.multiple} (2^(len(channel_mults) - 1)); "
            f"choose crop_size={crop - crop % net.multiple} or fewer levels."
        )
    return crop


def _trainable_spec(model: LearnedNoise):
    """True at the net's floating-point arrays except its fixed Fourier frequencies."""
    spec = jax.tree.map(lambda _: False, model)
    net_spec = eqx.tree_at(lambda n: n.freqs, jax.tree.map(eqx.is_inexact_array, model.net), False)
    return eqx.tree_at(lambda m: m.net, spec, net_spec)


def _batch_sharding(batch_size: int):
    n = jax.device_count()
    if n == 1:
        return None
    if batch_size % n:
        raise ValueError(
            f"batch_size {batch_size} is not a multiple of the {n} devices; pick a multiple for "
            "data-parallel training."
        )
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))


def draw_batch(
    data: Float[Array, "n h w"], key: PRNGKeyArray, i, config: TrainConfig, crop: int
) -> tuple[Float[Array, "b crop crop"], Float[Array, " b"], Float[Array, "b crop crop"]]:
    """Step ``i``'s training batch: random crops of random patches (turned or flipped where the
    config allows), their levels t and their Gaussian noise; a pure function of ``(key, i)``."""
    b = config.batch_size
    k_idx, k_row, k_col, k_t, k_z = jax.random.split(jax.random.fold_in(key, i), 5)
    n, h, w = data.shape
    idx = jax.random.randint(k_idx, (b,), 0, n)
    rows = jax.random.randint(k_row, (b,), 0, h - crop + 1)
    cols = jax.random.randint(k_col, (b,), 0, w - crop + 1)
    x0 = jax.vmap(lambda j, r, c: jax.lax.dynamic_slice(data[j], (r, c), (crop, crop)))(idx, rows, cols)
    # Keys of their own, derived so that runs without these options keep their exact batches.
    if config.flips:
        x0 = random_flips(jax.random.fold_in(k_z, 1), x0, left_right=True, up_down=True)
    if config.rot180:
        x0 = random_rot180(jax.random.fold_in(k_z, 2), x0)
    return x0, sample_t(k_t, (b,), config.t_min), jax.random.normal(k_z, (b, crop, crop))


@lru_cache(maxsize=16)
def _optimiser(config: TrainConfig, steps: int) -> optax.GradientTransformation:
    """AdamW with warmup and cosine decay, one object per (config, steps), so that the compiled
    step (whose static arguments include it) is reused by later runs with the same settings."""
    warmup = max(1, min(500, steps // 10) if config.warmup_steps is None else int(config.warmup_steps))
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, warmup, max(steps, warmup + 1), config.learning_rate * 1e-2
    )
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(schedule, weight_decay=config.weight_decay, mask=_kernels_only),
    )


def _kernels_only(params):
    """Weight decay on conv and linear kernels, not on biases or norm scales."""
    return jax.tree.map(lambda x: x.ndim > 1, params)


def _dsm_batch_loss(params, static, x0, t, z):
    model = eqx.combine(params, static)
    one = lambda x, tt, zz: dsm_loss(model.unit_score, model.unit_sigma(tt), x, tt, zz)  # noqa: E731
    return jnp.mean(jax.vmap(one)(x0, t, z))


# Module level, with every array an argument (the frozen parts of the model included): a closure
# over them would embed them as constants, so each run would compile its own step (15-20 s for a
# small net on 2 CPU cores); this way runs with the same settings and shapes share one.
@eqx.filter_jit
def _train_step(params, opt_state, ema, data, key, i, *, static, optimiser, config: TrainConfig, crop: int,
                sharding):
    x0, t, z = draw_batch(data, key, i, config, crop)
    if sharding is not None:
        x0, t, z = (jax.lax.with_sharding_constraint(a, sharding) for a in (x0, t, z))
    loss, grads = jax.value_and_grad(_dsm_batch_loss)(params, static, x0, t, z)
    updates, opt_state = optimiser.update(grads, opt_state, params)
    params = eqx.apply_updates(params, updates)
    decay = jnp.minimum(config.ema_decay, (1.0 + i) / (10.0 + i))
    ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, ema, params)
    return params, opt_state, ema, loss


@eqx.filter_jit
def _validation_per_level(params, static, val, z, sigmas):
    model = eqx.combine(params, static)
    ts = model.sde.t_of_ve_sigma(sigmas)

    def level(args):
        t, zz = args
        sigma = model.unit_sigma(t)
        one = lambda x, zi: dsm_loss(model.unit_score, sigma, x, t, zi)  # noqa: E731
        return jnp.mean(jax.vmap(one)(val, zz))

    # lax.map over levels bounds memory to one level's batch of patches.
    return jax.lax.map(level, (ts, z))


def _validation(static, val: np.ndarray, sigmas, max_patches: int):
    """params -> the mean DSM loss per level on ``val``, with noise from a fixed seed."""
    val = jnp.asarray(val[:max_patches])
    sigmas = jnp.asarray(sigmas, dtype=val.dtype)
    z = jax.random.normal(jax.random.key(_VAL_SEED), sigmas.shape + val.shape)
    return lambda params: _validation_per_level(params, static, val, z, sigmas)


def _progress_bar(steps: int, start: int, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=steps, initial=start, disable=not progress, unit="step", dynamic_ncols=True)


def _check_init(init, net: UNetConfig, config: TrainConfig, sde) -> None:
    """Refuses an ``init`` model that is not the architecture this run trains."""
    if not isinstance(init, LearnedNoise) or init.net is None:
        raise ValueError(
            "init must be a LearnedNoise with a net (a backbone alone is fitted, not trained: "
            f"use fit_backbone_model); got {type(init).__name__}"
            + (" without a net." if isinstance(init, LearnedNoise) else ".")
        )
    wanted = {"net": (init.net.config.to_dict(), net.to_dict()),
              "sde": (init.sde.to_dict(), sde.to_dict()),
              "parameterisation": (init.parameterisation, config.parameterisation),
              "backbone_kind": (backbone_kind(init.backbone), config.backbone_kind if config.backbone else None)}
    diff = {k: v for k, v in wanted.items() if v[0] != v[1]}
    if diff:
        raise ValueError(
            "init is not the model this run would train; it differs in "
            + "; ".join(f"{k}: init has {a}, the run asks for {b}" for k, (a, b) in diff.items())
            + ". Pass the init model's settings (numpyro-slic train --init-from takes them from the bundle)."
        )


def _weights_sha256(module) -> str:
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, jax.device_get(module))
    return hashlib.sha256(buf.getvalue()).hexdigest()


def _run_fingerprint(data, net, config, sde, steps, key, init=None) -> dict:
    """What a checkpoint must match to be resumed: data, configuration, steps, key and the
    starting weights of a fine-tuning run."""
    extra = {} if init is None else {"init_sha256": _weights_sha256((init.net, init.backbone))}
    return {**extra,
        "data_shape": list(data.shape),
        "data_sha256": hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest(),
        "net": net.to_dict(),
        "train": config.to_dict(),
        "sde": sde.to_dict(),
        "steps": steps,
        "key": np.asarray(jax.random.key_data(key)).ravel().tolist(),
    }


def _save_checkpoint(path: str, run_id: dict, step: int, state) -> None:
    header = json.dumps({"run": run_id, "step": step}).encode()
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, (jnp.int32(step), jax.device_get(state)))
    atomic_write(path, lambda f: f.write(_MAGIC + struct.pack("<Q", len(header)) + header + buf.getvalue()))


def _load_checkpoint(path: str, run_id: dict, like) -> tuple[int, Any]:
    with open(path, "rb") as f:
        blob = f.read()
    try:
        if blob[: len(_MAGIC)] != _MAGIC:
            raise ValueError("not a numpyro-slic checkpoint")
        (n,) = struct.unpack("<Q", blob[len(_MAGIC): len(_MAGIC) + 8])
        head = json.loads(blob[len(_MAGIC) + 8: len(_MAGIC) + 8 + n])
        body = io.BytesIO(blob[len(_MAGIC) + 8 + n:])
    except (ValueError, struct.error) as err:
        raise ValueError(
            f"Cannot read the checkpoint {path!r} ({err}); delete it or pass resume=False."
        ) from err
    if head.get("run") != run_id:
        diff = sorted(k for k in run_id if head.get("run", {}).get(k) != run_id[k])
        raise ValueError(
            f"The checkpoint {path!r} is from a different run (differs in {diff}); use another "
            "checkpoint_dir, pass resume=False, or rerun with the original data, settings and key."
        )
    try:
        step, state = eqx.tree_deserialise_leaves(body, (jnp.int32(0), like))
    except Exception as err:  # equinox raises RuntimeError/ValueError/EOFError on a bad body
        raise ValueError(
            f"The checkpoint {path!r} is truncated or corrupt ({type(err).__name__}: {err}); delete "
            "it or pass resume=False."
        ) from err
    return int(step), state
