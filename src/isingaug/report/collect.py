"""Find run folders under sweep folders and flatten them into tables: one row per run.

A run folder is any folder holding `results.json` (success), `error.json` (a failure the pipeline
caught) or only `.hydra/` (a job that never finished: still running, or killed). Runs of several
sweeps pool into one table, so a study split over sweeps reports as one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isingaug.errors import DataError
from isingaug.results import ERROR_FILE, PARAMS_FILE, RESULTS_FILE

Progress = Callable[[str], None]

# Folders inside a run that never hold runs of their own; skipping them keeps the walk fast.
SKIP_DIRS = frozenset({".hydra", "wandb", "checkpoints", "samples", "csv", "__pycache__"})
# Generators with nothing to train: trainer.max_steps means nothing for them.
UNTRAINED_GENERATORS = frozenset({"none", "bootstrap", "oracle"})
SEED_COLUMNS = ("seed", "data_seed")
# Counts that become 4000.0 once a missing value sits in their column; written back as integers.
INTEGER_COLUMNS = ("n", "M", "M_test", "M_plus", "max_steps", "seed", "data_seed", "count",
                   "ev.selected_step", "config.trainer.max_steps")
# Known run.* keys, in the order the tables show them.
RUN_ORDER = ("dataset", "generator", "solver", "study", "n", "g", "g_h", "M", "M_test", "M_plus",
             "max_steps")
# Where older results without a run.* key find it in the resolved config.
CONFIG_FALLBACK = {"n": "dataset.n", "M": "dataset.M", "M_test": "dataset.M_test",
                   "M_plus": "M_plus", "seed": "seed", "g": "dataset.g", "g_h": "dataset.g_h",
                   "data_seed": "dataset.data_seed"}
# Config scalars always kept in runs.csv (as config.<key>) when present.
SELECTED_CONFIG = ("trainer.max_steps", "dataset.g", "dataset.g_h", "dataset._target_",
                   "generator._target_", "solver._target_")
# Config keys a run.* column already stands for: never a parameter of their own.
MIRRORED_CONFIG = frozenset({*CONFIG_FALLBACK.values(), "trainer.max_steps", "dataset._target_",
                             "generator._target_", "solver._target_"})
# Config keys that differ between runs without changing what was computed.
IGNORED_CONFIG_PREFIXES = ("paths.", "logger.", "hydra.")
IGNORED_CONFIG_SUFFIXES = ("seed", "_dir", "device", "accelerator")


@dataclass
class Collection:
    """Everything read from the sweep folders."""

    runs: pd.DataFrame                  # one row per successful run
    failures: pd.DataFrame              # one row per failed or unfinished job
    curves: pd.DataFrame                # energy-variance curves, one row per (run, step)
    params: list[str]                   # columns that identify a setting (seeds excluded)
    sources: list[Path] = field(default_factory=list)


def find_jobs(roots: Sequence[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """results.json files, error.json files and unfinished run folders under the roots."""
    results: dict[Path, None] = {}
    errors: dict[Path, None] = {}
    unfinished: dict[Path, None] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            folder = Path(dirpath)
            if RESULTS_FILE in filenames:
                results[(folder / RESULTS_FILE).resolve()] = None
            elif ERROR_FILE in filenames:
                errors[(folder / ERROR_FILE).resolve()] = None
            elif ".hydra" in dirnames:
                unfinished[folder.resolve()] = None
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
    return list(results), list(errors), list(unfinished)


def collect(roots: Sequence[Path], progress: Progress | None = None) -> Collection:
    """Read every run under the roots; raise DataError when a root is missing or holds no run."""
    roots = [Path(root) for root in roots]
    for root in roots:
        if not root.exists():
            raise DataError(f"{root}: no such directory")
        if not root.is_dir():
            raise DataError(f"{root}: not a directory (give the sweep folder)")
    say = progress or (lambda _message: None)
    result_files, error_files, unfinished = find_jobs(roots)
    total = len(result_files)
    say(f"found {total} results, {len(error_files)} errors, {len(unfinished)} unfinished jobs")

    rows: list[dict[str, Any]] = []
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
        raise DataError(f"no {RESULTS_FILE} found under {where}{detail}")

    runs, params = _runs_table(rows)
    curves = _curves_table(curve_rows, runs, params)
    failures = _failures_table(failure_rows)
    return Collection(runs=runs, failures=failures, curves=curves, params=params,
                      sources=roots)


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
    row.update({f"config.{key}": value for key, value in flatten(data.get("config")).items()})
    row["params_file"] = str(folder / PARAMS_FILE) if (folder / PARAMS_FILE).is_file() else None

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


def _runs_table(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[str]]:
    """The runs table (run.* columns named plainly) and its parameter columns."""
    raw = pd.DataFrame(rows)
    run_keys = [c.removeprefix("run.") for c in raw.columns if c.startswith("run.")]
    frame = raw.rename(columns={f"run.{key}": key for key in run_keys})
    for key, config_key in CONFIG_FALLBACK.items():
        source = f"config.{config_key}"
        if source in frame:
            fallback = frame[source]
            if key == "g_h" and "config.dataset.g" in frame:
                fallback = fallback.where(fallback.notna(), frame["config.dataset.g"])
            frame[key] = fallback if key not in frame else frame[key].where(frame[key].notna(),
                                                                            fallback)
    if "generator" not in frame and "config.generator._target_" in frame:
        names = frame["config.generator._target_"].str.rsplit(".", n=1).str[-1]
        frame["generator"] = names.replace({"NoGenerator": "none"}).str.lower()
    # trainer.max_steps counts only where there is something to train
    if "config.trainer.max_steps" in frame and "generator" in frame:
        trained = ~frame["generator"].isin(UNTRAINED_GENERATORS)
        fallback = pd.to_numeric(frame["config.trainer.max_steps"], errors="coerce").where(trained)
        current = frame.get("max_steps", pd.Series(np.nan, index=frame.index))
        frame["max_steps"] = current.where(current.notna(), fallback)
    if "max_steps" in frame and frame["max_steps"].isna().all():
        frame = frame.drop(columns="max_steps")
    frame = _uniform_types(frame)

    config_columns = [c for c in frame.columns if c.startswith("config.")]
    varying_config = [c for c in config_columns if is_varying(frame[c])]
    keep_config = [c for c in config_columns
                   if c.removeprefix("config.") in SELECTED_CONFIG or c in varying_config]
    config_params = [c for c in varying_config if _is_config_param(c.removeprefix("config."))
                     and not _inside_run_dirs(frame, c)]

    present_run = [k for k in dict.fromkeys([*run_keys, *CONFIG_FALLBACK, "generator",
                                             "max_steps"]) if k in frame]
    ordered_run = ([k for k in RUN_ORDER if k in present_run]
                   + sorted(k for k in present_run if k not in RUN_ORDER and k not in SEED_COLUMNS)
                   + [k for k in SEED_COLUMNS if k in present_run])
    run_params = [k for k in ordered_run if k not in SEED_COLUMNS]
    config_params = [c for c in config_params if not _determined_by(frame, run_params, c)]
    params = run_params + config_params
    metrics = sorted(metric_columns(frame), key=_metric_sort_key)
    other = sorted(c for c in frame.columns if c.startswith(("seconds.", "ev.")))
    columns = ["run_dir", *ordered_run, *metrics, *other, "params_file",
               *[c for c in keep_config if c not in params], *config_params]
    table = frame[list(dict.fromkeys(columns))]
    table = table.sort_values([*params, *[k for k in SEED_COLUMNS if k in table], "run_dir"],
                              na_position="first", kind="stable", ignore_index=True)
    return table, params


def _is_config_param(key: str) -> bool:
    """A varying config key that is a setting of its own (not a path, seed or mirrored key)."""
    last = key.rsplit(".", 1)[-1]
    return (key not in MIRRORED_CONFIG and not key.startswith(IGNORED_CONFIG_PREFIXES)
            and not last.endswith(IGNORED_CONFIG_SUFFIXES))


def _determined_by(frame: pd.DataFrame, keys: list[str], column: str) -> bool:
    """Whether `column` is a function of the `keys` columns (e.g. the sizes study's `design`,
    which names an (n, M, M_plus) point): then it would only split lines that belong together."""
    if not keys:
        return False
    distinct = frame[[*keys, column]].astype(str).drop_duplicates()
    return not distinct.duplicated(subset=keys).any()


def _inside_run_dirs(frame: pd.DataFrame, column: str) -> bool:
    """A config value that names a place inside each run's own folder (a checkpoint folder, a
    log file) differs between runs without being a setting."""
    values = frame[column]
    if "run_dir" not in frame or not all(isinstance(v, str) for v in values):
        return False
    return all(str(value).startswith(str(run_dir))
               for value, run_dir in zip(values, frame["run_dir"], strict=True))


def _metric_sort_key(key: str) -> tuple[int, str, int]:
    """Parameter errors first, then the rest by name; conditions in obs, aug, aug_obs order."""
    metric, _, condition = key.rpartition("/")
    first = ("mse_J", "mse_h", "mse_all", "rel_err_J", "impute_acc")
    rank = first.index(metric) if metric in first else len(first) + (metric.startswith("gen"))
    order = ("obs", "aug", "aug_obs")
    return rank, metric, order.index(condition) if condition in order else len(order)


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
