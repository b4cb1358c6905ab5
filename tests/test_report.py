"""isingaug-report on sweeps written in the pipeline's file format (every result name from the
results vocabulary, every job's overrides as Hydra records them): tables, mean ± sem by hand,
parameters from overrides.yaml, generator order from the runs' own traits, declared figures,
ratios to obs, noise floors, every declared metric drawn, failures, Optuna's best trial, the page
loads in a browser. tests/test_report_e2e.py runs the real pipeline into the report."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib import image as mpimg

from isingaug import results as res
from isingaug.report.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What each fixture generator is, as results.json `run` says it: (trainable, produces_samples).
TRAITS = {"none": (False, False), "bootstrap": (False, True), "diffusion": (True, True),
          "vae": (True, True), "rbm": (True, True)}
TARGETS = {"none": "isingaug.generators.baselines.NoGenerator",
           "bootstrap": "isingaug.generators.baselines.Bootstrap",
           "diffusion": "isingaug.generators.diffusion.Diffusion",
           "vae": "isingaug.generators.vae.Vae", "rbm": "isingaug.generators.rbm.Rbm"}
SK_STEMS = (res.MSE_J, res.MSE_ALL, res.MSE_H, res.REL_ERR_J, res.TEST_LOGLIK)
IMPUTE_STEMS = (res.IMPUTE_ACC, res.IMPUTE_ACC_SPIKE, res.IMPUTE_ACC_SILENCE,
                res.IMPUTE_COND_LOGLIK)
EXPECTED_FIGURES = ("mse_vs_M.png", "mse_vs_M_plus.png", "mse_vs_g.png", "mse_vs_g_h.png",
                    "mse_vs_max_steps.png", "impute_vs_M.png", "generators.png", "scatter_J.png",
                    "energy_variance.png")


def mse_J(n: int, M: int, seed: int, condition: str, M_plus: int = 0, steps: int | None = None,
          g: float = 1.0, g_h: float = 1.0) -> float:
    """The synthetic coupling error of one run: falls with M, depends on the condition."""
    base = n / 8 * 10.0 / M * (1 + 0.1 * seed) * g * (1 + 0.2 * g_h)
    if condition == res.OBS:
        return base
    if condition == res.OBS_L2:
        return 0.95 * base
    factor = (0.9 if condition == res.AUG else 0.8) + 300.0 / M_plus
    if steps is not None:
        factor *= 1 + 0.3 * abs(math.log10(steps) - 3)
    return base * factor


def write_run(folder: Path, *, n: int, M: int, seed: int, generator: str = "none",
              M_plus: int = 0, g: float | None = 1.0, g_h: float | None = None,
              max_steps: int | None = None, dataset: str = "sk", study: str | None = None,
              curve: bool = False, overrides: list[str] | bool | None = None,
              obs_l2: bool = False,
              report: dict | None = None, traits: bool = True, choice: str | None = None,
              lr: float | None = None) -> dict:
    """One run folder as the pipeline and Hydra write it: .hydra/config.yaml and
    overrides.yaml, params.npz, results.json. Returns the results."""
    folder.mkdir(parents=True)
    trainable, samples = TRAITS[generator]
    conditions = [res.OBS, *([res.OBS_L2] if obs_l2 else []),
                  *(res.AUGMENTED_CONDITIONS if samples else ())]
    run = {"dataset": dataset, "generator": generator, "solver": "plm", "n": n, "M": M,
           "M_test": 4000, "M_plus": M_plus if samples else 0, "seed": seed, "data_seed": seed,
           "study": study}
    if traits:
        run.update(trainable=trainable, tractable=False, produces_samples=samples)
    if g is not None:
        run.update(g=g, g_h=g if g_h is None else g_h)
    if trainable and max_steps is not None:
        run["max_steps"] = max_steps
    metrics: dict[str, float | None] = {}
    rng = np.random.default_rng(1000 * n + M + seed)
    arrays: dict[str, np.ndarray] = {}
    if dataset == "sk":
        J = np.triu(rng.normal(0, 1 / np.sqrt(n), (n, n)), 1)
        arrays.update(J_true=J + J.T, h_true=rng.normal(0, 1 / np.sqrt(n), n))
    for condition in conditions:
        if dataset == "sk":
            mse = mse_J(n, M, seed, condition, M_plus, max_steps if trainable else None,
                        run["g"], run["g_h"])
            values = {res.MSE_J: mse, res.MSE_ALL: 0.9 * mse, res.MSE_H: 2 * mse,
                      res.REL_ERR_J: mse ** 0.5,
                      res.TEST_LOGLIK: None if seed == 0 else -n * 0.5 - mse}
            noise = np.triu(rng.normal(0, np.sqrt(mse), (n, n)), 1)
            arrays[f"J_{condition}"] = arrays["J_true"] + noise + noise.T
            arrays[f"h_{condition}"] = arrays["h_true"] + rng.normal(0, np.sqrt(mse), n)
        else:
            gain = {res.OBS: 0.0, res.AUG: 0.01, res.AUG_OBS: 0.02}[condition] + M / 1e5
            values = {res.IMPUTE_ACC: 0.8 + gain + 0.001 * seed,
                      res.IMPUTE_ACC_SPIKE: 0.5 + 2 * gain,
                      res.IMPUTE_ACC_SILENCE: 0.9 + gain / 2,
                      res.IMPUTE_COND_LOGLIK: -3.0 + gain}
            arrays[f"J_{condition}"] = rng.normal(0, 0.1, (n, n))
        values[res.SOLVER_SECONDS] = 0.1 + 0.01 * seed
        metrics.update(res.with_condition(values, condition))
    if dataset != "sk":
        metrics.update({res.key(res.IMPUTE_ACC, res.BASELINE_FREQ): 0.7,
                        res.key(res.IMPUTE_ACC, res.BASELINE_INDEP): 0.75,
                        res.key(res.IMPUTE_ACC_SPIKE, res.BASELINE_FREQ): 0.3})
    if samples:
        metrics.update({res.GEN_AAI: 0.01 * (1 + seed) * (2 if generator == "vae" else 1),
                        res.GEN_COPY_FRACTION: 0.05 if generator == "rbm" else 0.01,
                        res.GEN_TRAIN_SECONDS: 10.0})
    diagnostics: dict = {"solver/obs": {"converged": True}}
    if curve:
        steps = [s for s in (50, 100, 200, 500, 1000, 2000, 5000, 10000) if s <= max_steps]
        reference = {res.key(res.VAR_E_TRAIN, res.OBS): 4.0,
                     res.key(res.VAR_E_TEST, res.OBS): 4.5}
        diagnostics["energy_variance"] = {
            "select": "energy_variance", "selected_step": min(1000, max_steps),
            "reference": reference,
            "curve": [{"step": s, "var_E_gen/obs": 4.0 * (1 - math.exp(-s / 300)) + 0.1 * seed,
                       "copy_fraction": min(1.0, s / 20000)} for s in steps]}
    config = {"dataset": {"_target_": f"isingaug.data.{dataset}", "n": n, "M": M, "M_test": 4000,
                          "g": g, "g_h": g_h, "data_seed": seed},
              "generator": {"_target_": TARGETS[generator], **({"lr": lr} if lr else {})},
              "trainer": {"max_steps": max_steps or 1000}, "M_plus": M_plus, "seed": seed,
              "study": study, "paths": {"output_dir": str(folder)},
              "solver": {"_target_": "plm", "l2": 0.0}}
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({**config, **({"report": report} if report else {})}))
    if overrides is None:
        overrides = [f"dataset.n={n}", f"dataset.M={M}", f"seed={seed}",
                     f"generator={choice or generator}"]
        overrides += [f"M_plus={M_plus}"] if M_plus else []
        overrides += [f"trainer.max_steps={max_steps}"] if max_steps else []
        overrides += [f"dataset.g={g}"] if g is not None and g != 1.0 else []
        overrides += [f"dataset.g_h={g_h}"] if g_h is not None else []
        overrides += [f"generator.lr={lr}"] if lr else []
    if overrides is not False:
        (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    np.savez(folder / "params.npz", **arrays)
    results = {"run": run, "metrics": metrics, "diagnostics": diagnostics,
               "seconds": {"data": 0.5, "generator_fit": 2.0, "total": 3.0 + seed},
               "config": config}
    (folder / "results.json").write_text(json.dumps(results))
    return results


def write_sweeps(root: Path) -> list[Path]:
    """Four studies, one sweep folder each, Hydra-style numbered job folders."""
    sweeps = {name: root / name for name in ("sizes", "training", "strength", "neural")}
    jobs: dict[str, list[dict]] = {name: [] for name in sweeps}
    for seed in range(3):
        for M in (200, 400, 800):
            jobs["sizes"] += [dict(n=n, M=M, seed=seed, study="sizes") for n in (8, 12)]
            jobs["sizes"] += [dict(n=8, M=M, seed=seed, generator="diffusion", M_plus=M_plus,
                                   max_steps=1000, study="sizes") for M_plus in (1000, 4000)]
    for seed in range(2):
        jobs["training"].append(dict(n=8, M=500, seed=seed))
        jobs["training"] += [dict(n=8, M=500, seed=seed, generator="diffusion", M_plus=4000,
                                  max_steps=steps, curve=True) for steps in (100, 1000, 10000)]
        jobs["training"].append(dict(n=8, M=500, seed=seed, generator="vae", M_plus=4000,
                                     max_steps=1000))
        jobs["strength"] += [dict(n=8, M=300, seed=seed, generator="diffusion", M_plus=4000,
                                  max_steps=1000, g=g, g_h=g_h)
                             for g in (0.5, 1.0) for g_h in (0.5, 1.0)]
        jobs["neural"] += [dict(n=10, M=M, seed=seed, dataset="neural", g=None, **gen)
                           for M in (1000, 2000)
                           for gen in (dict(), dict(generator="diffusion", M_plus=4000,
                                                    max_steps=1000))]
    jobs["training"].append(dict(n=8, M=500, seed=0, generator="rbm", M_plus=4000,
                                 max_steps=1000))
    for name, folder in sweeps.items():
        folder.mkdir(parents=True)
        (folder / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
        for number, job in enumerate(jobs[name]):
            write_run(folder / str(number), **job)
    failed = sweeps["sizes"] / "99"
    (failed / ".hydra").mkdir(parents=True)
    (failed / ".hydra" / "config.yaml").write_text("seed: 9\n")
    (failed / "error.json").write_text(json.dumps({
        "error": "solver diverged at M=200: try solver.l2=0.01", "type": "ConfigError",
        "run": {"dataset": "sk", "generator": "none", "n": 8, "M": 200, "seed": 9},
        "overrides": ["dataset.M=200", "seed=9"]}))
    (sweeps["training"] / "77" / ".hydra").mkdir(parents=True)  # killed before it finished
    return list(sweeps.values())


RUN_COUNT = 36 + 11 + 8 + 8


def run_main(args: list[str]) -> tuple[int, str, str]:
    """main() in-process, with its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def drawn_keys(out: Path) -> dict[str, list[str]]:
    index = json.loads((out / "index.json").read_text())
    return {figure["name"]: figure["keys"] for figure in index["figures"]}


