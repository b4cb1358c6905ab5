"""What a run's parameters are: Hydra's own record of each job's overrides (`.hydra/overrides.yaml`)
names what a sweep set, and the run's summary (results.json `run`) says what the run used.

A parameter is a column that tells settings apart (seeds excluded: they are the replicates that
the summary averages over). An override of a config value that a `run.*` column reports (e.g.
`dataset.M` and `M`) is that column; a config-group choice (`generator=diffusion_ddim`) is a column
named after the group holding the choice; any other value is `config.<key>`. Only a folder without
overrides.yaml (written by hand, or by an older isingaug) falls back to the config values that
differ between runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

HYDRA_DIR = ".hydra"
OVERRIDES_FILE = "overrides.yaml"
CONFIG_FILE = "config.yaml"
SEED_COLUMNS = ("seed", "data_seed")
# What a run's generator is (results.json `run`): read, never parameters of their own.
TRAITS = ("trainable", "tractable", "produces_samples")
# run.* columns and the config values they report; a run.* value is what the run used (the data's
# real size, the training length its generator trained).
RUN_CONFIG: dict[str, tuple[str, ...]] = {
    "n": ("dataset.n",), "M": ("dataset.M",), "M_test": ("dataset.M_test",),
    "M_plus": ("M_plus",), "seed": ("seed",), "g": ("dataset.g",), "g_h": ("dataset.g_h",),
    "data_seed": ("dataset.data_seed",),
    "max_steps": ("trainer.max_steps", "generator.max_steps")}
CONFIG_RUN = {path: column for column, paths in RUN_CONFIG.items() for path in paths}
# Fallback only (folders without overrides.yaml): config keys that differ between runs without
# being settings.
GUESS_IGNORED_PREFIXES = ("paths.", "logger.", "hydra.")
GUESS_IGNORED_SUFFIXES = ("seed", "_dir", "device", "accelerator")


def read_overrides(folder: Path) -> list[str] | None:
    """The job's overrides as Hydra recorded them, or None without a readable overrides.yaml."""
    path = folder / HYDRA_DIR / OVERRIDES_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return [str(item) for item in data] if isinstance(data, list) else None


def parse_override(text: str) -> tuple[str, str]:
    """(key, value) of one override: `+key=v`, `++key=v` and `key=v` alike; `~key` deletes."""
    deleted = text.startswith("~")
    key, _, value = text.lstrip("+~").partition("=")
    return key.strip(), "(deleted)" if deleted else value.strip()


def is_seed_key(key: str) -> bool:
    """An override of a seed (`seed`, `dataset.data_seed`, `generator.seed`): a replicate."""
    return CONFIG_RUN.get(key) in SEED_COLUMNS or key.rsplit(".", 1)[-1] in SEED_COLUMNS


def config_node(config: Any, key: str) -> tuple[bool, Any]:
    """(found, value) of a dotted key in a nested config dict."""
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def override_columns(frame: pd.DataFrame, overrides: Sequence[list[str] | None],
                     configs: Sequence[Any]) -> tuple[pd.DataFrame, list[str]]:
    """The runs table with every overridden setting as a column, and those columns.

    A group choice replaces the run's own name where given (`generator=diffusion_ddim` is a
    setting of its own, though the run calls its model `diffusion`)."""
    values: dict[str, dict[int, Any]] = {}
    for index, (items, config) in enumerate(zip(overrides, configs, strict=True)):
        for text in items or ():
            key, raw = parse_override(text)
            if not key or is_seed_key(key):
                continue
            if key in CONFIG_RUN:
                values.setdefault(CONFIG_RUN[key], {})
                continue
            found, node = config_node(config, key)
            if not found or isinstance(node, dict):    # a config group: its choice
                values.setdefault(key, {})[index] = raw
            else:
                values.setdefault(f"config.{key}", {})[index] = _scalar(raw)
    frame = frame.copy()
    for column, given in values.items():
        if not given:
            continue
        series = pd.Series(given, dtype=object).reindex(range(len(frame)))
        series.index = frame.index
        if column in frame:
            frame[column] = series.where(series.notna(), frame[column].astype(object))
            frame[column] = frame[column].infer_objects()
        else:
            frame[column] = series.infer_objects()
    return frame, list(values)


def guessed_config_params(frame: pd.DataFrame, rows: pd.Series) -> list[str]:
    """Fallback for runs without overrides.yaml: the config keys whose values differ between
    those runs, leaving out paths, seeds, devices and the keys a run.* column reports."""
    part = frame[rows]
    if len(part) < 2:
        return []
    columns = []
    for column in (c for c in part.columns if c.startswith("config.")):
        key = column.removeprefix("config.")
        last = key.rsplit(".", 1)[-1]
        if (key in CONFIG_RUN or key.startswith(GUESS_IGNORED_PREFIXES)
                or last.endswith(GUESS_IGNORED_SUFFIXES) or key.endswith("._target_")):
            continue
        if part[column].nunique(dropna=False) > 1:
            columns.append(column)
    return columns


def determined_by(frame: pd.DataFrame, keys: Sequence[str], column: str) -> bool:
    """Whether `column` is a function of the `keys` columns (the sizes study's `design` names an
    (n, M, M_plus) point; `experiment` names a study): then it would only split lines that belong
    together."""
    keys = [k for k in keys if k != column]
    if not keys:
        return False
    distinct = frame[[*keys, column]].astype(str).drop_duplicates()
    return not distinct.duplicated(subset=keys).any()


def inside_run_dirs(frame: pd.DataFrame, column: str) -> bool:
    """A value naming a place inside each run's own folder differs without being a setting."""
    values = frame[column]
    if "run_dir" not in frame or not all(isinstance(v, str) for v in values):
        return False
    return all(str(value).startswith(str(run_dir))
               for value, run_dir in zip(values, frame["run_dir"], strict=True))


def varying_columns(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    return [c for c in columns if c in frame and frame[c].nunique(dropna=False) > 1]


def _scalar(raw: str) -> Any:
    """An override's value as YAML reads it (1000 -> int, 0.5 -> float, null -> None)."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, float) and math.isnan(value):
        return raw
    return value if value is None or isinstance(value, str | bool | int | float) else raw
