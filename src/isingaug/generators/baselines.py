"""Generators that learn nothing: the honest reference points for augmentation.

`bootstrap` (resampling the observed patterns) is the floor: any augmenter must beat it to have
added information. `oracle` (fresh samples from the true model) is the ceiling: no augmenter can
do better than a perfect model of the data.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from isingaug.device import resolve_device
from isingaug.errors import ConfigError
from isingaug.generators.base import FitContext, check_sample_count, fitted
from isingaug.ising import IsingParams
from isingaug.sampling import draw_samples, resolve_sampler


class _Untrained:
    """Shared shape of the baselines: nothing to train, so no Trainer."""

    name = ""
    produces_samples = True
    trainable = False
    tractable = False


class NoGenerator(_Untrained):
    """`generator=none`: no augmentation, so only the observed-data condition is solved."""

    name = "none"
    produces_samples = False

    def fit(self, context: FitContext) -> None:
        """Nothing to learn."""

    def sample(self, num: int, rng: torch.Generator | None = None) -> Tensor:
        raise ConfigError("generator=none produces no samples; set M_plus=0 or choose a generator")


class Bootstrap(_Untrained):
    """`generator=bootstrap`: draw the observed patterns again, uniformly with replacement."""

    name = "bootstrap"

    def __init__(self) -> None:
        self._train: Tensor | None = None

    def fit(self, context: FitContext) -> None:
        self._train = context.train.detach().float().cpu()

    def sample(self, num: int, rng: torch.Generator | None = None) -> Tensor:
        check_sample_count(num)
        fitted(self._train, self.name)
        rows = torch.randint(self._train.shape[0], (num,), generator=rng)
        return self._train[rows]


class Oracle(_Untrained):
    """`generator=oracle`: fresh samples from the true parameters (exact or MCMC).

    Only data with a known truth (dataset=sk, or a file holding h and J) can have an oracle.
    `sampler` takes the keys of dataset.sampler; null uses the same defaults.
    """

    name = "oracle"

    def __init__(self, sampler: dict[str, Any] | None = None, device: str = "auto") -> None:
        self.sampler = dict(sampler or {})
        self.device = device
        self._truth: IsingParams | None = None
        self.diagnostics: dict[str, Any] = {}

    def fit(self, context: FitContext) -> None:
        if context.truth is None:
            raise ConfigError("generator=oracle needs the true parameters, which only dataset=sk "
                              "(or a dataset=file .npz holding h and J) has; choose a generator "
                              "that learns from the data, or bootstrap")
        self._truth = context.truth

    def sample(self, num: int, rng: torch.Generator | None = None) -> Tensor:
        check_sample_count(num)
        fitted(self._truth, self.name)
        if num == 0:
            return torch.empty(0, self._truth.n)
        device = resolve_device(self.device)
        spec = resolve_sampler(self.sampler, self._truth.n, _scale(self._truth), "generator")
        seed = int(torch.randint(0, 2**62, (1,), generator=rng))
        samples, self.diagnostics = draw_samples(self._truth.to(device), num, spec,
                                                 torch.Generator(device=device).manual_seed(seed))
        return samples.to(device="cpu", dtype=torch.float32)


def _scale(truth: IsingParams) -> float:
    """The coupling strength g of an SK-like model (std of J times sqrt(n)), for the PT rule."""
    couplings = truth.couplings_upper()
    return float(couplings.std() * truth.n ** 0.5) if couplings.numel() > 1 else 0.0
