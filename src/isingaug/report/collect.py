"""Find run folders under sweep folders and flatten them into tables: one row per run.

A run folder is any folder holding `results.json` (success), `error.json` (a failure the pipeline
caught) or only `.hydra/` (a job that never finished: still running, or killed). Runs of several
sweeps pool into one table, so a study split over sweeps reports as one. Beside the runs, the
collection holds what the studies ask the report to draw (the `report:` block of each study's
saved config) and the best trial of any Optuna sweep (`optimization_results.yaml`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from isingaug import results as res
from isingaug.errors import DataError
from isingaug.report.params import (
    CONFIG_FILE,
    HYDRA_DIR,
    RUN_CONFIG,
    SEED_COLUMNS,
    TRAITS,
    determined_by,
    guessed_config_params,
    inside_run_dirs,
    override_columns,
    read_overrides,
    varying_columns,
)

Progress = Callable[[str], None]

# Folders inside a run that never hold runs of their own; skipping them keeps the walk fast.
SKIP_DIRS = frozenset({HYDRA_DIR, "wandb", "checkpoints", "samples", "csv", "__pycache__"})
# Written by Hydra's Optuna sweeper in its sweep folder: name, best_params, best_value.
OPTUNA_FILE = "optimization_results.yaml"
# The config key of a study's figure declarations (conf/experiment/*.yaml `report:`).
REPORT_KEY = "report"
# Config keys that describe the study, not the run (its figures, its sweep at scale=smoke): kept
# out of the runs table, so they are never taken for settings.
STUDY_KEYS = (REPORT_KEY, "smoke_sweep")
# Counts that become 4000.0 once a missing value sits in their column; written back as integers.
INTEGER_COLUMNS = ("n", "M", "M_test", "M_plus", "max_steps", "seed", "data_seed", "count",
                   "ev.selected_step", "config.trainer.max_steps", res.GEN_STEPS)
# Known run.* keys, in the order the tables show them.
RUN_ORDER = ("dataset", "generator", "solver", "study", "n", "g", "g_h", "M", "M_test", "M_plus",
             "max_steps")
# Config scalars always kept in runs.csv (as config.<key>) when present.
SELECTED_CONFIG = ("trainer.max_steps", "dataset.g", "dataset.g_h", "dataset._target_",
                   "generator._target_", "solver._target_")


@dataclass
class Collection:
    """Everything read from the sweep folders."""

    runs: pd.DataFrame                  # one row per successful run
    failures: pd.DataFrame              # one row per failed or unfinished job
    curves: pd.DataFrame                # energy-variance curves, one row per (run, step)
    params: list[str]                   # columns that identify a setting (seeds excluded)
    sources: list[Path] = field(default_factory=list)
    blocks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (study, report:)
    trials: list[dict[str, Any]] = field(default_factory=list)  # Optuna best trials
    notes: list[str] = field(default_factory=list)              # what the page should say


def find_jobs(roots: Sequence[Path]) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    """results.json files, error.json files, unfinished run folders and Optuna result files
    under the roots."""
    results: dict[Path, None] = {}
    errors: dict[Path, None] = {}
    unfinished: dict[Path, None] = {}
    optuna: dict[Path, None] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            folder = Path(dirpath)
            if OPTUNA_FILE in filenames:
                optuna[(folder / OPTUNA_FILE).resolve()] = None
            if res.RESULTS_FILE in filenames:
                results[(folder / res.RESULTS_FILE).resolve()] = None
            elif res.ERROR_FILE in filenames:
                errors[(folder / res.ERROR_FILE).resolve()] = None
            elif HYDRA_DIR in dirnames:
                unfinished[folder.resolve()] = None
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
    return list(results), list(errors), list(unfinished), list(optuna)


def collect(roots: Sequence[Path], progress: Progress | None = None) -> Collection:
    """Read every run under the roots; raise DataError when a root is missing or holds no run."""
    roots = [Path(root) for root in roots]
    for root in roots:
        if not root.exists():
            raise DataError(f"{root}: no such directory")
        if not root.is_dir():
            raise DataError(f"{root}: not a directory (give the sweep folder)")
    say = progress or (lambda _message: None)
    result_files, error_files, unfinished, optuna_files = find_jobs(roots)
    total = len(result_files)
    say(f"found {total} results, {len(error_files)} errors, {len(unfinished)} unfinished jobs")

    rows: list[dict[str, Any]] = []
    overrides: list[list[str] | None] = []
    configs: list[Any] = []
    curve_rows: list[dict[str, Any]] = []
    failure_rows: list[dict[str, Any]] = []
    step = max(1, total // 10)
    for index, path in enumerate(result_files, 1):
        try:
            data = _read_json(path)
        except DataError as err:
            failure_rows.append({"run_dir": str(path.parent), "type": "UnreadableResults",
                                 "error": str(err)})
        else:
            row, curve = _results_row(path.parent, data)
            rows.append(row)
            overrides.append(read_overrides(path.parent))
            configs.append(data.get("config") if isinstance(data.get("config"), dict) else {})
            curve_rows.extend(curve)
        if index % step == 0 or index == total:
            say(f"collecting {index}/{total} runs")
    failure_rows.extend(_error_row(path) for path in error_files)
    failure_rows.extend({"run_dir": str(folder), "type": "Unfinished",
                         "error": "no results.json or error.json: still running, or killed"}
                        for folder in unfinished)

    if not rows:
        where = ", ".join(str(root) for root in roots)
        detail = ""
        if failure_rows:
            first = failure_rows[0]
            detail = (f" ({len(failure_rows)} failed or unfinished jobs, e.g. {first['run_dir']}: "
                      f"{first.get('type')}: {first.get('error')})")
        raise DataError(f"no {res.RESULTS_FILE} found under {where}{detail}")

    notes: list[str] = []
    runs, params = _runs_table(rows, overrides, configs, notes)
    curves = _curves_table(curve_rows, runs, params)
    failures = _failures_table(failure_rows)
    return Collection(runs=runs, failures=failures, curves=curves, params=params,
                      sources=roots, blocks=report_blocks(runs), notes=notes,
                      trials=[trial for trial in map(read_trial, optuna_files) if trial])


def report_blocks(runs: pd.DataFrame) -> list[tuple[str, dict[str, Any]]]:
    """The `report:` block of each study, from the saved config of its first run (Hydra's
    .hydra/config.yaml; nothing in a run reads the block, so results.json need not keep it)."""
    blocks: list[tuple[str, dict[str, Any]]] = []
    study = runs["study"] if "study" in runs else pd.Series(None, index=runs.index)
    firsts = runs.assign(_study=study.fillna("").astype(str)).drop_duplicates("_study")
    for name, run_dir in zip(firsts["_study"], firsts["run_dir"], strict=True):
        try:
            config = yaml.safe_load((Path(run_dir) / HYDRA_DIR / CONFIG_FILE).read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        block = config.get(REPORT_KEY) if isinstance(config, dict) else None
        if isinstance(block, dict):
            blocks.append((name, block))
    return blocks


def read_trial(path: Path) -> dict[str, Any] | None:
    """An Optuna sweep's outcome: {sweep, name, best_params, best_value} (or `solutions`, the
    Pareto front of a multi-objective study); None when unreadable."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, dict) or not ({"best_params", "solutions"} & set(data)):
        return None
    return {"sweep": str(path.parent), **data}


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as {'a.b.c': scalar}; lists and other containers are left out."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if _is_scalar(node):
        return {prefix[:-1]: node}
    return {}


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The columns holding metrics: every `metric/condition` and `gen/<key>` column."""
    return [column for column in frame.columns if "/" in column and "." not in column]


def value_columns(frame: pd.DataFrame) -> list[str]:
    """Columns worth a mean over seeds: metrics, timings and energy-variance references."""
    extra = [c for c in frame.columns if c.startswith(("seconds.", "ev."))
             and pd.api.types.is_numeric_dtype(frame[c])]
    return metric_columns(frame) + extra


def is_varying(series: pd.Series) -> bool:
    """More than one distinct value, a missing value counting as one."""
    return series.nunique(dropna=False) > 1


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: unreadable ({err})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int | float)


def _results_row(folder: Path, data: dict[str, Any]) -> tuple[dict[str, Any],
                                                               list[dict[str, Any]]]:
    """One results.json as a flat row, and its energy-variance curve as rows."""
    row: dict[str, Any] = {"run_dir": str(folder)}
    run = data.get("run") if isinstance(data.get("run"), dict) else {}
    row.update({f"run.{key}": value for key, value in run.items() if _is_scalar(value)})
    metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
    row.update({key: _number(value) for key, value in metrics.items() if "/" in key})
    seconds = data.get("seconds") if isinstance(data.get("seconds"), dict) else {}
    row.update({f"seconds.{key}": _number(value) for key, value in seconds.items()})
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    row.update({f"config.{key}": value for key, value in flatten(config).items()
                if key.split(".", 1)[0] not in STUDY_KEYS})
    row["params_file"] = (str(folder / res.PARAMS_FILE) if (folder / res.PARAMS_FILE).is_file()
                          else None)

    diagnostics = data.get("diagnostics") if isinstance(data.get("diagnostics"), dict) else {}
    energy = diagnostics.get("energy_variance")
    curve: list[dict[str, Any]] = []
    if isinstance(energy, dict):
        row["ev.select"] = energy.get("select")
        row["ev.selected_step"] = _number(energy.get("selected_step"))
        reference = energy.get("reference") if isinstance(energy.get("reference"), dict) else {}
        row.update({f"ev.{key}": _number(value) for key, value in reference.items()})
        points = energy.get("curve") if isinstance(energy.get("curve"), list) else []
        curve = [{"run_dir": str(folder), **{k: _number(v) for k, v in point.items()}}
                 for point in points if isinstance(point, dict) and "step" in point]
    return row, curve


def _error_row(path: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"run_dir": str(path.parent)}
    try:
        data = _read_json(path)
    except DataError as err:
        return {**row, "type": "UnreadableError", "error": str(err)}
    row["type"] = str(data.get("type") or "")
    row["error"] = str(data.get("error") or "")
    overrides = data.get("overrides")
    row["overrides"] = " ".join(map(str, overrides)) if isinstance(overrides, list) else None
    run = data.get("run") if isinstance(data.get("run"), dict) else {}
    row.update({key: value for key, value in run.items()
                if _is_scalar(value) and key not in row})
    return row


def _number(value: Any) -> float:
    """A metric value as a float; null, strings and other junk as NaN."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return math.nan


