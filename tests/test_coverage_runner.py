"""The injection runner: resumable, mergeable, sharded, and calibrated where the likelihood is exact.

A toy CoverageProblem (a Gaussian blob with 3 parameters on a 12 x 12 grid, noise drawn from a known
stationary Gaussian) keeps compilation to seconds; the lens problem is exercised by the coverage
notebooks' tests (tests/test_notebooks.py).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from numpyro_slic import ScoreLikelihood, StationaryGaussianNoise, WhiteGaussianNoise
from numpyro_slic.coverage import (
    CoverageProblem,
    RunConfig,
    coverage_verdict,
    load_results,
    make_injections,
    run_injections,
    sbc,
    tarp,
)
from numpyro_slic.likelihood import level_for_sigma

SIZE = 12
PARAMS = ("amp", "x0", "y0")


def blob_problem(num_tiles: int = 64) -> CoverageProblem:
    """A blob in correlated Gaussian noise whose density is known: "exact" is the true likelihood,
    "too narrow" a white Gaussian of half the noise sd (over-confident by construction)."""
    yy, xx = jnp.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2

    def simulator(params):
        return params["amp"] * jnp.exp(-((xx - params["x0"]) ** 2 + (yy - params["y0"]) ** 2) / 4.0)

    def model(data, *, noise, t):
        params = {
            "amp": numpyro.sample("amp", dist.Uniform(2.0, 6.0)),
            "x0": numpyro.sample("x0", dist.Normal(0.0, 1.0)),
            "y0": numpyro.sample("y0", dist.Normal(0.0, 1.0)),
        }
        numpyro.sample("obs", ScoreLikelihood(noise, simulator(params), t=t), obs=data)

    kx = np.fft.fftfreq(SIZE)[None, :]
    ky = np.fft.fftfreq(SIZE)[:, None]
    power = 0.2 + np.exp(-(kx**2 + ky**2) / 0.02)  # correlated: more power at low k
    truth_noise = StationaryGaussianNoise(jnp.asarray(power, jnp.float32))
    tiles = np.asarray(truth_noise.sample(jax.random.key(123), (num_tiles,)))
    noises = {"exact": truth_noise, "too narrow": WhiteGaussianNoise(0.5 * float(tiles.std()))}
    level_sigma = 0.1
    return CoverageProblem(
        name="blob12", model=model, simulator=simulator, params=PARAMS, noises=noises,
        levels={k: level_for_sigma(v, level_sigma) for k, v in noises.items()}, level_sigma=level_sigma,
        injection_noise=tiles, metric_noise=truth_noise, metric_level=level_for_sigma(truth_noise, level_sigma),
        info={"problem": "blob", "size": SIZE},
    )


CONFIG = RunConfig(num_warmup=100, num_samples=150, num_chains=2, max_tree_depth=4, batch_size=4, min_ess=50)


@pytest.fixture(scope="module")
def problem():
    return blob_problem()


def test_injections_depend_only_on_seed_and_id(problem):
    a = make_injections(problem, [3, 7], seed=5)
    b = make_injections(problem, [7, 1, 3], seed=5)
    np.testing.assert_array_equal(a.truths[0], b.truths[2])
    np.testing.assert_array_equal(a.data[1], b.data[0])
    c = make_injections(problem, [3], seed=6)
    assert not np.allclose(a.truths[0], c.truths[0])
    # Prior draws: amp inside its support; the real (here: known) noise tile i mod N went in.
    assert np.all((a.truths[:, 0] > 2) & (a.truths[:, 0] < 6))
    np.testing.assert_array_equal(a.noise_index, [3, 7])


def test_resume_skips_done_ids_and_gives_the_same_draws(problem, tmp_path):
    fresh, resumed = str(tmp_path / "fresh"), str(tmp_path / "resumed")
    run_injections(problem, "exact", 6, fresh, config=CONFIG, progress=False)
    first = run_injections(problem, "exact", 4, resumed, config=CONFIG, progress=False)
    assert first["done"] == [0, 1, 2, 3]
    # A killed run leaves whole batch files only; rerunning the full command finishes the rest.
    second = run_injections(problem, "exact", 6, resumed, config=CONFIG, progress=False)
    assert second["skipped"] == [0, 1, 2, 3] and second["done"] == [4, 5]
    a, b = load_results(fresh, "exact"), load_results(resumed, "exact")
    np.testing.assert_array_equal(a.ids, np.arange(6))
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.draws, b.draws, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(a.truths, make_injections(problem, range(6), 0).truths)
    index = json.load(open(os.path.join(resumed, "index.json")))
    assert sorted(index["exact"]["ids"], key=int) == [str(i) for i in range(6)]
    assert not [f for f in os.listdir(os.path.join(resumed, "exact")) if f.endswith(".tmp")]


def test_other_settings_in_the_same_folder_are_refused(problem, tmp_path):
    run_injections(problem, "exact", 2, str(tmp_path), config=CONFIG, progress=False)
    other = RunConfig(**{**CONFIG.__dict__, "num_samples": 100})
    with pytest.raises(ValueError, match="other settings"):
        run_injections(problem, "exact", 4, str(tmp_path), config=other, progress=False)
    with pytest.raises(ValueError, match="unknown likelihood"):
        run_injections(problem, "SLIC", 2, str(tmp_path), config=CONFIG, progress=False)


def test_hosts_split_batches_and_their_folders_merge(problem, tmp_path):
    """Two 'hosts' (process_index 0 and 1 of 2) take alternate batches; copying their folders into
    one gives exactly the single-host result."""
    single = str(tmp_path / "single")
    run_injections(problem, "exact", 8, single, config=CONFIG, progress=False)
    merged = tmp_path / "merged"
    for host in (0, 1):
        out = str(tmp_path / f"host{host}")
        r = run_injections(problem, "exact", 8, out, config=CONFIG, progress=False, process_index=host, process_count=2)
        assert r["done"] == ([0, 1, 2, 3] if host == 0 else [4, 5, 6, 7])
        shutil.copytree(out, merged, dirs_exist_ok=True)
    a, b = load_results(single, "exact"), load_results(str(merged), "exact")
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.draws, b.draws, rtol=1e-5, atol=1e-6)


def test_sharded_over_two_devices_matches_one_device(tmp_path):
    """The batch axis sharded over 2 forced host devices gives the single-device posteriors.

    Not the same draws: XLA compiles the sharded program differently, and NUTS trajectories
    amplify float32 rounding differences until the chains part ways after a few dozen draws. The
    same injections must give the same posterior up to Monte Carlo error."""
    one = tmp_path / "one"
    script = textwrap.dedent(f"""
        import sys, jax
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_coverage_runner import blob_problem, CONFIG
        from numpyro_slic.coverage import run_injections
        r = run_injections(blob_problem(), "exact", 4, sys.argv[1], config=CONFIG, progress=False)
        print("DEVICES", jax.local_device_count(), r["devices"])
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "DEVICES 2 2" in out.stdout
    run_injections(blob_problem(), "exact", 4, str(one), config=CONFIG, progress=False)
    a, b = load_results(str(one), "exact"), load_results(str(tmp_path / "two"), "exact")
    np.testing.assert_array_equal(a.truths, b.truths)
    mean_a, mean_b = a.draws.mean(axis=(1, 2)), b.draws.mean(axis=(1, 2))
    se = a.draws.std(axis=(1, 2)) * np.sqrt(1 / a.ess_bulk + 1 / b.ess_bulk)
    assert np.all(np.abs(mean_a - mean_b) < 4 * se), (mean_a - mean_b) / se