def declared_keys_in_results(sweeps: list[Path]) -> set[str]:
    """The declared metrics' keys that hold a number in some results.json under the sweeps."""
    keys = set()
    for sweep in sweeps:
        for path in sweep.rglob(res.RESULTS_FILE):
            metrics = json.loads(path.read_text())["metrics"]
            keys |= {k for k, v in metrics.items()
                     if res.metric_of(k) is not None and isinstance(v, int | float)}
    return keys


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("report")
    sweeps = write_sweeps(root / "sweeps")
    code, out, err = run_main([str(s) for s in sweeps])
    assert code == 0, err
    return {"sweeps": sweeps, "out": sweeps[0] / "report", "stdout": out, "stderr": err}


def test_runs_table_has_one_row_per_successful_run(report):
    out = report["out"]
    assert report["stdout"].strip() == str(out / "index.html")
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == RUN_COUNT and runs["run_dir"].is_unique
    parquet = pd.read_parquet(out / "runs.parquet")
    assert len(parquet) == RUN_COUNT
    assert set(parquet["generator"]) == {"none", "diffusion", "vae", "rbm"}
    for column in ("dataset", "n", "M", "M_plus", "seed", "max_steps", "trainable",
                   res.key(res.MSE_J, res.OBS), res.key(res.MSE_J, res.AUG_OBS), res.GEN_AAI,
                   res.key(res.IMPUTE_ACC, res.BASELINE_FREQ), "seconds.total",
                   "config.trainer.max_steps", f"ev.{res.key(res.VAR_E_TRAIN, res.OBS)}"):
        assert column in parquet, column
    row = parquet[(parquet["generator"] == "diffusion") & (parquet["max_steps"] == 100)
                  & (parquet["seed"] == 1)].iloc[0]
    assert row[res.key(res.MSE_J, res.AUG)] == pytest.approx(
        mse_J(8, 500, 1, res.AUG, 4000, 100))
    # a generator that does not train has no training length (run.trainable false)
    assert pd.isna(parquet.loc[parquet["generator"] == "none", "max_steps"]).all()


