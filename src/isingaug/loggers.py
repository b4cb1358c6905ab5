"""Run loggers: CSV always, wandb when the `logger` group asks for it (offline by default); and
the one number a run reports to a tuning sweeper (`tune.objective`, read by hydra/sweeper=optuna
from what the job returns)."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger, Logger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from isingaug.errors import ConfigError, check_options
from isingaug.results import metric_of

DIRECTIONS = ("minimize", "maximize")


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing metrics.csv is kept and appended to."""

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes the earlier metrics.csv
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = sorted(next(csv.reader(file), []))


class ResumableCSVLogger(CSVLogger):
    """<run>/csv/metrics.csv that survives a resumed run: a job started again in its folder
    (automatic resume) appends its training curve to the one logged before it was killed."""

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def make_loggers(logger_cfg: DictConfig | None, run_name: str, group: str,
                 job_type: str) -> list[Logger]:
    """Instantiate every logger node that has a `_target_`; wandb gets the run's identity."""
    loggers: list[Logger] = []
    for key, node in (logger_cfg or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        extra: dict[str, Any] = {}
        if key == "wandb":
            if os.environ.get("WANDB_MODE") == "disabled" or node.get("mode") == "disabled":
                continue
            extra = {"name": node.get("name") or run_name, "group": node.get("group") or group,
                     "job_type": node.get("job_type") or job_type}
        loggers.append(instantiate(node, **extra))
    return loggers


def log_run(loggers: list[Logger], config: DictConfig, metrics: dict[str, float],
            step: int = 0) -> None:
    """Log the full resolved config and the final metrics (at `step`, the generator's last
    training step, so wandb's monotonic step is kept), then close every logger."""
    flat_config = OmegaConf.to_container(config, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(flat_config)
        logger.log_metrics(metrics, step=step)
        logger.finalize("success")


def close_wandb() -> None:
    """End a wandb run if one is open, so the next job of a sweep starts its own.

    Called from the pipeline's `finally`: when an exception is on its way out, the run is closed
    with exit code 1, so a failed job shows as failed in wandb rather than as finished.
    """
    try:
        import wandb
    except ImportError:  # pragma: no cover - wandb is a hard dependency
        return
    if wandb.run is not None:
        wandb.finish(exit_code=1 if sys.exc_info()[0] is not None else 0)


def tune_objective(cfg: DictConfig, metrics: Mapping[str, float]) -> float | None:
    """The value a tuning sweeper optimises, from a finished run's metrics; None when the run
    has no `tune.objective` (every run outside a tuning preset).

    `tune.objective` names a results key (`test_loglik/aug_obs`, `gen/kl_exact`, ...). With
    `tune.reference` (another key) the value is the distance |objective - reference|, e.g. of the
    generated patterns' Var[E] to the training data's, for sizes with no exact likelihood.
    `tune.direction` must agree with the declared metric (its `lower_is_better`), so a preset
    cannot ask Optuna to maximise an error.
    """
    tune = cfg.get("tune")
    name = tune.get("objective") if tune is not None else None
    if name is None:
        return None
    reference = tune.get("reference")
    direction = tune.get("direction")
    check_options([("tune.direction", direction, direction in DIRECTIONS, " or ".join(DIRECTIONS))])
    for option, results_key in (("tune.objective", name), ("tune.reference", reference)):
        if results_key is not None and results_key not in metrics:
            raise ConfigError(f"{option}={results_key!r} is not among this run's metrics "
                              f"(a metric this run does not compute?); it has: "
                              f"{', '.join(sorted(metrics))}")
    if reference is not None:
        check_options([("tune.direction", direction, direction == "minimize",
                        "minimize with tune.reference (a distance)")])
        return abs(float(metrics[name]) - float(metrics[reference]))
    declared = metric_of(str(name))
    if declared is not None and declared.lower_is_better is not None:
        expected = "minimize" if declared.lower_is_better else "maximize"
        check_options([("tune.direction", direction, direction == expected,
                        f"{expected} for tune.objective={name} ({declared.label})")])
    return float(metrics[name])
