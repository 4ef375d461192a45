"""Lens mass: singular isothermal ellipse (SIE), its round case (SIS), external shear, lens equation.

Conventions are lenstronomy's (checked against lenstronomy 1.14.2 by tests/test_lensing.py):

- Angles in arcsec; x to the right (+RA only if you flip your RA axis, see ``PixelGrid``), y up.
- SIE: ``theta_E, e1, e2, center_x, center_y``. With (phi, q) from ``ellipticity_to_phi_q`` and
  (x', y') the offset from the centre rotated by -phi (x' along the major axis), the convergence is

      kappa = b / (2 sqrt(q^2 x'^2 + y'^2)),     b = theta_E sqrt(q)

  so theta_E is the product average of the critical ellipse's semi-axes (b/q and b): the tangential
  critical curve encloses the area pi theta_E^2 and a mean convergence of exactly 1. The deflection is
  Kormann et al. (1994) / Keeton & Kochanek (1998) with core s = 0. lenstronomy keeps a 1e-10 arcsec
  core, which changes deflections at r > 1e-3 arcsec by less than 1e-7 relative.
- External shear: ``gamma1, gamma2``; deflection (g1 x + g2 y, g2 x - g1 y) about ``(ra_0, dec_0)``,
  which lenstronomy (and ``LensSimulator``) leave at the origin, not at the lens centre.

Numerical safety (so NUTS can start anywhere, e.g. at e1 = e2 = 0 or on the lens centre):

- At the centre (|offset|^2 below the dtype's smallest normal number) the deflection of the
  singular profile is undefined; it is set to 0 there with a gradient of 0, instead of NaN.
- The SIE formula divides by sqrt(1 - q^2) and goes through phi = arctan2(e2, e1) / 2, whose gradient
  is singular at e = 0. Below |e| = sqrt(dtype eps) the deflection uses its first-order expansion
  in (e1, e2) (SIS plus the quadrupole term, derived from the Poisson equation), which is smooth
  at e = 0 and has the exact gradient there; its error, O(|e|^2) theta_E, is below the dtype's
  round-off at the switch.
- arctanh(z) near |z| -> 1 (very flattened SIEs, q below ~1e-3 in float32, where sqrt(1 - q^2)
  rounds to 1) is evaluated with 1 - |z| = (1 - z^2) / (1 + |z|) and 1 - z^2 = (q r / psi)^2 exactly.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .ellipticity import MAX_ELLIPTICITY, ellipticity_to_phi_q

__all__ = [
    "sis_deflection",
    "sie_deflection",
    "sie_convergence",
    "shear_deflection",
    "ray_shoot",
]

Coordinate = Float[ArrayLike, "*shape"]
Scalar = Float[ArrayLike, ""]
Deflection = tuple[Float[Array, "*shape"], Float[Array, "*shape"]]


def _float_dtype(*args) -> jnp.dtype:
    return jnp.result_type(float, *args)


def _guard_centre(dx, dy):
    """(at_centre, dx_safe, dy_safe): offsets moved off the singular point where it is hit.

    The double-``where`` pattern: the singular formula never sees r = 0, so its (unused) gradient
    there is finite and ``where`` does not turn it into NaN.
    """
    tiny = jnp.finfo(_float_dtype(dx, dy)).tiny
    at_centre = dx**2 + dy**2 < tiny
    return at_centre, jnp.where(at_centre, 1.0, dx), jnp.where(at_centre, 0.0, dy)


def sis_deflection(
    x: Coordinate,
    y: Coordinate,
    theta_E: Scalar,
    center_x: Scalar = 0.0,
    center_y: Scalar = 0.0,
) -> Deflection:
    """Singular isothermal sphere: alpha = theta_E * (unit vector from the centre).

    Args:
        x: image-plane positions (arcsec), any broadcastable shape.
        y: as ``x``.
        theta_E: Einstein radius (arcsec). center_x, center_y: lens centre (arcsec).

    Returns:
        (alpha_x, alpha_y) in arcsec, the broadcast shape of the inputs; (0, 0) at the centre.
    """
    dx, dy = jnp.asarray(x) - center_x, jnp.asarray(y) - center_y
    at_centre, dx, dy = _guard_centre(dx, dy)
    r = jnp.sqrt(dx**2 + dy**2)
    scale = jnp.where(at_centre, 0.0, theta_E / r)
    return scale * dx, scale * dy


def _arctanh_ratio(z, w):
    """arctanh(z) for |z| < 1, given w = sqrt(1 - z^2) > 0 computed without cancellation.

    arctanh(z) = log1p(2z / (1 - z)) / 2 = log1p(2z (1 + z) / w^2) / 2 for z >= 0, and its mirror
    image for z < 0: accurate for small |z| and finite as |z| -> 1, where 1 - |z| may have rounded
    to 0 while w has not. (Not sign(z) f(|z|): its autodiff gradient at z = 0 would be 0.)
    """
    nonneg = z >= 0
    z_pos = jnp.where(nonneg, z, 0.0)  # each branch only ever sees its own half-line
    z_neg = jnp.where(nonneg, 0.0, z)
    w2 = w**2
    up = 0.5 * jnp.log1p(2.0 * z_pos * (1.0 + z_pos) / w2)
    down = -0.5 * jnp.log1p(-2.0 * z_neg * (1.0 - z_neg) / w2)
    return jnp.where(nonneg, up, down)


def _sie_elliptical(dx, dy, theta_E, e1, e2):
    """SIE deflection for |e| well above 0 (Keeton & Kochanek 1998 eq. 8 with s = 0)."""
    phi, q = ellipticity_to_phi_q(e1, e2)
    c = jnp.minimum(jnp.sqrt(e1**2 + e2**2), MAX_ELLIPTICITY)
    b = theta_E * jnp.sqrt(q)
    # sqrt(1 - q^2) = 2 sqrt(c) / (1 + c) exactly; the direct form cancels for q near 1.
    ecc = 2.0 * jnp.sqrt(c) / (1.0 + c)
    cos, sin = jnp.cos(phi), jnp.sin(phi)
    xr = cos * dx + sin * dy
    yr = -sin * dx + cos * dy
    psi = jnp.sqrt(q**2 * xr**2 + yr**2)
    r = jnp.sqrt(dx**2 + dy**2)
    ax_r = b / ecc * jnp.arctan(ecc * xr / psi)
    ay_r = b / ecc * _arctanh_ratio(ecc * yr / psi, q * r / psi)
    return cos * ax_r - sin * ay_r, sin * ax_r + cos * ay_r


def _sie_near_round(dx, dy, theta_E, e1, e2):
    """First order in (e1, e2): kappa = theta_E / (2r) (1 + e1 cos 2t + e2 sin 2t) gives the
    potential theta_E r (1 - (e1 cos 2t + e2 sin 2t) / 3), whose gradient this is."""
    r = jnp.sqrt(dx**2 + dy**2)
    u, v = dx / r, dy / r
    cos2, sin2 = u**2 - v**2, 2.0 * u * v
    ax = u - (e1 * (2.0 * u - cos2 * u) + e2 * (2.0 * v - sin2 * u)) / 3.0
    ay = v - (e1 * (-2.0 * v - cos2 * v) + e2 * (2.0 * u - sin2 * v)) / 3.0
    return theta_E * ax, theta_E * ay


def sie_deflection(
    x: Coordinate,
    y: Coordinate,
    theta_E: Scalar,
    e1: Scalar,
    e2: Scalar,
    center_x: Scalar = 0.0,
    center_y: Scalar = 0.0,
) -> Deflection:
    """Singular isothermal ellipse deflection, lenstronomy's ``SIE`` (module docstring: conventions).

    Args:
        x: image-plane positions (arcsec), any broadcastable shape.
        y: as ``x``.
        theta_E: Einstein radius (arcsec), product-average convention b = theta_E sqrt(q).
        e1: ellipticity components (``ellipticity_to_phi_q``); |e| is clipped at 0.9999.
        e2: as ``e1``.
        center_x: lens centre (arcsec).
        center_y: as ``center_x``.

    Returns:
        (alpha_x, alpha_y) in arcsec, the broadcast shape of the inputs; (0, 0) at the centre.
        Finite, with finite gradients, for every input (including e = 0 and the centre).
    """
    dx, dy = jnp.asarray(x) - center_x, jnp.asarray(y) - center_y
    e1, e2 = jnp.asarray(e1), jnp.asarray(e2)
    at_centre, dx, dy = _guard_centre(dx, dy)
    tau = jnp.sqrt(jnp.finfo(_float_dtype(dx, e1, e2)).eps)
    near_round = e1**2 + e2**2 < tau**2
    # Any |e| ~ 0.5 keeps the unused elliptical branch (and its gradient) finite at e = 0.
    ax_e, ay_e = _sie_elliptical(
        dx, dy, theta_E, jnp.where(near_round, 0.5, e1), jnp.where(near_round, 0.0, e2)
    )
    ax_r, ay_r = _sie_near_round(dx, dy, theta_E, e1, e2)
    ax = jnp.where(at_centre, 0.0, jnp.where(near_round, ax_r, ax_e))
    ay = jnp.where(at_centre, 0.0, jnp.where(near_round, ay_r, ay_e))
    return ax, ay


def sie_convergence(
    x: Coordinate,
    y: Coordinate,
    theta_E: Scalar,
    e1: Scalar,
    e2: Scalar,
    center_x: Scalar = 0.0,
    center_y: Scalar = 0.0,
) -> Float[Array, "*shape"]:
    """SIE convergence kappa = theta_E sqrt(q) / (2 sqrt(q^2 x'^2 + y'^2)) (dimensionless).

    Diverges (inf) at the centre; for inspection and tests, not for gradients at e = 0.
    """
    phi, q = ellipticity_to_phi_q(e1, e2)
    dx, dy = jnp.asarray(x) - center_x, jnp.asarray(y) - center_y
    xr = jnp.cos(phi) * dx + jnp.sin(phi) * dy
    yr = -jnp.sin(phi) * dx + jnp.cos(phi) * dy
    return theta_E * jnp.sqrt(q) / (2.0 * jnp.sqrt(q**2 * xr**2 + yr**2))


def shear_deflection(
    x: Coordinate,
    y: Coordinate,
    gamma1: Scalar,
    gamma2: Scalar,
    ra_0: Scalar = 0.0,
    dec_0: Scalar = 0.0,
) -> Deflection:
    """External shear deflection (gamma1 x + gamma2 y, gamma2 x - gamma1 y) about (ra_0, dec_0).

    Args:
        x: image-plane positions (arcsec).
        y: as ``x``.
        gamma1: shear component (dimensionless).
        gamma2: shear component (dimensionless).
        ra_0: where the deflection vanishes (arcsec); lenstronomy's default is the origin.
        dec_0: as ``ra_0``.
    """
    dx, dy = jnp.asarray(x) - ra_0, jnp.asarray(y) - dec_0
    return gamma1 * dx + gamma2 * dy, gamma2 * dx - gamma1 * dy


def ray_shoot(
    x: Coordinate,
    y: Coordinate,
    theta_E: Scalar,
    e1: Scalar,
    e2: Scalar,
    center_x: Scalar = 0.0,
    center_y: Scalar = 0.0,
    gamma1: Scalar = 0.0,
    gamma2: Scalar = 0.0,
) -> tuple[Float[Array, "*shape"], Float[Array, "*shape"]]:
    """Lens equation for SIE + external shear (shear about the origin): beta = theta - alpha(theta).

    Args:
        x: image-plane positions theta (arcsec). Other arguments as in ``sie_deflection`` and
            ``shear_deflection``.
        y: as ``x``.

    Returns:
        (beta_x, beta_y): source-plane positions (arcsec), the broadcast shape of the inputs.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    ax, ay = sie_deflection(x, y, theta_E, e1, e2, center_x, center_y)
    sx, sy = shear_deflection(x, y, gamma1, gamma2)
    return x - ax - sx, y - ay - sy
