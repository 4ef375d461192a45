"""Coverage problems: a NumPyro model, its prior, the likelihoods to compare and REAL held-out noise.

A ``CoverageProblem`` is everything the injection runner needs and nothing it computes: the model
``model(data, *, noise, t)`` (data ``None`` samples the observation), the simulator that turns a
parameter draw into a noise-free image, the noise models of the likelihoods under test and their
diffusion levels, and the bank of real noise patches that injections draw from.

``lens_coverage_problem`` is the demo's lens (``numpyro_slic.demo``): SIE + shear + Sersic source with
the shipped F150W PSF at 0.03"/pixel, scaled to the image size, in real held-out JWST F150W, JWST
F115W + F150W whitened by the median-filtered noise map (``jwst-sw``), JWST F277W + F444W
(``jwst-lw``) or HST F814W sky noise. The injection noise is distinct ``size x size`` tiles of the held-out patches (no
two share a pixel); the white and stationary Gaussians are fitted to the held-out sky that no
injection tile touches. So no likelihood has seen the noise it is tested on, and the learned model
never saw any of it (it was trained on the training split).

``galaxy_coverage_problem`` is a PSF-convolved elliptical Sersic galaxy (6 parameters) on the same
kind of tiles, for noise sources whose pixels do not suit the lens: the raw ground-based CCD frame
(``ground-ccd``: a Gaussian core whose background varies across the frame, plus cosmic-ray and
hot-pixel hits), or any other source.
"""

from __future__ import annotations

import dataclasses
import os
from functools import partial
from typing import Callable, Mapping

import numpy as np

__all__ = [
    "CoverageProblem",
    "lens_coverage_problem",
    "galaxy_coverage_problem",
    "binned_psf",
    "noise_tiles",
    "NOISE_SOURCES",
]

# noise source -> (shipped held-out patch set or sets, shipped noise model; the problem factories
# also take noise_model=<a bundle path or NoiseModel> instead).
NOISE_SOURCES = {
    "jwst-f150w": ("jwst-f150w-sky-val", "jwst-nircam-f150w"),
    # Two bands with the same noise (docs/noise_sources.md): their held-out sets pooled.
    "jwst-sw": (("jwst-f115w-sky-val", "jwst-f150w-smoothed-sky-val"), "jwst-nircam-sw"),
    "jwst-lw": (("jwst-f277w-sky-val", "jwst-f444w-sky-val"), "jwst-nircam-lw"),
    "hst-f814w": ("hst-f814w-sky-val", "hst-acs-f814w"),
    "ground-ccd": ("ground-ccd-sky-val", "ground-ccd-saao"),
}
_LIKELIHOOD_KINDS = {"white": "white Gaussian", "stationary": "stationary Gaussian", "slic": "SLIC"}


@dataclasses.dataclass(frozen=True, eq=False)
class CoverageProblem:
    """What the injection runner needs.

    Attributes:
        name: a label stored with the results (e.g. "lens32-jwst-f150w").
        model: NumPyro model ``model(data, *, noise, t)``; it samples the parameters ``params`` from
            their prior and observes ``data`` (shape ``image_shape``) through a ScoreLikelihood.
        simulator: params dict -> noise-free image ``image_shape`` (the same as inside ``model``).
        params: names of the sampled (free) scalar parameters, in a fixed order.
        noises: likelihood name -> noise model.
        levels: likelihood name -> diffusion level t; every level has the same physical width
            ``level_sigma``, so one perturbation of the data serves every likelihood.
        level_sigma: sd of the one-off Gaussian perturbation of each injection (noise units).
        injection_noise: real noise patches ``(N, H, W)`` the injections draw from (never used to fit
            a likelihood).
        metric_noise, metric_level: a cheap Gaussian noise model and its level whose posterior's
            Laplace approximation is every likelihood's NUTS metric (the runner's docstring).
        info: JSON-serialisable description (sources, split sizes, priors).
    """

    name: str
    model: Callable
    simulator: Callable
    params: tuple[str, ...]
    noises: Mapping[str, object]
    levels: Mapping[str, float]
    level_sigma: float
    injection_noise: np.ndarray
    metric_noise: object
    metric_level: float
    info: dict

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.injection_noise.shape[1:])


