"""The real pipeline into the real report: small sweeps through the `isingaug -m` console script
(a neural sweep with a generator trained a few steps and both imputation baselines, an SK sweep
with a learned generator, an Optuna tuning sweep), then `isingaug-report` on each sweep folder.

Every declared metric (isingaug.results) that any results.json holds must be drawn in some figure
of the page, as report/index.json lists them: the test reads the keys from the results files, so
a name spelled differently by the pipeline and the report fails it. About a minute of CPU time
in all (several minutes of wall time on a busy 2-core machine): marked slow.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from isingaug import results as res

pytestmark = pytest.mark.slow

FAST = ["scale=smoke", "trainer.max_steps=20", "M_plus=400", "dataset.n=8",
        "dataset.M_test=300", "callbacks.energy_variance.eval_samples=200"]
SWEEPS = {
    # name: (command-line overrides, the sweep folder's name: task_name + _smoke)
    "neural": (["experiment=neural", "generator=vae", "dataset.M=300,600", "seed=0",
                "imputation.max_patterns=300", *FAST], "neural_smoke"),
    "sk": (["experiment=generators_n20", "generator=bootstrap,autoregressive", "seed=0,1",
            "dataset.M=300", *FAST], "generators_n20_smoke"),
}


def console(name: str) -> list[str]:
    script = Path(sys.executable).with_name(name)
    module = {"isingaug": "isingaug", "isingaug-report": "isingaug.report"}[name]
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    work = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "ISINGAUG_OUTPUT_DIR": str(work / "outputs"), "WANDB_MODE": "disabled",
           "ISINGAUG_CACHE_DIR": str(work / "cache")}
    return work, env


@pytest.fixture(scope="module")
def sweeps(environment):
    """The sweeps run so far, by name: each one runs once however many tests read it."""
    work, env = environment
    done: dict[str, dict] = {}

    def sweep_and_report(name: str) -> dict:
        if name not in done:
            overrides, folder = SWEEPS[name]
            run([*console("isingaug"), "-m", *overrides], work, env)
            sweep = work / "outputs" / "multirun" / folder
            proc = run([*console("isingaug-report"), str(sweep)], work, env)
            out = sweep / "report"
            assert proc.stdout.strip() == str(out / "index.html")
            done[name] = {"sweep": sweep, "out": out, "stderr": proc.stderr, "name": name}
        return done[name]

    return sweep_and_report


@pytest.fixture(scope="module", params=sorted(SWEEPS))
def swept(request, sweeps) -> dict:
    """One real sweep and its report."""
    return sweeps(request.param)


def results_files(sweep: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(sweep.rglob(res.RESULTS_FILE))]


def test_every_declared_metric_the_runs_hold_is_drawn(swept):
    found = results_files(swept["sweep"])
    assert len(found) == {"neural": 2, "sk": 4}[swept["name"]]
    present = {key for data in found for key, value in data["metrics"].items()
               if res.metric_of(key) is not None and isinstance(value, int | float)}
    index = json.loads((swept["out"] / "index.json").read_text())
    drawn = {key for figure in index["figures"] for key in figure["keys"]}
    assert present, "the runs hold no declared metric"
    assert present <= drawn, sorted(present - drawn)
    assert index["undrawn"] == []
    figures = {figure["name"] for figure in index["figures"]}
    assert figures == {p.name for p in (swept["out"] / "figures").glob("*.png")}
    page = (swept["out"] / "index.html").read_text()
    assert set(re.findall(r'<img src="figures/([^"]+)"', page)) == figures
    assert "warning" not in swept["stderr"], swept["stderr"]


def test_each_study_draws_its_declared_figures(swept):
    """The figures the study's report block declares are drawn from the real runs: the neural
    study's imputation panels with the spike and silence accuracies and both baselines, the
    generator comparison with each condition relative to obs and obs_l2 beside it."""
    index = json.loads((swept["out"] / "index.json").read_text())
    keys = {figure["name"]: set(figure["keys"]) for figure in index["figures"]}
    found = results_files(swept["sweep"])
    if swept["name"] == "neural":
        impute = keys["impute_vs_M.png"]
        for stem in (res.IMPUTE_ACC, res.IMPUTE_ACC_SPIKE, res.IMPUTE_ACC_SILENCE):
            assert res.key(stem, res.AUG_OBS) in impute, stem
        for baseline in res.BASELINE_CONDITIONS:
            assert res.key(res.IMPUTE_ACC, baseline) in impute, baseline
        assert {data["run"]["trainable"] for data in found} == {True}
    else:
        generators = keys["generators.png"]
        for condition in (res.OBS, res.OBS_L2, res.AUG, res.AUG_OBS):
            assert res.key(res.MSE_J, condition) in generators, condition
        assert {data["run"]["generator"] for data in found} == {"bootstrap", "autoregressive"}
        assert any(data["run"]["tractable"] for data in found)


def test_run_parameters_come_from_hydra_overrides(swept):
    runs_csv = (swept["out"] / "runs.csv").read_text().splitlines()[0].split(",")
    for path in swept["sweep"].glob("*/.hydra/overrides.yaml"):
        overrides = yaml.safe_load(path.read_text())
        assert "scale=smoke" in overrides
    assert "generator" in runs_csv and "M" in runs_csv and "trainable" in runs_csv


def test_an_optuna_tuning_sweep_reports_its_best_trial(environment):
    """The real sweeper (experiment=tune_vae, two trials) writes optimization_results.yaml
    beside its trials; the report shows its best trial."""
    work, env = environment
    run([*console("isingaug"), "-m", "experiment=tune_vae", "hydra.sweeper.n_trials=2",
         "hydra.sweeper.sampler.n_startup_trials=2", "trainer.max_steps=20", "M_plus=400",
         "dataset.n=8", "dataset.M=300", "dataset.M_test=300",
         "callbacks.energy_variance.eval_samples=200"], work, env)
    sweep = work / "outputs" / "multirun" / "tune_vae"
    written = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    run([*console("isingaug-report"), str(sweep), "--quiet"], work, env)
    index = json.loads((sweep / "report" / "index.json").read_text())
    assert index["trials"][0]["best_params"] == written["best_params"]
    assert index["trials"][0]["best_value"] == pytest.approx(written["best_value"])
    assert 'id="optuna"' in (sweep / "report" / "index.html").read_text()


def test_generator_tuning_table_from_the_real_sweep(sweeps, tmp_path):
    """benchmarks/generator_tuning.py on the SK sweep: every run a row whose ratios are its own
    mse_J over its seed's obs, and one summary entry per generator pooling both seeds."""
    swept = sweeps("sk")
    out = tmp_path / "tuning.json"
    root = Path(__file__).resolve().parents[1]
    run([sys.executable, str(root / "benchmarks" / "generator_tuning.py"), str(out),
         str(swept["sweep"])], root, {**os.environ})
    table = json.loads(out.read_text())
    found = {(data["run"]["generator"], data["run"]["seed"]): data["metrics"]
             for data in results_files(swept["sweep"])}
    assert len(table["runs"]) == len(found) == 4
    for row in table["runs"]:
        metrics = found[(row["generator"], row["seed"])]
        obs = metrics[res.key(res.MSE_J, res.OBS)]
        assert row["ratio_obs"] == pytest.approx(1.0)
        assert row["ratio_aug"] == pytest.approx(metrics[res.key(res.MSE_J, res.AUG)] / obs)
        assert row["data"] == {"dataset": "sk", "n": 8, "M": 300, "g": 1.0,
                               "data_seed": row["seed"]}
        assert f"generator={row['generator']}" in row["setting"]
    assert len(table["summary"]) == 2
    for entry in table["summary"]:
        assert entry["seeds"] == [0, 1]
        assert "data_seed" not in entry["data"]
        ratios = [row["ratio_aug"] for row in table["runs"] if row["setting"] == entry["setting"]]
        assert len(ratios) == 2
        assert entry["ratio_aug"]["mean"] == pytest.approx(sum(ratios) / 2)
    # --add keeps a row of an earlier batch whose folder is gone and replaces a run given again
    earlier = {**table["runs"][0], "sweep": "earlier_batch"}
    out.write_text(json.dumps({**table, "runs": [*table["runs"], earlier]}))
    for _ in range(2):
        run([sys.executable, str(root / "benchmarks" / "generator_tuning.py"), str(out),
             str(swept["sweep"]), "--add"], root, {**os.environ})
        added = json.loads(out.read_text())
        assert len(added["runs"]) == 5
        assert sum(row["sweep"] == "earlier_batch" for row in added["runs"]) == 1
        pooled = [entry for entry in added["summary"] if "earlier_batch" in entry["sweeps"]]
        assert len(pooled) == 1 and sorted(pooled[0]["seeds"]) == sorted(
            [0, 1, earlier["seed"]])
