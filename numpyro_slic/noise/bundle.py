"""Model bundles: one ``.zip`` file that rebuilds a trained noise model.

A bundle holds two members:

- ``model.json``: ``format`` / ``format_version``, the package version that wrote it, the model
  (class, ``UNetConfig`` or null for a backbone alone, SDE, parameterisation, scale, t_min / t_max,
  backbone and reference-patch shapes), the weights' file name, byte count and sha256, an optional calibration, and the caller's
  ``metadata`` (data provenance, patch size, training configuration, steps, losses, ...).
- ``weights.eqx``: the model's arrays, ``equinox.tree_serialise_leaves``.

``load_noise_model`` rebuilds the model skeleton from ``model.json`` (no weights are initialised),
checks the checksum, and reads the arrays into it. Names of shipped models (``shipped_models()``:
"jwst-nircam-f150w", "hst-acs-f814w", ...) resolve to ``numpyro_slic/models/<name>.zip`` inside the
installed package.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import io
import json
import os
import zipfile
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data.io import atomic_write
from .backbones import (
    BACKBONE_KINDS,
    CorrelatedMixtureBackbone,
    GaussianBackbone,
    GaussianCopulaBackbone,
    MixtureBackbone,
)
from .base import NoiseModel
from .learned import LearnedNoise
from .networks import UNet, UNetConfig
from .sde import sde_from_dict

__all__ = ["save_noise_model", "load_noise_model", "read_bundle_metadata", "shipped_models"]

FORMAT = "numpyro-slic-noise-model"
FORMAT_VERSION = 1
_JSON = "model.json"
_WEIGHTS = "weights.eqx"
_SHIPPED = ("jwst-nircam-f150w", "jwst-nircam-sw", "jwst-nircam-lw", "hst-acs-f814w", "ground-ccd-saao")


def shipped_models() -> tuple[str, ...]:
    """Names of the pretrained bundles that ship with the package."""
    return _SHIPPED


def save_noise_model(path: str | os.PathLike, model: NoiseModel, metadata: dict[str, Any] | None = None) -> None:
    """Writes ``model`` (a ``LearnedNoise``, or a ``CalibratedNoise`` around one) to a bundle.

    The file is written atomically (``numpyro_slic.data.io.atomic_write``): ``path`` is never left
    half-written.

    Args:
        path: the bundle file (conventionally ``.zip``); its directory must exist.
        model: the model to save.
        metadata: JSON-serialisable dict stored as ``model.json["metadata"]`` (data provenance,
            training configuration and losses, ...).
    """
    base, calibration = _split_calibration(model)
    if not isinstance(base, LearnedNoise):
        raise TypeError(
            f"save_noise_model saves LearnedNoise models (optionally calibrated), got {type(model).__name__}; "
            "analytic models are rebuilt from their parameters instead."
        )
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, eqx.filter(base, eqx.is_array))
    weights = buf.getvalue()
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": _package_version(),
        "model": _describe(base),
        "weights": {"file": _WEIGHTS, "bytes": len(weights), "sha256": hashlib.sha256(weights).hexdigest()},
        "calibration": None if calibration is None else _calibration_to_dict(calibration),
        "metadata": {} if metadata is None else metadata,
    }
    try:
        text = json.dumps(header, indent=1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"save_noise_model: metadata must be JSON-serialisable (finite numbers): {err}") from err

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(_JSON, text)
            zf.writestr(_WEIGHTS, weights)

    atomic_write(path, write)


def load_noise_model(name_or_path: str | os.PathLike) -> NoiseModel:
    """Loads a bundle: a shipped model's name or a path to a ``.zip`` bundle.

    Returns:
        The ``LearnedNoise``, or ``CalibratedNoise(LearnedNoise, calibration)`` when the bundle
        stores a calibration.

    Raises:
        FileNotFoundError: no such file or shipped name.
        ValueError: truncated or corrupt file, checksum mismatch, unknown format version, or weights
            that do not fit the architecture described in ``model.json``.
    """
    path, header, weights = _read(name_or_path)
    try:
        skeleton = _skeleton(header["model"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path}: model.json does not describe a model this version can build ({type(err).__name__}: "
            f"{err}); re-save the model with save_noise_model."
        ) from err
    arrays, static = eqx.partition(skeleton, lambda x: isinstance(x, jax.ShapeDtypeStruct))
    try:
        arrays = eqx.tree_deserialise_leaves(io.BytesIO(weights), arrays)
    except Exception as err:  # equinox raises RuntimeError on shape/dtype mismatch, others on garbage
        raise ValueError(
            f"{path}: the weights do not match the architecture in model.json ({type(err).__name__}: "
            f"{err}). The file was edited or assembled from different models; re-save it with "
            "save_noise_model."
        ) from err
    model = eqx.combine(arrays, static)
    if header.get("calibration") is not None:
        return _calibration_from_dict(model, header["calibration"])
    return model


def read_bundle_metadata(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``model.json`` of a bundle (checksum verified)."""
    return _read(name_or_path)[1]


