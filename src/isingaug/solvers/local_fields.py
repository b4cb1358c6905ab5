"""What PLM and interaction screening share: objectives that are sums over spins of functions of
the local fields H = h + s W^T (`objectives`), solved for every spin at once in one L-BFGS, with
cross-validated L2.

What makes them fast at hundreds of spins (benchmarks/solvers.py, benchmarks/README.md):

- repeated patterns are collapsed into weights (`Samples`); each fold of a cross-validation
  visits only the patterns it trains on, in chunks that bound memory;
- L-BFGS runs in centred, whitened coordinates. Centred: b = h + J m replaces h, so the
  couplings no longer fight the fields over the mean of sparse +-1 data (whose uncentred second
  moment has an eigenvalue ~n: 497 iterations instead of 28 at n = 160 spiking units).
  Whitened: each coupling row is expressed in the eigenbasis of the data's covariance and
  scaled by the row's curvature there at the independent-spin model, from which it starts
  (the correlations of SK data: 147 iterations instead of 33 at n = 40, g = 1, M = 4,000).
  Both are changes of variables: the minimiser, the convergence test and the reported gradient
  are those of the (h, J) problem;
- the iterations run in `work_dtype` (float32, whose gradients are accurate enough for
  max |grad| = 1e-6 at M = 4,000-300,000; the line search accepts steps whose decrease is below
  rounding), then in `dtype` (float64) from there with the curvature pairs learnt, which
  usually takes one evaluation to confirm the gradient;
- l2 = auto walks the grid from the largest strength down, all folds one batch, each started
  from its path extrapolated in log l2, and stops once the held-out score has risen
  `cv_patience` times in a row: the weakly penalised end is the slow, ill-conditioned one
  (and often has no finite optimum). The final fit starts from the folds' mean solution with
  their mean curvature pairs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from isingaug.device import resolve_dtype
from isingaug.errors import ConfigError, check_options
from isingaug.solvers.base import (
    Check,
    Samples,
    Solver,
    bool_check,
    count_check,
    penalty_check,
    positive_check,
)
from isingaug.solvers.objectives import Ranges, augmented, pll_pass, screening_pass
from isingaug.solvers.optim import MAX_ITER, OptimResult, fields_and_couplings, minimize

#: 0 plus half-decades from 1e-5 to 1: the best strength measured at n = 20 was about 10/M; on
#: the bundled retina tiled to n = 800 units, M = 4,000, it was 0.3.
DEFAULT_L2_GRID: tuple[float, ...] = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1,
                                      3e-1, 1.0)
#: work_dtype iterations stop at this gradient (or at tol, if larger): float32 gets there at
#: M = 4,000-300,000; dtype ones go on to tol.
WORK_TOL = 1e-6
#: Smallest spin variance 1 - m^2 used for scaling (a frozen spin has none).
_MIN_VARIANCE = 1e-3
OBJECTIVES = ("plm", "rise", "logrise")
Map = Callable[[Tensor], Tensor]


def _off(x: Tensor) -> Tensor:
    """x with its diagonal zeroed."""
    return x - torch.diag_embed(torch.diagonal(x, dim1=-2, dim2=-1))


def covariance_basis(data: Samples, m: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues (floored at 1e-4 of the largest) and eigenvectors of the weighted covariance
    of the patterns, in float64: the whitening of `LocalFieldProblem`."""
    spins = data.spins.to(torch.float64)
    m = m.to(torch.float64)
    cov = spins.T @ (data.weights.to(torch.float64)[:, None] * spins) - torch.outer(m, m)
    lam, vectors = torch.linalg.eigh(0.5 * (cov + cov.T))
    return lam.clamp_min(1e-4 * float(lam.max().clamp_min(1e-12))), vectors


