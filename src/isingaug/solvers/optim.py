"""Numerics shared by the gradient-based solvers: an L-BFGS driver, a parameter layout, a check.

Every convex solver (PLM, exact MLE, interaction screening, erasure machine) goes through
`minimize`, so they stop, count iterations and report convergence alike on the CPU and on CUDA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from isingaug.errors import ConfigError

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
             value_and_grad: bool = False, history_size: int = 10) -> OptimResult:
    """Minimise a smooth objective with L-BFGS and a strong-Wolfe line search.

    Converged means the gradient's max-norm fell to `tol`. A small history (SciPy's default of 10)
    keeps the two-loop recursion, a Python loop in torch, cheap for the small problems here.
    """
    x = x0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=max_iter, max_eval=2 * max_iter + 10, tolerance_grad=tol,
        tolerance_change=10 * torch.finfo(x.dtype).eps, history_size=history_size,
        line_search_fn="strong_wolfe")
    last: dict[str, Tensor] = {}

    def evaluate() -> tuple[Tensor, Tensor]:
        if value_and_grad:
            value, grad = objective(x.detach())
        else:
            value = objective(x)
            (grad,) = torch.autograd.grad(value, x)
        last.update(x=x.detach().clone(), value=value.detach(), grad=grad.detach())
        return value.detach(), grad.detach()

    def closure() -> Tensor:
        value, grad = evaluate()
        x.grad = grad.clone()
        return value

    optimizer.step(closure)
    if not torch.equal(last["x"], x.detach()):
        with torch.enable_grad():
            evaluate()
    return OptimResult(
        x=x.detach(),
        grad=last["grad"],
        iterations=int(optimizer.state[x].get("n_iter", 0)),
        converged=bool(last["grad"].abs().max() <= tol) and bool(torch.isfinite(last["value"])),
        objective=float(last["value"]),
    )


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


def check_penalty(solver: str, key: str, value: float | str, allow_auto: bool) -> float | str:
    """Validate a penalty strength from a config: a float >= 0, or 'auto' where CV can choose it."""
    if allow_auto and value == "auto":
        return value
    try:
        strength = float(value)
    except (TypeError, ValueError):
        strength = float("nan")
    if not strength >= 0 or strength == float("inf"):
        allowed = "a finite float >= 0 or 'auto'" if allow_auto else "a finite float >= 0"
        raise ConfigError(f"{solver}: {key} must be {allowed}; got {value!r}")
    return strength
