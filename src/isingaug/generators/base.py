"""The interface every augmenter follows: fit on the observed patterns, then sample new ones."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Generator(Protocol):
    """A source of extra +-1 patterns (a LightningModule, or a plain object for the baselines).

    `produces_samples` is False only for `none`, whose run has just the observed condition.
    """

    name: str
    produces_samples: bool

    def fit(self, train: Tensor, trainer: object | None = None) -> None:
        """Learn from the observed training patterns (M, n)."""

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """Return `num` patterns (num, n) of +-1, generated in memory-bounded batches."""
