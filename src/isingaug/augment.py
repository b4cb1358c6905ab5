"""Fit the generator, draw the M_plus extra patterns, and form the augmented conditions.

The conditions the solver sees (the `/obs`, `/aug`, `/aug_obs` of the results keys):
obs = the observed patterns; aug = the generated patterns alone; aug_obs = both, each observed
pattern weighted `obs_weight` times a generated one (1 = plain concatenation).

Nothing here depends on which generator runs: it gets a FitContext and takes from it what it
needs; learned ones ask the context's training session for a Trainer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger
from torch import Tensor

from isingaug import results as res
from isingaug.data.base import Dataset
from isingaug.errors import ConfigError, is_number
from isingaug.generators.base import FitContext, Generator
from isingaug.generators.callbacks import EnergyReference
from isingaug.ising import IsingParams
from isingaug.metrics.samples import energy_variance, sample_quality
from isingaug.metrics.truth_quality import truth_quality
from isingaug.seeding import stream
from isingaug.solvers.base import Solver
from isingaug.training import TrainingSession

log = logging.getLogger(__name__)


@dataclass
class Condition:
    """One sample set for the solver: patterns and optional per-pattern weights."""

    spins: Tensor
    weights: Tensor | None = None


@dataclass
class Augmentation:
    """What the generator stage hands on: the patterns and how they came to be."""

    samples: Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def check_augmentation(node: DictConfig, generator: Generator, M_plus: int) -> list[str]:
    """Validate the `augment` block against the generator; return the conditions to solve."""
    if M_plus < 0:
        raise ConfigError(f"M_plus must be an integer >= 0; got {M_plus}")
    conditions = list(node.conditions)
    unknown = [c for c in conditions if c not in res.AUGMENTED_CONDITIONS]
    if unknown or not conditions:
        raise ConfigError(f"augment.conditions must be a non-empty subset of "
                          f"{list(res.AUGMENTED_CONDITIONS)}; got {conditions}")
    weight = node.obs_weight
    if not is_number(weight) or float(weight) <= 0:
        raise ConfigError(f"augment.obs_weight must be a number > 0; got {weight!r}")
    if not generator.produces_samples:
        if M_plus:
            log.info("M_plus=%d ignored: generator=%s produces no samples", M_plus,
                     generator.name)
        return []
    if M_plus == 0:
        raise ConfigError(f"M_plus must be >= 1 with generator={generator.name} (the number of "
                          "generated patterns); use generator=none for the observed data alone")
    return conditions


def augmented_conditions(train: Tensor, generated: Tensor, names: list[str],
                         obs_weight: float) -> dict[str, Condition]:
    """The aug and aug_obs sample sets (with weights for aug_obs when obs_weight != 1)."""
    out: dict[str, Condition] = {}
    if res.AUG in names:
        out[res.AUG] = Condition(generated)
    if res.AUG_OBS in names:
        spins = torch.cat([train.to(generated.dtype), generated])
        weights = None
        if obs_weight != 1.0:
            weights = torch.cat([torch.full((train.shape[0],), float(obs_weight)),
                                 torch.ones(generated.shape[0])]).to(torch.float64)
        out[res.AUG_OBS] = Condition(spins, weights)
    return out


def run_generator(cfg: DictConfig, generator: Generator, dataset: Dataset,
                  params_obs: IsingParams, solver: Solver, M_plus: int,
                  loggers: list[Logger]) -> Augmentation:
    """Fit the generator on the observed patterns, then draw M_plus patterns and score them."""
    result = Augmentation(samples=torch.empty(0))
    reference = EnergyReference(dataset.train, dataset.test, params_obs, dataset.truth)
    training = TrainingSession.from_config(cfg, loggers, reference, cfg.get("resume_from"))
    context = FitContext(train=dataset.train, test=dataset.test, truth=dataset.truth,
                         params_obs=params_obs, solver=solver, seed=int(cfg.seed),
                         training=training)
    fit_start = time.perf_counter()
    generator.fit(context)
    result.seconds["generator_fit"] = time.perf_counter() - fit_start
    result.metrics.update(training.metrics)
    result.diagnostics.update(training.diagnostics)

    sample_start = time.perf_counter()
    result.samples = generator.sample(M_plus, stream(int(cfg.seed), "generate"))
    result.seconds["generator_sample"] = time.perf_counter() - sample_start
    result.metrics[res.GEN_TRAIN_SECONDS] = result.seconds["generator_fit"]
    result.metrics[res.GEN_SAMPLE_SECONDS] = result.seconds["generator_sample"]
    result.metrics[res.GEN_PATTERNS_PER_SECOND] = (
        M_plus / max(result.seconds["generator_sample"], 1e-9))
    if getattr(generator, "diagnostics", None):
        result.diagnostics["generator"] = dict(generator.diagnostics)
    result.metrics.update(generated_quality(result.samples, dataset, params_obs, int(cfg.seed),
                                            generator, int(cfg.metrics.exact_quality_max_n)))
    return result


def generated_quality(samples: Tensor, dataset: Dataset, params_obs: IsingParams, seed: int,
                      generator: Generator | None = None,
                      exact_max_n: int = 20) -> dict[str, float]:
    """`gen/...` scores of the generated patterns: against the training patterns (fit), the
    held-out test patterns, and the truth (exact moments, KL) where it is known and small."""
    scores = sample_quality(samples, dataset.train, rng=stream(seed, "quality"))
    out = {f"{res.GEN_PREFIX}/{name}": value for name, value in scores.items()}
    out[res.GEN_VAR_E_OBS] = energy_variance(params_obs, samples)
    if dataset.truth is not None:
        out[res.GEN_VAR_E_TRUE] = energy_variance(dataset.truth, samples)
    out.update(truth_quality(samples, train=dataset.train, test=dataset.test, truth=dataset.truth,
                             params_obs=params_obs, generator=generator, seed=seed,
                             exact_max_n=exact_max_n))
    return out