@pytest.mark.slow
def test_runner_is_calibrated_with_the_exact_likelihood_and_flags_a_wrong_one(tmp_path):
    """120 injections through real NUTS, each with its own noise tile: the exact likelihood passes
    TARP and SBC (measured KS p 0.28, SBC Bonferroni p 0.80); a white Gaussian of half the noise sd
    (posteriors too narrow) is flagged (KS p 1e-11, SBC p 2e-9), and its SBC ranks pile up at both
    ends (over-confidence: 0.67 of them in the outer fifth). TARP's ATC hardly shows it (-0.045,
    the exact likelihood's -0.020: with references drawn over the whole prior box most balls are
    far wider than the posterior, and a too-narrow posterior bends the ECP both ways).

    The tiles must not repeat: SBC and TARP assume independent injections, and with the 64 tiles of
    the other tests pairs of injections shared one. Then the exact likelihood failed SBC on one
    machine (x0: p 0.0022, mean rank 0.57) and passed, with the same code, on another."""
    n = 120
    problem = blob_problem(num_tiles=n)
    verdicts = {}
    for name in ("exact", "too narrow"):
        run_injections(problem, name, n, str(tmp_path), config=RunConfig(**{**CONFIG.__dict__, "batch_size": 40}),
                       progress=False)
        res = load_results(str(tmp_path), name)
        assert len(res.ids) == n
        samples = res.draws.reshape(n, -1, len(PARAMS))
        t, s = tarp(samples, res.truths, key=0), sbc(samples, res.truths, num_ranks=50, key=0)
        verdicts[name] = (coverage_verdict(t, s), t, res)
        # Share of rank PITs in the outer fifth: 0.2 when calibrated, more when too narrow.
        verdicts[name] += (np.mean((s.pit < 0.1) | (s.pit > 0.9)),)
    exact, t_exact, res_exact, tails_exact = verdicts["exact"]
    assert res_exact.converged.mean() > 0.9, res_exact.ess_bulk.min(axis=1)
    assert exact["passed"], exact
    assert abs(t_exact.atc) < 0.05
    assert abs(tails_exact - 0.2) < 0.06  # 360 PITs: sd of the share 0.02
    narrow, _, _, tails_narrow = verdicts["too narrow"]
    assert not narrow["passed"]
    assert tails_narrow > 0.35, tails_narrow


