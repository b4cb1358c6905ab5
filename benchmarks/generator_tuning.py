"""Collect a generator-tuning sweep's run folders into one JSON table of mse_J ratios to obs.

Run: .venv/bin/python benchmarks/generator_tuning.py OUT.json SWEEP_DIR [SWEEP_DIR ...] [--add]
(e.g. benchmarks/results/generator_tuning.json outputs/multirun/tune_*). With `--add` the rows
already in OUT.json are kept (a run folder given again, the same sweep/run names, replaces its
row), so a later batch of runs joins the table without the earlier batches' folders.

Every finished run folder (one with results.json) under the sweep folders becomes a row: its
sweep (task) and run folder names, the setting (the command-line overrides other than seed, task
name, threads and the data set), the seed, the resolved generator options and training length,
mse_J of obs, aug and aug_obs (and obs_l2, aug_obs_l2 with tune_l2=both), the generator's train
seconds, its connected-correlation error against the training data and against the truth, and
its exact KL.
The ratios divide by the unregularised obs mse_J (solver.l2=0) of the same data set and seed,
taken from any run of them with l2 = 0, so runs with solver.l2=auto are compared with the same
reference and folders of several data sets (n, M, ...) can be passed together. A summary per data
set and resolved setting (the generator, its resolved options, training length and l2, so runs of
one setting from several sweeps pool their seeds) with the mean and standard error over seeds is
printed and stored as well.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import yaml

#: Overrides that do not describe a generator setting (the data set is a row's `data`).
IGNORED = ("seed", "task_name", "threads", "dataset", "M_plus", "hydra", "tune_l2")
#: The run fields that name the data set a ratio's reference comes from (with the seed); a
#: summary pools the seeds, so it leaves out the data seed (which follows the seed by default).
DATA_FIELDS = ("dataset", "n", "M", "g", "data_seed")
POOLED_FIELDS = ("data_seed",)
RATIOS = ("aug", "aug_obs", "obs", "obs_l2", "aug_obs_l2")
#: Generator scores kept per run and summarised beside the ratios.
SCORES = ("train_seconds", "conn_corr_err", "conn_corr_err_true", "kl_exact")


def overrides(run: Path) -> list[str]:
    """The command-line overrides of one run (from .hydra/overrides.yaml)."""
    path = run / ".hydra" / "overrides.yaml"
    return [str(item) for item in yaml.safe_load(path.read_text())] if path.exists() else []


def setting(items: list[str]) -> str:
    """The overrides that define a setting, sorted, comma-joined."""
    kept = [item for item in items if not item.split("=", 1)[0].lstrip("+~").startswith(IGNORED)]
    return ",".join(sorted(kept))


def row(run: Path) -> dict[str, Any]:
    """One run's row of the table (ratios filled in later)."""
    result = json.loads((run / "results.json").read_text())
    metrics, config = result["metrics"], result["config"]
    generator = {key: value for key, value in config.get("generator", {}).items()
                 if key not in ("_target_", "seed", "device", "sample_batch_size")}
    return {
        "sweep": run.parent.name,
        "run": run.name,
        "data": {key: result["run"].get(key) for key in DATA_FIELDS},
        "setting": setting(overrides(run)),
        "generator": result["run"]["generator"],
        "seed": result["run"]["seed"],
        "l2": config["solver"].get("l2"),
        "max_steps": config["trainer"]["max_steps"],
        "generator_config": generator,
        **{f"mse_J_{condition}": metrics.get(f"mse_J/{condition}") for condition in RATIOS},
        **{score: metrics.get(f"gen/{score}") for score in SCORES},
        "threads": config.get("threads"),
    }


def pooled_data(item: dict[str, Any]) -> dict[str, Any]:
    """A row's data set without the fields a summary pools over."""
    return {key: value for key, value in item["data"].items() if key not in POOLED_FIELDS}


def data_key(data: dict[str, Any]) -> str:
    """A data set as one string (rows of one data set share their reference)."""
    return json.dumps(data, sort_keys=True)


def mean_sem(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (nan for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var / len(values))


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean +- sem over seeds of every ratio and score, per resolved setting."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for item in rows:
        resolved = json.dumps([item["generator_config"], item["max_steps"]], sort_keys=True)
        key = (data_key(pooled_data(item)), item["generator"], resolved, str(item["l2"]))
        groups.setdefault(key, []).append(item)
    summary = []
    for _, items in sorted(groups.items(),
                           key=lambda g: (g[0][0], g[1][0]["sweep"], g[0][3])):
        first = items[0]
        entry: dict[str, Any] = {"data": pooled_data(first), "sweep": first["sweep"],
                                 "setting": first["setting"],
                                 "sweeps": sorted({item["sweep"] for item in items}),
                                 "l2": first["l2"],
                                 "seeds": sorted(item["seed"] for item in items)}
        for key in [f"ratio_{c}" for c in RATIOS] + list(SCORES):
            values = [item[key] for item in items if item.get(key) is not None]
            if values:
                entry[key] = dict(zip(("mean", "sem"), mean_sem(values), strict=True))
        summary.append(entry)
    return summary


def run_id(item: dict[str, Any]) -> str:
    """The run folder a row came from, as sweep/run (rows written before `run` was kept have
    none, so no new row replaces them)."""
    return f"{item['sweep']}/{item.get('run')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path, help="the JSON table to write")
    parser.add_argument("sweeps", type=Path, nargs="+", help="folders of run folders")
    parser.add_argument("--add", action="store_true",
                        help="keep the rows already in OUT (a run given again replaces its row)")
    args = parser.parse_args()
    out = args.out
    runs = sorted(path.parent for sweep in args.sweeps for path in sweep.glob("*/results.json"))
    rows = [row(run) for run in runs]
    if args.add and out.exists():
        new = {run_id(item) for item in rows}
        rows = [item for item in json.loads(out.read_text())["runs"]
                if run_id(item) not in new] + rows
    reference = {(data_key(item["data"]), item["seed"]): item["mse_J_obs"] for item in rows
                 if item["l2"] in (0, 0.0)}
    for item in rows:
        ref = reference.get((data_key(item["data"]), item["seed"]))
        for condition in RATIOS:
            value = item[f"mse_J_{condition}"]
            item[f"ratio_{condition}"] = value / ref if value is not None and ref else None
    summary = summarise(rows)
    for entry in summary:
        cells = [f"{key[6:]}={entry[key]['mean']:.3f}±{entry[key]['sem']:.3f}"
                 for key in entry if key.startswith("ratio_")]
        seconds = entry.get("train_seconds", {}).get("mean")
        data = entry["data"]
        print(f"n={data['n']} M={data['M']} | {entry['sweep']} | {entry['setting']}"
              f" | l2={entry['l2']} | seeds={entry['seeds']}"
              f" | {' '.join(cells)} | train_s={seconds if seconds is None else round(seconds)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"reference": "mse_J ratios to the same data set and seed's obs"
                                            " with l2=0",
                               "summary": summary, "runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
