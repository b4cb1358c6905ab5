"""Train the generator, draw the M_plus extra patterns, and form the augmented conditions.

The conditions the solver sees (the `/obs`, `/aug`, `/aug_obs` of the results keys):
obs = the observed patterns; aug = the generated patterns alone; aug_obs = both, each observed
pattern weighted `obs_weight` times a generated one (1 = plain concatenation).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger
from torch import Tensor

from isingaug.config import build
from isingaug.data.base import Dataset
from isingaug.errors import ConfigError, is_int, is_number
from isingaug.generators.callbacks import EnergyReference, EnergyVarianceMonitor
from isingaug.ising import IsingParams
from isingaug.metrics.samples import energy_variance, sample_quality
from isingaug.seeding import stream

log = logging.getLogger(__name__)

AUGMENTED_CONDITIONS = ("aug", "aug_obs")


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


def check_augmentation(node: DictConfig, generator: Any, M_plus: int) -> list[str]:
    """Validate the `augment` block against the generator; return the conditions to solve."""
    if M_plus < 0:
        raise ConfigError(f"M_plus must be an integer >= 0; got {M_plus}")
    conditions = list(node.conditions)
    unknown = [c for c in conditions if c not in AUGMENTED_CONDITIONS]
    if unknown or not conditions:
        raise ConfigError(f"augment.conditions must be a non-empty subset of "
                          f"{list(AUGMENTED_CONDITIONS)}; got {conditions}")
    weight = node.obs_weight
    if not is_number(weight) or float(weight) <= 0:
        raise ConfigError(f"augment.obs_weight must be a number > 0; got {weight!r}")
    if not generator.produces_samples:
        if M_plus:
            log.info("M_plus=%d ignored: generator=none produces no samples", M_plus)
        return []
    if M_plus == 0:
        raise ConfigError(f"M_plus must be >= 1 with generator={generator.name} (the number of "
                          "generated patterns); use generator=none for the observed data alone")
    return conditions


def augmented_conditions(train: Tensor, generated: Tensor, names: list[str],
                         obs_weight: float) -> dict[str, Condition]:
    """The aug and aug_obs sample sets (with weights for aug_obs when obs_weight != 1)."""
    out: dict[str, Condition] = {}
    if "aug" in names:
        out["aug"] = Condition(generated)
    if "aug_obs" in names:
        spins = torch.cat([train.to(generated.dtype), generated])
        weights = None
        if obs_weight != 1.0:
            weights = torch.cat([torch.full((train.shape[0],), float(obs_weight)),
                                 torch.ones(generated.shape[0])]).to(torch.float64)
        out["aug_obs"] = Condition(spins, weights)
    return out


def make_trainer(cfg: DictConfig, monitor: EnergyVarianceMonitor,
                 loggers: list[Logger]) -> pl.Trainer:
    """The configured Lightning Trainer with checkpointing, the monitor and the run's loggers."""
    max_steps = cfg.trainer.get("max_steps")
    if not is_int(max_steps) or int(max_steps) < 1:
        raise ConfigError(f"trainer.max_steps must be an integer >= 1 (training length in "
                          f"optimizer steps); got {max_steps!r}")
    checkpoint = build(cfg.callbacks.model_checkpoint, "callbacks.model_checkpoint")
    return build(cfg.trainer, "trainer", callbacks=[checkpoint, monitor],
                 logger=loggers or False)


def run_generator(cfg: DictConfig, generator: Any, dataset: Dataset, params_obs: IsingParams,
                  M_plus: int, loggers: list[Logger]) -> Augmentation:
    """Fit the generator on the observed patterns, then draw M_plus patterns and score them."""
    result = Augmentation(samples=torch.empty(0))
    fit_start = time.perf_counter()
    if generator.trainable:
        monitor = build(cfg.callbacks.energy_variance, "callbacks.energy_variance")
        monitor.bind(EnergyReference(dataset.train, dataset.test, params_obs, dataset.truth))
        trainer = make_trainer(cfg, monitor, loggers)
        generator.fit(dataset.train, trainer, ckpt_path=cfg.get("resume_from"))
        trained_here = int(trainer.global_step) - generator.first_step
        # NaN when a resumed run had nothing left to train: no speed was measured.
        result.metrics["gen/steps_per_second"] = (
            trained_here / (time.perf_counter() - fit_start) if trained_here else float("nan"))
        result.metrics["gen/steps"] = float(trainer.global_step)
        monitor.restore_selected(generator)
        result.diagnostics["energy_variance"] = monitor.summary()
    else:
        generator.fit(dataset.train, None, truth=dataset.truth)
    result.seconds["generator_fit"] = time.perf_counter() - fit_start

    sample_start = time.perf_counter()
    result.samples = generator.sample(M_plus, stream(int(cfg.seed), "generate"))
    result.seconds["generator_sample"] = time.perf_counter() - sample_start
    result.metrics["gen/train_seconds"] = result.seconds["generator_fit"]
    result.metrics["gen/sample_seconds"] = result.seconds["generator_sample"]
    result.metrics["gen/patterns_per_second"] = (M_plus
                                                 / max(result.seconds["generator_sample"], 1e-9))
    if getattr(generator, "diagnostics", None):
        result.diagnostics["generator"] = dict(generator.diagnostics)
    result.metrics.update(generated_quality(result.samples, dataset, params_obs,
                                            int(cfg.seed)))
    return result


def generated_quality(samples: Tensor, dataset: Dataset, params_obs: IsingParams,
                      seed: int) -> dict[str, float]:
    """`gen/...` scores of the generated patterns against the observed ones."""
    scores = sample_quality(samples, dataset.train, generator=stream(seed, "quality"))
    out = {f"gen/{key}": value for key, value in scores.items()}
    out["gen/var_E_obs"] = energy_variance(params_obs, samples)
    if dataset.truth is not None:
        out["gen/var_E_true"] = energy_variance(dataset.truth, samples)
    return out
