"""The interface every inverse solver follows: fit(samples, weights) -> params + diagnostics."""

from __future__ import annotations

import copy
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from isingaug.device import resolve_device, resolve_dtype
from isingaug.errors import ConfigError, is_number
from isingaug.ising import IsingParams, normalized_weights

#: A row of `isingaug.errors.check_options`: (key, value, ok, what is allowed).
Check = tuple[str, object, bool, str]

#: Largest n whose patterns are keyed exactly by a float64 sum of powers of two (2^52 < 2^53).
_EXACT_KEY_BITS = 52


@dataclass(frozen=True)
class Samples:
    """Validated patterns with their repeats collapsed into weights (every solver is weighted).

    `spins` (U, n) holds each distinct pattern once and `weights` (U,) its total normalised
    weight; `rows` (M,) maps every input row to its distinct pattern and `row_weights` (M,) keeps
    the input rows' own normalised weights, for what must split the rows themselves (the
    cross-validation folds). Collapsing is exact: every solver's objective is a weighted sum
    over patterns, so it only saves the repeated work (neural recordings repeat the silent
    pattern and a few others thousands of times; small-n samples repeat most states).
    """

    spins: Tensor
    weights: Tensor
    rows: Tensor
    row_weights: Tensor

    @property
    def n(self) -> int:
        return int(self.spins.shape[1])


def distinct_patterns(spins: Tensor) -> tuple[Tensor, Tensor]:
    """(distinct rows (U, n), index (M,) of each input row among them) of a +-1 array.

    Rows are keyed by one float64 number, sorted by torch.unique: exactly, as the binary number
    of the spins, for n <= 52; above that by a random projection, checked row by row afterwards
    (a collision falls back to torch.unique over whole rows, ~30x slower at M = 300,000).
    """
    num, n = spins.shape
    if n <= _EXACT_KEY_BITS:
        scale = torch.pow(2.0, torch.arange(n, dtype=torch.float64, device=spins.device))
        keys = (spins > 0).to(torch.float64) @ scale
    else:
        generator = torch.Generator(device=spins.device).manual_seed(0)
        scale = torch.randn(n, dtype=torch.float64, device=spins.device, generator=generator)
        keys = spins.to(torch.float64) @ scale
    _, rows = torch.unique(keys, return_inverse=True)
    first = torch.empty(int(rows.max()) + 1, dtype=torch.long, device=spins.device)
    first.scatter_(0, rows, torch.arange(num, device=spins.device))
    distinct = spins[first]
    if n > _EXACT_KEY_BITS and not torch.equal(distinct[rows], spins):
        distinct, rows = torch.unique(spins, dim=0, return_inverse=True)
    return distinct, rows


def collapse(spins: Tensor, weights: Tensor) -> Samples:
    """Samples of validated spins (M, n) and normalised weights (M,)."""
    distinct, rows = distinct_patterns(spins)
    total = torch.zeros(distinct.shape[0], dtype=weights.dtype, device=weights.device)
    total.index_add_(0, rows, weights)
    return Samples(spins=distinct, weights=total, rows=rows, row_weights=weights)


