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
from omegaconf import DictConfig, OmegaConf

from isingaug import results as res
from isingaug.augment import augmented_conditions, check_augmentation, run_generator
from isingaug.config import build
from isingaug.data.base import Dataset
from isingaug.errors import ConfigError
from isingaug.io import save_npz_atomic, write_json_atomic
from isingaug.loggers import close_wandb, log_run, make_loggers
from isingaug.metrics.evaluate import evaluate
from isingaug.metrics.imputation import (
    ImputationSettings,
    imputation_baselines,
    imputation_metrics,
)
from isingaug.metrics.truth_quality import check_exact_quality_max_n
from isingaug.run_summary import render, summary_table, unconverged_warning
from isingaug.solvers.base import Solver
from isingaug.training import training_length

log = logging.getLogger(__name__)



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


TUNE_L2_CHOICES = ("auto", "none", "obs", "all", "both")


def plan_solvers(choice: str, solver: Solver, dataset: Dataset
                 ) -> tuple[Solver, Solver | None, tuple[str, ...]]:
    """(the solver of every condition, the tuned-L2 solver or None, the conditions that also get
    a tuned twin) for `tune_l2`.

    The one place where the regularisation of a run is decided. `none`: the solver as
    configured; `obs`: also solve the observed data with the solver's L2 chosen by
    cross-validation, as the `obs_l2` condition (does augmentation add anything a tuned
    regulariser does not?); `both`: every condition twice, as configured and tuned (obs_l2,
    aug_l2, aug_obs_l2: does augmentation still help once both sides are regularised?); `all`:
    every condition with the tuned L2 only; `auto`: `all` for data without a known truth (an
    unregularised fit of a real recording of hundreds of units overfits: it reconstructs missing
    spikes worse than independent units), `none` otherwise.
    """
    if choice not in TUNE_L2_CHOICES:
        raise ConfigError(f"tune_l2 must be one of {list(TUNE_L2_CHOICES)}; got {choice!r}")
    if choice == "auto":
        choice = "all" if dataset.truth is None else "none"
    if choice == "none":
        return solver, None, ()
    tuned = solver.tuned_l2()
    if tuned is None:
        if dataset.truth is None and choice == "all":
            log.info("tune_l2: solver=%s has no L2 option; fitted as configured", solver.name)
            return solver, None, ()
        raise ConfigError(f"tune_l2={choice} needs a solver with an L2 option (plm, mle, "
                          f"interaction_screening...); solver={solver.name} has none")
    if choice == "all":
        return tuned, None, ()
    twins = (res.OBS,) if choice == "obs" else tuple(res.TUNED_TWINS)
    return solver, tuned, twins


