"""Numerics shared by the gradient-based solvers: an L-BFGS driver, a parameter layout, a check.

Every convex solver (PLM, exact MLE, interaction screening, erasure machine) goes through
`minimize`, so they stop, count iterations and report convergence alike on the CPU and on CUDA.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

# torch.optim imports torch._dynamo at its first step (~1.5 s): paid here, not in a fit's time
import torch._dynamo
from torch import Tensor

from isingaug.errors import is_number, option_error

#: An objective returns the scalar value (gradient by autograd) or, with `value_and_grad=True`,
#: the pair (value, gradient) when the gradient is known in closed form.
Objective = Callable[[Tensor], Tensor] | Callable[[Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class OptimResult:
    """Minimiser and the gradient there, L-BFGS iterations used, whether max|grad| <= tol, value."""

    x: Tensor
    grad: Tensor
    iterations: int
    converged: bool
    objective: float


def minimize(objective: Objective, x0: Tensor, max_iter: int = 1000, tol: float = 1e-6,
             value_and_grad: bool = False, history_size: int = 10,
             chunk: int = 25) -> OptimResult:
    """Minimise a smooth objective with L-BFGS and a strong-Wolfe line search.

    Converged means the gradient's max-norm fell to `tol`. torch's own stall test compares
    objective changes with an absolute tolerance, which can halt it well before the gradient test
    (or never, for large objectives), so it is switched off: L-BFGS runs in chunks of `chunk`
    iterations and stops when max|grad| <= tol, after `max_iter` iterations, or when a whole chunk
    fails to lower the objective (it has stalled at machine precision). A small history (SciPy's
    default of 10) keeps the two-loop recursion, a Python loop in torch, cheap.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter}")
    x = x0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], lr=1.0, tolerance_grad=tol, tolerance_change=0.0,
                                  history_size=history_size, line_search_fn="strong_wolfe")
    group, state = optimizer.param_groups[0], optimizer.state[x]
    last: dict[str, Tensor] = {}

    def evaluate() -> None:
        """Value and gradient at the current x, cached: L-BFGS re-asks for the same point."""
        if last and torch.equal(last["x"], x.detach()):
            return
        with torch.enable_grad():
            if value_and_grad:
                value, grad = objective(x.detach())
            else:
                value = objective(x)
                (grad,) = torch.autograd.grad(value, x)
        last.update(x=x.detach().clone(), value=value.detach(), grad=grad.detach())

    def closure() -> Tensor:
        evaluate()
        x.grad = last["grad"].clone()
        return last["value"]

    best = math.inf
    while True:
        group["max_iter"] = min(chunk, max_iter - state.get("n_iter", 0))
        group["max_eval"] = 2 * group["max_iter"] + 10
        optimizer.step(closure)
        evaluate()
        value = float(last["value"])
        converged = bool(last["grad"].abs().max() <= tol) and math.isfinite(value)
        if converged or state["n_iter"] >= max_iter or not value < best:
            break
        best = value
    return OptimResult(x=x.detach(), grad=last["grad"], iterations=int(state["n_iter"]),
                       converged=converged, objective=value)


def fields_and_couplings(x: Tensor, symmetric: bool) -> tuple[Tensor, Tensor]:
    """Read a square parameter matrix (..., n, n): the diagonal holds h, the rest the couplings.

    Row u of the off-diagonal part holds spin u's couplings J_u., so per-spin (asymmetric) fits of
    all spins are one tensor; `symmetric=True` ties them, J = (W + W^T) / 2. Keeping h on the
    diagonal lets every local-field solver optimise a single (n, n) tensor.
    """
    h = torch.diagonal(x, dim1=-2, dim2=-1)
    couplings = x - torch.diag_embed(h)
    if symmetric:
        couplings = 0.5 * (couplings + couplings.transpose(-1, -2))
    return h, couplings


def local_field_gradient(dfields: Tensor, spins: Tensor, symmetric: bool) -> Tensor:
    """Chain rule from dF/dH (B, M, n), H = h + s W^T, to the layout of `fields_and_couplings`.

    The closed form spares autograd's overhead, which dominates these small dense problems.
    """
    grad = dfields.transpose(-1, -2) @ spins
    if symmetric:
        grad = 0.5 * (grad + grad.transpose(-1, -2))
    return (grad - torch.diag_embed(torch.diagonal(grad, dim1=-2, dim2=-1))
            + torch.diag_embed(dfields.sum(-2)))


def check_count(solver: str, key: str, value: int, minimum: int = 1) -> int:
    """Validate an integer option from a config (iterations, chains, folds...)."""
    if not (is_number(value) and float(value).is_integer() and value >= minimum):
        raise option_error(f"solver.{key}", f"an integer >= {minimum}", value, f"solver={solver}")
    return int(value)


def check_penalty(solver: str, key: str, value: float | str, allow_auto: bool) -> float | str:
    """Validate a penalty strength from a config: a float >= 0, or 'auto' where CV can choose it."""
    if allow_auto and value == "auto":
        return value
    try:
        strength = float(value)
    except (TypeError, ValueError):
        strength = math.nan
    if not (math.isfinite(strength) and strength >= 0):
        allowed = "a finite float >= 0 or 'auto'" if allow_auto else "a finite float >= 0"
        raise option_error(f"solver.{key}", allowed, value, f"solver={solver}")
    return strength
