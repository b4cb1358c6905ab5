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
