"""isingaug-report on a synthetic set of sweeps written in the pipeline's file format: tables,
mean ± sem by hand, failures, every figure a real picture, the page loads in a browser."""

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
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg

from isingaug.report.cli import main

CONDITIONS = ("obs", "aug", "aug_obs")
TARGETS = {"none": "isingaug.generators.baselines.NoGenerator",
           "diffusion": "isingaug.generators.diffusion.Diffusion",
           "vae": "isingaug.generators.vae.VAE", "rbm": "isingaug.generators.rbm.RBM"}
EXPECTED_FIGURES = ("mse_vs_M.png", "mse_vs_M_plus.png", "mse_vs_g.png", "mse_vs_g_h.png",
                    "scatter_J.png", "energy_variance.png", "mse_vs_steps.png", "generators.png",
                    "impute_vs_M.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def mse_J(n: int, M: int, seed: int, condition: str, M_plus: int = 0, steps: int | None = None,
          g: float = 1.0, g_h: float = 1.0) -> float:
    """The synthetic coupling error of one run: falls with M, depends on the condition."""
    base = n / 8 * 10.0 / M * (1 + 0.1 * seed) * g * (1 + 0.2 * g_h)
    if condition == "obs":
        return base
    factor = (0.9 if condition == "aug" else 0.8) + 300.0 / M_plus
    if steps is not None:
        factor *= 1 + 0.3 * abs(math.log10(steps) - 3)
    return base * factor