def test_summary_mean_and_sem_match_hand_computation(report):
    summary = pd.read_parquet(report["out"] / "summary.parquet")

    def pick(**where) -> pd.Series:
        mask = np.ones(len(summary), bool)
        for key, value in where.items():
            mask &= (summary[key] == value).to_numpy()
        rows = summary[mask]
        assert len(rows) == 1, where
        return rows.iloc[0]

    values = np.array([mse_J(8, 200, s, res.AUG_OBS, 1000, 1000) for s in range(3)])
    row = pick(generator="diffusion", n=8, M=200, M_plus=1000,
               key=res.key(res.MSE_J, res.AUG_OBS))
    assert row["count"] == 3
    assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert row["sem"] == pytest.approx(values.std(ddof=1) / np.sqrt(3), rel=1e-12)
    assert (row["metric"], row["condition"]) == (res.MSE_J, res.AUG_OBS)

    obs = np.array([mse_J(12, 800, s, res.OBS) for s in range(3)])
    row = pick(generator="none", n=12, M=800, key=res.key(res.MSE_J, res.OBS))
    assert (row["mean"], row["count"]) == (pytest.approx(obs.mean()), 3)
    assert row["sem"] == pytest.approx(obs.std(ddof=1) / np.sqrt(3))

    single = pick(generator="rbm", key=res.key(res.MSE_J, res.AUG))  # one seed: sem unknown
    assert single["count"] == 1 and np.isnan(single["sem"])
    nulls = pick(generator="none", n=8, M=400, key=res.key(res.TEST_LOGLIK, res.OBS))
    assert nulls["count"] == 2                                      # seed 0 wrote null
    gen = pick(generator="vae", key=res.GEN_AAI)
    assert gen["metric"] == res.GEN_AAI and pd.isna(gen["condition"])
    assert gen["mean"] == pytest.approx(np.mean([0.02, 0.04]))
    steps = summary.loc[summary["generator"] == "diffusion", "max_steps"].dropna()
    assert set(steps) == {100, 1000, 10000}
    assert "seed" not in summary and "data_seed" not in summary


