"""The interface every inverse solver follows: fit(samples, weights) -> params + diagnostics."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

from isingaug.device import resolve_device, resolve_dtype
from isingaug.errors import ConfigError
from isingaug.ising import IsingParams, normalized_weights


class Solver(ABC):
    """An inverse Ising solver. Plain class (no Lightning): torch on the configured device.

    Subclasses implement `_fit(spins, weights)` on spins already converted to the solver's dtype
    and device and weights normalised to sum to one. `fit` times the call and fills
    `self.diagnostics` with at least iterations, converged, objective and seconds.
    """

    name: str = "solver"

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
        self.diagnostics = {}
        start = time.perf_counter()
        params = self._fit(spins, w)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.diagnostics["seconds"] = time.perf_counter() - start
        for key in ("iterations", "converged", "objective"):
            self.diagnostics.setdefault(key, float("nan"))
        return params

    @abstractmethod
    def _fit(self, spins: Tensor, weights: Tensor) -> IsingParams:
        """Solve on validated spins (M, n) and normalised weights (M,)."""
