"""A pure-JAX strong-lens simulator: SIE + external shear, Sersic light, pixel grid, PSF.

Everything is jit/grad/vmap-able, float32 by default and float64 under ``jax.enable_x64``.
Conventions and parameter names are lenstronomy's (theta_E, e1, e2, center_x, center_y; gamma1,
gamma2; amp, R_sersic, n_sersic), checked against lenstronomy 1.14.2 reference values in
tests/fixtures, so fits can be cross-checked there. This subpackage imports nothing else from
numpyro_slic.

    from numpyro_slic.lensing import LensSimulator, PixelGrid, gaussian_psf_kernel

    grid = PixelGrid(nx=64, ny=64, pixel_scale=0.08)
    sim = LensSimulator(grid, psf=gaussian_psf_kernel(0.15, 0.08, 21), supersampling=2)
    image = sim({"lens_theta_E": 1.2, "lens_e1": 0.1, "lens_e2": -0.05, "lens_center_x": 0.0,
                 "lens_center_y": 0.0, "shear_gamma1": 0.02, "shear_gamma2": 0.0,
                 "source_amp": 10.0, "source_R_sersic": 0.2, "source_n_sersic": 1.5,
                 "source_e1": 0.0, "source_e2": 0.1, "source_center_x": 0.05,
                 "source_center_y": 0.1})          # (64, 64), flux per pixel

Plugging in any other simulator
-------------------------------
The rest of numpyro_slic treats a simulator as any callable ``params -> image`` (the ``Simulator``
type): ``params`` is whatever pytree your NumPyro model builds from its sample sites (a dict of
scalars here), and the image is a float array of the observation's shape. It must be traceable by
JAX: pure (no Python side effects that depend on values), no conversion of its inputs to NumPy, and
differentiable in the parameters you sample, because the likelihood's gradient is one
vector-Jacobian product through it. To use another JAX lens code (jaxtronomy, herculens, your own),
wrap it in a function:

    def simulator(params):
        return my_image_model(kwargs_lens=[...params...], kwargs_source=[...])   # (H, W) jnp array

Check it once with ``jax.jit(simulator)(params)`` and ``jax.grad(lambda p: simulator(p).sum())(params)``
(finite values), and ``jax.vmap`` if you run vectorised chains. NumPy-based codes (lenstronomy
itself) cannot be used this way; wrap them in ``jax.pure_callback`` only for gradient-free samplers.
"""

from .ellipticity import MAX_ELLIPTICITY, ellipticity_to_phi_q, phi_q_to_ellipticity
from .grid import PixelGrid, bin_pixels
from .light import sersic_b_n, sersic_brightness, sersic_radius, sersic_total_flux
from .mass import ray_shoot, shear_deflection, sie_convergence, sie_deflection, sis_deflection
from .psf import convolve_psf, gaussian_psf_kernel, load_psf_fits, normalize_psf
from .simulator import (
    LENS_KEYS,
    LENS_LIGHT_KEYS,
    SHEAR_KEYS,
    SOURCE_KEYS,
    LensSimulator,
    Simulator,
)

__all__ = [
    "Simulator",
    "LensSimulator",
    "LENS_KEYS",
    "SHEAR_KEYS",
    "SOURCE_KEYS",
    "LENS_LIGHT_KEYS",
    "PixelGrid",
    "bin_pixels",
    "sis_deflection",
    "sie_deflection",
    "sie_convergence",
    "shear_deflection",
    "ray_shoot",
    "sersic_b_n",
    "sersic_radius",
    "sersic_brightness",
    "sersic_total_flux",
    "gaussian_psf_kernel",
    "normalize_psf",
    "load_psf_fits",
    "convolve_psf",
    "ellipticity_to_phi_q",
    "phi_q_to_ellipticity",
    "MAX_ELLIPTICITY",
]
