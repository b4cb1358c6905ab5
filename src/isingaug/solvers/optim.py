"""Numerics shared by the gradient-based solvers: one L-BFGS driver and a parameter layout.

Every convex solver (PLM, exact MLE, interaction screening, erasure machine) goes through
`minimize`, so they stop, count iterations and report convergence alike on the CPU and on CUDA.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

#: An objective returns the scalar value (gradient by autograd) or, with `value_and_grad=True`,
#: the pair (value, gradient) when the gradient is known in closed form.
Objective = Callable[[Tensor], Tensor] | Callable[[Tensor], tuple[Tensor, Tensor]]

#: Why a minimisation stopped.
CONVERGED, MAX_ITER, STALLED = "converged", "max_iter", "stalled"


@dataclass(frozen=True)
class OptimResult:
    """Minimiser, the gradient there, iterations and objective evaluations used, whether the
    convergence measure fell to tol (and its value), the objective and why it stopped.

    `memory` holds the last curvature pairs (s, y), so a later `minimize` of the same problem
    (in another dtype, say) starts with the curvature already learnt.
    """

    x: Tensor
    grad: Tensor
    iterations: int
    evaluations: int
    converged: bool
    objective: float
    grad_max: float
    stop: str
    memory: list[tuple[Tensor, Tensor]] = field(default_factory=list, repr=False)


def minimize(objective: Objective, x0: Tensor, max_iter: int = 1000, tol: float = 1e-6,
             value_and_grad: bool = False, history_size: int = 10,
             measure: Callable[[Tensor], Tensor] | None = None,
             memory: list[tuple[Tensor, Tensor]] | None = None,
             max_line_search: int = 12, patience: int = 30) -> OptimResult:
    """Minimise a smooth convex objective with L-BFGS and a weak-Wolfe bisection line search.

    Converged means `measure(grad)` (default: the gradient's max-norm) is <= `tol`, tested at
    every iterate. The first step is scaled to move no coordinate by more than one unit, later
    ones start at the quasi-Newton step (almost always accepted: one evaluation per
    iteration). Near the precision of the dtype a decrease is no longer visible in the value,
    so a step is also accepted when the value has not risen above rounding and the directional
    derivative has shrunk (Hager & Zhang's approximate Wolfe test): float32 objectives still
    make progress. A line search that finds no acceptable step, twice in a row with a fresh
    memory, ends the run as stalled.
    """
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0; got {max_iter}")
    measure = measure or (lambda g: g.abs().max())
    evaluations = 0

    def evaluate(x: Tensor) -> tuple[Tensor, Tensor]:
        nonlocal evaluations
        evaluations += 1
        if value_and_grad:
            value, grad = objective(x)
        else:
            with torch.enable_grad():
                z = x.detach().requires_grad_(True)
                value = objective(z)
                (grad,) = torch.autograd.grad(value, z)
        return value.detach(), grad.detach()

    x = x0.detach().clone()
    value, grad = evaluate(x)
    history = [(s.to(x.dtype), y.to(x.dtype)) for s, y in (memory or [])][-history_size:]
    eps = torch.finfo(x.dtype).eps
    iterations, failures, stop = 0, 0, MAX_ITER
    best, best_at = math.inf, 0
    while True:
        size = float(measure(grad))
        f = float(value)
        if size <= tol and math.isfinite(f):
            stop = CONVERGED
            break
        if iterations >= max_iter:
            break
        if size < 0.99 * best:
            best, best_at = size, iterations
        elif iterations - best_at >= patience:
            stop = STALLED
            break
        direction = -_two_loop(grad, history)
        slope = float(torch.sum(grad * direction))
        if not slope < 0:
            history.clear()
            direction, slope = -grad, -float(torch.sum(grad * grad))
        step = 1.0 if history else min(1.0, 1.0 / max(float(grad.abs().max()), 1e-12))
        accepted = _line_search(evaluate, x, f, slope, direction, step, eps, max_line_search)
        if accepted is None:
            failures += 1
            if failures >= 2 or not history:
                stop = STALLED
                break
            history.clear()
            continue
        failures = 0
        x_new, value_new, grad_new, t = accepted
        s, y = t * direction, grad_new - grad
        if float(torch.sum(s * y)) > eps * float(s.norm() * y.norm()):
            history.append((s, y))
            del history[:-history_size]
        x, value, grad = x_new, value_new, grad_new
        iterations += 1
    return OptimResult(x=x, grad=grad, iterations=iterations, evaluations=evaluations,
                       converged=stop == CONVERGED, objective=float(value), grad_max=size,
                       stop=stop, memory=history)


def _two_loop(grad: Tensor, history: list[tuple[Tensor, Tensor]]) -> Tensor:
    """H·grad for the L-BFGS inverse-Hessian estimate (initial scaling s·y / y·y)."""
    q = grad.clone()
    alphas = []
    for s, y in reversed(history):
        rho = 1.0 / float(torch.sum(s * y))
        alpha = rho * float(torch.sum(s * q))
        q.add_(y, alpha=-alpha)
        alphas.append((rho, alpha))
    if history:
        s, y = history[-1]
        q.mul_(float(torch.sum(s * y)) / float(torch.sum(y * y)))
    for (s, y), (rho, alpha) in zip(history, reversed(alphas), strict=True):
        beta = rho * float(torch.sum(y * q))
        q.add_(s, alpha=alpha - beta)
    return q


def _line_search(evaluate: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor, f: float,
                 slope: float, direction: Tensor, step: float, eps: float,
                 max_steps: int, c1: float = 1e-4,
                 c2: float = 0.9) -> tuple[Tensor, Tensor, Tensor, float] | None:
    """A step t satisfying the weak Wolfe conditions (or their approximate form), by expansion
    and bisection; None when `max_steps` evaluations found none."""
    low, high = 0.0, math.inf
    rounding = 10.0 * eps * abs(f)
    for _ in range(max_steps):
        x_new = x + step * direction
        value, grad = evaluate(x_new)
        f_new = float(value)
        new_slope = float(torch.sum(grad * direction))
        if not math.isfinite(f_new):
            high = step
        elif f_new <= f + c1 * step * slope or (f_new <= f + rounding
                                                and abs(new_slope) <= c2 * abs(slope)):
            if new_slope >= c2 * slope:
                return x_new, value, grad, step
            low = step
        else:
            high = step
        step = 2.0 * low if math.isinf(high) else 0.5 * (low + high)
    return None


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