class Solver(ABC):
    """An inverse Ising solver. Plain class (no Lightning): torch on the configured device.

    Subclasses implement `_fit(data)` on `Samples` already in the solver's dtype and device.
    `fit` times the call and fills `self.diagnostics` with at least the keys of
    `DIAGNOSTIC_KEYS`, the same for every solver so a run can say whether its fits converged:
    `converged` (bool), `iterations` (used), `max_iter` (allowed; None for a closed form),
    `limit_key` (the option that sets the limit, e.g. "solver.max_iter"; None for a closed
    form), `objective` and `seconds`.
    """

    name: str = "solver"
    #: the option bounding the iterations, named in the diagnostics and in warnings
    limit_key: str | None = "solver.max_iter"
    DIAGNOSTIC_KEYS = ("converged", "iterations", "max_iter", "limit_key", "objective", "seconds")

    def __init__(self, device: str = "auto", dtype: str = "float64") -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.diagnostics: dict[str, Any] = {}

    def fit(self, samples: Tensor, weights: Tensor | None = None) -> IsingParams:
        """Infer (h, J) from +-1 patterns (M, n), each weighted by `weights` (M,) if given."""
        spins = torch.as_tensor(samples).to(device=self.device, dtype=self.dtype)
        if spins.ndim != 2 or spins.shape[0] < 1 or spins.shape[1] < 2:
            raise ConfigError(f"{self.name}: samples must be a (M >= 1, n >= 2) array; "
                              f"got shape {tuple(spins.shape)}")
        if not torch.all((spins == 1) | (spins == -1)):
            raise ConfigError(f"{self.name}: samples must be +-1 spins")
        w = normalized_weights(spins.shape[0], weights, self.dtype, self.device)
        start = time.perf_counter()
        return self.fit_samples(collapse(spins, w), start)

    def fit_samples(self, data: Samples, start: float | None = None) -> IsingParams:
        """`fit` on already validated and collapsed samples (solvers that call solvers)."""
        start = time.perf_counter() if start is None else start
        self.diagnostics = {}
        params = self._fit(data)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.diagnostics["seconds"] = time.perf_counter() - start
        self.diagnostics.setdefault("max_iter", getattr(self, "max_iter", None))
        self.diagnostics.setdefault("limit_key", self.limit_key)
        self.diagnostics.setdefault("iterations", 0)
        self.diagnostics.setdefault("objective", float("nan"))
        self.diagnostics["converged"] = bool(self.diagnostics.get("converged", False))
        self.diagnostics["distinct_patterns"] = int(data.spins.shape[0])
        return params

    def tuned_l2(self) -> Solver | None:
        """A copy of this solver with its L2 strength chosen by cross-validation (`l2="auto"`),
        or None when the solver has no L2 option."""
        return None

    def _replace(self, **changes: Any) -> Solver:
        """A shallow copy with some options changed and fresh diagnostics."""
        twin = copy.copy(self)
        for key, value in changes.items():
            setattr(twin, key, value)
        twin.diagnostics = {}
        return twin

    @abstractmethod
    def _fit(self, data: Samples) -> IsingParams:
        """Solve on validated, collapsed samples."""


def count_check(key: str, value: object, minimum: int = 1) -> Check:
    """An integer option (iterations, chains, folds...); 1000.0 from a command line counts."""
    ok = is_number(value) and math.isfinite(float(value)) and float(value).is_integer()
    return (f"solver.{key}", value, ok and float(value) >= minimum, f"an integer >= {minimum}")


def positive_check(key: str, value: object, minimum: float = 0.0,
                   strict: bool = True) -> Check:
    """A finite real option above `minimum` (tolerances, learning rates, ridges)."""
    ok = is_number(value) and math.isfinite(float(value))
    ok = ok and (float(value) > minimum if strict else float(value) >= minimum)
    sign = ">" if strict else ">="
    return (f"solver.{key}", value, ok, f"a finite float {sign} {minimum:g}")


def penalty_check(key: str, value: object, allow_auto: bool) -> Check:
    """A penalty strength: a finite float >= 0, or 'auto' where cross-validation chooses it."""
    if allow_auto and value == "auto":
        return (f"solver.{key}", value, True, "")
    ok = is_number(value) and math.isfinite(float(value)) and float(value) >= 0
    allowed = "a finite float >= 0 or 'auto'" if allow_auto else "a finite float >= 0"
    return (f"solver.{key}", value, ok, allowed)


def choice_check(key: str, value: object, choices: tuple[str, ...]) -> Check:
    return (f"solver.{key}", value, value in choices, f"one of {list(choices)}")


def bool_check(key: str, value: object) -> Check:
    return (f"solver.{key}", value, isinstance(value, bool), "true or false")
