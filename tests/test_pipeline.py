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
