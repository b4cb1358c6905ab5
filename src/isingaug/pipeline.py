"""One run: dataset -> generator -> augment -> solver per condition -> metrics -> files.

Nothing model-specific lives here: every stage is built from its config group by `_target_` and
talks to the next through plain values (tensors, IsingParams, dicts of floats).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from isingaug.data.base import Dataset
from isingaug.errors import ConfigError, IsingaugError
from isingaug.io import save_npz_atomic, write_json_atomic
from isingaug.loggers import close_wandb, log_run, make_loggers
from isingaug.metrics.evaluate import evaluate
from isingaug.metrics.imputation import (
    ImputationSettings,
    imputation_baselines,
    imputation_metrics,
)

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
PARAMS_FILE = "params.npz"


def build(node: DictConfig, key: str) -> Any:
    """instantiate() a config node, surfacing our own errors instead of Hydra's wrapper."""
    try:
        return instantiate(node, _convert_="all")
    except MissingMandatoryValue as err:
        raise ConfigError(f"{err.full_key} is required: set it on the command line, "
                          f"e.g. {err.full_key}=...") from None
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, IsingaugError):
            raise cause from None
        raise ConfigError(f"{key}: {err}") from err


def run_conditions(dataset: Dataset, generator: Any, M_plus: int) -> dict[str, torch.Tensor]:
    """The sample sets the solver sees, by condition name (the `/obs` of `mse_J/obs`).

    Generators that produce samples (and with them the aug and aug_obs conditions) are not part
    of this version, so a generator config that claims to produce samples is refused.
    """
    conditions = {"obs": dataset.train}
    if generator.produces_samples:
        raise ConfigError(f"generator={generator.name} is not available in this version; "
                          "allowed: none")
    if M_plus:
        log.info("M_plus=%d ignored: generator=none produces no samples", M_plus)
    return conditions


def imputation_settings(node: DictConfig, dataset: Dataset) -> ImputationSettings | None:
    """The reconstruction settings when the run scores missing values, else None.

    `enabled: auto` scores them for data with no known truth (real recordings), where parameter
    errors cannot be measured, as long as there are test patterns.
    """
    options = OmegaConf.to_container(node, resolve=True)
    enabled = options.pop("enabled", "auto")
    if enabled not in ("auto", True, False):
        raise ConfigError(f"imputation.enabled must be auto, true or false; got {enabled!r}")
    if enabled == "auto":
        enabled = dataset.truth is None and dataset.test is not None
    return ImputationSettings(**options) if enabled else None


def run(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Execute one configured run and write params.npz, then results.json (last, atomically)."""
    started = time.perf_counter()
    if cfg.seed is None or int(cfg.seed) < 0:
        raise ConfigError(f"seed must be an integer >= 0; got {cfg.seed!r}")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    solver = build(cfg.solver, "solver")
    generator = build(cfg.generator, "generator")
    M_plus = int(cfg.M_plus)
    if M_plus < 0:
        raise ConfigError(f"M_plus must be an integer >= 0; got {M_plus}")

    data_start = time.perf_counter()
    dataset: Dataset = build(cfg.dataset, "dataset")
    data_seconds = time.perf_counter() - data_start
    for warning in dataset.meta.get("sampling", {}).get("warnings", []):
        log.warning("data sampling: %s", warning)

    imputation = imputation_settings(cfg.imputation, dataset)
    metrics: dict[str, float] = {}
    if imputation is not None:
        metrics.update(imputation_baselines(dataset, imputation))
    diagnostics: dict[str, Any] = {"data": dataset.meta}
    arrays: dict[str, np.ndarray] = {}
    if dataset.truth is not None:
        arrays.update({f"{k}_true": v for k, v in dataset.truth.to_numpy().items()})
    for condition, spins in run_conditions(dataset, generator, M_plus).items():
        params = solver.fit(spins)
        diagnostics[f"solver/{condition}"] = dict(solver.diagnostics)
        metrics[f"solver_seconds/{condition}"] = float(solver.diagnostics["seconds"])
        scores = evaluate(params, dataset, int(cfg.metrics.exact_loglik_max_n))
        if imputation is not None:
            scores.update(imputation_metrics(params, dataset, imputation))
        metrics.update({f"{key}/{condition}": value for key, value in scores.items()})
        arrays.update({f"{k}_{condition}": v for k, v in params.to_numpy().items()})
        log.info("%s: %s", condition, _summary(metrics, condition))

    summary = {
        "dataset": dataset.meta.get("dataset", "file"),
        "generator": generator.name,
        "solver": solver.name,
        "n": dataset.n,
        "M": int(dataset.train.shape[0]),
        "M_test": int(dataset.test.shape[0]) if dataset.test is not None else 0,
        "M_plus": M_plus,
        "seed": int(cfg.seed),
    }
    for key in ("g", "g_h", "data_seed"):
        if key in dataset.meta:
            summary[key] = dataset.meta[key]
    seconds = {"data": data_seconds, "total": time.perf_counter() - started}
    run_name = "-".join(f"{k}{summary[k]}" for k in ("n", "M", "M_plus", "seed"))
    loggers = make_loggers(cfg.get("logger"), f"{summary['generator']}-{summary['solver']}-"
                           f"{run_name}", group=str(cfg.get("task_name", "isingaug")),
                           job_type=summary["generator"])
    try:
        log_run(loggers, cfg, metrics)
    finally:
        close_wandb()
    save_npz_atomic(output_dir / PARAMS_FILE, **arrays)
    results = {"run": summary, "metrics": metrics, "diagnostics": diagnostics, "seconds": seconds,
               "config": OmegaConf.to_container(cfg, resolve=True)}
    write_json_atomic(output_dir / RESULTS_FILE, results)
    return results


def _summary(metrics: dict[str, float], condition: str) -> str:
    keys = ("mse_J", "mse_all", "rel_err_J", "test_pseudo_loglik", "impute_acc", "solver_seconds")
    return ", ".join(f"{k}={metrics[f'{k}/{condition}']:.4g}" for k in keys
                     if f"{k}/{condition}" in metrics)
