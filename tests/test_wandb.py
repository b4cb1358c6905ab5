"""wandb as a sweep writes it, offline: a real small sweep (SK n = 8, an RBM trained 20 steps)
with `logger=wandb`, its runs read back with wandb's own reader of the .wandb transaction log
(`wandb leet inspect --json`), and checked against what the run wrote itself (results.json and
the CSV log)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from isingaug.results import RESULTS_FILE

BIN = Path(sys.executable).parent
STEPS = 20
TASK = "wandb_smoke"
# Two jobs (seed 0, 1) of one small sweep.
SWEEP = ["dataset.n=8", "dataset.M=300", "dataset.M_test=300", "generator=rbm",
         "generator.gibbs_steps=20", "M_plus=500", f"trainer.max_steps={STEPS}",
         "trainer.log_every_n_steps=1", "callbacks.energy_variance.eval_every=10",
         "callbacks.energy_variance.eval_samples=200", "logger=wandb", "device=cpu",
         f"task_name={TASK}", "seed=0,1"]


def read_offline_run(run_file: Path) -> dict[str, Any]:
    """An offline run's records, through wandb's reader: the run record, the merged config,
    the history rows, the final summary and the exit record."""
    proc = subprocess.run([str(BIN / "wandb"), "leet", "inspect", "--json", str(run_file)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    run: dict[str, Any] = {"config": {}, "history": [], "summary": {}}
    for record in records:
        kind = record["type"]
        if kind in ("run", "exit"):
            run[kind] = record[kind]
        elif kind == "config":
            run["config"].update(record["config"].get("update", {}))
        elif kind == "history":
            run["history"].append(record["history"]["item"])
        elif kind == "summary":
            run["summary"].update(record["summary"].get("update", {}))
            for removed in record["summary"].get("remove", []) or []:
                run["summary"].pop(removed, None)
    run["config"].pop("_wandb", None)
    return run


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


@pytest.fixture(scope="module")
def wandb_sweep(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("wandb")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "WANDB_DIR": str(out / "wandb"), "ISINGAUG_OUTPUT_DIR": str(out),
           "ISINGAUG_CACHE_DIR": str(out / "cache")}
    proc = subprocess.run([sys.executable, "-m", "isingaug", "-m", *SWEEP], capture_output=True,
                          text=True, env=env, timeout=900)
    return proc, out / "multirun" / TASK


def offline_runs(job_dir: Path) -> list[Path]:
    return sorted(job_dir.glob("wandb/offline-run-*/run-*.wandb"))


@pytest.mark.slow
def test_offline_runs_hold_curve_metrics_config_and_group(wandb_sweep):
    proc, sweep_dir = wandb_sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    finished = sorted(p.parent for p in sweep_dir.glob(f"*/{RESULTS_FILE}"))
    assert len(finished) == 2
    runs = {}
    for job in finished:
        files = offline_runs(job)
        assert len(files) == 1, files       # one wandb run per job, in the job's own folder
        results = json.loads((job / RESULTS_FILE).read_text())
        run = read_offline_run(files[0])
        seed = results["run"]["seed"]
        runs[seed] = run
        assert run["run"]["run_group"] == TASK and run["run"]["job_type"] == "rbm"
        assert run["run"]["display_name"] == f"rbm-plm-n8-M300-M_plus500-seed{seed}"
        assert run["exit"].get("exit_code", 0) == 0

        # the training curve, one point per optimizer step, the same numbers as the CSV log
        curve = {row["trainer/global_step"]: row["train/recon_error"]
                 for row in run["history"] if "train/recon_error" in row}
        assert sorted(curve) == list(range(STEPS))
        with (job / "csv" / "metrics.csv").open() as f:
            logged = {int(row["step"]): float(row["train/recon_error"])
                      for row in csv.DictReader(f) if row["train/recon_error"]}
        assert logged.keys() == curve.keys()
        assert all(same(curve[step], logged[step]) for step in curve)
        # the energy-variance curve at its evaluation steps, as in results.json
        ev = {row["trainer/global_step"]: row["energy_variance/var_E_gen/obs"]
              for row in run["history"] if "energy_variance/var_E_gen/obs" in row}
        expected = {p["step"]: p["var_E_gen/obs"]
                    for p in results["diagnostics"]["energy_variance"]["curve"]}
        assert ev.keys() == expected.keys() == {10, 20}
        assert all(same(ev[s], expected[s]) for s in ev)

        # the final metrics: every key of results.json, logged at the last training step
        metrics = results["metrics"]
        final = [row for row in run["history"] if "mse_J/obs" in row]
        assert len(final) == 1 and final[0]["trainer/global_step"] == STEPS
        for name, value in metrics.items():
            assert same(run["summary"][name], value), name
            assert same(final[0][name], value), name

        # the full resolved config
        assert run["config"] == results["config"]
    assert runs.keys() == {0, 1}
    assert runs[0]["run"]["run_id"] != runs[1]["run"]["run_id"]
    assert runs[0]["summary"]["mse_J/obs"] != runs[1]["summary"]["mse_J/obs"]


@pytest.mark.slow
def test_a_run_ended_by_an_exception_is_closed_as_failed(tmp_path, monkeypatch):
    """close_wandb in a `finally` (as the pipeline calls it) marks the run failed on an error;
    the sweep test above checks exit code 0 for runs that end normally."""
    import wandb

    from isingaug.loggers import close_wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    run = wandb.init(project="isingaug", dir=str(tmp_path), group=TASK, mode="offline")
    run_dir = Path(run.dir).parent
    with pytest.raises(ValueError, match="mid-run"):
        try:
            run.log({"x": 1.0})
            raise ValueError("a job failing mid-run")
        finally:
            close_wandb()
    assert wandb.run is None
    assert read_offline_run(next(run_dir.glob("run-*.wandb")))["exit"]["exit_code"] == 1
