"""Choosing a backbone's kernel radius on training sky alone (noise.radius)."""

import json
import pathlib

import numpy as np
import pytest

from numpyro_slic.data import PatchSet, load_shipped, save_patch_set
from numpyro_slic.data.patchset import make_provenance
from numpyro_slic.noise.radius import choose_backbone_radius, training_halves
from numpyro_slic.noise.sde import VESDE
from numpyro_slic.noise.training import TrainConfig

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The recipe of benchmarks/crossval_fidelity.py --backbone-kind gaussian-copula.
COPULA = TrainConfig(t_min=0.001, backbone=True, backbone_kind="gaussian-copula", backbone_components=4,
                     backbone_background=True)
SDE = VESDE(sigma_min=0.01, sigma_max=50.0)


def _patch_set(images, size, stride):
    """Every ``size`` x ``size`` window at ``stride`` of each image, with its position."""
    patches, positions = [], []
    for src, image in enumerate(images):
        for r in range(0, image.shape[0] - size + 1, stride):
            for c in range(0, image.shape[1] - size + 1, stride):
                patches.append(image[r:r + size, c:c + size])
                positions.append((src, r, c))
    sources = [{"source": f"synthetic {i}", "sigma": 1.0, "units": "test units"} for i in range(len(images))]
    return PatchSet(np.asarray(patches, np.float32), np.asarray(positions, np.int64),
                    make_provenance(size, len(patches), sources))


def _smooth(rng, n, side, width):
    """``n`` periodic images of white noise smoothed by a Gaussian of sd ``width`` pixels, unit variance."""
    k = np.fft.fftfreq(side)
    transfer = np.exp(-2 * (np.pi * width) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
    x = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, side, side))) * transfer).real
    return x / x.std()


def test_training_halves_share_no_pixel_and_split_each_image_evenly():
    rng = np.random.default_rng(0)
    train = _patch_set(rng.standard_normal((2, 64, 96)), 16, 8)
    a, b = training_halves(train)
    size = train.patch_size
    for (sa, ra, ca) in a.positions:
        for (sb, rb, cb) in b.positions:
            assert not (sa == sb and abs(ra - rb) < size and abs(ca - cb) < size)
    for src in (0, 1):  # each image contributes to both halves, nearly equally
        na, nb = (int(np.sum(h.positions[:, 0] == src)) for h in (a, b))
        assert min(na, nb) >= 0.8 * max(na, nb) > 0
    assert len(a) + len(b) < len(train)  # the patches across each cut are in neither
    with pytest.raises(ValueError, match="cannot be cut"):
        training_halves(_patch_set(rng.standard_normal((1, 16, 16)), 16, 8))


def test_a_kernel_too_short_for_the_correlations_loses():
    """Noise smoothed by a Gaussian of sd 2 px is correlated well beyond lag 1: a radius-1 kernel
    cannot hold that, radius 8 can, and the halves say so (by 0.1 nats/pixel and more)."""
    train = _patch_set(_smooth(np.random.default_rng(1), 3, 64, 2.0), 32, 8)
    config = TrainConfig(backbone=True, backbone_kind="gaussian")
    choice = choose_backbone_radius(train, config=config, sde=SDE, radii=(1, 8))
    assert choice.radius == 8 and choice.nll[1] - choice.nll[8] > 0.1, choice
    assert choice.crop == 16 and sum(choice.halves) < len(train)


def test_reproduces_the_committed_nested_choice_on_the_ccd():
    """On the shipped CCD training patches the choice and its NLLs are the band fold's record in
    benchmarks/results/crossval_nested_radius_copula.json (whose NLLs at radii 6 and 16 differ by
    4.5e-4 nats/pixel; float32 energies agree to 1e-5)."""
    record = json.loads((ROOT / "benchmarks" / "results" / "crossval_nested_radius_copula.json").read_text())
    ccd = next(r for r in record["nested_radius"] if r["n_train"] == 546)
    choice = choose_backbone_radius(load_shipped("ground-ccd-sky-train"), config=COPULA, sde=SDE, radii=(6, 16),
                                    crop=32)
    assert list(choice.halves) == ccd["halves"] and choice.radius == ccd["radius"] == 6
    for radius in (6, 16):
        assert choice.nll[radius] == pytest.approx(ccd["nll"][str(radius)], abs=1e-5)


def test_train_cli_backbone_radius_auto(tmp_path):
    """``numpyro-slic train --backbone-radius auto`` fits the backbone at the chosen radius and
    records the choice in the bundle; a set too small to halve is refused with the fix."""
    from numpyro_slic.cli import main
    from numpyro_slic.noise.bundle import load_noise_model, read_bundle_metadata

    patches = tmp_path / "train.npz"
    save_patch_set(patches, _patch_set(_smooth(np.random.default_rng(2), 2, 48, 2.0), 16, 8))
    out = tmp_path / "auto.zip"
    assert main(["train", "--patches", str(patches), "--out", str(out), "--no-net", "--backbone-kind", "gaussian",
                 "--backbone-radius", "auto", "--no-progress"]) == 0
    training = read_bundle_metadata(out)["metadata"]["training"]
    chosen = training["radius_choice"]["radius"]
    assert training["config"]["backbone_radius"] == chosen and set(training["radius_choice"]["nll"]) == {
        "6", "8", "10", "12", "16"}
    # The kernel is capped at half the 16-pixel patch (lag 7) whatever the radius chosen.
    assert load_noise_model(out).backbone.kernel.shape == (2 * min(chosen, 7) + 1,) * 2
    tiny = tmp_path / "tiny.npz"
    save_patch_set(tiny, _patch_set(np.zeros((1, 16, 16)) + np.eye(16), 16, 8))
    assert main(["train", "--patches", str(tiny), "--out", str(tmp_path / "x.zip"), "--no-net",
                 "--backbone-radius", "auto", "--no-progress"]) == 2