def write_run(folder: Path, *, n: int, M: int, seed: int, generator: str = "none",
              M_plus: int = 0, g: float | None = 1.0, g_h: float | None = None,
              max_steps: int | None = None, dataset: str = "sk", study: str | None = None,
              curve: bool = False) -> None:
    """One run folder as the pipeline writes it: .hydra/config.yaml, params.npz, results.json."""
    folder.mkdir(parents=True)
    conditions = CONDITIONS if generator != "none" else ("obs",)
    run = {"dataset": dataset, "generator": generator, "solver": "plm", "n": n, "M": M,
           "M_test": 4000, "M_plus": M_plus, "seed": seed, "data_seed": seed, "study": study}
    if g is not None:
        run.update(g=g, g_h=g if g_h is None else g_h)
    if max_steps is not None:
        run["max_steps"] = max_steps
    metrics: dict[str, float | None] = {}
    rng = np.random.default_rng(1000 * n + M + seed)
    arrays: dict[str, np.ndarray] = {}
    if dataset == "sk":
        J = np.triu(rng.normal(0, 1 / np.sqrt(n), (n, n)), 1)
        arrays.update(J_true=J + J.T, h_true=rng.normal(0, 1 / np.sqrt(n), n))
    for condition in conditions:
        if dataset == "sk":
            mse = mse_J(n, M, seed, condition, M_plus, max_steps if generator != "none" else None,
                        run["g"], run["g_h"])
            metrics.update({f"mse_J/{condition}": mse, f"mse_all/{condition}": 0.9 * mse,
                            f"mse_h/{condition}": 2 * mse, f"rel_err_J/{condition}": mse ** 0.5,
                            f"test_loglik/{condition}": None if seed == 0 else -n * 0.5 - mse})
            noise = np.triu(rng.normal(0, np.sqrt(mse), (n, n)), 1)
            arrays[f"J_{condition}"] = arrays["J_true"] + noise + noise.T
            arrays[f"h_{condition}"] = arrays["h_true"] + rng.normal(0, np.sqrt(mse), n)
        else:
            gain = {"obs": 0.0, "aug": 0.01, "aug_obs": 0.02}[condition] + M / 1e5
            metrics.update({f"impute_acc/{condition}": 0.8 + gain + 0.001 * seed,
                            f"impute_spike_acc/{condition}": 0.5 + 2 * gain,
                            f"impute_cond_loglik/{condition}": -3.0 + gain})
            arrays[f"J_{condition}"] = rng.normal(0, 0.1, (n, n))
        metrics[f"solver_seconds/{condition}"] = 0.1 + 0.01 * seed
    if dataset != "sk":
        metrics.update({"impute_acc/baseline_freq": 0.7, "impute_acc/baseline_indep": 0.75,
                        "impute_spike_acc/baseline_freq": 0.3})
    if generator not in ("none",):
        metrics.update({"gen/aai": 0.01 * (1 + seed) * (2 if generator == "vae" else 1),
                        "gen/copy_fraction": 0.05 if generator == "rbm" else 0.01,
                        "gen/train_seconds": 10.0})
    diagnostics: dict = {"solver/obs": {"converged": True}}
    if curve:
        steps = [s for s in (50, 100, 200, 500, 1000, 2000, 5000, 10000) if s <= max_steps]
        reference = {"var_E_train/obs": 4.0, "var_E_test/obs": 4.5, "var_E_train/true": 5.0,
                     "var_E_test/true": 5.2}
        diagnostics["energy_variance"] = {
            "select": "energy_variance", "selected_step": min(1000, max_steps),
            "reference": reference,
            "curve": [{"step": s, "var_E_gen/obs": 4.0 * (1 - math.exp(-s / 300)) + 0.1 * seed,
                       "var_E_gen/true": 5.0 * (1 - math.exp(-s / 300)),
                       "copy_fraction": min(1.0, s / 20000)} for s in steps]}
    config = {"dataset": {"_target_": f"isingaug.data.{dataset}", "n": n, "M": M, "M_test": 4000,
                          "g": g, "g_h": g_h, "data_seed": seed},
              "generator": {"_target_": TARGETS[generator]},
              "trainer": {"max_steps": max_steps or 1000}, "M_plus": M_plus, "seed": seed,
              "paths": {"output_dir": str(folder)}, "solver": {"_target_": "plm", "l2": 0.0}}
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "config.yaml").write_text(json.dumps(config))
    np.savez(folder / "params.npz", **arrays)
    results = {"run": run, "metrics": metrics, "diagnostics": diagnostics,
               "seconds": {"data": 0.5, "generator_fit": 2.0, "total": 3.0 + seed},
               "config": config}
    (folder / "results.json").write_text(json.dumps(results))


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
    for column in ("dataset", "n", "M", "M_plus", "seed", "max_steps", "mse_J/obs",
                   "mse_J/aug_obs", "gen/aai", "impute_acc/baseline_freq", "seconds.total",
                   "config.trainer.max_steps", "ev.var_E_train/obs"):
        assert column in parquet, column
    row = parquet[(parquet["generator"] == "diffusion") & (parquet["max_steps"] == 100)
                  & (parquet["seed"] == 1)].iloc[0]
    assert row["mse_J/aug"] == pytest.approx(mse_J(8, 500, 1, "aug", 4000, 100))
    assert pd.isna(parquet.loc[parquet["generator"] == "none", "max_steps"]).all()


