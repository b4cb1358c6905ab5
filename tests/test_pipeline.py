"""The one-run flow in process: files written, loggers fed, config reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest

from isingaug.config import compose_config
from isingaug.errors import ConfigError
from isingaug.pipeline import run

SMALL = ["dataset.n=6", "dataset.M=300", "dataset.M_test=100", "device=cpu"]


def test_rerun_from_saved_config_reproduces_results(tmp_path):
    cfg = compose_config([*SMALL, f"paths.output_dir={tmp_path / 'a'}", "seed=4"])
    first = run(cfg, tmp_path / "a")
    again = run(cfg, tmp_path / "b")
    assert first["metrics"]["mse_J/obs"] == again["metrics"]["mse_J/obs"]
    saved = json.loads((tmp_path / "a" / "results.json").read_text())
    assert saved["config"]["seed"] == 4 and saved["run"]["M"] == 300
    assert np.array_equal(np.load(tmp_path / "a" / "params.npz")["J_obs"],
                          np.load(tmp_path / "b" / "params.npz")["J_obs"])


def test_wandb_offline_run_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_config([*SMALL, "logger=wandb", f"paths.output_dir={tmp_path}"])
    run(cfg, tmp_path)
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert (tmp_path / "csv" / "metrics.csv").exists()


def test_negative_seed_or_M_plus_is_refused_before_any_file(tmp_path):
    with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
        run(compose_config([*SMALL, "seed=-1"]), tmp_path)
    with pytest.raises(ConfigError, match="M_plus must be an integer >= 0"):
        run(compose_config([*SMALL, "M_plus=-5"]), tmp_path)
    assert not list(tmp_path.iterdir())


def test_real_data_are_scored_by_missing_value_reconstruction(tmp_path):
    cfg = compose_config(["dataset=neural", "dataset.n=10", "dataset.M=500", "device=cpu",
                          "imputation.k=3", "imputation.max_patterns=300",
                          f"paths.output_dir={tmp_path}"])
    metrics = run(cfg, tmp_path)["metrics"]
    assert "mse_J/obs" not in metrics
    for key in ("impute_acc/obs", "impute_acc_spike/obs", "impute_cond_loglik/obs",
                "impute_acc/baseline_freq", "impute_cond_loglik/baseline_indep"):
        assert key in metrics, key
    assert metrics["impute_cond_loglik/obs"] > metrics["impute_cond_loglik/baseline_indep"]


def test_imputation_is_off_for_synthetic_data_unless_asked(tmp_path):
    out = [*SMALL, f"paths.output_dir={tmp_path}"]
    assert not any(k.startswith("impute") for k in run(compose_config(out), tmp_path)["metrics"])
    cfg = compose_config([*out, "imputation.enabled=true", "imputation.k=2"])
    assert "impute_acc/obs" in run(cfg, tmp_path)["metrics"]
    with pytest.raises(ConfigError, match=r"imputation\.enabled must be auto, true or false"):
        run(compose_config([*out, "imputation.enabled=sometimes"]), tmp_path)


def test_generator_run_resumed_from_a_checkpoint_continues_exactly(tmp_path):
    """20 steps in one go == 10 steps, then resume_from the last checkpoint up to 20 (in another
    folder), with the energy-variance choice made across both parts. A constant lr: a cosine
    decay follows each run's own max_steps, so it resumes exactly only to the same length."""
    base = [*SMALL, "generator=vae", "generator.lr_schedule=constant", "M_plus=500",
            "callbacks=select_by_energy_variance",
            "callbacks.energy_variance.eval_every=5", "callbacks.energy_variance.eval_samples=200"]

    def go(name: str, *extra: str) -> dict:
        cfg = compose_config([*base, f"paths.output_dir={tmp_path / name}", *extra])
        return run(cfg, tmp_path / name)

    whole = go("whole", "trainer.max_steps=20")
    go("first", "trainer.max_steps=10")
    resumed = go("resumed", "trainer.max_steps=20",
                 f"resume_from={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}")
    for key in ("mse_J/aug", "mse_J/aug_obs", "gen/aai", "gen/var_E_obs"):
        assert resumed["metrics"][key] == whole["metrics"][key], key
    curve = resumed["diagnostics"]["energy_variance"]
    assert [p["step"] for p in curve["curve"]] == [5, 10, 15, 20]
    assert curve["selected_step"] == whole["diagnostics"]["energy_variance"]["selected_step"]
    assert (tmp_path / "whole" / "checkpoints" / "last.ckpt").is_file()


