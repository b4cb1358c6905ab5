"""Pseudo-likelihood maximisation: all spins' conditional likelihoods in one batched L-BFGS."""

from __future__ import annotations

from collections.abc import Sequence

from isingaug.ising import IsingParams
from isingaug.solvers.base import Samples, bool_check
from isingaug.solvers.local_fields import DEFAULT_L2_GRID, LocalFieldSolver
from isingaug.solvers.objectives import pll_pass
from isingaug.solvers.optim import fields_and_couplings

__all__ = ["DEFAULT_L2_GRID", "PseudoLikelihood", "pll_pass"]


class PseudoLikelihood(LocalFieldSolver):
    """Besag's pseudo-likelihood with optional L2 on J, solved for every spin at once.

    `symmetric=False` fits each spin's row of J on its own (the rows are independent, but they
    are optimised jointly in one L-BFGS) and returns J = (W + W^T)/2 (Aurell & Ekeberg);
    `symmetric=True` ties J_ij = J_ji inside the objective. The objective is the weighted mean
    over patterns of sum_i log(1 + exp(-2 s_i H_i)) + (l2/2)·||W||^2 over the off-diagonal
    entries of the row matrix W (for tied J: l2·sum_{i<j} J_ij^2); fields are not penalised.
    How it is solved, and `l2="auto"`: `LocalFieldSolver` and `local_fields`.
    """

    name = "plm"
    objective = "plm"

    def __init__(self, device: str = "auto", dtype: str = "float64", max_iter: int = 1000,
                 tol: float = 1e-6, l2: float | str = 0.0, symmetric: bool = False,
                 cv_folds: int = 5, l2_grid: Sequence[float] | None = None,
                 cv_seed: int = 0, cv_tol: float = 1e-3, cv_patience: int | None = 1,
                 cv_warm_start: bool = True, work_dtype: str | None = "float32") -> None:
        super().__init__(device, dtype, max_iter, tol, l2, cv_folds, l2_grid, cv_seed, cv_tol,
                         cv_patience, cv_warm_start, work_dtype,
                         extra_checks=[bool_check("symmetric", symmetric)])
        self.symmetric = symmetric

    def _fit(self, data: Samples) -> IsingParams:
        return IsingParams(*fields_and_couplings(self._fit_params(data), symmetric=True))
