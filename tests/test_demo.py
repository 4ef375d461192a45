"""The embedded demo: its inputs are checked, and a tiny run goes end to end and writes its outputs."""

import json
import os

import numpy as np
import pytest

from numpyro_slic.cli import main
from numpyro_slic.demo import TRUTH, DemoConfig, demo_potential, demo_problem, run_demo
from numpyro_slic.infer import laplace_inverse_mass


def test_bad_size_names_the_range():
    with pytest.raises(ValueError, match="between 16 and"):
        demo_problem(size=80)
    with pytest.raises(SystemExit):
        main(["demo", "--size", "x"])
    with pytest.raises(ValueError, match="num_samples must exceed"):
        run_demo(DemoConfig(num_samples=3))


def test_problem_and_metric():
    problem = demo_problem(size=24)
    assert problem.data.shape == problem.clean.shape == (24, 24)
    assert set(problem.noises) == {"white Gaussian", "stationary Gaussian", "SLIC"}
    assert problem.noises["SLIC"].has_log_prob  # the shipped JWST model is energy-parameterised
    flat = demo_potential(problem, "stationary Gaussian")
    metric = laplace_inverse_mass(flat.potential, flat.z)
    assert metric.shape == (len(problem.free), len(problem.free))
    np.testing.assert_allclose(metric, metric.T)
    assert np.all(np.linalg.eigvalsh(metric) > 0)


def test_tiny_run_writes_summary_and_figures(tmp_path):
    out = run_demo(DemoConfig(size=24, num_warmup=4, num_samples=8, max_tree_depth=2,
                              out_dir=str(tmp_path), progress=False))
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert set(saved["results"]) == {"white Gaussian", "stationary Gaussian", "SLIC"}
    for result in out["results"].values():
        assert set(result["summary"]) == set(TRUTH) - {"source_n_sersic"}
        assert result["mean_leapfrog_steps"] <= 3  # the depth-2 cap
    assert all(os.path.getsize(path) > 0 for path in out["figures"])
