"""Sweeps as a user runs them: launchers, resuming, failures, reruns from a job's folder, and the
report built from what the sweep wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from isingaug.sweep import SUMMARY_FILE

BIN = Path(sys.executable).parent
# The sizes study at scale=smoke, cut to a few seconds a job: two sizes (n = 8, 12), one seed,
# diffusion trained 20 steps and sampled with 5 DDIM steps.
SMOKE = ["experiment=sizes", "scale=smoke", "dataset.n=8,12", "dataset.M=300", "M_plus=1000",
         "seed=0", "trainer.max_steps=20", "generator.ddim_steps=5",
         "callbacks.energy_variance.eval_every=10", "callbacks.energy_variance.eval_samples=100",
         "device=cpu"]


def sweep(args: list[str], out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ISINGAUG_OUTPUT_DIR": str(out), "ISINGAUG_CACHE_DIR": str(out / "cache")}
    return subprocess.run([sys.executable, "-m", "isingaug", "-m", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def results(sweep_dir: Path) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text())
            for path in sweep_dir.glob("*/results.json")}


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory) -> Path:
    """The smoke sweep through the basic launcher, run once for the tests below."""
    out = tmp_path_factory.mktemp("basic")
    proc = sweep(SMOKE, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "multirun" / "sizes_smoke"


def test_smoke_sweep_writes_every_job(smoke_sweep):
    done = results(smoke_sweep)
    assert {r["config"]["dataset"]["n"] for r in done.values()} == {8, 12}
    # named by the job's overrides, with nothing Hydra's override grammar would split on
    assert sorted("_dataset.n-8_" in name for name in done) == [False, True]
    assert sorted("_dataset.n-12_" in name for name in done) == [False, True]
    assert not [name for name in done if "=" in name or "," in name]
    for result in done.values():
        metrics = result["metrics"]
        assert result["run"]["generator"] == "diffusion" and result["run"]["study"] == "sizes"
        for key in ("mse_J/obs", "mse_J/aug", "mse_J/aug_obs", "gen/aai", "gen/copy_fraction"):
            assert metrics[key] is not None, key
        assert result["diagnostics"]["energy_variance"]["selected_step"] in (10, 20)
    summary = json.loads((smoke_sweep / SUMMARY_FILE).read_text())
    assert summary["counts"] == {"finished": 2, "failed": 0, "unfinished": 0}


def test_rerunning_the_sweep_skips_finished_jobs(smoke_sweep, tmp_path):
    stamps = {p: p.stat().st_mtime_ns for p in smoke_sweep.glob("*/results.json")}
    proc = sweep(SMOKE, smoke_sweep.parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (proc.stdout + proc.stderr).count("skipped:") == 2
    assert {p: p.stat().st_mtime_ns for p in smoke_sweep.glob("*/results.json")} == stamps


def test_a_job_reruns_alone_from_its_folder(smoke_sweep):
    job = next(p for p in smoke_sweep.iterdir() if "_dataset.n-8_" in p.name)
    env = {**os.environ, "ISINGAUG_OUTPUT_DIR": str(smoke_sweep.parents[1])}
    proc = subprocess.run([str(BIN / "isingaug-rerun"), str(job)], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reruns = smoke_sweep.parents[1] / "reruns" / "sizes_smoke" / job.name
    rerun = json.loads(next(reruns.glob("*/results.json")).read_text())
    original = json.loads((job / "results.json").read_text())
    for key in ("mse_J/obs", "mse_J/aug", "mse_J/aug_obs", "gen/aai"):
        assert rerun["metrics"][key] == original["metrics"][key], key
    longer = subprocess.run([str(BIN / "isingaug-rerun"), str(job), "trainer.max_steps=30"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert longer.returncode == 0, longer.stderr[-3000:]
    steps = sorted(json.loads(p.read_text())["metrics"]["gen/steps"]
                   for p in reruns.glob("*/results.json"))
    assert steps == [20.0, 30.0]


def test_report_builds_from_the_sweep(smoke_sweep, tmp_path):
    proc = subprocess.run([str(BIN / "isingaug-report"), str(smoke_sweep), "--out",
                           str(tmp_path / "report"), "--quiet"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    figures = sorted((tmp_path / "report" / "figures").glob("*.png"))
    assert figures and all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)
    page = (tmp_path / "report" / "index.html").read_text()
    assert all(f"figures/{f.name}" in page for f in figures)
    assert (tmp_path / "report" / "runs.csv").read_text().count("\n") == 3
    # per-run folders (checkpoint dirs) are not settings: one summary row per design and metric
    summary = (tmp_path / "report" / "summary.csv").read_text()
    assert "dirpath" not in summary.splitlines()[0]
    # `design` names an (n, M, M_plus) point, so it does not split lines either
    assert "config.design" not in summary.splitlines()[0]


def test_joblib_launcher_shares_one_cache_and_isolates_a_failing_job(tmp_path):
    """The smoke study through joblib: two good jobs on the same data, one failing job."""
    args = [a for a in SMOKE if not a.startswith(("dataset.n=", "generator.ddim_steps="))]
    proc = sweep([*args, "dataset.n=8", "generator.ddim_steps=5,7,-1",
                  "hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2"], tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 of 3 jobs failed" in proc.stderr and "generator.ddim_steps" in proc.stderr
    sweep_dir = tmp_path / "multirun" / "sizes_smoke"
    done = results(sweep_dir)
    assert len(done) == 2
    assert sorted(r["diagnostics"]["data"]["from_cache"] for r in done.values()) == [False, True]
    assert len(list((tmp_path / "cache" / "sk").glob("*.npz"))) == 1
    failed = [p.parent for p in sweep_dir.glob("*/error.json")]
    assert len(failed) == 1
    assert not (failed[0] / "results.json").exists()
    error = json.loads((failed[0] / "error.json").read_text())
    assert error["type"] == "ConfigError" and "generator.ddim_steps=-1" in error["overrides"]
    summary = json.loads((sweep_dir / SUMMARY_FILE).read_text())
    assert summary["counts"] == {"finished": 2, "failed": 1, "unfinished": 0}
