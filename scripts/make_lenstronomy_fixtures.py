r"""Write lenstronomy reference values for tests/test_lensing.py.

lenstronomy is not a dependency of numpyro-slic; run this in its own environment:

    python3 -m venv /work/lenstronomy-venv
    /work/lenstronomy-venv/bin/pip install lenstronomy==1.14.2     # with numpy 2.4.6, scipy 1.17.1
    /work/lenstronomy-venv/bin/python scripts/make_lenstronomy_fixtures.py \
        tests/fixtures/lenstronomy_reference.npz

Everything is float64. The file holds, under these keys (``*`` = a case index):

- ``sie_x, sie_y`` (N,): probe points (arcsec); ``sie_params`` (M, 5): theta_E, e1, e2, center_x,
  center_y; ``sie_alpha_x, sie_alpha_y`` (M, N): ``LensModel(["SIE"])`` deflections.
- ``shear_params`` (K, 4): gamma1, gamma2, ra_0, dec_0; ``shear_alpha_x, shear_alpha_y`` (K, N).
- ``sersic_x, sersic_y`` (N2,); ``sersic_params`` (J, 7): amp, R_sersic, n_sersic, e1, e2,
  center_x, center_y; ``sersic_brightness`` (J, N2): ``LightModel(["SERSIC_ELLIPSE"])`` values.
- ``gaussian_kernel``: ``kernel_util.kernel_gaussian(21, 0.08, 0.15)`` with ``gaussian_kernel_args``.
- ``image*_keys`` / ``image*_values``: LensSimulator parameter names and values; ``image*_grid``:
  nx, ny, pixel_scale, supersampling; ``image*_psf``: the PIXEL kernel (shape (0, 0) for none);
  ``image*``: ``ImageModel.image`` (ny, nx) with ``supersampling_convolution=False`` (square
  cases; ImageModel rejects others), or the same steps from lenstronomy's parts (non-square case).
- ``lenstronomy_version``.
"""

from __future__ import annotations

import argparse

import lenstronomy
import numpy as np
from lenstronomy.Data.pixel_grid import PixelGrid
from lenstronomy.Data.psf import PSF
from lenstronomy.ImSim.image_model import ImageModel
from lenstronomy.ImSim.Numerics.convolution import PixelKernelConvolution
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LightModel.light_model import LightModel
from lenstronomy.Util import kernel_util

SIE_PARAMS = np.array(
    [
        # theta_E, e1, e2, center_x, center_y
        [1.0, 0.0, 0.0, 0.0, 0.0],  # round: lenstronomy clips q to 1 - 1e-8
        [1.5, 2e-5, -1e-5, 0.02, 0.0],  # below float32's near-round switch (|e| < 3.5e-4)
        [1.2, 1e-3, -5e-4, 0.0, 0.01],  # just above it
        [1.3, 0.2, -0.1, 0.1, -0.05],
        [0.8, -0.35, 0.25, -0.2, 0.3],
        [1.1, 0.0, 0.6, 0.0, 0.0],  # q = 0.25
        [0.9, 0.95, 0.4, 0.05, 0.05],  # |e| > 0.9999: clipped
    ]
)
SHEAR_PARAMS = np.array([[0.05, -0.03, 0.0, 0.0], [-0.1, 0.07, 0.3, -0.2]])
SERSIC_PARAMS = np.array(
    [
        # amp, R_sersic, n_sersic, e1, e2, center_x, center_y
        [10.0, 0.3, 1.0, 0.0, 0.0, 0.0, 0.0],
        [2.5, 0.15, 4.0, 0.1, -0.2, 0.05, -0.1],
        [1.0, 0.5, 0.7, -0.3, 0.05, -0.2, 0.1],
        [3.0, 0.05, 2.5, 0.2, 0.2, 0.0, 0.0],
    ]
)

_SERSIC_NAMES = ("amp", "R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y")