def test_cli_refuses_report_only_with_no_report():
    """--report-only and --no-report together would do nothing: the CLI says so instead."""
    from numpyro_slic.cli import main

    with pytest.raises(SystemExit, match="choose one"):
        main(["coverage", "--report-only", "--no-report", "--out", "unused"])


def test_gaussian_runs_do_not_depend_on_the_problems_slic_model():
    """A batch's settings include the problem's learned noise model only for the SLIC likelihood:
    Gaussian runs made beside one SLIC model resume beside another; SLIC runs do not mix models."""
    from numpyro_slic.coverage.runner import _same_run

    def meta(likelihood, model):
        return {"problem": "p", "problem_info": {"size": 32, "noise_model": model}, "likelihood": likelihood,
                "t": 0.1, "params": ["a"], "seed": 0, "sampling": {"num_warmup": 4}}

    assert _same_run(meta("stationary Gaussian", "old.zip"), meta("stationary Gaussian", "ground-ccd-saao"))
    assert not _same_run(meta("SLIC", "old.zip"), meta("SLIC", "ground-ccd-saao"))
    other = meta("stationary Gaussian", "old.zip")
    other["problem_info"]["size"] = 64
    assert not _same_run(meta("stationary Gaussian", "old.zip"), other)


def test_slic_runs_are_identified_by_the_weights_checksum():
    """A shipped name whose weights changed between releases is another model (the resume refuses
    to mix them); a name and a path to the same weights are one model; batches from before the
    checksum was recorded do not mix with batches that have one."""
    from numpyro_slic.coverage.runner import _same_run

    def meta(model, sha):
        info = {"size": 32, "noise_model": model, "noise_model_sha256": sha}
        if sha is None:
            del info["noise_model_sha256"]
        return {"problem": "p", "problem_info": info, "likelihood": "SLIC", "t": 0.1, "params": ["a"], "seed": 0,
                "sampling": {"num_warmup": 4}}

    assert not _same_run(meta("ground-ccd-saao", "aa"), meta("ground-ccd-saao", "bb"))
    assert _same_run(meta("ground-ccd-saao", "aa"), meta("outputs/ground-ccd-saao.zip", "aa"))
    assert not _same_run(meta("ground-ccd-saao", None), meta("ground-ccd-saao", "aa"))
    assert _same_run(meta("ground-ccd-saao", None), meta("ground-ccd-saao", None))
    gaussian = [meta("ground-ccd-saao", sha) for sha in ("aa", "bb")]
    for m in gaussian:
        m["likelihood"] = "stationary Gaussian"
    assert _same_run(*gaussian)


def test_problem_records_the_slic_models_weights_checksum():
    """The galaxy problem built with the shipped CCD model records that bundle's weights sha256."""
    from numpyro_slic.coverage import galaxy_coverage_problem
    from numpyro_slic.noise.bundle import read_bundle_metadata

    problem = galaxy_coverage_problem(16, "ground-ccd", likelihoods=("slic",))
    assert problem.info["noise_model"] == "ground-ccd-saao"
    assert problem.info["noise_model_sha256"] == read_bundle_metadata("ground-ccd-saao")["weights"]["sha256"]
    assert galaxy_coverage_problem(16, "ground-ccd", likelihoods=("white",)).info["noise_model_sha256"] is None


