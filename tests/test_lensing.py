"""Tests for numpyro_slic.lensing: analytic properties and lenstronomy reference values.

The reference file tests/fixtures/lenstronomy_reference.npz is written by
scripts/make_lenstronomy_fixtures.py (lenstronomy 1.14.2, float64); lenstronomy is not needed here.
Float32 is the default; float64 checks run inside ``jax.enable_x64(True)`` only.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal
from astropy.io import fits
from scipy.special import gammainc

from numpyro_slic.lensing import (
    LENS_KEYS,
    SOURCE_KEYS,
    LensSimulator,
    PixelGrid,
    bin_pixels,
    convolve_psf,
    ellipticity_to_phi_q,
    gaussian_psf_kernel,
    load_psf_fits,
    normalize_psf,
    phi_q_to_ellipticity,
    ray_shoot,
    sersic_b_n,
    sersic_brightness,
    sersic_total_flux,
    shear_deflection,
    sie_convergence,
    sie_deflection,
    sis_deflection,
)

FIXTURE = Path(__file__).parent / "fixtures" / "lenstronomy_reference.npz"
EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


def _image_case(ref, i):
    nx, ny, scale, ss = ref[f"image{i}_grid"]
    psf = ref[f"image{i}_psf"]
    params = {str(k): float(v) for k, v in zip(ref[f"image{i}_keys"], ref[f"image{i}_values"])}
    sim = LensSimulator(PixelGrid(int(nx), int(ny), float(scale)), psf if psf.size else None, int(ss))
    return sim, params, ref[f"image{i}"]


BASE_PARAMS = {
    "lens_theta_E": 1.2, "lens_e1": 0.1, "lens_e2": -0.05, "lens_center_x": 0.0, "lens_center_y": 0.0,
    "shear_gamma1": 0.02, "shear_gamma2": -0.01,
    "source_amp": 10.0, "source_R_sersic": 0.2, "source_n_sersic": 1.5, "source_e1": 0.0,
    "source_e2": 0.1, "source_center_x": 0.05, "source_center_y": 0.1,
}  # fmt: skip


# ---------------------------------------------------------------- mass: analytic properties


def test_sis_is_theta_E_times_unit_vector():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-2, 2, (2, 100))
    ax, ay = sis_deflection(x, y, 1.3, center_x=0.1, center_y=-0.2)
    r = np.hypot(x - 0.1, y + 0.2)
    # float32 round-off on a unit vector scaled by 1.3: a few eps.
    np.testing.assert_allclose(ax, 1.3 * (x - 0.1) / r, atol=8 * EPS32)
    np.testing.assert_allclose(ay, 1.3 * (y + 0.2) / r, atol=8 * EPS32)


def test_round_sie_is_sis():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-2, 2, (2, 100))
    a_sie = sie_deflection(x, y, 0.9, 0.0, 0.0, 0.3, 0.1)
    a_sis = sis_deflection(x, y, 0.9, 0.3, 0.1)
    # e = 0 takes the near-round branch, which is the SIS plus terms linear in e: equal to round-off.
    np.testing.assert_allclose(a_sie, a_sis, atol=8 * EPS32)


def test_near_round_expansion_matches_elliptical_formula_and_is_smooth():
    """Both sides of the |e| = sqrt(eps) switch agree, and the gradient at e = 0 is the derivative."""
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-2, 2, (2, 50))
    with jax.enable_x64(True):
        # Just above the switch (elliptical formula) vs a hair below it (expansion), float64: the
        # expansion's error is O(|e|^2) ~ 0.4 |e|^2 theta_E (measured), 1e-16 here.
        tau = math.sqrt(np.finfo(np.float64).eps)
        above = np.array(sie_deflection(x, y, 1.1, 1.0001 * tau, 0.0))
        below = np.array(sie_deflection(x, y, 1.1, 0.9999 * tau, 0.0))
        np.testing.assert_allclose(above, below, atol=1e-14)

        # d alpha / d e at e = 0 by autodiff (expansion branch) equals a central difference of the
        # elliptical formula with h = 1e-3 (truncation O(h^2) ~ 1e-6).
        def alpha(e):
            return jnp.stack(sie_deflection(x, y, 1.1, e[0], e[1], 0.05, -0.02))

        alpha = jax.jit(alpha)
        jac = jax.jit(jax.jacfwd(alpha))(jnp.zeros(2))
        h = 1e-3
        for k in range(2):
            step = jnp.zeros(2).at[k].set(h)
            fd = (alpha(step) - alpha(-step)) / (2 * h)
            np.testing.assert_allclose(jac[..., k], fd, atol=1e-5)
            assert np.max(np.abs(fd)) > 0.05  # the quadrupole term is really there


@pytest.mark.parametrize("params", [(1.3, 0.25, -0.15, 0.1, -0.05), (1.0, 0.3, 0.0, 0.0, 0.0)])
def test_sie_deflection_is_gradient_of_potential_with_sie_convergence(params):
    """div(alpha) = 2 kappa and curl(alpha) = 0, from autodiff of the deflection (float64). The
    second lens has its axes on x and y, so the probes on y = 0 and x = 0 hit arctanh(z) at z = 0
    and near |z| = sqrt(1 - q^2)."""
    rng = np.random.default_rng(3)
    pts = np.concatenate([rng.uniform(-2, 2, (40, 2)), [[0.7, 0.0], [-1.3, 0.0], [0.0, 0.6], [0.0, -1.1]]])
    with jax.enable_x64(True):
        jac = jax.jit(jax.vmap(jax.jacfwd(lambda p: jnp.stack(sie_deflection(p[0], p[1], *params)))))(pts)
        kappa = sie_convergence(pts[:, 0], pts[:, 1], *params)
        np.testing.assert_allclose(0.5 * (jac[:, 0, 0] + jac[:, 1, 1]), kappa, rtol=1e-10)
        np.testing.assert_allclose(jac[:, 0, 1], jac[:, 1, 0], atol=1e-10)


def _critical_ellipse(theta_E, e1, e2, t):
    """Points of the kappa = 1/2 ellipse q^2 x'^2 + y'^2 = b^2, and its outward normal times dl/dt."""
    phi, q = (float(v) for v in ellipticity_to_phi_q(e1, e2))
    b = theta_E * math.sqrt(q)
    xr, yr = b / q * np.cos(t), b * np.sin(t)
    nr = np.stack([b * np.cos(t), b / q * np.sin(t)])  # (dy'/dt, -dx'/dt)
    rot = np.array([[math.cos(phi), -math.sin(phi)], [math.sin(phi), math.cos(phi)]])
    return rot @ np.stack([xr, yr]), rot @ nr, q


def test_sie_mean_convergence_inside_critical_curve_is_one():
    """lenstronomy's theta_E: the tangential critical curve of an SIE is the kappa = 1/2 ellipse, it
    encloses the area pi theta_E^2, and (Gauss) the flux of alpha through it is 2 pi theta_E^2."""
    theta_E, e1, e2, cx, cy = 1.3, 0.2, -0.12, 0.1, -0.05
    t = np.linspace(0, 2 * np.pi, 512, endpoint=False)
    with jax.enable_x64(True):
        (xs, ys), normal, q = _critical_ellipse(theta_E, e1, e2, t)
        ax, ay = sie_deflection(xs + cx, ys + cy, theta_E, e1, e2, cx, cy)
        # Periodic trapezoid rule: spectrally accurate for this smooth integrand.
        flux = float(np.sum(ax * normal[0] + ay * normal[1]) * (2 * np.pi / t.size))
        mean_kappa = flux / (2 * np.pi * theta_E**2)
        assert abs(mean_kappa - 1.0) < 1e-9
        # A major-axis (gravlens) theta_E convention would give q^(-1/2) = 1.27 here.
        assert q < 0.65

        # Magnification sign: det(d beta / d theta) vanishes on the curve, < 0 inside, > 0 outside.
        shoot = lambda p: jnp.stack(ray_shoot(p[0], p[1], theta_E, e1, e2, cx, cy))  # noqa: E731
        jac = jax.jit(jax.vmap(jax.jacfwd(shoot)))
        for scale, sign in ((1.0, 0), (0.9, -1), (1.1, 1)):
            pts = jnp.stack([scale * xs + cx, scale * ys + cy], axis=1)
            det = np.linalg.det(np.asarray(jac(pts)))
            if sign == 0:
                assert np.max(np.abs(det)) < 1e-9
            else:
                assert np.all(np.sign(det) == sign)


def test_sis_lens_equation_round_trip_and_magnifications():
    theta_E, beta = 1.1, np.array([0.3, -0.2])
    unit = beta / np.linalg.norm(beta)
    images = [beta + theta_E * unit, beta - theta_E * unit]
    expected_mu = [
        (np.linalg.norm(beta) + theta_E) / np.linalg.norm(beta),
        -(theta_E - np.linalg.norm(beta)) / np.linalg.norm(beta),
    ]
    shoot = jax.jit(lambda p: jnp.stack(ray_shoot(p[0], p[1], theta_E, 0.0, 0.0)))
    jac = jax.jit(jax.jacfwd(shoot))
    for image, mu in zip(images, expected_mu):
        b = np.array(shoot(jnp.asarray(image, dtype=jnp.float32)))
        np.testing.assert_allclose(b, beta, atol=8 * EPS32)  # float32: a few eps of |theta| ~ 1.5
        # 1/det(A) in float32; |mu| ~ 5 amplifies the round-off of det ~ 0.2.
        det = np.linalg.det(np.asarray(jac(jnp.asarray(image, dtype=jnp.float32))))
        np.testing.assert_allclose(1.0 / det, mu, rtol=1e-5)


def test_sie_shear_quad_images_by_newton_round_trip():
    """Newton-solve beta = theta - alpha(theta) from four starts: four distinct images that ray-shoot
    back to beta, two minima (det > 0, trace > 0) and two saddles (det < 0)."""
    lens = dict(theta_E=1.2, e1=0.15, e2=-0.05, center_x=0.02, center_y=-0.01, gamma1=0.03, gamma2=0.02)
    beta = np.array([0.04, 0.03])
    phi, _ = ellipticity_to_phi_q(lens["e1"], lens["e2"])
    with jax.enable_x64(True):
        shoot = jax.jit(lambda p: jnp.stack(ray_shoot(p[0], p[1], **lens)))
        jac = jax.jit(jax.jacfwd(lambda p: jnp.stack(ray_shoot(p[0], p[1], **lens))))
        images = []
        for k in range(4):
            ang = float(phi) + k * np.pi / 2
            p = jnp.array([math.cos(ang), math.sin(ang)]) * lens["theta_E"]
            for _ in range(50):
                p = p - jnp.linalg.solve(jac(p), shoot(p) - beta)
            images.append(np.asarray(p))
            np.testing.assert_allclose(shoot(p), beta, atol=1e-12)
        images = np.array(images)
        dist = np.linalg.norm(images[:, None] - images[None], axis=-1)
        assert np.min(dist[~np.eye(4, dtype=bool)]) > 0.5  # four different images
        a = np.array([np.asarray(jac(jnp.asarray(p))) for p in images])
        det, tr = np.linalg.det(a), np.trace(a, axis1=1, axis2=2)
        assert np.sum(det > 0) == 2 and np.sum(det < 0) == 2
        assert np.all(tr[det > 0] > 0)


def test_shear_deflection_formula():
    x, y = np.array([1.0, -0.5]), np.array([0.2, 0.7])
    ax, ay = shear_deflection(x, y, 0.1, -0.04, ra_0=0.3, dec_0=-0.1)
    np.testing.assert_allclose(ax, 0.1 * (x - 0.3) - 0.04 * (y + 0.1), atol=4 * EPS32)
    np.testing.assert_allclose(ay, -0.04 * (x - 0.3) - 0.1 * (y + 0.1), atol=4 * EPS32)


def test_ellipticity_round_trip():
    e1, e2 = phi_q_to_ellipticity(0.7, 0.6)
    phi, q = ellipticity_to_phi_q(e1, e2)
    np.testing.assert_allclose([phi, q], [0.7, 0.6], rtol=4 * EPS32)


# ---------------------------------------------------------------- light


@pytest.mark.parametrize("n", [1.0, 4.0])
def test_sersic_half_light_and_total_flux(n):
    """Radial quadrature of the profile: the flux inside R_sersic is P(2n, b_n) of the total (the
    incomplete-gamma identity, ~0.5 up to the b_n approximation) and the total is the closed form."""
    amp, r_s = 2.0, 0.4
    with jax.enable_x64(True):
        log_r = np.linspace(np.log(1e-7), np.log(1000 * r_s), 400_001)
        r = np.exp(log_r)
        sb = np.asarray(sersic_brightness(r, 0.0, amp, r_s, n))
        integrand = 2 * np.pi * r**2 * sb  # d flux / d ln r
        steps = 0.5 * (integrand[1:] + integrand[:-1]) * np.diff(log_r)
        cumulative = np.concatenate([[0.0], np.cumsum(steps)])
        total = cumulative[-1]
        inside = np.interp(np.log(r_s), log_r, cumulative)
        # Trapezoid in ln r with 4e5 nodes: relative error ~1e-9; the 1e-4" floor adds < 1e-7.
        np.testing.assert_allclose(total, float(sersic_total_flux(amp, r_s, n)), rtol=1e-6)
        b_n = float(sersic_b_n(n))
        np.testing.assert_allclose(inside / total, gammainc(2 * n, b_n), rtol=1e-6)
        # lenstronomy's b_n = 1.9992 n - 0.3271 is off by 0.006 at n = 1, so the fraction is 0.498.
        assert abs(inside / total - 0.5) < 2.5e-3


def test_elliptical_sersic_flux_is_independent_of_ellipticity():
    """Product-average radius: an elliptical n = 1 profile holds the round profile's flux (a
    major-axis R_sersic would scale it by q = 0.6 here)."""
    grid = PixelGrid(400, 400, 0.01)
    x, y = grid.coordinates()
    with jax.enable_x64(True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        flux = float(np.sum(sersic_brightness(x, y, 1.0, 0.25, 1.0, 0.2, -0.15)) * 0.01**2)
        # Pixel sums of a smooth profile 16 R_sersic wide: error ~1e-4 (centre cusp, edge tail).
        np.testing.assert_allclose(flux, float(sersic_total_flux(1.0, 0.25, 1.0)), rtol=1e-3)


# ---------------------------------------------------------------- grid and PSF


def test_grid_convention_and_supersampling():
    grid = PixelGrid(nx=5, ny=3, pixel_scale=0.1)
    x, y = grid.coordinates()
    assert x.shape == (3, 5)
    np.testing.assert_allclose(x[0], [-0.2, -0.1, 0.0, 0.1, 0.2], atol=1e-7)
    np.testing.assert_allclose(y[:, 0], [-0.1, 0.0, 0.1], atol=1e-7)
    # Sub-pixel centres average back to the pixel centre (exact for a linear function).
    xs, ys = grid.coordinates(supersampling=3)
    assert xs.shape == (9, 15)
    np.testing.assert_allclose(bin_pixels(xs, 3), x, atol=1e-7)
    np.testing.assert_allclose(bin_pixels(ys, 3), y, atol=1e-7)
    assert grid.extent == pytest.approx((-0.25, 0.25, -0.15, 0.15))
    with pytest.raises(ValueError, match="pixel_scale"):
        PixelGrid(4, 4, 0.0)
    with pytest.raises(TypeError, match="int"):
        PixelGrid(4.0, 4, 0.1)


def test_convolve_psf_matches_scipy_and_preserves_flux():
    rng = np.random.default_rng(4)
    image = rng.normal(size=(30, 24)).astype(np.float32)
    kernel = rng.uniform(size=(7, 5)).astype(np.float32)  # asymmetric: catches flips and offsets
    expected = scipy.signal.fftconvolve(image.astype(np.float64), kernel.astype(np.float64), mode="same")
    # float32 FFT of a sum of 35 products: error ~ eps * sum|k| * max|image|.
    np.testing.assert_allclose(convolve_psf(image, kernel), expected, atol=1e-5 * np.abs(expected).max())

    # Flux is conserved when the source sits further than the kernel half-width from the edges.
    compact = np.zeros((40, 40), np.float32)
    compact[12:28, 15:25] = rng.uniform(size=(16, 10))
    psf = gaussian_psf_kernel(0.3, 0.1, 11)
    out = convolve_psf(compact, psf)
    # float32 sums of 1600 values: relative round-off ~ 1e-6.
    np.testing.assert_allclose(float(out.sum()), float(compact.sum()), rtol=1e-5)
    with pytest.raises(ValueError, match="odd"):
        convolve_psf(compact, np.ones((4, 5)))


def test_gaussian_kernel_matches_lenstronomy(ref):
    size, scale, fwhm = ref["gaussian_kernel_args"]
    kernel = gaussian_psf_kernel(float(fwhm), float(scale), int(size))
    assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(kernel, ref["gaussian_kernel"], atol=4 * EPS32 * ref["gaussian_kernel"].max())
    # Traceable in the FWHM: its gradient exists (e.g. to fit the PSF width).
    assert np.isfinite(jax.jit(jax.grad(lambda f: gaussian_psf_kernel(f, 0.08, 21)[10, 10]))(0.15))


def test_load_psf_fits(tmp_path):
    kernel = np.outer([1.0, 2.0, 1.0], [1.0, 3.0, 2.0, 3.0, 1.0])
    path = tmp_path / "psf.fits"
    # An empty primary HDU followed by the image: the first HDU with data is used.
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(kernel, name="PSF")]).writeto(path)
    loaded = load_psf_fits(path)
    np.testing.assert_allclose(loaded, kernel / kernel.sum(), rtol=1e-6)

    bad = kernel.copy()
    bad[1, 2] = np.nan
    for data, match in (
        (bad, "NaN"),
        (np.ones((4, 5)), "odd"),
        (np.ones((2, 3, 3)), "2-D"),
        (-np.ones((3, 3)), "positive sum"),
    ):
        p = tmp_path / f"bad_{match.replace(' ', '_').replace('/', '')}.fits"
        fits.PrimaryHDU(data).writeto(p)
        with pytest.raises(ValueError, match=match):
            load_psf_fits(p)
    table = tmp_path / "table.fits"
    column = fits.Column("a", "E", array=[1.0])
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([column])]).writeto(table)
    with pytest.raises(ValueError, match="no HDU with image data"):
        load_psf_fits(table)
    with pytest.raises(ValueError, match="odd"):
        normalize_psf(np.ones((2, 2)))


# ---------------------------------------------------------------- lenstronomy reference values


def test_sie_and_shear_match_lenstronomy(ref):
    x, y = ref["sie_x"], ref["sie_y"]
    r_min = 1e-3  # every probe point is at least this far from each lens centre
    sie = jax.jit(sie_deflection)
    for params, rx, ry in zip(ref["sie_params"], ref["sie_alpha_x"], ref["sie_alpha_y"]):
        theta_E = params[0]
        r = np.hypot(x - params[3], y - params[4])
        assert r.min() > r_min
        # float32: measured <= 3e-7 theta_E, but 5e-6 for the |e| > 0.9999 case, where the clip value
        # 0.9999 itself carries 6e-8 of round-off, i.e. 6e-4 relative in 1 - |e| and in q.
        ax, ay = sie(x, y, *params)
        err = np.hypot(np.asarray(ax) - rx, np.asarray(ay) - ry)
        assert np.max(err) < 1e-5 * theta_E, params
        with jax.enable_x64(True):
            ax, ay = sie(x, y, *params)
            err = np.hypot(np.asarray(ax) - rx, np.asarray(ay) - ry)
            # float64: differences are lenstronomy's own approximations: its 1e-10" core (relative
            # 1e-10 / r) and its clip q <= 1 - 1e-8 (relative ~1e-8, the round case).
            assert np.all(err < theta_E * (2e-10 / r + 3e-8)), params
    for params, rx, ry in zip(ref["shear_params"], ref["shear_alpha_x"], ref["shear_alpha_y"]):
        ax, ay = shear_deflection(x, y, *params)
        np.testing.assert_allclose(np.stack([ax, ay]), np.stack([rx, ry]), atol=8 * EPS32)


def test_sersic_matches_lenstronomy(ref):
    x, y = ref["sersic_x"], ref["sersic_y"]
    sersic = jax.jit(sersic_brightness)
    for params, expected in zip(ref["sersic_params"], ref["sersic_brightness"]):
        # float32: exp(-E) carries relative error ~ eps |E|, and E = b_n (R/R_s)^(1/n) reaches ~25
        # here (measured 4e-6).
        np.testing.assert_allclose(sersic(x, y, *params), expected, rtol=2e-5)
        with jax.enable_x64(True):
            np.testing.assert_allclose(sersic(x, y, *params), expected, rtol=1e-12)


@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_image_matches_lenstronomy(ref, case):
    """Full images: non-square grid with lens light (0), supersampling 3 (1), SIS without PSF or
    shear (2), 64 x 64 with supersampling 2 and a 21 x 21 PSF (3)."""
    sim, params, expected = _image_case(ref, case)
    image = jax.jit(lambda p: sim(p))(params)
    assert image.shape == expected.shape and image.dtype == jnp.float32
    # float32: the source is evaluated at ray-shot positions with ~eps |theta| error, amplified by the
    # Sersic log-slope; measured <= 3e-6 of the peak.
    np.testing.assert_allclose(image, expected, atol=2e-5 * expected.max())
    with jax.enable_x64(True):
        sim, params, expected = _image_case(ref, case)
        image = jax.jit(lambda p: sim(p))(params)
        assert image.dtype == jnp.float64
        # float64: lenstronomy's SIE core and q clip (see the SIE test) shift rays by ~1e-8".
        np.testing.assert_allclose(image, expected, atol=1e-7 * expected.max())


# ---------------------------------------------------------------- simulator: transformations and errors


def test_simulator_jit_grad_vmap_and_finite_gradient_at_lens_centre():
    # Odd grid, no supersampling: the middle pixel centre is exactly on the lens centre (0, 0), and
    # e = 0 puts the SIE on its near-round branch.
    sim = LensSimulator(PixelGrid(33, 33, 0.1), gaussian_psf_kernel(0.2, 0.1, 9), supersampling=1)
    params = {k: jnp.asarray(v) for k, v in BASE_PARAMS.items()}
    params.update(lens_e1=jnp.asarray(0.0), lens_e2=jnp.asarray(0.0))
    loss = jax.jit(jax.value_and_grad(lambda p: jnp.sum(sim(p) ** 2)))
    value, grad = loss(params)
    assert np.isfinite(value)
    assert all(np.isfinite(g) for g in grad.values())
    assert abs(float(grad["lens_e1"])) > 0  # the near-round branch carries the e-gradient
    # And directly: deflection gradients on the centre, at e = 0 and at e != 0.
    def at_centre(c, e):
        alpha_x = sie_deflection(0.0, 0.0, 1.0, e, 0.0, c[0], c[1])[0]
        return alpha_x + sersic_brightness(0.0, 0.0, 1.0, 0.2, 4.0, center_x=c[0], center_y=c[1])

    grad_centre = jax.jit(jax.grad(at_centre))
    for e in (0.0, 0.2):
        assert np.all(np.isfinite(grad_centre(jnp.zeros(2), e)))

    batch = {k: jnp.stack([v, v * 1.01, v * 0.98]) for k, v in params.items()}
    images = jax.jit(jax.vmap(sim))(batch)
    assert images.shape == (3, 33, 33)
    one = jax.jit(lambda p: sim(p))({k: v[1] for k, v in batch.items()})
    np.testing.assert_allclose(images[1], one, rtol=1e-5, atol=1e-6 * float(images.max()))


def test_simulator_parameter_errors():
    sim = LensSimulator(PixelGrid(8, 8, 0.1))
    params = dict(BASE_PARAMS)
    assert sim(params).shape == (8, 8)
    no_shear = {k: v for k, v in params.items() if not k.startswith("shear_")}
    assert sim(no_shear).shape == (8, 8)
    with pytest.raises(ValueError, match="lens_theta_E"):
        sim({k: v for k, v in params.items() if k != "lens_theta_E"})
    with pytest.raises(ValueError, match="shear_gamma2"):
        sim({k: v for k, v in params.items() if k != "shear_gamma2"})
    with pytest.raises(ValueError, match="lens_thetaE"):
        sim({**params, "lens_thetaE": 1.0})
    with pytest.raises(ValueError, match="lens_light"):
        sim({**params, "lens_light_amp": 1.0})
    with pytest.raises(ValueError, match="vmap"):
        sim({**params, "source_amp": jnp.ones(3)})
    with pytest.raises(TypeError, match="PixelGrid"):
        LensSimulator((8, 8, 0.1))
    assert set(LENS_KEYS) | set(SOURCE_KEYS) <= set(params)
