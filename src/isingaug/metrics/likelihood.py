"""How well inferred parameters explain held-out patterns."""

from __future__ import annotations

from torch import Tensor

from isingaug.ising import IsingParams, log_likelihood, pseudo_log_likelihood


def mean_log_likelihood(params: IsingParams, spins: Tensor, max_n: int) -> float:
    """Exact mean log P(s) per pattern (one enumeration for log Z); only for n <= max_n."""
    return float(log_likelihood(params, spins.to(params.device, params.dtype), max_n=max_n).mean())


def mean_pseudo_log_likelihood(params: IsingParams, spins: Tensor) -> float:
    """Mean over patterns of sum_i log P(s_i | s_-i); defined at any n."""
    return float(pseudo_log_likelihood(params, spins.to(params.device, params.dtype)).mean())