def test_lens_problem_with_a_sky_level():
    """``sky_sd`` adds a free constant sky level: one more parameter, a separate problem name, and
    a simulator whose image moves by exactly that level; a non-positive sd is refused."""
    from numpyro_slic.coverage import lens_coverage_problem

    plain = lens_coverage_problem(16, "jwst-f150w", likelihoods=("white",))
    sky = lens_coverage_problem(16, "jwst-f150w", likelihoods=("white",), sky_sd=0.5)
    assert sky.params == (*plain.params, "sky") and sky.name == "lens16sky-jwst-f150w"
    assert "sky" in sky.info["priors"] and "sky" not in plain.info["priors"]
    theta = {name: jnp.asarray(0.0) for name in plain.params} | {"lens_theta_E": jnp.asarray(0.5),
                                                                   "source_log_amp": jnp.asarray(7.0),
                                                                   "source_log_R_sersic": jnp.asarray(-2.0)}
    np.testing.assert_allclose(sky.simulator({**theta, "sky": jnp.asarray(0.3)}), plain.simulator(theta) + 0.3,
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="sky_sd must be a positive"):
        lens_coverage_problem(16, "jwst-f150w", likelihoods=("white",), sky_sd=0.0)


def test_background_subtraction_moves_every_tile_by_the_fit_tiles_mean():
    """``subtract_background`` subtracts one number, the fit tiles' mean, from fit and injection
    tiles alike (recorded in ``info``), so the fitted Gaussians see zero-mean tiles; the name says so."""
    from numpyro_slic.coverage import galaxy_coverage_problem, lens_coverage_problem
    from numpyro_slic.coverage.problems import _held_out_split

    _, fit, inject, _ = _held_out_split("test", "jwst-f150w", 32, 0.25, 0, ("white",))
    raw = lens_coverage_problem(32, "jwst-f150w", likelihoods=("white",), sky_sd=0.5)
    sub = lens_coverage_problem(32, "jwst-f150w", likelihoods=("white",), sky_sd=0.5, subtract_background=True)
    level = sub.info["background_subtracted"]
    assert sub.name == "lens32sky-jwst-f150w-bgsub" and "background_subtracted" not in raw.info
    np.testing.assert_allclose(level, fit.mean(), rtol=1e-6)
    assert level < -0.05  # the held-out F150W region's residual level this option exists for
    np.testing.assert_allclose(sub.injection_noise, raw.injection_noise - level, atol=1e-6)
    np.testing.assert_allclose(sub.injection_noise, inject - level, atol=1e-6)
    # The robust split: the level is the mean of the kept fit tiles only.
    robust = galaxy_coverage_problem(32, "ground-ccd", likelihoods=("white",), fit_max_abs=5.0,
                                     subtract_background=True)
    _, fit_ccd, _, _ = _held_out_split("test", "ground-ccd", 32, 0.25, 0, ("white",), 5.0)
    assert robust.name == "galaxy32-ground-ccd-bgsub"
    np.testing.assert_allclose(robust.info["background_subtracted"], fit_ccd.mean(), rtol=1e-6)


@pytest.mark.parametrize("source", ["jwst-f150w", "jwst-sw", "jwst-lw", "hst-f814w", "ground-ccd"])
def test_injection_tiles_are_distinct_sky_the_gaussians_never_saw(source):
    """The held-out patches overlap; the split must not: no two injection tiles share a sky pixel
    (by their recorded corners) and no fit tile shares one with an injection tile (JWST F150W: every
    sky pixel of its set has its own float value, 15 424 for 15 424 pixels of footprint, so a shared
    pixel is a shared value)."""
    from numpyro_slic.coverage.problems import _held_out_split

    names, fit, inject, info = _held_out_split("test", source, 32, 0.25, 0, ("white",))
    corners = np.asarray(info["injection_tile_corners"])
    assert corners.shape == (len(inject), 3) and len(inject) < info["tiles_distinct"] and len(fit) >= 2
    apart = (corners[:, None, 0] != corners[None, :, 0]) | np.any(
        np.abs(corners[:, None, 1:] - corners[None, :, 1:]) >= 32, axis=-1)
    assert np.all(apart | np.eye(len(corners), dtype=bool))
    pooled = {"jwst-sw": ("jwst-f115w-sky-val", "jwst-f150w-smoothed-sky-val"),
              "jwst-lw": ("jwst-f277w-sky-val", "jwst-f444w-sky-val")}
    if source in pooled:  # two bands' held-out sets pooled, each its own image (source index)
        assert names == pooled[source] and set(corners[:, 0]) <= {0, 1}
    if source == "jwst-f150w":
        assert info["tiles_distinct"] == 12 and len(inject) == 9  # what the held-out band holds at 32 x 32
        assert len(np.unique(inject)) == inject.size and not np.isin(fit.ravel(), inject.ravel()).any()
