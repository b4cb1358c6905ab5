"""Every YAML of every config group composes and instantiates; every study composes with every
generator and solver at both scales; scale=smoke shrinks every study; the studies' report blocks
and the generator comparison's sweep say what they must."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from isingaug.config import CONFIG_DIR, build, compose_config
from isingaug.data.base import Dataset
from isingaug.generators.base import Generator
from isingaug.report.spec import block_problems
from isingaug.solvers.base import Solver
from isingaug.training import training_length

GROUPS = ("dataset", "generator", "solver", "trainer", "logger")


def group_options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


ALL = [(group, option) for group in GROUPS for option in group_options(group)]
EXPERIMENTS = group_options("experiment")
# The studies (their report figures declared, a basic sweep and its smoke sweep); the other
# experiments are the Optuna tuning presets (experiment=tune_<generator>).
STUDIES = [name for name in EXPERIMENTS
           if "report" in OmegaConf.load(CONFIG_DIR / "experiment" / f"{name}.yaml")]
GENERATORS = group_options("generator")
SOLVERS = group_options("solver")
SCALES = group_options("scale")


@pytest.fixture
def pattern_file(tmp_path) -> Path:
    path = tmp_path / "patterns.npz"
    rng = np.random.default_rng(0)
    np.savez(path, samples=rng.choice([-1, 1], size=(40, 5)))
    return path


def test_every_group_has_options():
    assert {"sk", "file"} <= set(group_options("dataset"))
    assert {"generators", "generators_n20", "neural", "sizes", "strength",
            "training_stage"} <= set(STUDIES)
    assert {"plm", "mle", "erasure", "mean_field", "interaction_screening"} <= set(SOLVERS)
    assert SCALES == ["paper", "smoke"]
    assert not [name for name in EXPERIMENTS if name.endswith("_smoke")]


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
    if group == "trainer":  # its length is the generator's unless trainer.max_steps is set
        steps = training_length(node.max_steps, cfg.generator.get("max_steps", 1))
        obj = instantiate(node, _convert_="all", max_steps=steps)
        assert obj.max_steps == steps
        return
    obj = instantiate(node, _convert_="all")
    expected = {"dataset": Dataset, "generator": Generator, "solver": Solver}.get(group)
    if expected is not None:
        assert isinstance(obj, expected)


def test_experiment_files_are_global_deltas():
    for name in EXPERIMENTS:
        assert (CONFIG_DIR / "experiment" / f"{name}.yaml").read_text().startswith(
            "# @package _global_"), name
    for name in SCALES:
        assert (CONFIG_DIR / "scale" / f"{name}.yaml").read_text().startswith(
            "# @package _global_"), name


def _compose(overrides: list[str], tmp_path: Path) -> DictConfig:
    cfg = compose_config([*overrides, f"paths.output_dir={tmp_path}", "device=cpu"])
    OmegaConf.resolve(cfg)
    return cfg


def _build_both(cfg: DictConfig) -> tuple[Generator, Solver]:
    """The generator and solver as the pipeline builds them: an option a model does not take
    (a diffusion-only `sampler` handed to an RBM) fails here."""
    generator = build(cfg.generator, "generator")
    solver = build(cfg.solver, "solver")
    assert isinstance(generator, Generator) and isinstance(solver, Solver)
    return generator, solver


# The generator node is composed from (experiment, scale, generator) and the solver node from
# (experiment, scale, solver): no option of either group writes outside its own node (checked
# below), so the fast tests compose each study with every generator and with every solver; the
# slow one composes the whole product.
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_study_composes_with_every_generator_and_solver_at_smoke(experiment, tmp_path):
    for generator in GENERATORS:
        _build_both(_compose([f"experiment={experiment}", "scale=smoke",
                              f"generator={generator}"], tmp_path))
    for solver in SOLVERS:
        _build_both(_compose([f"experiment={experiment}", "scale=smoke", f"solver={solver}"],
                             tmp_path))


def test_generator_and_solver_options_write_only_their_own_node():
    for group in ("generator", "solver"):
        for option in group_options(group):
            text = (CONFIG_DIR / group / f"{option}.yaml").read_text()
            assert "@package" not in text, (group, option)
            defaults = OmegaConf.load(CONFIG_DIR / group / f"{option}.yaml").get("defaults", [])
            assert all(isinstance(d, str) and "/" not in d for d in defaults), (group, option)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_study_generator_solver_product_composes(experiment, tmp_path):
    for generator in GENERATORS:
        for solver in SOLVERS:
            _build_both(_compose([f"experiment={experiment}", "scale=smoke",
                                  f"generator={generator}", f"solver={solver}"], tmp_path))


def test_smoke_study_with_rbm_gets_no_diffusion_keys(tmp_path):
    cfg = _compose(["experiment=strength", "scale=smoke", "generator=rbm"], tmp_path)
    rbm_keys = set(OmegaConf.load(CONFIG_DIR / "generator" / "rbm.yaml"))
    assert set(cfg.generator) == rbm_keys
    _build_both(cfg)


def test_smoke_shrinks_every_dataset_as_it_allows(tmp_path):
    """scale=smoke shrinks SK and the recording to 10 units and 500 patterns; a user's file keeps
    its units and test split and only its training patterns are cut (it has no n to set)."""
    assert {path.stem for path in (CONFIG_DIR / "scale_dataset").glob("smoke_*.yaml")} == {
        f"smoke_{name}" for name in group_options("dataset")}
    path = tmp_path / "patterns.npz"
    np.savez(path, samples=np.random.default_rng(0).choice([-1, 1], size=(900, 7)))
    for name, extra in (("sk", []), ("neural", []), ("file", [f"dataset.path={path}",
                                                              "dataset.test_fraction=0.2"])):
        cfg = _compose([f"dataset={name}", "scale=smoke", *extra], tmp_path)
        dataset = build(cfg.dataset, "dataset")
        assert isinstance(dataset, Dataset)
        assert dataset.train.shape == ((500, 7) if name == "file" else (500, 10)), name
        if name == "file":
            assert dataset.test.shape == (180, 7)
    assert _compose(["dataset=sk"], tmp_path).dataset.M == 4000     # paper scale: untouched


def _sweep(overrides: list[str]) -> tuple[DictConfig, dict[str, list[str]]]:
    """The composed config and the sweep it runs: {key: the values it takes}."""
    cfg = compose_config(overrides, return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True) or {}
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    sweep = {}
    for override in parsed:
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else \
            [override.get_value_element_as_str()]
        sweep[override.get_key_element()] = values
    return cfg, sweep


def _jobs(sweep: dict[str, list[str]]) -> int:
    return int(np.prod([len(values) for values in sweep.values()])) if sweep else 1


@pytest.mark.parametrize("experiment", STUDIES)
def test_smoke_shrinks_every_study(experiment):
    paper, paper_sweep = _sweep([f"experiment={experiment}"])
    smoke, smoke_sweep = _sweep([f"experiment={experiment}", "scale=smoke"])
    assert paper.study == smoke.study == experiment
    assert smoke.dataset.n <= 12 and smoke.dataset.M <= 1000 and smoke.M_plus <= 3000
    assert smoke.dataset.n <= paper.dataset.n and smoke.M_plus <= paper.M_plus
    steps = training_length(smoke.trainer.max_steps, smoke.generator.get("max_steps"))
    assert steps <= 200 and smoke.callbacks.energy_variance.eval_samples <= 500
    # the study's own small sweep: few seeds, fewer jobs, sizes that stay small
    assert len(smoke_sweep["seed"]) <= 2 < len(paper_sweep["seed"])
    assert _jobs(smoke_sweep) < _jobs(paper_sweep) and _jobs(smoke_sweep) <= 20
    assert set(smoke_sweep) - {"generator"} <= set(paper_sweep) | {"dataset.n", "dataset.M",
                                                                   "M_plus"}
    for key, limit in (("dataset.n", 12), ("dataset.M", 1000), ("M_plus", 3000),
                       ("trainer.max_steps", 200)):
        assert all(int(v) <= limit for v in smoke_sweep.get(key, [])), key
    # beside the paper-scale sweep, never inside it
    assert smoke.hydra.sweep.dir == f"{paper.hydra.sweep.dir}_smoke"


def test_smoke_applies_after_the_study_and_before_the_command_line():
    cfg = compose_config(["experiment=generators", "scale=smoke"])
    assert cfg.dataset.n == 10 and cfg.trainer.max_steps == 200      # the study says 40, 32000
    cfg = compose_config(["experiment=generators", "scale=smoke", "dataset.n=7"])
    assert cfg.dataset.n == 7
    assert compose_config(["scale=smoke"]).dataset.n == 10            # no study: still small
    assert compose_config(["experiment=generators"]).dataset.n == 40   # scale=paper: unchanged


@pytest.mark.parametrize("experiment", STUDIES)
def test_report_blocks_name_declared_metrics_and_parameters(experiment):
    cfg, sweep = _sweep([f"experiment={experiment}"])
    block = OmegaConf.to_container(cfg.report, resolve=True)
    assert block_problems(block) == []
    known = {*sweep, "M", "M_plus", "condition", "generator", "dataset.n", "dataset.M",
             "dataset.g", "dataset.g_h", "trainer.max_steps"}
    for figure in block["figures"]:
        named = [figure.get("x"), *figure.get("lines", []), *figure.get("panels", [])]
        assert {n for n in named if n} <= known, (experiment, figure["name"])


def test_report_block_problems_name_the_key():
    problems = block_problems({"figures": [{"name": "a b", "y": ["mse_j"], "colour": 1,
                                            "relative_to": "bootstrap"}], "extra": 1})
    text = " | ".join(problems)
    assert "report.extra: unknown key" in text
    assert "report.figures[0].name must be a file name" in text
    assert "'mse_j' is not a declared metric" in text
    assert "report.figures[0].colour: unknown key" in text
    assert "report.figures[0].relative_to must be one of obs" in text


@pytest.mark.parametrize("experiment", ["generators", "generators_n20"])
def test_generator_comparison_covers_every_generator_that_samples(experiment, tmp_path):
    sampling = []
    for name in GENERATORS:
        cfg = _compose([f"experiment={experiment}", f"generator={name}"], tmp_path)
        if build(cfg.generator, "generator").produces_samples:
            sampling.append(name)
    assert {"autoregressive", "masked_diffusion", "parametric"} <= set(sampling)
    cfg, sweep = _sweep([f"experiment={experiment}"])
    assert sorted(sweep["generator"]) == sorted(sampling)
    assert sweep["seed"] == ["0", "1", "2", "3", "4"]
    assert cfg.tune_l2 in ("obs", "both")    # obs_l2: obs solved with a tuned L2 beside obs
    _, smoke = _sweep([f"experiment={experiment}", "scale=smoke"])
    assert set(smoke["generator"]) <= set(sampling)
