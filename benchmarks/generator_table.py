"""Tabulate a generator-comparison sweep (the generators' acceptance table) from its results.json.

Run: .venv/bin/python benchmarks/generator_table.py outputs/multirun/generators_n20 [MORE ...]
    [--name NAME]

One row per generator (diffusion split by its sampler). Each mse_J column is the per-seed ratio
to the same seed's obs (the run's solver as configured, l2 = 0 by default), then mean +- standard
error over seeds: aug, aug_obs, and, where the sweep ran with tune_l2=obs or both, obs_l2 and
aug_obs_l2 (the same data with the L2 chosen by cross-validation). Beside them the generated
patterns' quality against the exact truth (connected correlations with the noise floor of as
many exact samples, the exact KL for tractable generators) and the training seconds. Prints
markdown and writes benchmarks/results/<NAME>.json (NAME defaults to the first folder's name).
Folders after the first replace its runs of the same generator and seed (e.g. the runs of a
changed default, or seeds finished later in another folder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from isingaug import results as res
from isingaug.report.collect import collect

RATIOS = {res.AUG: "aug / obs", res.AUG_OBS: "aug_obs / obs", res.OBS_L2: "obs_l2 / obs",
          res.AUG_OBS_L2: "aug_obs_l2 / obs"}
VALUES = {res.GEN_KL_EXACT: "kl_exact (nats)", res.GEN_CONN_CORR_ERR_TRUE: "conn_corr_err_true",
          res.GEN_CONN_CORR_ERR_TRUE_FLOOR: "its floor", res.GEN_TRAIN_SECONDS: "train s"}


def mean_sem(values: pd.Series) -> str:
    """`mean ± sem` over seeds (sem blank for one seed), blank when nothing was measured."""
    values = values.dropna().astype(float)
    if values.empty:
        return ""
    if len(values) == 1:
        return f"{values.mean():.3g}"
    return f"{values.mean():.3g} ± {values.std(ddof=1) / np.sqrt(len(values)):.2g}"


def generator_name(runs: pd.DataFrame) -> pd.Series:
    """The generator, with diffusion's sampler when it is not the ancestral default."""
    sampler = runs.get("config.generator.sampler", pd.Series(index=runs.index, dtype=object))
    plain = sampler.isna() | (sampler == "ancestral")
    return runs["generator"].where(plain, runs["generator"] + " (" + sampler.astype(str) + ")")


def table(runs: pd.DataFrame) -> list[dict[str, str]]:
    obs = runs[res.key(res.MSE_J, res.OBS)]
    rows = []
    for name, group in runs.groupby(generator_name(runs), sort=True):
        row = {"generator": str(name), "seeds": str(group["seed"].nunique())}
        for condition, label in RATIOS.items():
            column = res.key(res.MSE_J, condition)
            if column in group:
                row[label] = mean_sem(group[column] / obs[group.index])
        row.update({label: mean_sem(group[key]) for key, label in VALUES.items() if key in group})
        rows.append(row)
    first = runs.drop_duplicates("seed")
    rows.append({"generator": "obs mse_J (l2 = 0)", "seeds": str(len(first)),
                 "aug / obs": mean_sem(first[res.key(res.MSE_J, res.OBS)])})
    return rows


def latest_runs(folders: list[Path]) -> pd.DataFrame:
    """Every folder's runs; a later folder's run replaces an earlier one of the same generator
    (with its sampler) and seed."""
    runs = pd.concat([collect([folder]).runs for folder in folders], ignore_index=True)
    runs = runs.assign(_name=generator_name(runs))
    return runs.drop_duplicates(["_name", "seed"], keep="last").drop(columns="_name")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="sweep or run folders")
    parser.add_argument("--name", default=None, help="results/<NAME>.json")
    args = parser.parse_args()
    name = args.name or args.folders[0].name
    rows = table(latest_runs(args.folders))
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row.get(c, "") for c in columns) + " |")
    out = Path(__file__).parent / "results" / f"{name}.json"
    out.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
