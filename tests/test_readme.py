"""The README's usage example runs as written and recovers the source it injected into real noise."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_usage_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "MCMC(" in b)
    namespace = {}
    exec(compile(example, str(README), "exec"), namespace)
    samples = namespace["mcmc"].get_samples()
    # The injected truth (amp 5, x0 1, y0 -2) lies inside the posterior (4 sd is a loose but failing bound).
    for name, truth in {"amp": 5.0, "x0": 1.0, "y0": -2.0}.items():
        s = np.asarray(samples[name])
        assert abs(s.mean() - truth) < 4 * s.std(), (name, s.mean(), s.std())


def test_readme_commands_match_ci():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = 'python3 -m pip install ".[test]" && python3 -m pytest -q'
    assert test_command in text and test_command in ci
    assert 'python3 -m pip install ".[demo]" && numpyro-slic demo' in text