# (nx, ny, pixel_scale, supersampling, psf fwhm or None, lens, shear, source, lens light or None).
# lenstronomy's ImageModel only takes square images; the non-square case (which catches transposed
# axes) is assembled from lenstronomy's PixelGrid, LensModel, LightModel and convolution instead.
IMAGE_CASES = [
    (40, 32, 0.08, 1, 0.15, (1.2, 0.1, -0.05, 0.03, -0.02), (0.02, -0.01),
     (10.0, 0.2, 1.5, 0.0, 0.1, 0.05, 0.1), (4.0, 0.5, 2.0, 0.1, 0.0, 0.03, -0.02)),
    (36, 36, 0.05, 3, 0.2, (0.9, -0.2, 0.15, -0.05, 0.04), (-0.04, 0.03),
     (5.0, 0.1, 3.0, 0.15, -0.1, -0.08, 0.02), (20.0, 0.6, 4.0, -0.1, 0.05, -0.05, 0.04)),
    (32, 32, 0.1, 1, None, (1.5, 0.0, 0.0, 0.0, 0.0), None,
     (8.0, 0.3, 1.0, 0.0, 0.0, 0.2, 0.0), None),
    (64, 64, 0.08, 2, 0.15, (1.2, 0.12, 0.05, 0.0, 0.0), (0.03, 0.01),
     (10.0, 0.25, 2.0, 0.1, -0.05, 0.06, -0.04), (15.0, 0.8, 3.5, 0.08, 0.02, 0.0, 0.0)),
]