class LocalFieldProblem:
    """K weightings of one set of distinct patterns, each visiting its own row ranges.

    Parameters travel in three layouts: x (K, n, n) the usual one (h on the diagonal, coupling
    rows off it), x_c the centred one (b = h + J m on the diagonal) and y, the coordinates
    L-BFGS sees. With a `basis` (eigenvalues, eigenvectors of the data's covariance C), y
    (K, n, n + 1) holds each coupling row in C's eigenbasis divided by sqrt(a_i lambda_j + l2),
    the curvature of the row's problem along eigenvector j at the independent model, and the
    scaled field last: the rows are whitened, which the correlations of SK-like data need
    (at n = 40, g = 1 the unpenalised fit took ~150 iterations with the diagonal scaling). The
    coupling row's own (diagonal) entry is dropped on the way back, so y has n directions the
    objective ignores; L-BFGS never moves along them (no gradient has a component there).
    Without a basis, y = x_c entrywise divided by the square roots of the diagonal curvatures.
    """

    def __init__(self, spins: Tensor, weights: Tensor, ranges: list[Ranges], m: Tensor,
                 objective: str, symmetric: bool,
                 basis: tuple[Tensor, Tensor] | None = None) -> None:
        self.spins, self.weights, self.ranges, self.m = spins, weights, ranges, m
        self.objective, self.symmetric, self.basis = objective, symmetric, basis
        self.variance = (1.0 - m.pow(2)).clamp_min(_MIN_VARIANCE)
        self._cache: dict[torch.dtype, tuple[Tensor, Tensor]] = {}

    def _data(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """(augmented(s), the weights (their logs for screening)) in a dtype, made once."""
        if dtype not in self._cache:
            weights = self.weights.to(dtype)
            if self.objective != "plm":
                weights = torch.log(weights)
            self._cache[dtype] = (augmented(self.spins.to(dtype)), weights)
        return self._cache[dtype]

    def release(self, dtype: torch.dtype) -> None:
        """Drop the copy of the data in a dtype no longer needed."""
        self._cache.pop(dtype, None)

    def _rows(self, dtype: torch.dtype) -> Tensor:
        """a_i, the curvature of row i's objective in its field at the independent model:
        1 - m_i^2 for PLM (the conditional's variance), sqrt(1 - m_i^2) for RISE (S_u there),
        1 for logRISE."""
        v = self.variance.to(dtype)
        return {"plm": v, "rise": v.sqrt(), "logrise": torch.ones_like(v)}[self.objective]

    def scale(self, l2: float, dtype: torch.dtype) -> Tensor:
        """1/sqrt(curvature) of every entry at the independent model: a_i (1 - m_j^2) + l2 for
        a coupling, a_i for a field."""
        rows, v = self._rows(dtype), self.variance.to(dtype)
        curvature = torch.outer(rows, v) + l2
        curvature.diagonal().copy_(rows)
        return curvature.rsqrt()

    def coordinates(self, l2: float, dtype: torch.dtype) -> tuple[Map, Map, Map]:
        """(x_c -> y, y -> x_c, dL/dx_c -> dL/dy) for a strength and a dtype."""
        if self.basis is None:
            scale = self.scale(l2, dtype)
            return (lambda xc: xc / scale), (lambda y: y * scale), (lambda g: g * scale)
        lam, vectors = (t.to(dtype) for t in self.basis)
        rows = self._rows(dtype)
        damp = (torch.outer(rows, lam) + l2).rsqrt()
        field = rows.rsqrt()
        n = rows.shape[0]

        def to_y(xc: Tensor) -> Tensor:
            return torch.cat([(_off(xc) @ vectors) / damp,
                              (torch.diagonal(xc, dim1=-2, dim2=-1) / field)[..., None]], -1)

        def from_y(y: Tensor) -> Tensor:
            return _off((y[..., :n] * damp) @ vectors.T) + torch.diag_embed(y[..., n] * field)

        def pull(grad: Tensor) -> Tensor:
            return torch.cat([(_off(grad) @ vectors) * damp,
                              (torch.diagonal(grad, dim1=-2, dim2=-1) * field)[..., None]], -1)

        return to_y, from_y, pull

    def to_x(self, xc: Tensor) -> Tensor:
        """x from x_c: h = b - J m."""
        _, couplings = fields_and_couplings(xc, self.symmetric)
        return xc - torch.diag_embed(couplings @ self.m.to(xc.dtype))

    def independent(self, sets: int, dtype: torch.dtype) -> Tensor:
        """x_c of the independent-spin model h = atanh(m), J = 0 (every objective's minimiser
        at J = 0), for every set."""
        m = self.m.clamp(-1 + 1e-6, 1 - 1e-6).to(dtype)
        return torch.diag_embed(torch.atanh(m)).expand(sets, -1, -1).clone()

    def value_and_grad(self, x: Tensor, l2: float) -> tuple[Tensor, Tensor]:
        """Sum over sets of the objective at x, and its gradient in x's layout."""
        data, weights = self._data(x.dtype)
        values, grads = [], []
        for k in range(x.shape[0]):
            if self.objective == "plm":
                value, grad = pll_pass(x[k], data, weights[k], self.ranges[k], l2,
                                       self.symmetric)
            else:
                value, grad = screening_pass(x[k], data, weights[k], self.ranges[k], l2,
                                             self.objective == "logrise")
            values.append(value)
            grads.append(grad)
        return torch.stack(values).sum(), torch.stack(grads)

    def centred_gradient(self, grad: Tensor) -> Tensor:
        """dL/dx_c from dL/dx: h = b - J m moves with every coupling."""
        m = self.m.to(grad.dtype)
        shift = torch.diagonal(grad, dim1=-2, dim2=-1)[..., :, None] * m
        if self.symmetric:
            shift = 0.5 * (shift + shift.transpose(-1, -2))
        return grad - shift + torch.diag_embed(torch.diagonal(shift, dim1=-2, dim2=-1))

    def solve(self, xc: Tensor, l2: float, dtype: torch.dtype, max_iter: int, tol: float,
              memory: list | None = None) -> tuple[Tensor, OptimResult]:
        """Minimise from x_c to max |dL/d(h, J)| <= tol; the solution x_c and the record."""
        to_y, from_y, pull = self.coordinates(l2, dtype)
        last: dict[str, Tensor] = {}

        def objective(y: Tensor) -> tuple[Tensor, Tensor]:
            value, grad = self.value_and_grad(self.to_x(from_y(y)), l2)
            last["grad"] = grad
            return value, pull(self.centred_gradient(grad))

        def measure(_: Tensor) -> Tensor:
            return last["grad"].abs().max()

        result = minimize(objective, to_y(xc.to(dtype)), max_iter, tol, value_and_grad=True,
                          measure=measure, memory=memory)
        return from_y(result.x), result

    def held_out(self, x: Tensor, weights: Tensor, ranges: list[Ranges]) -> list[float]:
        """Negative PLL per pattern of each set's returned model (J symmetrised) on `weights`."""
        data = self._data(x.dtype)[0]
        weights = weights.to(x.dtype)
        return [float(pll_pass(x[k], data, weights[k], ranges[k], 0.0, True, False)[0])
                for k in range(x.shape[0])]


class LocalFieldSolver(Solver):
    """A solver of a `LocalFieldProblem`: options, phases and the cross-validation of l2.

    Subclasses set `objective` and `symmetric`. `l2="auto"` picks the strength on `l2_grid` by
    `cv_folds`-fold cross-validated pseudo-likelihood of the returned model (folds of equal
    weight mass over the input rows, all folds one batch, solved to `cv_tol`, warm-started from
    the previous strength when `cv_warm_start`, stopped after `cv_patience` rises of the
    held-out score; null: the whole grid), then refits on all data with the winner, started
    from the folds' mean solution. Converged means max |gradient| <= `tol` in (h, J) after at
    most `max_iter` iterations (the work_dtype and dtype phases together).
    """

    objective = "plm"
    symmetric = False
    #: L-BFGS in the covariance eigenbasis (`LocalFieldProblem`); False: diagonal scaling only
    whiten = True

    def __init__(self, device: str = "auto", dtype: str = "float64", max_iter: int = 1000,
                 tol: float = 1e-6, l2: float | str = 0.0, cv_folds: int = 5,
                 l2_grid: Sequence[float] | None = None, cv_seed: int = 0,
                 cv_tol: float = 1e-3, cv_patience: int | None = 1, cv_warm_start: bool = True,
                 work_dtype: str | None = "float32", extra_checks: Sequence[Check] = ()) -> None:
        super().__init__(device, dtype)
        grid = DEFAULT_L2_GRID if l2_grid is None else tuple(l2_grid)
        checks = [*extra_checks, count_check("max_iter", max_iter), positive_check("tol", tol),
                  penalty_check("l2", l2, allow_auto=True),
                  count_check("cv_folds", cv_folds, minimum=2), positive_check("cv_tol", cv_tol),
                  bool_check("cv_warm_start", cv_warm_start),
                  ("solver.l2_grid", l2_grid, len(grid) > 0,
                   "a list of at least one value >= 0 (or null for the default grid)"),
                  *(penalty_check("l2_grid", value, allow_auto=False) for value in grid)]
        if cv_patience is not None:
            checks.append(count_check("cv_patience", cv_patience))
        if work_dtype is not None:
            checks.append(("solver.work_dtype", work_dtype, work_dtype in ("float32", "float64"),
                           "float32, float64 or null (= dtype)"))
        check_options(checks, f"solver={self.name}")
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.l2 = l2 if l2 == "auto" else float(l2)
        self.cv_folds = int(cv_folds)
        self.l2_grid = sorted({float(value) for value in grid}, reverse=True)
        self.cv_seed = int(cv_seed)
        self.cv_tol = float(cv_tol)
        self.cv_patience = None if cv_patience is None else int(cv_patience)
        self.cv_warm_start = cv_warm_start
        self.work_dtype = self.dtype if work_dtype is None else resolve_dtype(work_dtype)

    def tuned_l2(self) -> LocalFieldSolver:
        return self._replace(l2="auto")

    def _fit_params(self, data: Samples) -> Tensor:
        """x (n, n) in the usual layout (per-spin rows) fitted on all data; fills diagnostics."""
        m = data.weights @ data.spins
        basis = covariance_basis(data, m) if self.whiten else None
        problem = LocalFieldProblem(data.spins, data.weights[None, :],
                                    [[(0, data.spins.shape[0])]], m, self.objective,
                                    self.symmetric, basis)
        if self.l2 == "auto":
            l2, xc, memory = self._select_l2(data, problem)
        else:
            l2, xc, memory = float(self.l2), problem.independent(1, self.work_dtype), None
        # work_dtype to tol (or WORK_TOL, float32's reach), then dtype from there: at least one
        # evaluation, so the reported gradient is dtype's
        fast = self.work_dtype != self.dtype
        xc, result = problem.solve(xc, l2, self.work_dtype, self.max_iter,
                                   max(self.tol, WORK_TOL) if fast else self.tol, memory)
        record: dict[str, Any] = {"iterations": result.iterations,
                                  "evaluations": result.evaluations,
                                  "work_iterations": result.iterations,
                                  "work_evaluations": result.evaluations}
        if fast and result.stop != MAX_ITER:
            problem.release(self.work_dtype)
            xc, result = problem.solve(xc, l2, self.dtype, self.max_iter - result.iterations,
                                       self.tol, memory=result.memory)
            record["iterations"] += result.iterations
            record["evaluations"] += result.evaluations
        self.diagnostics.update(**record, converged=result.converged, stop=result.stop,
                                grad_max=result.grad_max, tol=self.tol,
                                objective=result.objective, l2=l2)
        return problem.to_x(xc)[0].to(self.dtype)

    def fold_weights(self, data: Samples) -> tuple[Tensor, Tensor]:
        """Training and validation weights (K, U) of the distinct patterns, for K folds of
        about equal weight mass drawn over the input rows (so the repeats of a pattern are
        split between folds as the rows themselves would be)."""
        num = data.rows.shape[0]
        if num < self.cv_folds:
            raise ConfigError(f"solver={self.name}: solver.cv_folds={self.cv_folds} needs at "
                              f"least that many patterns; got {num}")
        device = data.spins.device
        generator = torch.Generator().manual_seed(self.cv_seed)
        order = torch.randperm(num, generator=generator).to(device)
        w = data.row_weights[order]
        fold_of = torch.empty(num, dtype=torch.long, device=device)
        fold_of[order] = torch.clamp(((torch.cumsum(w, 0) - w) * self.cv_folds).long(),
                                     max=self.cv_folds - 1)
        shape = (self.cv_folds, data.spins.shape[0])
        val = torch.zeros(shape, dtype=w.dtype, device=device)
        val.index_put_((fold_of, data.rows), data.row_weights, accumulate=True)
        present = torch.zeros(shape, dtype=torch.long, device=device)
        present.index_put_((fold_of, data.rows), torch.ones_like(fold_of), accumulate=True)
        # a pattern whose rows all fell in fold k is not trained on there, exactly
        only_here = present == torch.bincount(data.rows, minlength=shape[1])[None, :]
        train = torch.where(only_here, torch.zeros_like(val), data.weights - val).clamp_min(0.0)
        tiny = torch.finfo(w.dtype).tiny
        return (train / train.sum(1, keepdim=True).clamp_min(tiny),
                val / val.sum(1, keepdim=True).clamp_min(tiny))

    def _select_l2(self, data: Samples,
                   full: LocalFieldProblem) -> tuple[float, Tensor, list | None]:
        """Cross-validate the grid. Returns the winner, the folds' mean solution there (x_c)
        and their mean curvature pairs: the start of the final fit, which needs no more.

        With `cv_warm_start`, each strength's folds start from the path extrapolated linearly
        in log l2 through their last two solutions (a path-following predictor: it halved the
        iterations of the later strengths at n = 320), else all from the independent model.
        """
        started = time.perf_counter()
        train, val = self.fold_weights(data)
        order, train_ranges, val_ranges = fold_layout(train)
        folds = LocalFieldProblem(data.spins[order], train[:, order], train_ranges, full.m,
                                  self.objective, self.symmetric, full.basis)
        val = val[:, order]
        start = folds.independent(self.cv_folds, self.work_dtype)
        tol = max(self.cv_tol, self.tol)
        tried: list[float] = []
        scores: list[float] = []
        path: list[Tensor] = []
        iterations: list[int] = []
        evaluations = rises = 0
        converged = True
        best: tuple[Tensor, list] | None = None
        for l2 in self.l2_grid:
            x0 = _predict(path, tried, l2) if self.cv_warm_start and path else start
            xc, result = folds.solve(x0, l2, self.work_dtype, self.max_iter, tol)
            score = sum(folds.held_out(folds.to_x(xc), val, val_ranges)) / self.cv_folds
            score = score if math.isfinite(score) else math.inf
            if not scores or score < min(scores):
                best = (xc.mean(0, keepdim=True),
                        [(s.mean(0, keepdim=True), y.mean(0, keepdim=True))
                         for s, y in result.memory])
            tried.append(l2)
            scores.append(score)
            path = [*path[-1:], xc]
            iterations.append(result.iterations)
            evaluations += result.evaluations
            converged = converged and result.converged
            rises = rises + 1 if score > min(scores) else 0
            if self.cv_patience is not None and rises >= self.cv_patience:
                break
        winner = min(range(len(scores)), key=scores.__getitem__)
        self.diagnostics.update(cv_grid=tried, cv_scores=scores, cv_iterations=sum(iterations),
                                cv_iterations_per_l2=iterations, cv_evaluations=evaluations,
                                cv_converged=converged,
                                cv_stopped_early=len(tried) < len(self.l2_grid),
                                cv_seconds=time.perf_counter() - started)
        assert best is not None
        xc, memory = best
        return tried[winner], xc, memory if self.cv_warm_start else None


def fold_layout(train: Tensor) -> tuple[Tensor, list[Ranges], list[Ranges]]:
    """An order of the distinct patterns, and the row ranges each fold trains and scores on.

    A pattern that fold k does not train on (all its rows fell in fold k) is grouped with the
    others of fold k, a block fold k skips; patterns split between folds come last and are
    visited by every fold. Fold k's held-out patterns lie in its block and the last one.
    """
    folds, num = train.shape
    skipped = train == 0
    group = torch.where(skipped.any(0), skipped.to(torch.long).argmax(0),
                        torch.full((num,), folds, dtype=torch.long, device=train.device))
    order = torch.argsort(group, stable=True)
    bounds = [0]
    for count in torch.bincount(group, minlength=folds + 1).tolist():
        bounds.append(bounds[-1] + count)
    mixed = (bounds[folds], num)
    train_ranges = [[(0, bounds[k]), (bounds[k + 1], num)] for k in range(folds)]
    val_ranges = [[(bounds[k], bounds[k + 1]), mixed] for k in range(folds)]
    return order, train_ranges, val_ranges


def _predict(path: list[Tensor], strengths: list[float], l2: float) -> Tensor:
    """The next solution along the l2 path, extrapolated linearly in log l2 from the last two."""
    if len(path) < 2 or min(strengths[-2], strengths[-1], l2) <= 0:
        return path[-1]
    t = math.log(l2 / strengths[-1]) / math.log(strengths[-1] / strengths[-2])
    return path[-1] + t * (path[-1] - path[-2])
