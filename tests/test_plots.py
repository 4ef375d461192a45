"""Figures: files written, answer keys consistent."""

import numpy as np
import pytest

from numpyro_slic.diagnostics import noise_comparison_plot


@pytest.mark.parametrize("show_key", [True, False])
def test_noise_comparison_plot_key(tmp_path, show_key):
    rng = np.random.default_rng(0)
    real, generated = rng.normal(size=(3, 8, 8)), rng.normal(size=(5, 8, 8))
    path = tmp_path / "grid.png"
    key = noise_comparison_plot(real, generated, str(path), shuffle_seed=4, show_key=show_key)
    assert path.stat().st_size > 0
    # min(3, 5) of each, shuffled by the seed alone: the same key with or without the caption.
    assert sorted(key) == ["generated"] * 3 + ["real"] * 3
    assert key == noise_comparison_plot(real, generated, str(tmp_path / "again.png"), shuffle_seed=4, show_key=not show_key)
    assert key != noise_comparison_plot(real, generated, str(tmp_path / "other.png"), shuffle_seed=5)