def test_failures_are_listed(report):
    failures = pd.read_csv(report["out"] / "failures.csv")
    assert len(failures) == 2
    error = failures[failures["type"] == "ConfigError"].iloc[0]
    assert "solver diverged" in error["error"] and "seed=9" in error["overrides"]
    assert error["run_dir"].endswith("99")
    assert (failures["type"] == "Unfinished").sum() == 1
    page = (report["out"] / "index.html").read_text()
    assert 'id="failures"' in page and "solver diverged at M=200" in page


def test_default_figures_are_real_pictures(report):
    figures = report["out"] / "figures"
    names = {p.name for p in figures.glob("*.png")}
    assert set(EXPECTED_FIGURES) <= names
    assert names == set(drawn_keys(report["out"]))
    for name in names:
        data = (figures / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        pixels = mpimg.imread(figures / name)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300, name
        assert pixels[..., :3].var() > 1e-3, f"{name} is blank"
    assert not list(report["out"].rglob("*.tmp"))


def test_every_declared_metric_in_the_results_is_drawn(report):
    """The spike and silence accuracies the pipeline writes, and every other declared metric,
    appear in some figure's keys (report/index.json)."""
    drawn = {key for keys in drawn_keys(report["out"]).values() for key in keys}
    present = declared_keys_in_results(report["sweeps"])
    assert res.key(res.IMPUTE_ACC_SPIKE, res.AUG_OBS) in present
    assert present <= drawn, sorted(present - drawn)
    index = json.loads((report["out"] / "index.json").read_text())
    assert index["undrawn"] == [] and index["undeclared"] == []
    impute = drawn_keys(report["out"])["impute_vs_M.png"]
    for stem in IMPUTE_STEMS:
        assert res.key(stem, res.AUG_OBS) in impute, stem
    assert res.key(res.IMPUTE_ACC, res.BASELINE_INDEP) in impute


def test_page_references_every_figure_and_table(report):
    out = report["out"]
    page = (out / "index.html").read_text()
    sources = set(re.findall(r'<img src="([^"]+)"', page))
    assert sources == {f"figures/{p.name}" for p in (out / "figures").glob("*.png")}
    for name in ("runs.csv", "runs.parquet", "summary.csv", "summary.parquet", "failures.csv",
                 "index.json"):
        assert f'href="{name}"' in page
    assert res.key(res.MSE_J, res.AUG_OBS) in page and "±" in page
    assert res.key(res.IMPUTE_ACC_SILENCE, res.OBS) in page      # a headline metric


def test_progress_on_stderr(report):
    err = report["stderr"]
    assert f"collecting {RUN_COUNT}/{RUN_COUNT} runs" in err
    assert "figure 1/" in err and ": mse_vs_M.png" in err
    assert "warning" not in err


def test_parameters_come_from_the_overrides(tmp_path):
    """generator=diffusion_ddim is a setting of its own although the run calls its model
    diffusion; an overridden config value not in `run` (generator.lr) is a parameter; config
    values that differ without being overridden (each run's output_dir) are not."""
    sweep = tmp_path / "s"
    number = 0
    for choice in ("diffusion", "diffusion_ddim"):
        for lr in (0.1, 0.01):
            for seed in (0, 1):
                write_run(sweep / str(number), n=8, M=300, seed=seed, generator="diffusion",
                          choice=choice, M_plus=2000, max_steps=200, lr=lr)
                number += 1
    from isingaug.report.collect import collect

    collection = collect([sweep])
    runs, params = collection.runs, collection.params
    assert set(runs["generator"]) == {"diffusion", "diffusion_ddim"}
    assert "config.generator.lr" in params and "config.paths.output_dir" not in params
    assert "seed" not in params and "trainable" not in params
    assert collection.notes == []
    assert run_main([str(sweep), "--quiet"])[0] == 0
    summary = pd.read_parquet(sweep / "report" / "summary.parquet")
    key = res.key(res.MSE_J, res.AUG)
    assert (summary.loc[summary["key"] == key, "count"] == 2).all()
    assert len(summary[summary["key"] == key]) == 4


def test_folders_without_overrides_fall_back_and_say_so(tmp_path):
    sweep = tmp_path / "s"
    for number, (M, seed) in enumerate((M, s) for M in (200, 400) for s in (0, 1)):
        write_run(sweep / str(number), n=8, M=M, seed=seed, overrides=False, traits=False)
    assert run_main([str(sweep), "--quiet"])[0] == 0
    page = (sweep / "report" / "index.html").read_text()
    assert "4 runs have no .hydra/overrides.yaml" in page
    assert "4 runs predate run.trainable" in page
    assert "mse_vs_M.png" in drawn_keys(sweep / "report")


def test_generator_order_comes_from_the_runs_and_the_study(tmp_path):
    from isingaug.report.series import generator_info

    runs = pd.DataFrame({"generator": ["vae", "none", "rbm", "bootstrap", "diffusion"],
                         "trainable": [True, False, True, False, True],
                         "produces_samples": [True, False, True, True, True]})
    info = generator_info(runs)
    assert sorted(info.rank, key=info.rank.get) == ["none", "bootstrap", "diffusion", "rbm",
                                                    "vae"]
    assert info.plain == {"none"}
    declared = generator_info(runs, ["rbm", "vae"])
    assert sorted(declared.rank, key=declared.rank.get)[:2] == ["rbm", "vae"]
    unknown = generator_info(runs.drop(columns=["trainable", "produces_samples"]))
    assert sorted(unknown.rank, key=unknown.rank.get) == sorted(runs["generator"])


GENERATORS_BLOCK = {"figures": [
    {"name": "generators", "title": "Generators compared", "relative_to": res.OBS,
     "y": [res.MSE_J, res.GEN_CONN_CORR_ERR_TRUE], "conditions": [res.OBS_L2, res.AUG,
                                                                   res.AUG_OBS],
     "lines": ["generator", "condition"]},
    {"name": "mse_vs_M", "x": "dataset.M", "y": [res.MSE_J], "lines": ["condition"]}]}


def test_declared_figures_ratios_to_obs_and_noise_floors(tmp_path):
    """A study's report block: mse_J relative to the same run's obs (mean ± sem of the per-seed
    ratios), obs_l2 beside aug and aug_obs, gen/conn_corr_err_true with its floor."""
    sweep = tmp_path / "generators"
    number, expected = 0, {}
    for generator in ("bootstrap", "rbm"):
        for seed in range(3):
            for M in (200, 400):
                results = write_run(sweep / str(number), n=8, M=M, seed=seed,
                                    generator=generator, M_plus=1000, max_steps=500,
                                    study="generators", obs_l2=True, report=GENERATORS_BLOCK)
                metrics = results["metrics"]
                metrics[res.GEN_CONN_CORR_ERR_TRUE] = 0.01 * (seed + 1)
                metrics[res.GEN_CONN_CORR_ERR_TRUE_FLOOR] = 0.002
                (sweep / str(number) / "results.json").write_text(json.dumps(results))
                ratio = metrics[res.key(res.MSE_J, res.AUG)] / metrics[res.key(res.MSE_J,
                                                                               res.OBS)]
                expected.setdefault((generator, M), []).append(ratio)
                number += 1
    code, _, err = run_main([str(sweep)])
    assert code == 0 and "warning" not in err, err
    keys = drawn_keys(sweep / "report")
    assert {"generators.png", "mse_vs_M.png"} <= set(keys)
    assert set(keys["generators.png"]) >= {res.key(res.MSE_J, c) for c in (
        res.OBS, res.OBS_L2, *res.AUGMENTED_CONDITIONS)}
    assert {res.GEN_CONN_CORR_ERR_TRUE, res.GEN_CONN_CORR_ERR_TRUE_FLOOR} <= set(
        keys["generators.png"])
    assert res.key(res.MSE_J, res.OBS_L2) in keys["mse_vs_M.png"]

    from isingaug.report.aggregate import relative_runs, summarize
    from isingaug.report.collect import collect

    collection = collect([sweep])
    ratios = summarize(relative_runs(collection.runs, collection.params, [res.MSE_J], res.OBS),
                       collection.params)
    for (generator, M), values in expected.items():
        row = ratios[(ratios["generator"] == generator) & (ratios["M"] == M)
                     & (ratios["key"] == res.key(res.MSE_J, res.AUG))].iloc[0]
        assert row["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert row["sem"] == pytest.approx(np.std(values, ddof=1) / np.sqrt(3), rel=1e-12)
    obs_l2 = ratios[ratios["key"] == res.key(res.MSE_J, res.OBS_L2)]
    np.testing.assert_allclose(obs_l2["mean"], 0.95, rtol=1e-12)       # 0.95 obs by design
    assert not (ratios["key"] == res.key(res.MSE_J, res.OBS)).any()


def test_a_bad_report_block_warns_and_the_rest_is_drawn(tmp_path):
    sweep = tmp_path / "s"
    block = {"figures": [{"name": "bad", "y": ["mse_j"]},
                         {"name": "good", "x": "dataset.M", "y": [res.MSE_J]}]}
    for number, M in enumerate((200, 400)):
        write_run(sweep / str(number), n=8, M=M, seed=0, study="x", report=block)
    code, _, err = run_main([str(sweep)])
    assert code == 0
    assert "'mse_j' is not a declared metric" in err
    assert "good.png" in drawn_keys(sweep / "report") and "bad.png" not in drawn_keys(
        sweep / "report")


OPTUNA_APP = '''
import json, pathlib, hydra

@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    value = (cfg.x - 0.3) ** 2 + cfg.y
    with open(pathlib.Path(__file__).parent / "trials.jsonl", "a") as out:
        out.write(json.dumps({"x": cfg.x, "y": cfg.y, "value": value}) + "\\n")
    return value

main()
'''
OPTUNA_CONF = '''
defaults:
  - override hydra/sweeper: optuna
x: 0.0
y: 0
hydra:
  sweep:
    dir: SWEEP
  sweeper:
    direction: minimize
    n_trials: 4
    sampler:
      seed: 1
    params:
      x: interval(-1.0, 1.0)
      y: choice(0, 1)
'''


def test_optuna_best_trial_from_the_real_sweeper(tmp_path):
    """hydra-optuna-sweeper itself writes optimization_results.yaml; the page shows its best
    trial, which is the lowest value any trial returned."""
    app = tmp_path / "app"
    (app / "conf").mkdir(parents=True)
    sweep = tmp_path / "tune"
    (app / "app.py").write_text(textwrap.dedent(OPTUNA_APP))
    (app / "conf" / "config.yaml").write_text(OPTUNA_CONF.replace("SWEEP", str(sweep)))
    proc = subprocess.run([sys.executable, str(app / "app.py"), "-m"], cwd=app,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = [json.loads(line) for line in (app / "trials.jsonl").read_text().splitlines()]
    best = min(trials, key=lambda t: t["value"])
    assert written["best_value"] == pytest.approx(best["value"])
    for job in [p for p in sweep.iterdir() if p.is_dir()]:   # the toy's jobs are no isingaug runs
        shutil.rmtree(job)
    for number, M in enumerate((200, 400)):
        write_run(sweep / str(number), n=8, M=M, seed=0)
    assert run_main([str(sweep), "--quiet"])[0] == 0
    index = json.loads((sweep / "report" / "index.json").read_text())
    assert index["trials"][0]["best_value"] == pytest.approx(best["value"])
    assert index["trials"][0]["best_params"]["x"] == pytest.approx(best["x"])
    page = (sweep / "report" / "index.html").read_text()
    assert 'id="optuna"' in page and f"{best['value']:.4g}"[:4] in page


def test_console_script_quiet_and_out(tmp_path):
    for number, M in enumerate((200, 400)):
        write_run(tmp_path / "sweep" / str(number), n=8, M=M, seed=0)
    script = Path(sys.executable).with_name("isingaug-report")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "isingaug.report.cli"]
    out = tmp_path / "elsewhere"
    proc = subprocess.run([*command, str(tmp_path / "sweep"), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout.strip() == str(out / "index.html")
    assert len(pd.read_csv(out / "runs.csv")) == 2
    assert "mse_vs_M.png" in {p.name for p in (out / "figures").iterdir()}
    assert not (out / "failures.csv").exists() and not (tmp_path / "sweep" / "report").exists()


def test_bad_input_exits_2_with_a_message(tmp_path):
    code, out, err = run_main([str(tmp_path / "missing")])
    assert code == 2 and out == ""
    assert err.startswith("isingaug-report: error: ") and "no such directory" in err
    empty = tmp_path / "empty"
    (empty / "0" / ".hydra").mkdir(parents=True)
    code, _, err = run_main([str(empty)])
    assert code == 2 and "no results.json found" in err and "1 failed or unfinished" in err
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    code, _, err = run_main([str(a_file)])
    assert code == 2 and "not a directory" in err
    assert run_main([])[0] == 2  # argparse: SWEEP_DIR is required
    write_run(tmp_path / "ok" / "0", n=8, M=200, seed=0)
    code, _, err = run_main([str(tmp_path / "ok"), "--out", str(a_file)])
    assert code == 2 and "is not a directory" in err


def test_unreadable_results_are_failures_not_crashes(tmp_path):
    write_run(tmp_path / "s" / "0", n=8, M=200, seed=0)
    write_run(tmp_path / "s" / "1", n=8, M=400, seed=0)
    (tmp_path / "s" / "2").mkdir()
    (tmp_path / "s" / "2" / "results.json").write_text("{not json")
    code, _, err = run_main([str(tmp_path / "s"), "--quiet"])
    assert code == 0, err
    failures = pd.read_csv(tmp_path / "s" / "report" / "failures.csv")
    assert list(failures["type"]) == ["UnreadableResults"]
    # a later report with no failures removes the stale failures.csv
    (tmp_path / "s" / "2" / "results.json").unlink()
    assert run_main([str(tmp_path / "s"), "--quiet"])[0] == 0
    assert not (tmp_path / "s" / "report" / "failures.csv").exists()


def test_fields_following_couplings_make_one_strength_figure(tmp_path):
    """g_h = g (config g_h: null) moves with g: one line per condition, no separate g_h figure;
    figures of an earlier report that no longer apply are removed."""
    sweep = tmp_path / "strength"
    for number, (g, seed) in enumerate((g, s) for g in (0.5, 1.0, 1.5) for s in (0, 1)):
        write_run(sweep / str(number), n=8, M=300, seed=seed, generator="diffusion",
                  M_plus=4000, max_steps=1000, g=g)
    stale = sweep / "report" / "figures" / "mse_vs_M.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PNG_SIGNATURE)
    assert run_main([str(sweep), "--quiet"])[0] == 0
    names = {p.name for p in stale.parent.iterdir()}
    assert "mse_vs_g.png" in names and "mse_vs_g_h.png" not in names
    assert "mse_vs_M.png" not in names

    from isingaug.report.aggregate import summarize
    from isingaug.report.collect import collect
    from isingaug.report.series import condition_lines

    collection = collect([sweep])
    summary = summarize(collection.runs, collection.params)
    lines = condition_lines(summary, collection.params, res.MSE_J, "g")
    assert [line.condition for line in lines] == [res.OBS, res.AUG, res.AUG_OBS]
    expected = [np.mean([mse_J(8, 300, s, res.OBS, g=g, g_h=g) for s in (0, 1)])
                for g in (0.5, 1.0, 1.5)]
    np.testing.assert_allclose(lines[0].y, expected, rtol=1e-12)
    np.testing.assert_allclose(lines[0].x, [0.5, 1.0, 1.5])


def test_page_opens_in_headless_chromium(report, tmp_path):
    browser = shutil.which("chromium")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium (.ci/run does, from Debian's packages)")
        pytest.skip("chromium is not installed")
    index = report["out"] / "index.html"
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           index.as_uri()], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    body = re.search(r"<body[^>]*>", proc.stdout)
    assert body, proc.stdout[:500]
    total = len(list((report["out"] / "figures").glob("*.png")))
    assert f'data-loaded="{total}/{total}"' in body.group(0), body.group(0)
    assert 'data-errors="0"' in body.group(0), body.group(0)
