"""Mean, standard error and count of every metric over the seeds of each setting.

The summary is long (tidy): one row per (setting, metric key), so a metric that only some runs
have (real data, generators with no aug condition) costs no empty columns and filters simply.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from isingaug import results as res
from isingaug.report.collect import value_columns

SUMMARY_STATS = ("mean", "sem", "count")


def split_keys(keys: pd.Series) -> pd.DataFrame:
    """`metric/condition` keys as two columns (the vocabulary's split_key); `gen/...`,
    `seconds.*`, `ev.*` have no condition."""
    parts = [res.split_key(key) if not key.startswith(("seconds.", "ev.")) else (key, None)
             for key in keys]
    return pd.DataFrame({"metric": [p[0] for p in parts], "condition": [p[1] for p in parts]},
                        index=keys.index)


def relative_runs(runs: pd.DataFrame, params: Sequence[str], stems: Sequence[str],
                  to: str) -> pd.DataFrame:
    """Per-condition metrics divided by the same run's value under condition `to` (e.g. each
    condition's mse_J over obs), so that summarize() gives the mean ± sem of the ratio over
    seeds, not a ratio of means. Keys keep their names; the `to` condition itself is left out."""
    seeds = [c for c in ("seed", "data_seed") if c in runs]
    ratios: dict[str, pd.Series] = {}
    for stem in stems:
        metric = res.METRICS.get(stem)
        if metric is not None and metric.scope != "condition":
            continue
        base = res.key(stem, to)
        if base not in runs:
            continue
        for column in runs.columns:
            metric, condition = res.split_key(column)
            if metric == stem and condition not in (None, to):
                ratios[column] = runs[column] / runs[base]
    return pd.concat([runs[[*params, *seeds]], pd.DataFrame(ratios, index=runs.index)], axis=1)


def summarize(runs: pd.DataFrame, params: Sequence[str],
              values: Sequence[str] | None = None) -> pd.DataFrame:
    """Group runs by every parameter (seeds excluded) and reduce each value column.

    sem = std / sqrt(count) with ddof=1, so a setting with one seed has sem NaN (unknown), not 0.
    Missing values (null metrics, keys a run lacks) are left out of the count.
    """
    params = list(params)
    values = list(values) if values is not None else value_columns(runs)
    columns = [*params, "metric", "condition", "key", *SUMMARY_STATS]
    if not values:
        return pd.DataFrame(columns=columns)
    long = runs[[*params, *values]].melt(id_vars=params, value_vars=values, var_name="key",
                                         value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    long = long[long["value"].notna()]
    stats = (long.groupby([*params, "key"], dropna=False, sort=False)["value"]
             .agg(mean="mean", std="std", count="count").reset_index())
    stats["sem"] = stats["std"] / np.sqrt(stats["count"])
    stats = pd.concat([stats, split_keys(stats["key"])], axis=1)
    rank = {key: index for index, key in enumerate(values)}
    stats["_rank"] = stats["key"].map(rank)
    stats = stats.sort_values([*params, "_rank"], na_position="first", kind="stable",
                              ignore_index=True)
    return stats[columns]
