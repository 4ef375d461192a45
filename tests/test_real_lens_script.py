"""Smoke test of scripts/fit_cosmos_web_ring.py: data preparation, and the fit on a tiny budget."""

import importlib.util
import json
import pathlib
import sys

import jax.numpy as jnp
import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "fit_cosmos_web_ring.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("fit_cosmos_web_ring", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_ring_whitening_and_mask_fill(script):
    from numpyro_slic.data import load_shipped

    ring = script.load_ring(64, fill_index=3)
    cut = load_shipped("cosmos-web-ring-f150w")
    r0, c0 = ring.origin
    raw = cut.data[r0: r0 + 64, c0: c0 + 64]
    mask = cut.mask[r0: r0 + 64, c0: c0 + 64]
    assert ring.mask.any() and np.array_equal(ring.mask, mask)
    # Unmasked pixels are exactly the whitened data (float32 round trip: 1e-5 relative).
    back = ring.data * ring.noise_map * ring.scale + ring.sky
    np.testing.assert_allclose(back[~mask], raw[~mask], rtol=1e-5, atol=1e-6)
    # Masked pixels hold real sky from the fill patch, which is left out of the baseline patches.
    fill = load_shipped("jwst-f150w-sky-val").patches[3]
    rows, cols = np.nonzero(mask)
    np.testing.assert_array_equal(ring.data[rows, cols], fill[rows - rows.min(), cols - cols.min()])
    assert len(ring.patches) == len(load_shipped("jwst-f150w-sky-val").patches) - 1
    # The model is zero on masked pixels whatever the parameters, so their residual is the fill.
    sim = script.ring_simulator(ring)
    guess = script._initial_guess(ring, sim)
    image = np.asarray(sim({k: jnp.asarray(v) for k, v in guess.items()}))
    assert np.all(image[mask] == 0) and image[~mask].max() > 10


def test_fit_tiny_budget(script, tmp_path):
    config = script.FitConfig(
        likelihoods=("white",), size=64, num_warmup=10, num_samples=10, num_chains=1, map_steps=150,
        supersampling=1, max_tree_depth=4, out=str(tmp_path / "fit.json"), fig_dir=None, progress=False,
    )
    out = script.fit_ring(config)
    assert json.loads((tmp_path / "fit.json").read_text())["results"].keys() == {"white"}
    result = out["results"]["white"]
    for key in ("t", "seconds", "map", "summary", "divergences", "residual"):
        assert key in result
    row = result["summary"]["lens_theta_E"]
    assert row["hdi94_lb"] <= row["mean"] <= row["hdi94_ub"]
    # The ring's radius by eye is 25 to 28 pixels of 0.03" (0.75" to 0.84"); the prior allows
    # 0.2" to 2". A fit outside 0.6" to 1.0" has failed, even on this budget.
    assert 0.6 < row["mean"] < 1.0
    assert 0.6 < result["map"]["lens_theta_E"] < 1.0


def test_slic_sampler_choice(script):
    # The shipped JWST model is energy-parameterised: SLIC runs NUTS on its exact log_prob (no
    # energy override, one sampler step per draw), not the MALA fallback of score models.
    # (A tiny SLIC fit does not fit this file's time budget on 2 shared CPU cores: compiling the
    # network's gradient into the MAP search and into NUTS takes about 150 s there.)
    from numpyro.infer import NUTS

    from numpyro_slic.noise.bundle import load_noise_model

    noise = load_noise_model("jwst-nircam-f150w")
    assert noise.has_log_prob
    chosen, thinning, sampler = script._slic_kernel(script.FitConfig(), noise, (0.05, {("a", "b"): jnp.eye(2)}))
    assert isinstance(chosen.kernel, NUTS) and chosen.model_kwargs == {} and thinning == 1 and chosen.has_value
    assert set(chosen.extra_fields) == {"diverging", "num_steps", "accept_prob"}
    assert "energy='exact'" in sampler and "Gaussian run" in sampler


def test_cli_flags(script):
    # The flags the GPU command uses reach the config; the defaults are FitConfig's.
    assert script.parse_config([]) == script.FitConfig()
    config = script.parse_config([
        "--likelihoods", "slic,white", "--chains", "2", "--chain-method", "vectorized", "--slic-warmup", "7",
        "--slic-samples", "9", "--slic-max-tree-depth", "4", "--mala-thinning", "3", "--fig-dir", "",
        "--no-progress",
    ])
    assert config.likelihoods == ("slic", "white") and config.chain_method == "vectorized"
    assert (config.slic_warmup, config.slic_samples, config.slic_max_tree_depth, config.mala_thinning) == (7, 9, 4, 3)
    assert config.fig_dir is None and not config.progress
