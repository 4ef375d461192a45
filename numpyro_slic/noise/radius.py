"""Choosing a backbone's correlation-kernel radius on training sky alone.

Every backbone takes its correlations from the training patches' autocovariance, kept to lags
``<= TrainConfig.backbone_radius``. The best radius is a property of the sky (how far its
correlations reach) and of how much sky there is (a long kernel fitted to little sky fits its
quirks): on JWST F150W the Gaussian copula beats the stationary Gaussian on held-out sky by 2.9
bootstrap se at radius 16 and by 5.6 at radius 8 (docs/noise_validation.md, "The correlation
kernel's radius under cross-validation"). Choosing the radius on the held-out sky would grade the
choice on the sky that chose it, so ``choose_backbone_radius`` chooses it on the training patches
alone: they are cut in two (``training_halves``), the backbone is fitted on one half at each radius
and scored on the other half's distinct crops (and the other way round), and the radius with the
lowest mean NLL per pixel wins.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..data.patchset import PatchSet
from .fidelity import distinct_crops, perturb_once
from .sde import VESDE, VPSDE
from .training import TrainConfig, fit_backbone_model

RADII = (6, 8, 10, 12, 16)  # the radii docs/noise_validation.md's nested choice was run with


@dataclasses.dataclass(frozen=True)
class RadiusChoice:
    """What ``choose_backbone_radius`` found.

    Attributes:
        radius: the chosen radius, pixels.
        nll: radius -> mean NLL per pixel (nats, trained units) of the held-in half's crops,
            perturbed at sigma(t_min), under the backbone fitted to the other half; both ways pooled.
        halves: patches in each half (patches across the cut are in neither).
        crop: side of the scored crops, pixels.
    """

    radius: int
    nll: dict[int, float]
    halves: tuple[int, int]
    crop: int

    def to_dict(self) -> dict:
        return {"radius": self.radius, "nll": {str(r): v for r, v in self.nll.items()},
                "halves": list(self.halves), "crop": self.crop}


def training_halves(train: PatchSet) -> tuple[PatchSet, PatchSet]:
    """Two disjoint halves of ``train``: each source image is cut along one row or column, the cut
    (of all rows and columns where patches start) that leaves the most patches wholly on its smaller
    side; patches across the cut are left out, so no pixel is in both halves.

    Raises ValueError when a half is empty (too few patches, or every patch of an image overlaps
    every cut).
    """
    pos, size = np.asarray(train.positions), train.patches.shape[1]
    first, second = np.zeros(len(pos), bool), np.zeros(len(pos), bool)
    for src in np.unique(pos[:, 0]):
        mine = pos[:, 0] == src
        cuts = [(axis, c) for axis in (1, 2) for c in np.unique(pos[mine, axis])]
        sides = [(mine & (pos[:, axis] + size <= c), mine & (pos[:, axis] >= c)) for axis, c in cuts]
        a, b = max(sides, key=lambda ab: min(ab[0].sum(), ab[1].sum()))
        first, second = first | a, second | b
    if not first.any() or not second.any():
        raise ValueError(f"training_halves: the {len(pos)} training patches cannot be cut into two disjoint "
                         "halves (every cut leaves one side empty); give more patches or a fixed radius.")
    return tuple(dataclasses.replace(train, patches=train.patches[m], positions=pos[m]) for m in (first, second))


def choose_backbone_radius(
    train: PatchSet,
    *,
    config: TrainConfig,
    sde: VESDE | VPSDE = VESDE(),
    radii: tuple[int, ...] = RADII,
    crop: int | None = None,
    seed: int = 0,
) -> RadiusChoice:
    """The kernel radius of ``radii`` under which ``config``'s backbone generalises best across the
    two halves of ``train`` (``training_halves``), seeing no held-out sky.

    Args:
        train: the training patches (trained units, as the model will be fitted to them).
        config: the backbone settings (``backbone_kind``, components, background, ``t_min``); its
            ``backbone_radius`` is ignored.
        sde: the diffusion schedule: the crops are perturbed once at sigma(``config.t_min``), the
            level ``numpyro-slic validate`` scores at.
        radii: the candidates, pixels.
        crop: side of the scored crops (default: 16, or the patch side if smaller), non-overlapping
            across patches (``fidelity.distinct_crops``).
        seed: of the perturbation.

    Returns the choice, with every candidate's NLL.
    """
    if not config.backbone:
        raise ValueError("choose_backbone_radius: config.backbone is False, so there is no kernel to choose.")
    if not radii or min(radii) < 1:
        raise ValueError(f"choose_backbone_radius: radii must be positive integers, got {radii}.")
    parts = training_halves(train)
    crop = min(16, train.patches.shape[1]) if crop is None else int(crop)
    sigma = float(sde.sigma(config.t_min))
    scored = [perturb_once(distinct_crops(p.patches, p.positions, crop)[0], sigma, seed) for p in parts]
    nll = {}
    for radius in radii:
        setting = dataclasses.replace(config, backbone_radius=int(radius))
        per_pixel = []
        for fit_on, score in ((parts[0], scored[1]), (parts[1], scored[0])):
            model = fit_backbone_model(fit_on.patches, config=setting, sde=sde, scale=1.0)
            energy = jax.jit(jax.vmap(lambda u, m=model: m.unit_energy(u, m.t_min)))
            per_pixel.append(np.asarray(energy(jnp.asarray(score, jnp.float32)), np.float64) / crop**2)
        nll[int(radius)] = float(np.mean(np.concatenate(per_pixel)))
    return RadiusChoice(min(nll, key=nll.get), nll, (len(parts[0]), len(parts[1])), crop)