def run(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Execute one configured run and write params.npz, then results.json (last, atomically).

    wandb groups runs by task_name, which is also the sweep folder's name (experiments set it to
    the study), so the runs of one sweep share a group.
    """
    started = time.perf_counter()
    if cfg.seed is None or int(cfg.seed) < 0:
        raise ConfigError(f"seed must be an integer >= 0; got {cfg.seed!r}")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    check_exact_quality_max_n(cfg.metrics.exact_quality_max_n)
    solver = build(cfg.solver, "solver")
    generator = build(cfg.generator, "generator")
    M_plus = int(cfg.M_plus)
    augmented = check_augmentation(cfg.augment, generator, M_plus)

    data_start = time.perf_counter()
    dataset: Dataset = build(cfg.dataset, "dataset")
    seconds = {"data": time.perf_counter() - data_start}
    for warning in dataset.meta.get("sampling", {}).get("warnings", []):
        log.warning("data sampling: %s", warning)
    imputation = imputation_settings(cfg.imputation, dataset)
    summary = _run_summary(cfg, dataset, generator, solver, M_plus)
    loggers = make_loggers(cfg.get("logger"), f"{summary['generator']}-{summary['solver']}-"
                           + "-".join(f"{k}{summary[k]}" for k in ("n", "M", "M_plus", "seed")),
                           group=str(cfg.get("task_name", "isingaug")),
                           job_type=summary["generator"])

    metrics: dict[str, float] = {}
    diagnostics: dict[str, Any] = {"data": dataset.meta}
    arrays: dict[str, np.ndarray] = {}
    if imputation is not None:
        metrics.update(imputation_baselines(dataset, imputation))
    if dataset.truth is not None:
        arrays.update({f"{k}_true": v for k, v in dataset.truth.to_numpy().items()})

    solver, solver_l2, twinned = plan_solvers(str(cfg.tune_l2), solver, dataset)

    def solve(condition: str, spins: torch.Tensor, weights: torch.Tensor | None = None,
              with_solver: Solver | None = None):
        fitter = with_solver or solver
        params = fitter.fit(spins, weights)
        diagnostics[f"solver/{condition}"] = dict(fitter.diagnostics)
        warning = unconverged_warning(condition, fitter.name, fitter.diagnostics)
        if warning:
            log.warning("%s", warning)
        scores = evaluate(params, dataset, int(cfg.metrics.exact_loglik_max_n))
        scores[res.SOLVER_SECONDS] = float(fitter.diagnostics["seconds"])
        scores[res.SOLVER_CONVERGED] = float(fitter.diagnostics.get("converged") is not False)
        if imputation is not None:
            scores.update(imputation_metrics(params, dataset, imputation))
        metrics.update(res.with_condition(scores, condition))
        arrays.update({f"{k}_{condition}": v for k, v in params.to_numpy().items()})
        log.info("%s: %s", condition, _summary(metrics, condition))
        if condition in twinned:
            solve(res.TUNED_TWINS[condition], spins, weights, with_solver=solver_l2)
        return params

    params_obs = solve(res.OBS, dataset.train)
    step = 0
    try:
        if augmented:
            augmentation = run_generator(cfg, generator, dataset, params_obs, solver, M_plus,
                                         loggers)
            metrics.update(augmentation.metrics)
            summary["tractable"] = bool(generator.tractable)  # an RBM knows only once fitted
            diagnostics.update(augmentation.diagnostics)
            seconds.update(augmentation.seconds)
            step = int(augmentation.metrics.get(res.GEN_STEPS, 0))
            if cfg.save_samples:
                save_npz_atomic(output_dir / res.SAMPLES_FILE,
                                generated=augmentation.samples.to(torch.int8).numpy())
            for condition, data in augmented_conditions(dataset.train, augmentation.samples,
                                                        augmented,
                                                        float(cfg.augment.obs_weight)).items():
                solve(condition, data.spins, data.weights)
        seconds["total"] = time.perf_counter() - started
        log_run(loggers, cfg, metrics, step)
    finally:
        close_wandb()
    save_npz_atomic(output_dir / res.PARAMS_FILE, **arrays)
    results: res.Results = {"run": summary, "metrics": metrics, "diagnostics": diagnostics,
                            "seconds": seconds,
                            "config": OmegaConf.to_container(cfg, resolve=True)}
    write_json_atomic(output_dir / res.RESULTS_FILE, results)
    _print_summary(results, output_dir)
    return results


def _run_summary(cfg: DictConfig, dataset: Dataset, generator: Any, solver: Any,
                 M_plus: int) -> res.RunSummary:
    """The few facts that identify a run in tables (results.json's `run`), and what its
    generator is (the report reads these instead of knowing generator names)."""
    summary: res.RunSummary = {
        "dataset": dataset.meta.get("dataset", "file"),
        "generator": generator.name,
        "solver": solver.name,
        "study": cfg.get("study"),
        "n": dataset.n,
        "M": int(dataset.train.shape[0]),
        "M_test": int(dataset.test.shape[0]) if dataset.test is not None else 0,
        "M_plus": M_plus if generator.produces_samples else 0,
        "seed": int(cfg.seed),
        "trainable": bool(generator.trainable),
        "tractable": bool(generator.tractable),
        "produces_samples": bool(generator.produces_samples),
    }
    if generator.trainable:
        summary["max_steps"] = training_length(cfg.trainer.max_steps, generator.max_steps)
    for key in ("g", "g_h", "data_seed"):
        if key in dataset.meta:
            summary[key] = dataset.meta[key]
    return summary


def _print_summary(results: res.Results, output_dir: Path) -> None:
    """The end-of-run table: on the console for a single run, in the log for a sweep job."""
    run = results["run"]
    title = (f"{run['dataset']} n={run['n']} M={run['M']} · generator={run['generator']} "
             f"M_plus={run['M_plus']} · solver={run['solver']} · seed={run['seed']}")
    table = summary_table(results["metrics"], results["diagnostics"], results["seconds"], title)
    log.info("summary of %s\n%s", output_dir, render(table))


def _summary(metrics: dict[str, float], condition: str) -> str:
    stems = (res.MSE_J, res.MSE_ALL, res.REL_ERR_J, res.TEST_PSEUDO_LOGLIK, res.IMPUTE_ACC,
             res.SOLVER_SECONDS)
    return ", ".join(f"{stem}={metrics[res.key(stem, condition)]:.4g}" for stem in stems
                     if res.key(stem, condition) in metrics)