# ---- internals ------------------------------------------------------------------------------------


def _package_version() -> str:
    try:
        return importlib.metadata.version("numpyro-slic")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _resolve(name_or_path) -> str:
    if isinstance(name_or_path, str) and name_or_path in _SHIPPED:
        ref = importlib.resources.files("numpyro_slic") / "models" / f"{name_or_path}.zip"
        if not ref.is_file():
            raise FileNotFoundError(
                f"The shipped model {name_or_path!r} is missing from this installation ({ref}); "
                "reinstall numpyro-slic, or train it with scripts/train_shipped_models.sh."
            )
        return os.fspath(ref)
    path = os.fspath(name_or_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No noise-model bundle at {path!r}. Pass a path to a bundle written by save_noise_model "
            f"or one of the shipped names {list(_SHIPPED)}."
        )
    return path


def _read(name_or_path) -> tuple[str, dict, bytes]:
    path = _resolve(name_or_path)
    try:
        with zipfile.ZipFile(path) as zf:
            header = json.loads(zf.read(_JSON))
            weights = zf.read(_WEIGHTS)
    except (zipfile.BadZipFile, KeyError, EOFError, OSError, ValueError) as err:
        # zipfile raises BadZipFile for truncation and CRC errors, KeyError for a missing member.
        raise ValueError(
            f"Cannot read the noise-model bundle {path!r} (truncated, corrupt, or not a bundle: "
            f"{type(err).__name__}: {err}). Download or save it again."
        ) from err
    if header.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a numpyro-slic noise-model bundle (format {header.get('format')!r}).")
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path!r} has bundle format version {header.get('format_version')!r}; this numpyro-slic "
            f"reads version {FORMAT_VERSION}: upgrade the package or re-save the model."
        )
    expected = header.get("weights", {}).get("sha256")
    actual = hashlib.sha256(weights).hexdigest()
    if expected != actual:
        raise ValueError(
            f"{path!r}: the weights' sha256 {actual} does not match model.json's {expected}; the file is "
            "corrupt. Download or save it again."
        )
    return path, header, weights


def _describe(model: LearnedNoise) -> dict:
    return {
        "class": "LearnedNoise",
        "net": None if model.net is None else model.net.config.to_dict(),
        "sde": model.sde.to_dict(),
        "parameterisation": model.parameterisation,
        "scale": model.scale,
        "t_min": model.t_min,
        "t_max": model.t_max,
        "event_shape": None if model.event_shape is None else list(model.event_shape),
        "backbone": _describe_backbone(model.backbone),
        "reference_shape": None if model.reference_patch is None else list(model.reference_patch.shape),
    }


def _describe_backbone(backbone) -> dict | None:
    if backbone is None:
        return None
    if isinstance(backbone, MixtureBackbone):
        return {"kind": "mixture", "components": int(backbone.sigmas.shape[0])}
    if isinstance(backbone, CorrelatedMixtureBackbone):
        return {"kind": "correlated-mixture", "components": int(backbone.mixture.sigmas.shape[0]),
                "kernel_shape": list(backbone.core.kernel.shape), "floor": backbone.core.floor,
                "background": backbone.background}
    if isinstance(backbone, GaussianCopulaBackbone):
        return {"kind": "gaussian-copula", "components": int(backbone.marginal.sigmas.shape[0]),
                "kernel_shape": list(backbone.core.kernel.shape), "floor": backbone.core.floor,
                "background": backbone.background}
    return {"kind": "gaussian", "kernel_shape": list(backbone.kernel.shape), "floor": backbone.floor}


