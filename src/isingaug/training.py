"""Training assembly in one place: the Lightning Trainer of a learned generator, with every
callback the config declares and the run's loggers, and what training leaves behind.

Every node with a `_target_` under `callbacks:` becomes a callback, so a Lightning callback a
user adds in YAML runs like the built-in ones. A callback that needs the run's data and the
parameters inferred from it declares `bind(reference)`; one that chooses which weights to augment
with declares `restore_selected(module)` and `summary()` (the energy-variance monitor does both).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger

from isingaug import results as res
from isingaug.config import build
from isingaug.errors import ConfigError, is_int


def build_callbacks(node: DictConfig | None) -> list[pl.Callback]:
    """Instantiate every `_target_` node under `callbacks` (in the order the config lists them)."""
    callbacks: list[pl.Callback] = []
    for name, child in (node or {}).items():
        if not isinstance(child, DictConfig) or "_target_" not in child:
            continue
        callback = build(child, f"callbacks.{name}")
        if not isinstance(callback, pl.Callback):
            raise ConfigError(f"callbacks.{name}: {child._target_} is not a Lightning Callback")
        callbacks.append(callback)
    return callbacks


def training_length(trainer_steps: object, generator_steps: object) -> int:
    """Optimizer steps to train: `trainer.max_steps` when set (a sweep over training length, a
    smoke size), else the generator's own `generator.max_steps` (its tuned budget)."""
    steps, key = ((generator_steps, "generator.max_steps") if trainer_steps is None
                  else (trainer_steps, "trainer.max_steps"))
    if not is_int(steps) or int(steps) < 1:
        raise ConfigError(f"{key} must be an integer >= 1 (training length in optimizer steps); "
                          f"got {steps!r}")
    return int(steps)


class TrainingSession:
    """Builds the Trainer on demand (only a learned generator asks, so nothing is built for one
    that does not train) and gathers what training produced.

    `make` builds the Trainer; `from_config` is the run's way (every configured callback, the
    run's loggers, callbacks bound to `reference`); tests pass their own. `resume_from` is a
    checkpoint to continue exactly.
    """

    def __init__(self, make: Callable[[int], pl.Trainer],
                 resume_from: str | None = None) -> None:
        self._make = make
        self.resume_from = resume_from
        self.trainer: pl.Trainer | None = None
        self.metrics: dict[str, float] = {}
        self.diagnostics: dict[str, Any] = {}
        self._started = 0.0

    @classmethod
    def from_config(cls, cfg: DictConfig, loggers: list[Logger], reference: Any = None,
                    resume_from: str | None = None) -> TrainingSession:
        def make(default_steps: int) -> pl.Trainer:
            max_steps = training_length(cfg.trainer.get("max_steps"), default_steps)
            callbacks = build_callbacks(cfg.get("callbacks"))
            for callback in callbacks:
                if hasattr(callback, "bind"):
                    callback.bind(reference)
            return build(cfg.trainer, "trainer", max_steps=max_steps, callbacks=callbacks,
                         logger=loggers or False)

        return cls(make, resume_from)

    def make_trainer(self, default_steps: int) -> pl.Trainer:
        """Build the Trainer (once per fit) and start the clock for the training speed.

        `default_steps` is the generator's own training length, used unless `trainer.max_steps`
        is set.
        """
        self.trainer = self._make(default_steps)
        self._started = time.perf_counter()
        return self.trainer

    def finish(self, module: pl.LightningModule, first_step: int) -> None:
        """After trainer.fit: load the selected weights, record steps, speed and curves.

        `first_step` is the step this process started at, so a resumed run's speed counts only
        the steps trained here (NaN when nothing was left to train).
        """
        if self.trainer is None:
            raise RuntimeError("TrainingSession.finish() before make_trainer()")
        steps = int(self.trainer.global_step)
        trained_here = steps - first_step
        elapsed = time.perf_counter() - self._started
        self.metrics[res.GEN_STEPS] = float(steps)
        self.metrics[res.GEN_STEPS_PER_SECOND] = (trained_here / elapsed if trained_here
                                                  else float("nan"))
        for callback in self.trainer.callbacks:
            if hasattr(callback, "restore_selected"):
                callback.restore_selected(module)
            if hasattr(callback, "summary"):
                self.diagnostics[callback.summary_key] = callback.summary()