def probe_points(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random points in [-3, 3]^2 plus points on both axes and close to the origin."""
    x = rng.uniform(-3.0, 3.0, 48)
    y = rng.uniform(-3.0, 3.0, 48)
    special_x = np.array([1.0, -0.7, 0.0, 0.0, 1e-2, -3e-3, 0.5, 2.0])
    special_y = np.array([0.0, 0.0, 0.8, -1.3, 5e-3, 2e-3, 0.5, -2.0])
    return np.concatenate([x, special_x]), np.concatenate([y, special_y])


def sie_reference(x, y):
    model = LensModel(["SIE"])
    names = ("theta_E", "e1", "e2", "center_x", "center_y")
    out = [model.alpha(x, y, [dict(zip(names, map(float, p)))]) for p in SIE_PARAMS]
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


def shear_reference(x, y):
    model = LensModel(["SHEAR"])
    names = ("gamma1", "gamma2", "ra_0", "dec_0")
    out = [model.alpha(x, y, [dict(zip(names, map(float, p)))]) for p in SHEAR_PARAMS]
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


def sersic_reference(x, y):
    model = LightModel(["SERSIC_ELLIPSE"])
    kwargs = [[dict(zip(_SERSIC_NAMES, map(float, p)))] for p in SERSIC_PARAMS]
    return np.array([model.surface_brightness(x, y, k) for k in kwargs])


def image_reference(case) -> dict[str, np.ndarray]:
    nx, ny, scale, ss, fwhm, lens, shear, source, lens_light = case
    grid = PixelGrid(
        nx=nx,
        ny=ny,
        transform_pix2angle=np.diag([scale, scale]),
        ra_at_xy_0=-(nx - 1) / 2 * scale,
        dec_at_xy_0=-(ny - 1) / 2 * scale,
    )
    if fwhm is None:
        psf, kernel = PSF(psf_type="NONE"), np.zeros((0, 0))
    else:
        kernel = kernel_util.kernel_gaussian(21, scale, fwhm)
        psf = PSF(psf_type="PIXEL", kernel_point_source=kernel)
    lens_names = ("theta_E", "e1", "e2", "center_x", "center_y")
    kwargs_lens = [dict(zip(lens_names, lens))]
    lens_models = ["SIE"]
    keys = ["lens_" + k for k in lens_names]
    values = list(lens)
    if shear is not None:
        kwargs_lens.append({"gamma1": shear[0], "gamma2": shear[1], "ra_0": 0.0, "dec_0": 0.0})
        lens_models.append("SHEAR")
        keys += ["shear_gamma1", "shear_gamma2"]
        values += list(shear)
    keys += ["source_" + k for k in _SERSIC_NAMES]
    values += list(source)
    kwargs_lens_light = None
    if lens_light is not None:
        keys += ["lens_light_" + k for k in _SERSIC_NAMES]
        values += list(lens_light)
        kwargs_lens_light = [dict(zip(_SERSIC_NAMES, lens_light))]
    lens_model = LensModel(lens_models)
    source_model = LightModel(["SERSIC_ELLIPSE"])
    lens_light_model = LightModel(["SERSIC_ELLIPSE"] if lens_light is not None else [])
    kwargs_source = [dict(zip(_SERSIC_NAMES, source))]
    if nx == ny:
        model = ImageModel(
            grid,
            psf,
            lens_model_class=lens_model,
            source_model_class=source_model,
            lens_light_model_class=lens_light_model,
            kwargs_numerics={"supersampling_factor": ss, "supersampling_convolution": False},
        )
        image = model.image(
            kwargs_lens=kwargs_lens, kwargs_source=kwargs_source, kwargs_lens_light=kwargs_lens_light
        )
    else:
        if ss != 1:
            raise ValueError("non-square reference images are built without supersampling")
        x, y = grid.pixel_coordinates  # (ny, nx) each
        bx, by = lens_model.ray_shooting(x.ravel(), y.ravel(), kwargs_lens)
        sb = source_model.surface_brightness(bx, by, kwargs_source)
        if lens_light is not None:
            sb = sb + lens_light_model.surface_brightness(x.ravel(), y.ravel(), kwargs_lens_light)
        image = sb.reshape(ny, nx) * grid.pixel_width**2
        if fwhm is not None:
            image = PixelKernelConvolution(psf.kernel_point_source).convolution2d(image)
    return {
        "keys": np.array(keys),
        "values": np.array(values, dtype=np.float64),
        "grid": np.array([nx, ny, scale, ss], dtype=np.float64),
        "psf": np.asarray(kernel, dtype=np.float64),
        "": np.asarray(image, dtype=np.float64),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="path of the .npz file to write")
    args = parser.parse_args()

    rng = np.random.default_rng(20240611)
    x, y = probe_points(rng)
    sie_ax, sie_ay = sie_reference(x, y)
    sh_ax, sh_ay = shear_reference(x, y)
    # Sersic probes: a wide spread plus points inside the 1e-4 arcsec smoothing floor.
    sx = np.concatenate([rng.uniform(-1.5, 1.5, 40), [0.0, 5e-5, 0.05, -0.2]])
    sy = np.concatenate([rng.uniform(-1.5, 1.5, 40), [0.0, -2e-5, -0.1, 0.1]])
    data = {
        "lenstronomy_version": np.array(lenstronomy.__version__),
        "sie_x": x,
        "sie_y": y,
        "sie_params": SIE_PARAMS,
        "sie_alpha_x": sie_ax,
        "sie_alpha_y": sie_ay,
        "shear_params": SHEAR_PARAMS,
        "shear_alpha_x": sh_ax,
        "shear_alpha_y": sh_ay,
        "sersic_x": sx,
        "sersic_y": sy,
        "sersic_params": SERSIC_PARAMS,
        "sersic_brightness": sersic_reference(sx, sy),
        "gaussian_kernel": kernel_util.kernel_gaussian(21, 0.08, 0.15),
        "gaussian_kernel_args": np.array([21, 0.08, 0.15]),
    }
    for i, case in enumerate(IMAGE_CASES):
        for suffix, value in image_reference(case).items():
            data[f"image{i}" + (f"_{suffix}" if suffix else "")] = value
    np.savez_compressed(args.output, **data)
    print(f"wrote {args.output} with lenstronomy {lenstronomy.__version__}")


if __name__ == "__main__":
    main()
