"""The energy-variance criterion as a Lightning callback.

During training the generator's samples are scored every `eval_every` steps by the variance of
their energies under the parameters inferred from the observed data alone (theta_obs; under the
truth too when it is known), beside the same variance of the training and test patterns. An
under-trained generator misses the training data's variance; an over-trained one copies training
patterns, so the fraction of exact copies is logged as well. With `select: energy_variance` the
checkpoint whose variance is closest to the training data's is the one used for augmentation.

For a generator with an exact likelihood (`tractable` and `log_prob`, e.g. an RBM with a small
layer) every point also gets the held-out log-likelihood `test_loglik` and, with a truth and
n <= `exact_max_n`, the exact `kl_exact` = KL(p_true || p_gen), so `select: test_loglik` (the step
of highest test log-likelihood) and `select: energy_variance` can be judged on the same curve
against the truth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from isingaug.errors import ConfigError, check_options, is_int
from isingaug.ising import DEFAULT_MAX_ENUMERATION_N, IsingParams
from isingaug.metrics.samples import copy_fraction, energy_variance
from isingaug.metrics.truth_quality import ExactDistribution, exact_kl, is_tractable, mean_log_prob
from isingaug.seeding import stream

log = logging.getLogger(__name__)

SELECT_RULES = ("last", "energy_variance", "test_loglik")
#: The checkpoint each selecting rule keeps (in checkpoint_dir).
BEST_CHECKPOINTS = {"energy_variance": "energy_variance_best.ckpt",
                    "test_loglik": "test_loglik_best.ckpt"}
BEST_CHECKPOINT = BEST_CHECKPOINTS["energy_variance"]


@dataclass
class EnergyReference:
    """What generated patterns are compared with: the data and the models that score energies."""

    train: Tensor
    test: Tensor | None
    params_obs: IsingParams
    truth: IsingParams | None = None

    def models(self) -> dict[str, IsingParams]:
        """The parameter sets energies are taken under, by suffix (obs, and true when known)."""
        models = {"obs": self.params_obs}
        if self.truth is not None:
            models["true"] = self.truth
        return models

    def reference_values(self) -> dict[str, float]:
        """Var[E] of the training and test patterns under every model."""
        values = {}
        for suffix, params in self.models().items():
            values[f"var_E_train/{suffix}"] = energy_variance(params, self.train)
            if self.test is not None:
                values[f"var_E_test/{suffix}"] = energy_variance(params, self.test)
        return values


class EnergyVarianceMonitor(pl.Callback):
    """Scores the generator's samples during training and keeps the checkpoint to augment with.

    `eval_every: null` turns the curve off (then `select` must be `last`). The step-`s` checkpoint
    of the best point is written to `checkpoint_dir` as the curve is built, so the selection costs
    no memory and survives the process.
    """

    summary_key = "energy_variance"

    def __init__(self, eval_every: int | None = None, eval_samples: int = 1000,
                 select: str = "last", checkpoint_dir: str | None = None, seed: int = 0,
                 exact_max_n: int = 20) -> None:
        super().__init__()
        check_options([
            ("callbacks.energy_variance.eval_every", eval_every,
             eval_every is None or (is_int(eval_every) and int(eval_every) >= 1),
             "null or an integer >= 1"),
            ("callbacks.energy_variance.eval_samples", eval_samples,
             is_int(eval_samples) and int(eval_samples) >= 2, "an integer >= 2"),
            ("callbacks.energy_variance.select", select, select in SELECT_RULES,
             f"one of {list(SELECT_RULES)}"),
            ("callbacks.energy_variance.exact_max_n", exact_max_n,
             is_int(exact_max_n) and 0 <= exact_max_n <= DEFAULT_MAX_ENUMERATION_N,
             f"an integer in [0, {DEFAULT_MAX_ENUMERATION_N}]"),
        ])
        if select != "last" and eval_every is None:
            raise ConfigError(f"callbacks.energy_variance.select={select} needs the curve: "
                              "set callbacks.energy_variance.eval_every to an integer >= 1")
        if select != "last" and not checkpoint_dir:
            raise ConfigError("callbacks.energy_variance.checkpoint_dir is required for "
                              f"select={select} (the chosen checkpoint is kept there)")
        self.eval_every = None if eval_every is None else int(eval_every)
        self.eval_samples = int(eval_samples)
        self.select = select
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.seed = int(seed)
        self.exact_max_n = int(exact_max_n)
        self.reference: EnergyReference | None = None
        self.reference_values: dict[str, float] = {}
        self.curve: list[dict[str, Any]] = []
        self.selected_step: int | None = None
        self._best_score = float("inf")  # of the selecting rule; lower is better
        self._best_path: str | None = None
        self._truth_table: ExactDistribution | None = None

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint, so a resumed run continues the same curve and selection."""
        return {"curve": self.curve, "selected_step": self.selected_step,
                "best_score": self._best_score, "best_path": self._best_path}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.curve = list(state_dict["curve"])
        self.selected_step = state_dict["selected_step"]
        # "best_gap": checkpoints written before the test_loglik rule
        self._best_score = float(state_dict.get("best_score", state_dict.get("best_gap")))
        self._best_path = state_dict.get("best_path")

    @property
    def enabled(self) -> bool:
        return self.eval_every is not None

    def bind(self, reference: EnergyReference) -> None:
        """Give the callback the data and theta_obs; called by the pipeline before training."""
        if self.select == "test_loglik" and (reference.test is None or not len(reference.test)):
            raise ConfigError("callbacks.energy_variance.select=test_loglik needs held-out test "
                              "patterns, and the dataset has none (dataset.M_test or "
                              "dataset.test_fraction)")
        self.reference = reference
        self.reference_values = reference.reference_values()
        self._truth_table = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.select == "test_loglik" and not is_tractable(pl_module):
            name = getattr(pl_module, "name", type(pl_module).__name__)
            raise ConfigError("callbacks.energy_variance.select=test_loglik needs a generator "
                              f"with an exact likelihood; generator={name} has none at this size "
                              "(use select=energy_variance or select=last)")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if self.enabled and step % self.eval_every == 0 and not self._seen(step):
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and not self._seen(trainer.global_step):
            self.evaluate(trainer, pl_module)

    def _seen(self, step: int) -> bool:
        return bool(self.curve) and self.curve[-1]["step"] == step

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """Sample, score and log one point of the curve; save it if it is the best so far."""
        if self.reference is None:
            raise RuntimeError("EnergyVarianceMonitor.bind() must be called before training")
        step = trainer.global_step
        samples = pl_module.sample(self.eval_samples, stream(self.seed, "energy_variance", step))
        point: dict[str, Any] = {"step": step}
        for suffix, params in self.reference.models().items():
            point[f"var_E_gen/{suffix}"] = energy_variance(params, samples)
        point["copy_fraction"] = copy_fraction(samples, self.reference.train)
        point["var_E_gap"] = abs(point["var_E_gen/obs"]
                                 - self.reference_values["var_E_train/obs"])
        if is_tractable(pl_module):
            point.update(self.likelihood_scores(pl_module))
        self.curve.append(point)
        for logger in trainer.loggers:
            logger.log_metrics({f"energy_variance/{k}": v for k, v in point.items()
                                if k != "step"}, step=step)
        if self.select != "last":
            score = (point["var_E_gap"] if self.select == "energy_variance"
                     else -point["test_loglik"])
            if score < self._best_score:
                self._best_score = score
                self.selected_step = step
                self._best_path = str(self.checkpoint_dir / BEST_CHECKPOINTS[self.select])
                trainer.save_checkpoint(self._best_path)
        return point

    def likelihood_scores(self, pl_module: pl.LightningModule) -> dict[str, float]:
        """test_loglik (with test patterns) and kl_exact (truth known, n <= exact_max_n)."""
        out: dict[str, float] = {}
        reference = self.reference
        if reference.test is not None and len(reference.test):
            out["test_loglik"] = mean_log_prob(pl_module, reference.test)
        if reference.truth is not None and reference.truth.n <= self.exact_max_n:
            if self._truth_table is None:
                self._truth_table = ExactDistribution.of(reference.truth, self.exact_max_n)
            out["kl_exact"] = exact_kl(self._truth_table, pl_module.log_prob)
        return out

    def restore_selected(self, pl_module: pl.LightningModule) -> None:
        """Load the selected checkpoint's weights into the module (nothing to do for `last`).

        The path is the one saved when the step was chosen, so a run resumed in another folder
        (e.g. to solve again with another solver) still finds it.
        """
        if self.select == "last" or self._best_path is None:
            if self.curve:
                self.selected_step = int(self.curve[-1]["step"])
            return
        state = torch.load(self._best_path, map_location=pl_module.device,
                           weights_only=False)["state_dict"]
        pl_module.load_state_dict(state)
        log.info("select=%s: using the step-%d checkpoint", self.select, self.selected_step)

    def summary(self) -> dict[str, Any]:
        """The curve, the reference values and the selection, for results.json."""
        return {"select": self.select, "selected_step": self.selected_step,
                "eval_every": self.eval_every, "eval_samples": self.eval_samples,
                "reference": self.reference_values, "curve": self.curve}
