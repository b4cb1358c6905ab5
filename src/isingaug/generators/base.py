"""The interface every augmenter follows: fit on a context, then sample new patterns.

`fit` takes one `FitContext` holding everything a generator may need (the observed and held-out
patterns, the truth when known, the parameters inferred from the observed data, the run's solver,
and, for learned generators, the training session that builds the Lightning Trainer). A
generator takes what it needs from it, so the augmentation stage never asks which generator it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import Tensor

from isingaug.errors import ConfigError, is_int
from isingaug.ising import IsingParams

if TYPE_CHECKING:
    from isingaug.solvers.base import Solver
    from isingaug.training import TrainingSession


@dataclass
class FitContext:
    """What a generator is fitted from.

    `truth` is None for real data; only the oracle may use it. `params_obs` are the parameters the
    run's `solver` inferred from `train` alone. `training` builds the Trainer (with every
    configured callback and logger) and resumes from `resume_from`; learned generators only.
    """

    train: Tensor
    test: Tensor | None
    truth: IsingParams | None
    params_obs: IsingParams | None
    solver: Solver | None
    seed: int
    training: TrainingSession | None = None


@runtime_checkable
class Generator(Protocol):
    """A source of extra +-1 patterns (a LightningModule, or a plain object for the baselines).

    What a generator is, declared rather than looked up by name:
    `produces_samples` is False only for `none`, whose run has just the observed condition;
    `trainable` says whether fit() trains (with `context.training`) and has steps and checkpoints;
    `tractable` says whether `log_prob` gives exact normalised log-probabilities.
    """

    name: str
    produces_samples: bool
    trainable: bool
    tractable: bool

    def fit(self, context: FitContext) -> None:
        """Learn from the observed training patterns `context.train` (M, n)."""

    def sample(self, num: int, rng: torch.Generator | None = None) -> Tensor:
        """Return `num` patterns (num, n) of +-1 on the CPU, generated in memory-bounded batches."""


def check_sample_count(num: object) -> None:
    """The one check of a requested number of generated patterns, shared by every generator."""
    if not is_int(num) or int(num) < 0:
        raise ConfigError(f"number of generated patterns must be an integer >= 0; got {num!r}")


def fitted(value: object, name: str) -> None:
    """Refuse to sample before fit() (the one message for every generator)."""
    if value is None:
        raise ConfigError(f"generator={name} must be fitted before it can sample")
