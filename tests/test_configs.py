"""Every YAML of every config group composes and instantiates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from isingaug.config import CONFIG_DIR, compose_config
from isingaug.data.base import Dataset
from isingaug.generators.base import Generator
from isingaug.solvers.base import Solver

GROUPS = ("dataset", "generator", "solver", "trainer", "logger")


def group_options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


ALL = [(group, option) for group in GROUPS for option in group_options(group)]


@pytest.fixture
def pattern_file(tmp_path) -> Path:
    path = tmp_path / "patterns.npz"
    rng = np.random.default_rng(0)
    np.savez(path, samples=rng.choice([-1, 1], size=(40, 5)))
    return path


def test_every_group_has_options():
    assert {"sk", "file"} <= set(group_options("dataset"))
    assert {"plm", "mle", "erasure", "mean_field", "interaction_screening"} <= set(
        group_options("solver"))


@pytest.mark.parametrize(("group", "option"), ALL)
def test_option_composes_and_instantiates(group, option, tmp_path, pattern_file):
    overrides = [f"{group}={option}", f"paths.output_dir={tmp_path}", "device=cpu",
                 f"dataset.path={pattern_file}" if (group, option) == ("dataset", "file") else
                 "dataset.n=6", "trainer.accelerator=cpu"]
    if (group, option) != ("dataset", "file"):
        overrides += ["dataset.M=20", "dataset.M_test=5"]
    cfg = compose_config(overrides)
    OmegaConf.resolve(cfg)
    node = cfg[group]
    if group == "logger":
        built = [instantiate(sub) for sub in node.values()]
        assert built
        return
    obj = instantiate(node, _convert_="all")
    expected = {"dataset": Dataset, "generator": Generator, "solver": Solver}.get(group)
    if expected is not None:
        assert isinstance(obj, expected)


def test_experiment_files_are_global_deltas():
    for path in (CONFIG_DIR / "experiment").glob("*.yaml"):
        assert path.read_text().startswith("# @package _global_"), path.name
        compose_config([f"experiment={path.stem}"])
