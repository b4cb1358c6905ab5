"""The erasure machine of Jo, Hoang & Periwal (PRE 2020), solved as the convex problem it is."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from isingaug.errors import check_options, is_number
from isingaug.ising import IsingParams, energy
from isingaug.solvers.base import Check, Samples, Solver, count_check, positive_check
from isingaug.solvers.optim import fields_and_couplings, minimize

DEFAULT_EPSILON_GRID: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def erasure_loss(x: Tensor, spins: Tensor, log_weights: Tensor, epsilon: float) -> Tensor:
    """L_eps = log sum_k w_k exp((1-eps) E(s^k)) / (1-eps) + (eps/2)(||h||^2 + sum_{i<j} J_ij^2).

    Its stationary point is the authors' fixed point <O>_rho = eps·theta with
    rho_k ∝ w_k exp(-(1-eps) theta·O(s^k)), so their iteration w <- w + alpha(<O>_rho - eps w)
    is gradient descent on it (research note §5.7); L-BFGS just gets there faster.
    """
    h, couplings = fields_and_couplings(x, symmetric=True)
    energies = energy(IsingParams(h, couplings), spins)
    keep = 1.0 - epsilon
    penalty = h.pow(2).sum() + 0.5 * couplings.pow(2).sum()
    return torch.logsumexp(log_weights + keep * energies, 0) / keep + 0.5 * epsilon * penalty


class ErasureMachine(Solver):
    """Erasure machine: reweight the observed patterns until the model finds them equally likely.

    `epsilon` in (0, 1) sets the erasure strength and, through the (eps/2)||theta||^2 term, the
    built-in regularisation. `epsilon="auto"` fits every value of `epsilon_grid` (warm-started,
    from the largest eps down) and keeps the one whose fit gives the observed data the highest
    weighted mean energy <E_theta>_data = -<theta·O>_data. That is the authors' rule as their
    code applies it (`fit` returns -mean(w·O) and the notebooks take its argmax); the criterion
    falls towards both ends of the grid (large theta at small eps, Hopfield-like
    theta = <O>_data/eps as eps -> 1), so it has an interior optimum.
    """

    name = "erasure"

    def __init__(self, device: str = "auto", dtype: str = "float64", max_iter: int = 1000,
                 tol: float = 1e-6, epsilon: float | str = "auto",
                 epsilon_grid: Sequence[float] | None = None) -> None:
        super().__init__(device, dtype)
        grid = DEFAULT_EPSILON_GRID if epsilon_grid is None else tuple(epsilon_grid)
        check_options([count_check("max_iter", max_iter), positive_check("tol", tol),
                       _epsilon_check("epsilon", epsilon, allow_auto=True),
                       ("solver.epsilon_grid", epsilon_grid, len(grid) > 0,
                        "a list of at least one value in (0, 1) (or null for the default)"),
                       *(_epsilon_check("epsilon_grid", value) for value in grid)],
                      f"solver={self.name}")
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.epsilon = epsilon if epsilon == "auto" else float(epsilon)
        self.epsilon_grid = sorted({float(value) for value in grid}, reverse=True)

    def _fit(self, data: Samples) -> IsingParams:
        spins, weights = data.spins, data.weights
        n = spins.shape[1]
        log_weights = torch.log(weights)
        grid = self.epsilon_grid if self.epsilon == "auto" else [float(self.epsilon)]
        x = torch.zeros(n, n, dtype=self.dtype, device=self.device)
        fits = []
        for epsilon in grid:
            result = minimize(lambda z, e=epsilon: erasure_loss(z, spins, log_weights, e), x,
                              self.max_iter, self.tol)
            x = result.x
            params = IsingParams(*fields_and_couplings(x, symmetric=True))
            mean_energy = float(weights @ energy(params, spins))
            fits.append((mean_energy if math.isfinite(mean_energy) else -math.inf,
                         epsilon, params, result))
        mean_energy, epsilon, params, result = max(fits, key=lambda fit: fit[0])
        self.diagnostics.update(iterations=result.iterations, evaluations=result.evaluations,
                                converged=result.converged, stop=result.stop,
                                grad_max=result.grad_max, tol=self.tol,
                                objective=result.objective, epsilon=epsilon,
                                mean_energy=mean_energy)
        if self.epsilon == "auto":
            self.diagnostics.update(epsilon_grid=list(grid),
                                    epsilon_criterion=[fit[0] for fit in fits],
                                    scan_iterations=sum(fit[3].iterations for fit in fits),
                                    scan_converged=all(fit[3].converged for fit in fits))
        return params


def _epsilon_check(key: str, value: object, allow_auto: bool = False) -> Check:
    """eps must lie strictly inside (0, 1): at 0 the penalty vanishes, at 1 the loss is singular."""
    if allow_auto and value == "auto":
        return (f"solver.{key}", value, True, "")
    ok = is_number(value) and 0.0 < float(value) < 1.0
    return (f"solver.{key}", value, ok, "a float in (0, 1)" + (" or auto" if allow_auto else ""))