def _backbone_skeleton(desc: dict | None):
    """A backbone of the described structure with placeholder arrays (bundles before the mixture
    backbone existed have no "kind": they hold a Gaussian one)."""
    if desc is None:
        return None
    kind = desc.get("kind", "gaussian")
    if kind not in BACKBONE_KINDS:
        raise ValueError(
            f"unknown backbone kind {kind!r} (this numpyro-slic knows {', '.join(BACKBONE_KINDS)}): "
            "upgrade numpyro-slic to load this bundle."
        )
    core = mixture = None
    if kind != "mixture":
        core = GaussianBackbone(jnp.ones(desc["kernel_shape"], jnp.float32), floor=float(desc["floor"]))
    if kind != "gaussian":
        zeros = jnp.zeros(int(desc["components"]), jnp.float32)
        mixture = MixtureBackbone(zeros, zeros, zeros + 1.0)
    if kind == "correlated-mixture":
        return CorrelatedMixtureBackbone(core, mixture, float(desc.get("background", 0.0)))
    if kind == "gaussian-copula":
        return GaussianCopulaBackbone(mixture, core, float(desc["background"]))
    return core if kind == "gaussian" else mixture


def _skeleton(desc: dict) -> LearnedNoise:
    """A LearnedNoise of the described structure with placeholder (shape-only) arrays."""
    if desc.get("class") != "LearnedNoise":
        raise ValueError(f"unknown model class {desc.get('class')!r}")
    config = None if desc["net"] is None else UNetConfig.from_dict(desc["net"])  # None: the backbone alone
    backbone = desc["backbone"]
    ref_shape = desc["reference_shape"]

    def build():
        return LearnedNoise(
            None if config is None else UNet(config, key=jax.random.key(0)),
            sde_from_dict(desc["sde"]),
            parameterisation=desc["parameterisation"],
            backbone=_backbone_skeleton(backbone),
            reference_patch=None if ref_shape is None else jnp.zeros(ref_shape, jnp.float32),
            scale=float(desc["scale"]),
            t_min=float(desc["t_min"]),
            t_max=float(desc["t_max"]),
            event_shape=None if desc["event_shape"] is None else tuple(desc["event_shape"]),
        )

    # eval_shape gives ShapeDtypeStruct leaves, so no weights are initialised just to be replaced.
    return eqx.filter_eval_shape(build)


def _split_calibration(model):
    from .calibration import CalibratedNoise

    if isinstance(model, CalibratedNoise):
        return model.base, model.calibration
    return model, None


def _calibration_to_dict(calibration) -> dict:
    """A ScoreCalibration as JSON: its few small arrays as nested lists (float32 round trip)."""
    return {
        "class": "ScoreCalibration",
        "levels": np.asarray(calibration.levels, np.float64).tolist(),
        "sigmas": np.asarray(calibration.sigmas, np.float64).tolist(),
        "mean": np.asarray(calibration.mean, np.float64).tolist(),
        "gains": None if calibration.gains is None else np.asarray(calibration.gains, np.float64).tolist(),
    }


def _calibration_from_dict(model: LearnedNoise, d: dict) -> NoiseModel:
    from .calibration import CalibratedNoise, ScoreCalibration

    dtype = jnp.result_type(float)
    try:
        calibration = ScoreCalibration(
            levels=jnp.asarray(d["levels"], dtype),
            sigmas=jnp.asarray(d["sigmas"], dtype),
            mean=jnp.asarray(d["mean"], dtype),
            gains=None if d["gains"] is None else jnp.asarray(d["gains"], dtype),
        )
        return CalibratedNoise(model, calibration)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"The bundle's calibration cannot be rebuilt ({type(err).__name__}: {err}); refit it with "
            "fit_calibration and save the model again."
        ) from err