def test_summary_mean_and_sem_match_hand_computation(report):
    summary = pd.read_parquet(report["out"] / "summary.parquet")
    pd.testing.assert_frame_equal(summary, pd.read_parquet(report["out"] / "summary.parquet"))

    def pick(**where) -> pd.Series:
        mask = np.ones(len(summary), bool)
        for key, value in where.items():
            mask &= (summary[key] == value).to_numpy()
        rows = summary[mask]
        assert len(rows) == 1, where
        return rows.iloc[0]

    values = np.array([mse_J(8, 200, s, "aug_obs", 1000, 1000) for s in range(3)])
    row = pick(generator="diffusion", n=8, M=200, M_plus=1000, key="mse_J/aug_obs")
    assert row["count"] == 3
    assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert row["sem"] == pytest.approx(values.std(ddof=1) / np.sqrt(3), rel=1e-12)
    assert (row["metric"], row["condition"]) == ("mse_J", "aug_obs")

    obs = np.array([mse_J(12, 800, s, "obs") for s in range(3)])
    row = pick(generator="none", n=12, M=800, key="mse_J/obs")
    assert (row["mean"], row["count"]) == (pytest.approx(obs.mean()), 3)
    assert row["sem"] == pytest.approx(obs.std(ddof=1) / np.sqrt(3))

    single = pick(generator="rbm", key="mse_J/aug")  # one seed: sem unknown, not 0
    assert single["count"] == 1 and np.isnan(single["sem"])
    nulls = pick(generator="none", n=8, M=400, key="test_loglik/obs")  # seed 0 wrote null
    assert nulls["count"] == 2
    gen = pick(generator="vae", key="gen/aai")
    assert gen["metric"] == "gen/aai" and pd.isna(gen["condition"])
    assert gen["mean"] == pytest.approx(np.mean([0.02, 0.04]))
    steps = summary.loc[summary["generator"] == "diffusion", "max_steps"].dropna()
    assert set(steps) == {100, 1000, 10000}
    assert "seed" not in summary and "data_seed" not in summary
    assert (pd.read_csv(report["out"] / "summary.csv")["count"] == summary["count"]).all()


def test_failures_are_listed(report):
    failures = pd.read_csv(report["out"] / "failures.csv")
    assert len(failures) == 2
    error = failures[failures["type"] == "ConfigError"].iloc[0]
    assert "solver diverged" in error["error"] and "seed=9" in error["overrides"]
    assert error["run_dir"].endswith("99")
    assert (failures["type"] == "Unfinished").sum() == 1
    page = (report["out"] / "index.html").read_text()
    assert 'id="failures"' in page and "solver diverged at M=200" in page


def test_every_expected_figure_is_a_real_picture(report):
    figures = report["out"] / "figures"
    assert sorted(p.name for p in figures.glob("*.png")) == sorted(EXPECTED_FIGURES)
    for name in EXPECTED_FIGURES:
        data = (figures / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        pixels = mpimg.imread(figures / name)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300, name
        assert pixels[..., :3].var() > 1e-3, f"{name} is blank"
    assert not list(report["out"].rglob("*.tmp"))


def test_page_references_every_figure_and_table(report):
    out = report["out"]
    page = (out / "index.html").read_text()
    sources = set(re.findall(r'<img src="([^"]+)"', page))
    assert sources == {f"figures/{p.name}" for p in (out / "figures").glob("*.png")}
    for name in ("runs.csv", "runs.parquet", "summary.csv", "summary.parquet", "failures.csv"):
        assert f'href="{name}"' in page
    assert "mse_J/aug_obs" in page and "±" in page


def test_progress_on_stderr(report):
    err = report["stderr"]
    assert f"collecting {RUN_COUNT}/{RUN_COUNT} runs" in err
    assert f"figure 1/{len(EXPECTED_FIGURES)}: mse_vs_M.png" in err
    assert "warning" not in err


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
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["mse_vs_M.png", "scatter_J.png"]
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
    names = sorted(p.name for p in stale.parent.iterdir())
    assert names == ["mse_vs_g.png", "scatter_J.png"]

    from isingaug.report.aggregate import summarize
    from isingaug.report.collect import collect
    from isingaug.report.series import condition_lines

    collection = collect([sweep])
    summary = summarize(collection.runs, collection.params)
    lines = condition_lines(summary, collection.params, "mse_J", "g")
    assert [line.condition for line in lines] == ["obs", "aug", "aug_obs"]
    expected = [np.mean([mse_J(8, 300, s, "obs", g=g, g_h=g) for s in (0, 1)])
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
    total = len(EXPECTED_FIGURES)
    assert f'data-loaded="{total}/{total}"' in body.group(0), body.group(0)
    assert 'data-errors="0"' in body.group(0), body.group(0)
