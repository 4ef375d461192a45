"""Coverage of posteriors over many injections: TARP, SBC and a pass/fail verdict."""

from .metrics import SBCResult, TarpResult, as_draws, coverage_verdict, sbc, tarp

__all__ = ["as_draws", "tarp", "TarpResult", "sbc", "SBCResult", "coverage_verdict"]
