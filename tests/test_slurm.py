"""The SLURM launcher on a real cluster: a smoke sweep through `hydra/launcher=slurm`, one job of
which fails, run by slurmctld/slurmd as an array job.

Needs a running cluster (CI starts a one-node one with `bash scripts/slurm_local.sh`), so it is
marked `slurm` and left out of the default run: `pytest -m slurm tests/test_slurm.py`. Without a
cluster it fails, saying how to start one; it is never skipped.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isingaug.results import ERROR_FILE, MSE_J, OBS, RESULTS_FILE, TEST_PSEUDO_LOGLIK, key
from isingaug.sweep import SUMMARY_FILE

pytestmark = pytest.mark.slurm

N, G = 8, 1.0
# The sizes study at scale=smoke cut to seconds a job: n = 8, M = 300, diffusion trained 20
# steps; three jobs differing in generator.ddim_steps, the last of which (-1) is a bad value.
SWEEP = ["experiment=sizes", "scale=smoke", f"dataset.n={N}", "dataset.M=300", "M_plus=1000",
         "seed=0", "trainer.max_steps=20", "generator.ddim_steps=5,7,-1",
         "callbacks.energy_variance.eval_every=10",
         "callbacks.energy_variance.eval_samples=100", "device=cpu",
         "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=0",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
         "hydra.launcher.timeout_min=10"]


def _cluster_up() -> None:
    """Fail (not skip) with the way to start a cluster when none answers."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        pytest.fail("no SLURM client on PATH: start a local cluster with "
                    "`bash scripts/slurm_local.sh` (root)")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        pytest.fail(f"slurmctld does not answer ({ping.stdout.strip()} {ping.stderr.strip()}): "
                    "start it with `bash scripts/slurm_local.sh`")


@pytest.fixture(scope="module")
def slurm_sweep(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    _cluster_up()
    out = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "ISINGAUG_OUTPUT_DIR": str(out), "ISINGAUG_CACHE_DIR": str(out / "cache"),
           "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", "isingaug", "-m", *SWEEP], capture_output=True,
                          text=True, env=env, timeout=900)
    return proc, out / "multirun" / "sizes_smoke"


def test_slurm_sweep_runs_every_job_as_an_array_task(slurm_sweep):
    proc, sweep_dir = slurm_sweep
    submit = list(sweep_dir.glob(".submitit/*/*_submission.sh"))
    assert len(submit) == 1, proc.stderr[-3000:]
    script = submit[0].read_text()
    # the launcher's settings reached sbatch: a 3-task array, 1 CPU a task, threads = CPUs
    assert "#SBATCH --array=0-2" in script and "#SBATCH --cpus-per-task=1" in script
    assert "export OMP_NUM_THREADS=1" in script and "#SBATCH --job-name=sizes" in script
    array_id = submit[0].parent.name
    # SLURM itself ran them: slurmctld knows the three array tasks, all completed (a task's
    # result file is written just before its process exits, so SLURM may still be ending it)
    deadline = time.monotonic() + 60
    while True:
        show = subprocess.run(["scontrol", "show", "job", "-o", array_id], capture_output=True,
                              text=True, timeout=30)
        assert show.returncode == 0, show.stderr
        tasks = {int(m.group(1)): m.group(2) for m in
                 re.finditer(r"ArrayTaskId=(\d+) .*?JobState=(\w+)", show.stdout)}
        if not {"RUNNING", "COMPLETING"} & set(tasks.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert tasks == {0: "COMPLETED", 1: "COMPLETED", 2: "COMPLETED"}, show.stdout
    logs = sorted(sweep_dir.glob(f".submitit/{array_id}_*/*_log.out"))
    assert len(logs) == 3
    assert all("Job completed successfully" in log.read_text() for log in logs)


def test_slurm_sweep_keeps_results_and_records_the_failure(slurm_sweep):
    proc, sweep_dir = slurm_sweep
    # the sweep's exit status and its summary report the one failed job
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 of 3 jobs failed" in proc.stderr and "generator.ddim_steps" in proc.stderr
    summary = json.loads((sweep_dir / SUMMARY_FILE).read_text())
    assert summary["counts"] == {"finished": 2, "failed": 1, "unfinished": 0}
    failed = [job for job in summary["jobs"] if job["status"] == "failed"]
    assert "generator.ddim_steps=-1" in failed[0]["overrides"]

    done = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{RESULTS_FILE}")}
    assert sorted(r["config"]["generator"]["ddim_steps"] for r in done.values()) == [5, 7]
    for result in done.values():
        metrics = result["metrics"]
        assert result["run"]["n"] == N and result["run"]["generator"] == "diffusion"
        assert all(math.isfinite(metrics[k]) for k in ("mse_J/aug", "mse_J/aug_obs", "gen/aai"))
        # sane inference from the observed data: better than predicting J = 0 (MSE g^2/n), and
        # a test pseudo-log-likelihood above that of independent fair coins (-n log 2)
        assert 0 < metrics[key(MSE_J, OBS)] < G**2 / N
        assert -N * math.log(2) < metrics[key(TEST_PSEUDO_LOGLIK, OBS)] < 0
        assert metrics["gen/steps"] == 20
    # both good jobs are on the same data: one built it, the other read it from the shared cache
    assert len({r["metrics"][key(MSE_J, OBS)] for r in done.values()}) == 1
    assert sorted(r["diagnostics"]["data"]["from_cache"] for r in done.values()) == [False, True]

    errors = list(sweep_dir.glob(f"*/{ERROR_FILE}"))
    assert len(errors) == 1 and not (errors[0].parent / RESULTS_FILE).exists()
    error = json.loads(errors[0].read_text())
    assert error["type"] == "ConfigError" and "generator.ddim_steps" in error["error"]
    assert "generator.ddim_steps=-1" in error["overrides"]
