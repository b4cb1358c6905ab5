"""Generators that learn nothing: the honest reference points for augmentation."""

from __future__ import annotations

import torch
from torch import Tensor

from isingaug.errors import ConfigError


class NoGenerator:
    """`generator=none`: no augmentation, so only the observed-data condition is solved."""

    name = "none"
    produces_samples = False

    def fit(self, train: Tensor, trainer: object | None = None) -> None:
        """Nothing to learn."""

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        raise ConfigError("generator=none produces no samples; set M_plus=0 or choose a generator")