def _runs_table(rows: list[dict[str, Any]], overrides: Sequence[list[str] | None],
                configs: Sequence[Any], notes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The runs table (run.* columns named plainly) and its parameter columns."""
    raw = pd.DataFrame(rows)
    run_keys = [c.removeprefix("run.") for c in raw.columns if c.startswith("run.")]
    frame = raw.rename(columns={f"run.{key}": key for key in run_keys})
    for key, (config_key, *_) in RUN_CONFIG.items():   # older results without a run.* key
        source = f"config.{config_key}"
        if source in frame and key != "max_steps":
            fallback = frame[source]
            if key == "g_h" and "config.dataset.g" in frame:
                fallback = fallback.where(fallback.notna(), frame["config.dataset.g"])
            frame[key] = fallback if key not in frame else frame[key].where(frame[key].notna(),
                                                                            fallback)
    if "generator" not in frame and "config.generator._target_" in frame:
        target = frame["config.generator._target_"]
        frame["generator"] = target.str.rsplit(".", n=1).str[-1].str.lower()
    unknown = int(frame["trainable"].isna().sum()) if "trainable" in frame else len(frame)
    if unknown:
        notes.append(f"{unknown} runs predate run.trainable in results.json: whether their "
                     "generator trains is unknown, so their training length is shown only where "
                     "the run recorded max_steps, and they are ordered with the learned "
                     "generators.")
    if "max_steps" in frame and frame["max_steps"].isna().all():
        frame = frame.drop(columns="max_steps")

    frame, overridden = override_columns(frame, overrides, configs)
    without = pd.Series([items is None for items in overrides], index=frame.index)
    guessed = guessed_config_params(frame, without) if without.any() else []
    if without.any():
        notes.append(f"{int(without.sum())} runs have no .hydra/overrides.yaml: their parameters "
                     "are the config values that differ between them.")
    frame = _uniform_types(frame)

    present_run = [k for k in dict.fromkeys([*run_keys, *RUN_CONFIG, "generator"])
                   if k in frame and k not in TRAITS]
    ordered_run = ([k for k in RUN_ORDER if k in present_run]
                   + sorted(k for k in present_run if k not in RUN_ORDER and k not in SEED_COLUMNS)
                   + [k for k in SEED_COLUMNS if k in present_run])
    run_params = varying_columns(frame, [k for k in ordered_run if k not in SEED_COLUMNS])
    chosen = [c for c in overridden if c not in ordered_run]
    extra = varying_columns(frame, dict.fromkeys([*chosen, *guessed]))
    extra = [c for c in extra if not inside_run_dirs(frame, c)
             and not determined_by(frame, run_params, c)]
    # parameters that vary nowhere still name the setting in tables (dataset, n, generator...)
    params = [k for k in ordered_run if k not in SEED_COLUMNS] + extra
    config_columns = [c for c in frame.columns if c.startswith("config.")]
    keep_config = [c for c in config_columns if c.removeprefix("config.") in SELECTED_CONFIG
                   or is_varying(frame[c])]
    groups = [c for c in chosen if not c.startswith("config.") and c not in params]
    metrics = sorted(metric_columns(frame), key=_metric_sort_key)
    other = sorted(c for c in frame.columns if c.startswith(("seconds.", "ev.")))
    traits = [k for k in TRAITS if k in frame]
    columns = ["run_dir", *ordered_run, *extra, *groups, *traits, *metrics, *other,
               "params_file", *[c for c in keep_config if c not in extra]]
    table = frame[list(dict.fromkeys(columns))]
    table = table.sort_values([*params, *[k for k in SEED_COLUMNS if k in table], "run_dir"],
                              na_position="first", kind="stable", ignore_index=True)
    return table, params


def _metric_sort_key(key: str) -> tuple[int, int, int]:
    """Metrics in the vocabulary's declaration order, conditions in its order; others last."""
    stem, condition = res.split_key(key)
    stems = list(res.METRICS)
    rank = stems.index(stem) if stem in stems else len(stems)
    order = list(res.CONDITIONS)
    return rank, order.index(condition) if condition in order else len(order), 0


def _uniform_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns holding values of mixed types (e.g. 'auto' and true) as strings, for parquet."""
    frame = frame.copy()
    for column in [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c])]:
        values = frame[column].dropna()
        if values.map(type).nunique() > 1:
            frame[column] = frame[column].map(lambda v: None if _missing(v) else str(v))
    return frame


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _curves_table(rows: list[dict[str, Any]], runs: pd.DataFrame,
                  params: Iterable[str]) -> pd.DataFrame:
    """Energy-variance curve points with the run's parameters and seed beside them."""
    if not rows:
        return pd.DataFrame(columns=["run_dir", "step"])
    keys = ["run_dir", *params, *[k for k in SEED_COLUMNS if k in runs]]
    reference = [c for c in runs.columns if c.startswith("ev.")]
    curves = pd.DataFrame(rows)
    return curves.merge(runs[list(dict.fromkeys(keys + reference))], on="run_dir", how="inner")


def _failures_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = ["run_dir", "type", "error", "overrides"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = _uniform_types(pd.DataFrame(rows))
    ordered = [c for c in columns if c in table] + [c for c in table if c not in columns]
    return table[ordered].sort_values("run_dir", ignore_index=True)

