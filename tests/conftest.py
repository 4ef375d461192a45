"""Suite-wide fixtures."""

import gc

import pytest


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    The suite runs in one process and compiles hundreds of programs (NUTS under vmap, U-Nets);
    kept for the whole run they pile up in memory, and the CI leg once aborted inside XLA while
    compiling a late test's program on a loaded machine. Tests share compiled functions within a
    module only, so clearing between modules costs no recompilation.
    """
    yield
    import jax

    from numpyro_slic.coverage import runner

    for cached in (runner._compiled, runner._prior_draw):
        cached.cache_clear()
    jax.clear_caches()
    gc.collect()