def _describe(prior) -> dict | float:
    """A JSON description of a prior: its class and scalar parameters (a float stays a float)."""
    if isinstance(prior, float):
        return prior
    out = {"dist": type(prior).__name__}
    for name in getattr(prior, "arg_constraints", {}):
        value = np.asarray(getattr(prior, name, np.nan))
        if value.ndim == 0:
            out[name] = float(value)
    base = getattr(prior, "base_dist", None)
    if base is not None:
        out["base"] = _describe(base)
    return out


def binned_psf(kernel: np.ndarray, factor: int) -> np.ndarray:
    """A PSF kernel on pixels ``factor`` times larger: zero-padded to an odd multiple of ``factor``
    pixels and summed over ``factor x factor`` blocks (normalised to unit sum).

    The binned kernel's centre may sit up to half a fine pixel off the coarse pixel's centre: a
    constant offset of every image, which does not matter when the same simulator makes and fits
    the data.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if factor == 1:
        return kernel
    n = kernel.shape[0]
    out = -(-n // factor)
    out += 1 - out % 2  # odd, so the kernel keeps a centre pixel
    pad = out * factor - n
    kernel = np.pad(kernel, ((pad // 2, pad - pad // 2),) * 2)
    binned = kernel.reshape(out, factor, out, factor).sum(axis=(1, 3))
    return binned / binned.sum()


def noise_tiles(patches: np.ndarray, size: int) -> np.ndarray:
    """Disjoint ``size x size`` tiles of every patch, ``(N * (H // size) * (W // size), size, size)``."""
    patches = np.asarray(patches)
    n, h, w = patches.shape
    if size > min(h, w):
        raise ValueError(f"noise_tiles: tiles of {size} pixels do not fit in patches of {h} x {w}.")
    rows, cols = h // size, w // size
    tiles = patches[:, : rows * size, : cols * size].reshape(n, rows, size, cols, size)
    return tiles.transpose(0, 1, 3, 2, 4).reshape(-1, size, size)


def _tile_corners(positions: np.ndarray, shape: tuple[int, int], size: int) -> np.ndarray:
    """(source, row, col) in its image of every tile ``noise_tiles`` cuts, in its order."""
    rows, cols = shape[0] // size, shape[1] // size
    r, c = np.meshgrid(np.arange(rows) * size, np.arange(cols) * size, indexing="ij")
    offsets = np.stack([np.zeros(rows * cols, np.int64), r.ravel(), c.ravel()], 1)
    return (np.asarray(positions, np.int64)[:, None, :] + offsets[None]).reshape(-1, 3)


def _overlaps(corners: np.ndarray, others: np.ndarray, size: int) -> np.ndarray:
    """Whether each ``size x size`` tile at ``corners`` shares a pixel with any tile at ``others``."""
    same = corners[:, None, 0] == others[None, :, 0]
    close = np.all(np.abs(corners[:, None, 1:] - others[None, :, 1:]) < size, axis=-1)
    return np.any(same & close, axis=1)


def _held_out_split(factory: str, noise_source: str, size: int, fit_fraction: float, seed: int,
                    likelihoods: tuple[str, ...], fit_max_abs: float | None = None,
                    subtract_background: bool = False):
    """Checks the common arguments; returns (patch set name, fit tiles, injection tiles, info).

    The held-out patches overlap (cut at a stride smaller than their side), so their tiles share
    sky. The injection noise is therefore drawn from *distinct* tiles (``noise.fidelity.distinct_crops``:
    no two share a pixel), shuffled with ``seed``; ``fit_fraction`` of them are set aside and the
    rest are the injection tiles. The Gaussians are fitted to every tile of the held-out patches
    that shares no pixel with an injection tile, so no likelihood sees any of the sky it is tested
    on. (Until 2026-11-29 all tiles were shuffled and split, so fit and injection tiles shared sky
    and injections repeated each other's pixels: JWST F150W's 198 injection tiles at 32 x 32 hold
    12 distinct ones.) ``info`` records the counts; an injection id past the number of injection
    tiles reuses a tile (the runner takes tile ``id mod N``), with other parameters.

    With ``fit_max_abs``, fit tiles with a pixel beyond it (sky sigma) are dropped (used by nothing),
    so that a few cosmic rays do not inflate the Gaussians' variance: a robust Gaussian baseline.
    With ``subtract_background``, the (kept) fit tiles' mean pixel is subtracted from every tile: the
    background level measured on blank sky beside the target. The mean, not a clipped median, since
    it is the level a fitted sky offset under zero-mean noise estimates. A held-out region's residual
    level is otherwise one offset common to all its injections, which a zero-mean model cannot know.
    """
    from ..data import load_patch_sets
    from ..noise.fidelity import distinct_crops

    if noise_source not in NOISE_SOURCES:
        raise ValueError(f"{factory}: unknown noise_source {noise_source!r}; choose one of {tuple(NOISE_SOURCES)}.")
    unknown = set(likelihoods) - set(_LIKELIHOOD_KINDS)
    if unknown or not likelihoods:
        raise ValueError(f"{factory}: likelihoods must be among 'white', 'stationary', 'slic', got {likelihoods}.")
    if not 0 < fit_fraction < 1:
        raise ValueError(f"{factory}: fit_fraction must be in (0, 1), got {fit_fraction}.")
    patch_name = NOISE_SOURCES[noise_source][0]
    held_out = load_patch_sets(patch_name)
    if not 16 <= size <= held_out.patches.shape[-1]:
        raise ValueError(
            f"{factory}: size must be between 16 and the {noise_source} held-out patches' "
            f"{held_out.patches.shape[-1]} pixels, got {size}."
        )
    distinct, where = distinct_crops(held_out.patches, held_out.positions, size)
    order = np.random.default_rng(seed).permutation(len(distinct))
    n_aside = max(int(round(fit_fraction * len(distinct))), 1)
    if n_aside >= len(distinct):
        raise ValueError(f"{factory}: the {noise_source} held-out patches hold {len(distinct)} distinct "
                         f"{size} x {size} tiles, too few to set {n_aside} aside; use a smaller size.")
    inject = distinct[order[n_aside:]]
    inject_corners = np.asarray([np.asarray(held_out.positions[i], np.int64) + (0, r, c)
                                 for i, r, c in (where[j] for j in order[n_aside:])])
    tiles = noise_tiles(held_out.patches, size)
    fit = tiles[~_overlaps(_tile_corners(held_out.positions, held_out.patches.shape[1:], size),
                           inject_corners, size)]
    info = {"tiles": "distinct injection tiles, fit tiles sharing no pixel with them",
            "tiles_distinct": int(len(distinct)),
            # (source, row, col) of each injection tile's corner in its image, in injection order.
            "injection_tile_corners": inject_corners.tolist()}
    if fit_max_abs is not None:
        keep = np.abs(fit).max(axis=(1, 2)) <= fit_max_abs
        fit = fit[keep]
        info |= {"fit_max_abs": float(fit_max_abs), "tiles_fit_dropped": int((~keep).sum())}
    if len(fit) < 2:
        raise ValueError(f"{factory}: fewer than 2 fit tiles ({len(fit)}) share no pixel with the injection "
                         f"tiles{'' if fit_max_abs is None else ' and lie within fit_max_abs'}; raise fit_fraction.")
    if subtract_background:
        level = float(fit.mean())
        fit, inject = fit - level, inject - level
        info["background_subtracted"] = level
    return patch_name, fit, inject, info


def _coverage_problem(name: str, model, simulator, priors: dict, likelihoods: tuple[str, ...],
                      noise_model, fit: np.ndarray, inject: np.ndarray, level_sigma: float,
                      info: dict) -> CoverageProblem:
    """Builds the likelihoods' noise models and the CoverageProblem.

    White and stationary Gaussians are fitted to the ``fit`` tiles; "slic" loads ``noise_model`` (a
    shipped name or a bundle path; a NoiseModel is used as it is) at scale 1, since the held-out
    patches are in the model's trained units (sky sigma = 1). The stationary Gaussian of the fit
    tiles is every likelihood's NUTS metric.
    """
    from ..likelihood import level_for_sigma
    from ..noise.bundle import load_noise_model, read_bundle_metadata
    from ..problems.lens import likelihood_noise

    noises = {}
    weights_sha256 = None
    for kind in likelihoods:
        if kind == "slic":
            learned = noise_model
            if isinstance(learned, (str, os.PathLike)):
                # A shipped name can hold other weights in another release: the runner's resume
                # check compares the weights' checksum, not the name.
                weights_sha256 = read_bundle_metadata(learned)["weights"]["sha256"]
                learned = load_noise_model(learned).with_scale(1.0)
            noises[_LIKELIHOOD_KINDS[kind]] = likelihood_noise("slic", learned=learned)
        else:
            noises[_LIKELIHOOD_KINDS[kind]] = likelihood_noise(kind, patches=fit)
    metric_noise = likelihood_noise("stationary", patches=fit)
    return CoverageProblem(
        name=name,
        model=model,
        simulator=simulator,
        params=tuple(priors),
        noises=noises,
        levels={k: level_for_sigma(noise, level_sigma) for k, noise in noises.items()},
        level_sigma=float(level_sigma),
        injection_noise=np.asarray(inject, dtype=np.float32),
        metric_noise=metric_noise,
        metric_level=level_for_sigma(metric_noise, level_sigma),
        info={
            **info,
            "noise_model": noise_model if isinstance(noise_model, str) else
            os.fspath(noise_model) if isinstance(noise_model, os.PathLike) else type(noise_model).__name__,
            "noise_model_sha256": weights_sha256,
            "tiles_fit": int(len(fit)),
            "tiles_injection": int(len(inject)),
            "level_sigma": float(level_sigma),
            "priors": {k: _describe(v) for k, v in priors.items()},
        },
    )


def lens_coverage_problem(
    size: int = 32,
    noise_source: str = "jwst-f150w",
    *,
    level_sigma: float = 0.1,
    fit_fraction: float = 0.25,
    seed: int = 0,
    likelihoods: tuple[str, ...] = ("white", "stationary", "slic"),
    noise_model=None,
    fit_max_abs: float | None = None,
    sky_sd: float | None = None,
    subtract_background: bool = False,
) -> CoverageProblem:
    """The demo's lens in real held-out sky noise, on a size x size grid that always spans 1.92".

    The lens is the demo's (theta_E ~ U(0.4", 0.6"), source R_sersic ~ LogU(0.05", 0.12"), ...) at
    every size: the pixels are 0.03" x 64 / size (0.03" at 64, 0.06" at 32) and the shipped F150W PSF
    is binned to them, so a smaller image is the same sky seen with coarser pixels, not a smaller
    ring whose unresolved source makes the posterior degenerate. The source amplitude prior is
    scaled by (size / 64)^2 so the per-pixel signal-to-noise does not change with size. The noise
    is real noise per pixel at every size. The source's Sersic index is held at 1.5 (as in the
    demo: its degeneracy with amplitude and radius lengthens trajectories and says nothing about
    noise); 13 free parameters, with the source's amplitude and radius as natural logarithms
    (``source_log_amp``, ``source_log_R_sersic``: log-uniform priors).

    Args:
        size: image side in 0.03" pixels; at most the held-out patches' side (64 JWST, 32 HST).
        noise_source: a key of ``NOISE_SOURCES`` (shipped held-out patches and noise model).
        level_sigma: diffusion level as a Gaussian sd in sky-sigma units (the data are perturbed
            once at this sd; DESIGN section 1.2).
        fit_fraction: share of the noise tiles that fit the Gaussian likelihoods (the rest is
            injection noise).
        seed: shuffles the tiles before the split.
        likelihoods: any of "white", "stationary", "slic".
        noise_model: the SLIC likelihood's noise model: a shipped name, a bundle path or a
            NoiseModel (default: the source's model in ``NOISE_SOURCES``).
        fit_max_abs: drop fit tiles with a pixel beyond this many sky sigma (None: keep all).
        sky_sd: add a free constant sky level ``sky`` ~ Normal(0, sky_sd) (sky sigma) to the model,
            as a real fit has (docs/real_lens.md): it absorbs the tile's mean, the k = 0 mode whose
            variance a model trained on other sky need not know (docs/coverage.md). The problem is
            then named ``lens<size>sky-<source>`` (14 parameters). None: no sky level.
        subtract_background: subtract the fit tiles' mean level (sky sigma) from every tile, fit and
            injection alike, as a fit subtracts the background of nearby blank sky; the name gets
            ``-bgsub``. Without it a held-out region's residual level (JWST F150W: about -0.1 sky
            sigma) is a bias shared by every injection.
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    from ..data import load_shipped
    from ..lensing import LensSimulator, PixelGrid
    from ..likelihood import ScoreLikelihood

    patch_name, fit, inject, split_info = _held_out_split("lens_coverage_problem", noise_source, size, fit_fraction,
                                                          seed, likelihoods, fit_max_abs, subtract_background)
    if 64 % size:
        raise ValueError(f"lens_coverage_problem: size must divide 64 (16, 32 or 64), got {size}.")
    factor = 64 // size
    psf = load_shipped("jwst-f150w-psf")
    sim = LensSimulator(PixelGrid(size, size, psf.pixel_scale * factor), psf=binned_psf(psf.kernel, factor),
                        supersampling=2)
    ell = partial(dist.TruncatedNormal, 0.0, 0.1, low=-0.3, high=0.3)
    priors = {
        "lens_theta_E": dist.Uniform(0.4, 0.6),
        "lens_e1": ell(),
        "lens_e2": ell(),
        "lens_center_x": dist.Normal(0.0, 0.03),
        "lens_center_y": dist.Normal(0.0, 0.03),
        "shear_gamma1": dist.Normal(0.0, 0.03),
        "shear_gamma2": dist.Normal(0.0, 0.03),
        # Log-uniform priors sampled as uniform logarithms: NumPyro's unconstrained space for a
        # LogUniform site is a logit of the value, in which the amplitude-radius degeneracy
        # (flux ~ amp R^2) is a curved ridge that a fixed metric cannot follow (min bulk ESS 3-50
        # of 1000 draws on 20 injections); in log space it is a straight one.
        "source_log_amp": dist.Uniform(np.log(2000.0 / factor**2), np.log(8000.0 / factor**2)),
        "source_log_R_sersic": dist.Uniform(np.log(0.1), np.log(0.2)),
        "source_e1": ell(),
        "source_e2": ell(),
        "source_center_x": dist.Normal(0.0, 0.05),
        "source_center_y": dist.Normal(0.0, 0.05),
    }
    if sky_sd is not None:
        if not (np.isfinite(sky_sd) and sky_sd > 0):
            raise ValueError(f"lens_coverage_problem: sky_sd must be a positive number of sky sigma, got {sky_sd}.")
        priors["sky"] = dist.Normal(0.0, float(sky_sd))

    def simulator(params):
        lens = {k: v for k, v in params.items() if not k.startswith("source_log_") and k != "sky"}
        image = sim({**lens, "source_amp": jnp.exp(params["source_log_amp"]),
                     "source_R_sersic": jnp.exp(params["source_log_R_sersic"]), "source_n_sersic": jnp.asarray(1.5)})
        return image + params["sky"] if "sky" in params else image

    def model(data, *, noise, t):
        params = {name: numpyro.sample(name, prior) for name, prior in priors.items()}
        # nodes: the line-integral value of a score-parameterised model (HST) costs one score call a node.
        numpyro.sample("obs", ScoreLikelihood(noise, simulator(params), t=t, nodes=4), obs=data)

    return _coverage_problem(
        f"lens{size}{'' if sky_sd is None else 'sky'}-{noise_source}{'-bgsub' if subtract_background else ''}",
        model, simulator, priors, likelihoods,
        NOISE_SOURCES[noise_source][1] if noise_model is None else noise_model, fit, inject, level_sigma,
        info={"problem": "lens", "size": size, "pixel_scale": psf.pixel_scale * factor,
              "noise_source": noise_source, "noise_patches": patch_name, "split_seed": seed, **split_info},
    )


def galaxy_coverage_problem(
    size: int = 32,
    noise_source: str = "ground-ccd",
    *,
    level_sigma: float = 0.1,
    fit_fraction: float = 0.25,
    seed: int = 0,
    likelihoods: tuple[str, ...] = ("white", "stationary", "slic"),
    noise_model=None,
    fit_max_abs: float | None = None,
    psf_fwhm: float = 4.0,
    flux: tuple[float, float] = (150.0, 600.0),
    R_sersic: tuple[float, float] = (2.0, 5.0),
    subtract_background: bool = False,
) -> CoverageProblem:
    """A PSF-convolved elliptical exponential galaxy (Sersic n = 1) in real held-out sky noise.

    Everything is in pixels and in sky-sigma units (the held-out patches' units): a circular
    Gaussian PSF of ``psf_fwhm`` pixels (4 pixels: about 1.2" on the SAAO 1.0 m STE3 CCD's
    0.31" pixels, an ordinary night there), supersampling 2. Six free parameters:

    - ``log_flux`` ~ U(log ``flux``): total flux in sky sigma x pixels. With the defaults the
      matched-filter signal-to-noise sqrt(sum model^2) runs from about 9 (faint and large) to 60
      (bright and compact): moderate, so that a cosmic ray or hot pixel of 10 to 170 sigma on the
      galaxy moves a Gaussian-likelihood posterior by several of its sds;
    - ``log_R_sersic`` ~ U(log ``R_sersic``): half-light radius (pixels), large enough that the
      galaxy covers a good share of the tile (so hits land on it);
    - ``e1``, ``e2`` ~ TruncatedNormal(0, 0.2, -0.5, 0.5) (lenstronomy's convention);
    - ``center_x``, ``center_y`` ~ Normal(0, 1.5) pixels from the tile's centre.

    Noise, split, likelihoods, ``noise_model``, ``fit_max_abs`` and ``subtract_background`` are as in
    ``lens_coverage_problem``; ``noise_source`` may be any key of ``NOISE_SOURCES`` (whose held-out
    patches are at least ``size`` pixels). On ground-ccd the plain fit is not robust: one 170-sigma
    cosmic ray among the fit tiles adds 170^2 / 1024 = 28 to that tile's variance, and with the
    default split the fitted Gaussians' mean power is 2.3 (sky sigma^2) against a core of about 1;
    ``fit_max_abs=5`` fits them to the hit-free fit tiles only.
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    from ..lensing import PixelGrid
    from ..lensing.grid import bin_pixels
    from ..lensing.light import sersic_brightness, sersic_total_flux
    from ..lensing.psf import convolve_psf, gaussian_psf_kernel
    from ..likelihood import ScoreLikelihood

    patch_name, fit, inject, split_info = _held_out_split("galaxy_coverage_problem", noise_source, size,
                                                          fit_fraction, seed, likelihoods, fit_max_abs,
                                                          subtract_background)
    supersampling = 2
    grid = PixelGrid(size, size, 1.0)
    x, y = grid.coordinates(supersampling)
    psf = gaussian_psf_kernel(psf_fwhm, 1.0, 2 * int(np.ceil(1.5 * psf_fwhm)) + 1)
    ell = partial(dist.TruncatedNormal, 0.0, 0.2, low=-0.5, high=0.5)
    priors = {
        "log_flux": dist.Uniform(*np.log(np.asarray(flux, dtype=float))),
        "log_R_sersic": dist.Uniform(*np.log(np.asarray(R_sersic, dtype=float))),
        "e1": ell(),
        "e2": ell(),
        "center_x": dist.Normal(0.0, 1.5),
        "center_y": dist.Normal(0.0, 1.5),
    }
    n_sersic = 1.0

    def simulator(params):
        radius = jnp.exp(params["log_R_sersic"])
        amp = jnp.exp(params["log_flux"]) / sersic_total_flux(1.0, radius, n_sersic)
        light = sersic_brightness(x, y, amp, radius, n_sersic, params["e1"], params["e2"],
                                  params["center_x"], params["center_y"])
        return convolve_psf(bin_pixels(light, supersampling), psf)

    def model(data, *, noise, t):
        params = {name: numpyro.sample(name, prior) for name, prior in priors.items()}
        numpyro.sample("obs", ScoreLikelihood(noise, simulator(params), t=t, nodes=4), obs=data)

    return _coverage_problem(
        f"galaxy{size}-{noise_source}{'-bgsub' if subtract_background else ''}", model, simulator, priors,
        likelihoods,
        NOISE_SOURCES[noise_source][1] if noise_model is None else noise_model, fit, inject, level_sigma,
        info={"problem": "galaxy", "size": size, "pixel_scale": "pixels (1.0)", "psf_fwhm_pixels": float(psf_fwhm),
              "n_sersic": n_sersic, "noise_source": noise_source, "noise_patches": patch_name, "split_seed": seed,
              **split_info},
    )
