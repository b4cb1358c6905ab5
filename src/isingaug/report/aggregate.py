"""Mean, standard error and count of every metric over the seeds of each setting.

The summary is long (tidy): one row per (setting, metric key), so a metric that only some runs
have (real data, generators with no aug condition) costs no empty columns and filters simply.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from isingaug.report.collect import value_columns

CONDITIONS = ("obs", "aug", "aug_obs")
SUMMARY_STATS = ("mean", "sem", "count")


def split_keys(keys: pd.Series) -> pd.DataFrame:
    """`metric/condition` keys as two columns; `gen/...`, `seconds.*`, `ev.*` have no condition."""
    parts = keys.str.rpartition("/")
    plain = (parts[1] == "") | keys.str.startswith("gen/")
    metric = parts[0].where(~plain, keys)
    condition = parts[2].where(~plain, None)
    return pd.DataFrame({"metric": metric, "condition": condition}, index=keys.index)


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