def test_generator_needs_M_plus_and_known_conditions(tmp_path):
    with pytest.raises(ConfigError, match="M_plus must be >= 1 with generator=bootstrap"):
        run(compose_config([*SMALL, "generator=bootstrap"]), tmp_path)
    with pytest.raises(ConfigError, match=r"augment\.conditions must be"):
        run(compose_config([*SMALL, "generator=bootstrap", "M_plus=10",
                            "augment.conditions=[aug,both]"]), tmp_path)
    with pytest.raises(ConfigError, match="generator=oracle needs the true parameters"):
        run(compose_config(["dataset=neural", "dataset.n=6", "dataset.M=200", "device=cpu",
                            "generator=oracle", "M_plus=10", "imputation.k=2",
                            f"paths.output_dir={tmp_path}"]), tmp_path)
    assert not list(tmp_path.glob("**/results.json"))


@pytest.mark.parametrize("choice, tuned", [
    ("none", ()), ("obs", ("obs_l2",)), ("both", ("obs_l2", "aug_l2", "aug_obs_l2"))])
def test_tune_l2_decides_which_conditions_get_a_tuned_twin(choice, tuned, tmp_path):
    """tune_l2 on SK data: the plain conditions always, each tuned twin fitted with the L2 the
    cross-validation chose (a grid value), never with the configured l2 = 0."""
    cfg = compose_config([*SMALL, "generator=bootstrap", "M_plus=300", f"tune_l2={choice}",
                          f"paths.output_dir={tmp_path}"])
    result = run(cfg, tmp_path)
    solved = {key.split("/")[1] for key in result["metrics"] if key.startswith("mse_J/")}
    assert solved == {"obs", "aug", "aug_obs", *tuned}
    for condition in tuned:
        diagnostics = result["diagnostics"][f"solver/{condition}"]
        assert diagnostics["l2"] in diagnostics["cv_grid"] and diagnostics["l2"] > 0
    for condition in ("obs", "aug", "aug_obs"):
        assert "cv_grid" not in result["diagnostics"][f"solver/{condition}"]


def test_tune_l2_all_fits_every_condition_tuned_only(tmp_path):
    cfg = compose_config([*SMALL, "generator=bootstrap", "M_plus=300", "tune_l2=all",
                          f"paths.output_dir={tmp_path}"])
    result = run(cfg, tmp_path)
    assert {k for k in result["metrics"] if k.startswith("mse_J/")} == {
        "mse_J/obs", "mse_J/aug", "mse_J/aug_obs"}
    assert all("cv_grid" in result["diagnostics"][f"solver/{c}"] for c in ("obs", "aug", "aug_obs"))
    with pytest.raises(ConfigError, match="tune_l2 must be one of"):
        run(compose_config([*SMALL, "tune_l2=twice", f"paths.output_dir={tmp_path / 'bad'}"]),
            tmp_path / "bad")


def test_csv_metrics_of_a_resumed_run_are_kept_and_appended(tmp_path):
    """Lightning's CSVLogger deletes an existing metrics.csv; a resumed job must keep the curve
    it logged before it was killed."""
    import csv

    from isingaug.loggers import ResumableCSVLogger

    first = ResumableCSVLogger(save_dir=tmp_path, name="csv", version="")
    first.log_metrics({"loss": 1.0}, step=0)
    first.finalize("success")
    again = ResumableCSVLogger(save_dir=tmp_path, name="csv", version="")
    again.log_metrics({"loss": 0.5, "recon": 0.2}, step=10)
    again.finalize("success")
    with open(tmp_path / "csv" / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["step"], r["loss"], r["recon"]) for r in rows] == [("0", "1.0", ""),
                                                                  ("10", "0.5", "0.2")]
