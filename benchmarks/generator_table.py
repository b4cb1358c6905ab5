"""Tabulate a generator-comparison sweep (issue 3's acceptance table) from its results.json files.

Run: .venv/bin/python benchmarks/generator_table.py outputs/multirun/generators_n20 [NAME]
Rows: obs (from every run) and each generator's aug and aug_obs; columns mean +- standard error
over seeds. Var[E] is taken under theta_obs (the solver on the observed data alone): generated
patterns against the training and test patterns. Prints markdown and writes
benchmarks/results/<NAME>.json (NAME defaults to the sweep folder's name).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from isingaug.report.collect import collect

GENERATOR_COLUMNS = {"gen/var_E_obs": "Var[E] gen", "gen/aai": "AAI",
                     "gen/copy_fraction": "copy fraction", "gen/train_seconds": "train s"}


def mean_sem(values: pd.Series) -> str:
    values = values.dropna().astype(float)
    if values.empty:
        return ""
    sem = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{values.mean():.3g} ± {sem:.2g}"


def table(runs: pd.DataFrame) -> list[dict[str, str]]:
    rows = [{"generator": "(none)", "condition": "obs", "seeds": str(runs["seed"].nunique()),
             "mse_J": mean_sem(runs.drop_duplicates("seed")["mse_J/obs"]),
             "mse_all": mean_sem(runs.drop_duplicates("seed")["mse_all/obs"]),
             "Var[E] train": mean_sem(runs.drop_duplicates("seed")["var_E_train/obs"]),
             "Var[E] test": mean_sem(runs.drop_duplicates("seed")["var_E_test/obs"])}]
    for (generator, sampler), group in runs.groupby(["generator", "sampler"], dropna=False,
                                                    sort=False):
        plain = pd.isna(sampler) or sampler == "ancestral"
        name = generator if plain else f"{generator} ({sampler})"
        for condition in ("aug", "aug_obs"):
            row = {"generator": name, "condition": condition, "seeds": str(len(group)),
                   "mse_J": mean_sem(group[f"mse_J/{condition}"]),
                   "mse_all": mean_sem(group[f"mse_all/{condition}"])}
            row.update({label: mean_sem(group[key]) for key, label in GENERATOR_COLUMNS.items()
                        if key in group})
            rows.append(row)
    return rows


def main() -> None:
    sweep = Path(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else sweep.name
    runs = collect([sweep]).runs
    runs["sampler"] = runs.get("config.generator.sampler", pd.Series(index=runs.index))
    rows = table(runs)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row.get(c, "") for c in columns) + " |")
    out = Path(__file__).parent / "results" / f"{name}.json"
    out.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
