"""Light: the elliptical Sersic profile, lenstronomy's ``SERSIC_ELLIPSE`` (checked against 1.14.2).

    I(R) = amp * exp(-b_n [(R / R_sersic)^(1/n) - 1]),     b_n = 1.9992 n - 0.3271

- ``amp`` is the surface brightness at R = R_sersic (flux per arcsec^2); ``R_sersic`` is the
  half-light radius up to the b_n approximation (the enclosed-flux fraction at R_sersic is
  P(2n, b_n): 0.490 for n = 0.5, 0.498 for n = 1, 0.50007 for n = 4).
- The elliptical radius is the product average of the semi-axes, R = sqrt(q x'^2 + y'^2 / q) with
  x' along the major axis, computed without angles as lenstronomy does:
  R^2 = |A (x - c)|^2 with A = [[1 - e1, -e2], [-e2, 1 + e1]] / sqrt(1 - e1^2 - e2^2).
  So the total flux does not depend on (e1, e2) and is smooth in them, including at e = 0.
- As in lenstronomy, R and R_sersic are floored at 1e-4 arcsec (this keeps the n > 1 cusp and its
  gradient finite) and the profile is 0 beyond 1000 R_sersic.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import gammaln
from jaxtyping import Array, ArrayLike, Float

__all__ = ["sersic_b_n", "sersic_radius", "sersic_brightness", "sersic_total_flux"]

Coordinate = Float[ArrayLike, "*shape"]
Scalar = Float[ArrayLike, ""]

# lenstronomy's SersicUtil defaults.
SERSIC_SMOOTHING = 1e-4  # arcsec
SERSIC_MAX_R_FRAC = 1000.0


def sersic_b_n(n_sersic: Scalar) -> Float[Array, ""]:
    """lenstronomy's linear approximation b_n = 1.9992 n - 0.3271, floored at 1e-5."""
    return jnp.maximum(1.9992 * jnp.asarray(n_sersic) - 0.3271, 1e-5)


def sersic_radius(
    x: Coordinate,
    y: Coordinate,
    e1: Scalar = 0.0,
    e2: Scalar = 0.0,
    center_x: Scalar = 0.0,
    center_y: Scalar = 0.0,
) -> Float[Array, "*shape"]:
    """Product-average elliptical radius sqrt(q x'^2 + y'^2 / q) (arcsec), floored at 1e-4."""
    dx, dy = jnp.asarray(x) - center_x, jnp.asarray(y) - center_y
    # lenstronomy's guard keeps |e| -> 1 finite (it is not an exact clip of q).
    norm2 = jnp.maximum(jnp.abs(1.0 - e1**2 - e2**2), 1e-6)
    xe = (1.0 - e1) * dx - e2 * dy
    ye = -e2 * dx + (1.0 + e1) * dy
    r2 = (xe**2 + ye**2) / norm2
    # Flooring r^2 (not r) keeps sqrt's gradient finite at the centre.
    return jnp.sqrt(jnp.maximum(r2, SERSIC_SMOOTHING**2))


def sersic_brightness(
    x: Coordinate,
    y: Coordinate,
    amp: Scalar,
    R_sersic: Scalar,
    n_sersic: Scalar,
    e1: Scalar = 0.0,
    e2: Scalar = 0.0,
    center_x: Scalar = 0.0,
    center_y: Scalar = 0.0,
) -> Float[Array, "*shape"]:
    """Elliptical Sersic surface brightness at (x, y).

    Args:
        x: positions (arcsec), any broadcastable shape.
        y: as ``x``.
        amp: surface brightness at R_sersic (flux / arcsec^2).
        R_sersic: product-average half-light radius (arcsec). n_sersic: Sersic index (> 0).
        e1: ellipticity (see ``ellipticity``). center_x, center_y: centre (arcsec).
        e2: as ``e1``.

    Returns:
        Surface brightness (flux / arcsec^2), the broadcast shape of the inputs.
    """
    r = sersic_radius(x, y, e1, e2, center_x, center_y)
    r_frac = r / jnp.maximum(R_sersic, SERSIC_SMOOTHING)
    b_n = sersic_b_n(n_sersic)
    # r_frac >= 1e-4 / R_sersic > 0, so the power is exp(log(.) / n) without a 0^p gradient.
    profile = jnp.exp(-b_n * (jnp.exp(jnp.log(r_frac) / n_sersic) - 1.0))
    return amp * jnp.where(r_frac <= SERSIC_MAX_R_FRAC, profile, 0.0)


def sersic_total_flux(amp: Scalar, R_sersic: Scalar, n_sersic: Scalar) -> Float[Array, ""]:
    """Flux integrated to infinity: 2 pi n amp R_sersic^2 e^b_n Gamma(2n) / b_n^(2n).

    Independent of (e1, e2) (product-average radius). Ignores the 1000 R_sersic cut-off, which
    removes a negligible fraction for n <= 8.
    """
    n = jnp.asarray(n_sersic)
    b_n = sersic_b_n(n)
    log_norm = b_n + gammaln(2.0 * n) - 2.0 * n * jnp.log(b_n)
    return 2.0 * jnp.pi * n * amp * jnp.asarray(R_sersic) ** 2 * jnp.exp(log_norm)
