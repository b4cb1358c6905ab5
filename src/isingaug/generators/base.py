"""The interface every augmenter follows: fit on the observed patterns, then sample new ones."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from isingaug.errors import ConfigError, is_int
from isingaug.ising import IsingParams


@runtime_checkable
class Generator(Protocol):
    """A source of extra +-1 patterns (a LightningModule, or a plain object for the baselines).

    `produces_samples` is False only for `none`, whose run has just the observed condition.
    `trainable` says whether fit() needs a Lightning Trainer.
    """

    name: str
    produces_samples: bool
    trainable: bool

    def fit(self, train: Tensor, trainer: object | None = None, *,
            truth: IsingParams | None = None, ckpt_path: str | None = None) -> None:
        """Learn from the observed training patterns (M, n).

        `truth` is given only so the oracle can exist; every other generator must ignore it.
        `ckpt_path` continues an interrupted training run exactly (learned generators only).
        """

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """Return `num` patterns (num, n) of +-1 on the CPU, generated in memory-bounded batches."""


def check_sample_count(num: object) -> None:
    """The one check of a requested number of generated patterns, shared by every generator."""
    if not is_int(num) or int(num) < 0:
        raise ConfigError(f"number of generated patterns must be an integer >= 0; got {num!r}")
