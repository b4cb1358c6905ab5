"""The plain value every dataset builder returns: patterns, optional truth, provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from isingaug.ising import IsingParams


@dataclass
class Dataset:
    """Training and test patterns as float32 tensors of +-1 (patterns x spins), on the CPU.

    `truth` is the generating model when it is known (synthetic data, or a user file that ships
    h and J); `meta` says where the data came from and how it was converted.
    """

    train: Tensor
    test: Tensor | None
    truth: IsingParams | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.train.shape[1])
