"""Errors of inferred parameters against the truth, in the conventions of docs/science.md."""

from __future__ import annotations

import torch

from isingaug.ising import IsingParams


def parameter_errors(estimate: IsingParams, truth: IsingParams) -> dict[str, float]:
    """mse_J over i<j, mse_h, mse_all pooled over all n + n(n-1)/2 parameters, rel_err_J."""
    if estimate.n != truth.n:
        raise ValueError(f"estimate has n={estimate.n} but the truth has n={truth.n}")
    est = estimate.to(device="cpu", dtype=torch.float64)
    true = truth.to(device="cpu", dtype=torch.float64)
    d_h = est.h - true.h
    d_J = est.couplings_upper() - true.couplings_upper()
    norm_J = torch.linalg.vector_norm(true.couplings_upper())
    return {
        "mse_J": float((d_J**2).mean()),
        "mse_h": float((d_h**2).mean()),
        "mse_all": float(torch.cat([d_h, d_J]).pow(2).mean()),
        "rel_err_J": float(torch.linalg.vector_norm(d_J) / norm_J) if norm_J > 0 else float("nan"),
    }
