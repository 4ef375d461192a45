"""Coverage of posteriors over many injections: problems with real noise, a batched injection runner,
TARP, SBC and a pass/fail verdict."""

from .metrics import SBCResult, TarpResult, as_draws, coverage_verdict, sbc, tarp
from .problems import (
    NOISE_SOURCES,
    CoverageProblem,
    binned_psf,
    galaxy_coverage_problem,
    lens_coverage_problem,
    noise_tiles,
)
from .runner import InjectionResults, Injections, RunConfig, load_results, make_injections, run_injections

__all__ = [
    "as_draws",
    "tarp",
    "TarpResult",
    "sbc",
    "SBCResult",
    "coverage_verdict",
    "NOISE_SOURCES",
    "CoverageProblem",
    "lens_coverage_problem",
    "galaxy_coverage_problem",
    "binned_psf",
    "noise_tiles",
    "RunConfig",
    "Injections",
    "InjectionResults",
    "make_injections",
    "run_injections",
    "load_results",
]
