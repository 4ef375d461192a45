"""The small image-inference problem that the likelihood tests share.

A Gaussian blob (amplitude, x and y position) on a 16 x 16 grid in correlated or heavy-tailed noise.
NUTS with ScoreLikelihood is compared with NUTS with the exact likelihood (numpyro.factor of the
noise model's own log_prob) by posterior mean shifts in posterior sd and by sd ratios.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS

SIZE = 16
TRUTH = {"amp": 6.0, "x0": 0.6, "y0": -0.8}
_yy, _xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2


def anisotropic_power(shape=(SIZE, SIZE), *, corr_y=30.0, corr_x=6.0, floor=0.03):
    """Unit-variance correlated noise, strongly anisotropic (more large-scale power along y)."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    p = 1.0 / (floor + corr_y * ky**2 + corr_x * kx**2)
    return p / p.mean()


def simulate(amp, x0, y0, width=1.8):
    """Noise-free image (SIZE, SIZE) of a circular Gaussian blob; positions in pixels from the centre."""
    return amp * jnp.exp(-((_xx - x0) ** 2 + (_yy - y0) ** 2) / (2 * width**2))


def observe(noise, key):
    return simulate(**TRUTH) + noise.sample(key)


def model(likelihood):
    """likelihood(mu) adds the observation site for the model image mu."""
    amp = numpyro.sample("amp", dist.Normal(5.0, 3.0))
    x0 = numpyro.sample("x0", dist.Normal(0.0, 2.0))
    y0 = numpyro.sample("y0", dist.Normal(0.0, 2.0))
    likelihood(simulate(amp, x0, y0))


def run_nuts(likelihood, *, seed=0, num_warmup=500, num_samples=2500, num_chains=4, **nuts_kwargs):
    mcmc = MCMC(
        NUTS(model, **nuts_kwargs),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(seed), likelihood)
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}


def compare(samples, reference):
    """Per parameter: (mean shift in reference posterior sds, sd ratio)."""
    out = {}
    for name, ref in reference.items():
        s = samples[name]
        out[name] = (float((s.mean() - ref.mean()) / ref.std()), float(s.std() / ref.std()))
    return out


def exact_likelihood(noise, data):
    def likelihood(mu):
        numpyro.factor("obs", noise.log_prob(data - mu))

    return likelihood
