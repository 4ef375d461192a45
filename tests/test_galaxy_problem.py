"""galaxy_coverage_problem: the 6-parameter galaxy in real held-out ground-based CCD noise.

It builds from the shipped ground-ccd held-out patches, its robust Gaussian fit leaves the cosmic
rays out, its SLIC likelihood loads a noise model from a bundle path (or the shipped ground-ccd-saao
by default), and the injection runner and the CLI run it unchanged (tiny NUTS settings).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_slic.cli import main
from numpyro_slic.coverage import galaxy_coverage_problem, load_results, make_injections
from numpyro_slic.noise.bundle import save_noise_model
from numpyro_slic.noise.backbones import GaussianBackbone
from numpyro_slic.noise.learned import LearnedNoise
from numpyro_slic.noise.networks import UNet, UNetConfig

PARAMS = ("log_flux", "log_R_sersic", "e1", "e2", "center_x", "center_y")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A randomly initialised tiny score U-Net on a white backbone, saved as a bundle."""
    patches = np.random.default_rng(0).standard_normal((8, 16, 16)).astype(np.float32)
    net = UNet(UNetConfig(width=8, channel_mults=(1, 2), embed_dim=16, groups=4), key=jax.random.key(0))
    model = LearnedNoise(net, backbone=GaussianBackbone.from_patches(patches, 3), reference_patch=patches[0],
                         scale=1.0, t_min=0.001)
    path = tmp_path_factory.mktemp("bundle") / "ccd.zip"
    save_noise_model(path, model, {"data": {"source": "synthetic"}, "steps": 0})
    return str(path)


def test_galaxy_simulator_priors_and_robust_fit():
    plain = galaxy_coverage_problem(likelihoods=("white", "stationary"))
    robust = galaxy_coverage_problem(likelihoods=("white", "stationary"), fit_max_abs=5.0)
    assert plain.params == robust.params == PARAMS and plain.image_shape == (32, 32)
    assert plain.name == "galaxy32-ground-ccd" and plain.info["noise_patches"] == "ground-ccd-sky-val"
    # Same injection tiles; the robust fit drops the fit tiles with cosmic rays / hot pixels.
    np.testing.assert_array_equal(plain.injection_noise, robust.injection_noise)
    assert robust.info["tiles_fit_dropped"] >= 1
    assert robust.info["tiles_fit"] + robust.info["tiles_fit_dropped"] == plain.info["tiles_fit"]
    # The plain fit's variance is inflated by the hits; the robust one is the core's (sky sigma 1).
    assert float(jnp.mean(plain.noises["stationary Gaussian"].power)) > 1.5
    assert 0.8 < float(jnp.mean(robust.noises["stationary Gaussian"].power)) < 1.2
    # Flux is conserved (exponential profile, PSF normalised) and the centre is where it says.
    theta = {"log_flux": jnp.log(300.0), "log_R_sersic": jnp.log(2.0), "e1": 0.1, "e2": -0.1,
             "center_x": 1.0, "center_y": -0.5}
    image = np.asarray(robust.simulator(theta))
    assert image.sum() == pytest.approx(300.0, rel=0.02)
    yy, xx = np.mgrid[:32, :32] - 15.5
    assert (image * xx).sum() / image.sum() == pytest.approx(1.0, abs=0.05)
    assert (image * yy).sum() / image.sum() == pytest.approx(-0.5, abs=0.05)
    truths = make_injections(robust, range(20), seed=0).truths
    assert np.all((truths[:, 0] > np.log(150.0)) & (truths[:, 0] < np.log(600.0)))
    with pytest.raises(ValueError, match="unknown noise_source"):
        galaxy_coverage_problem(noise_source="nope")


def test_galaxy_slic_loads_a_bundle_path(bundle):
    problem = galaxy_coverage_problem(likelihoods=("stationary", "slic"), noise_model=bundle, fit_max_abs=5.0)
    assert problem.info["noise_model"] == bundle and set(problem.noises) == {"stationary Gaussian", "SLIC"}
    slic = problem.noises["SLIC"]
    assert isinstance(slic, LearnedNoise) and slic.scale == 1.0
    score = slic.score(jnp.asarray(problem.injection_noise[0]), problem.levels["SLIC"])
    assert score.shape == (32, 32) and bool(jnp.all(jnp.isfinite(score)))


def test_coverage_cli_runs_the_galaxy(tmp_path):
    """``numpyro-slic coverage --problem galaxy --noise ground-ccd`` end to end (white Gaussian only:
    NUTS under a learned score compiles for minutes on 2 CPU cores, and the runner is the same)."""
    out = str(tmp_path / "cov")
    argv = ["coverage", "--problem", "galaxy", "--noise", "ground-ccd", "--likelihoods", "white",
            "--fit-max-abs", "5", "--subtract-background", "--injections", "4", "--batch-size", "4", "--num-warmup", "4",
            "--num-samples", "4", "--max-tree-depth", "2", "--min-ess", "1", "--out", out, "--no-progress",
            "--no-report"]
    assert main(argv) == 0
    res = load_results(out, "white Gaussian")
    assert res.draws.shape == (4, 2, 4, len(PARAMS)) and np.all(np.isfinite(res.draws))
    assert res.metadata["problem"] == "galaxy32-ground-ccd-bgsub"
    assert res.metadata["problem_info"]["fit_max_abs"] == 5.0
    assert np.isfinite(res.metadata["problem_info"]["background_subtracted"])
