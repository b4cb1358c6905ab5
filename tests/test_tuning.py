"""Generator tuning with Optuna: the presets (experiment=tune_<generator>), the objective a job
returns to the sweeper (isingaug.loggers.tune_objective), and a real tuning sweep of three trials
whose optimization_results.yaml must name the best of the trials' own results."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import get_class
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution

from isingaug.config import CONFIG_DIR, build, compose_config
from isingaug.errors import ConfigError
from isingaug.loggers import tune_objective
from isingaug.results import AUG_OBS, RESULTS_FILE, TEST_LOGLIK, key, metric_of
from isingaug.sweep import SUMMARY_FILE

PRESETS = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("tune_*.yaml")
                 if path.stem != "tune_base")


def test_every_learned_generator_has_a_tuning_preset():
    """One preset per learned generator (aliases such as diffusion_ddim share their class's)."""
    def target(generator: str) -> str:
        node = OmegaConf.load(CONFIG_DIR / "generator" / f"{generator}.yaml")
        if "_target_" in node:
            return node._target_
        return compose_config([f"generator={generator}"]).generator._target_   # via defaults

    learned = {}
    for path in sorted((CONFIG_DIR / "generator").glob("*.yaml")):
        if getattr(get_class(target(path.stem)), "trainable", False):
            learned.setdefault(target(path.stem), path.stem)
    tuned = set()
    for preset in PRESETS:
        defaults = OmegaConf.to_container(
            OmegaConf.load(CONFIG_DIR / "experiment" / f"{preset}.yaml").defaults)
        tuned |= {target(entry["override /generator"]) for entry in defaults
                  if isinstance(entry, dict) and "override /generator" in entry}
    missing = sorted(name for target, name in learned.items() if target not in tuned)
    assert not missing, f"no conf/experiment/tune_<generator>.yaml for {missing}"
    assert {"rbm", "ff_rbm", "vae", "diffusion"} <= {p.removeprefix("tune_") for p in PRESETS}


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_is_an_optuna_search_over_valid_generator_options(preset):
    cfg = compose_config([f"experiment={preset}"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert cfg.task_name == cfg.study == preset      # its own sweep folder and report column
    assert cfg.generator._target_ == compose_config(
        [f"generator={preset.removeprefix('tune_')}"]).generator._target_
    # the objective is a declared metric and the sweeper's direction is the one it needs
    metric = metric_of(cfg.tune.objective)
    assert metric is not None and metric.lower_is_better is not None
    assert sweeper.direction == ("minimize" if metric.lower_is_better else "maximize")
    assert cfg.dataset.n <= cfg.metrics.exact_loglik_max_n      # test_loglik is computed
    # the search space, parsed by the plugin itself: generator options only, every one of them
    # accepted by the generator at each choice and at both ends of each interval
    params = dict(sweeper.params)
    distributions, fixed = create_params_from_overrides([f"{k}={v}" for k, v in params.items()])
    assert not fixed and distributions.keys() == params.keys()
    for name, distribution in distributions.items():
        assert name.startswith("generator.") and name.split(".", 1)[1] in cfg.generator, name
        values = (distribution.choices if isinstance(distribution, CategoricalDistribution)
                  else (distribution.low, distribution.high))
        for value in values:
            trial = OmegaConf.to_container(cfg.generator)
            trial[name.split(".", 1)[1]] = value
            trial.update(seed=0, device="cpu")
            build(OmegaConf.create(trial), "generator")


def test_scale_smoke_keeps_the_search_space_and_shrinks_the_trials():
    paper = compose_config(["experiment=tune_rbm"], return_hydra_config=True)
    smoke = compose_config(["experiment=tune_rbm", "scale=smoke"], return_hydra_config=True)
    space = OmegaConf.load(CONFIG_DIR / "experiment" / "tune_rbm.yaml").tune.space
    for cfg in (paper, smoke):
        assert dict(cfg.hydra.sweeper.params) == dict(space)
        assert cfg.hydra.sweeper.n_trials == cfg.tune.n_trials
    assert smoke.dataset.n < paper.dataset.n and smoke.M_plus < paper.M_plus
    assert smoke.trainer.max_steps < paper.trainer.max_steps
    assert smoke.hydra.sweep.dir != paper.hydra.sweep.dir
    assert smoke.dataset.n <= smoke.metrics.exact_loglik_max_n


METRICS = {"test_loglik/aug_obs": -4.25, "mse_J/aug_obs": 0.125, "gen/var_E_obs": 5.0,
           "var_E_train/obs": 3.5, "custom/score": 2.0}


def tune(**options) -> OmegaConf:
    return OmegaConf.create({"tune": {"objective": None, "direction": "maximize",
                                      "reference": None, **options}})


def test_objective_is_the_named_metric_or_a_distance():
    assert tune_objective(OmegaConf.create({"seed": 0}), METRICS) is None
    assert tune_objective(tune(), METRICS) is None
    assert tune_objective(tune(objective="test_loglik/aug_obs"), METRICS) == -4.25
    assert tune_objective(tune(objective="mse_J/aug_obs", direction="minimize"), METRICS) == 0.125
    # |Var E of the generated patterns - Var E of the training data| = |5.0 - 3.5|
    for objective, reference in (("gen/var_E_obs", "var_E_train/obs"),
                                 ("var_E_train/obs", "gen/var_E_obs")):
        assert tune_objective(tune(objective=objective, reference=reference,
                                   direction="minimize"), METRICS) == 1.5
    # a key the vocabulary does not declare (yet) is taken as it is, either direction
    assert tune_objective(tune(objective="custom/score", direction="minimize"), METRICS) == 2.0


@pytest.mark.parametrize(("options", "message"), [
    ({"objective": "gen/kl_exact", "direction": "minimize"},
     r"tune.objective='gen/kl_exact' is not among this run's metrics.*test_loglik/aug_obs"),
    ({"objective": "gen/var_E_obs", "reference": "var_E_test/obs", "direction": "minimize"},
     r"tune.reference='var_E_test/obs' is not among"),
    ({"objective": "mse_J/aug_obs", "direction": "maximize"},
     r"tune.direction must be minimize for tune.objective=mse_J/aug_obs"),
    ({"objective": "test_loglik/aug_obs", "direction": "minimize"},
     r"tune.direction must be maximize for tune.objective=test_loglik/aug_obs"),
    ({"objective": "gen/var_E_obs", "reference": "var_E_train/obs", "direction": "maximize"},
     r"tune.direction must be minimize with tune.reference"),
    ({"objective": "test_loglik/aug_obs", "direction": "up"},
     r"tune.direction must be minimize or maximize; got 'up'"),
])
def test_objective_errors_name_the_key(options, message):
    with pytest.raises(ConfigError, match=message):
        tune_objective(tune(**options), METRICS)


# tune_rbm at scale=smoke, cut further to seconds a trial: n = 8, 20 training steps, 3 trials
TINY = ["experiment=tune_rbm", "scale=smoke", "tune.n_trials=3", "dataset.n=8", "dataset.M=300",
        "M_plus=500", "trainer.max_steps=20", "generator.gibbs_steps=50",
        "callbacks.energy_variance.eval_every=10", "callbacks.energy_variance.eval_samples=200",
        "device=cpu"]


def tuning_sweep(out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ISINGAUG_OUTPUT_DIR": str(out), "ISINGAUG_CACHE_DIR": str(out / "cache")}
    return subprocess.run([sys.executable, "-m", "isingaug", "-m", *TINY], capture_output=True,
                          text=True, env=env, timeout=900)


@pytest.mark.slow
def test_optuna_sweep_reports_the_best_trial_and_resumes(tmp_path):
    proc = tuning_sweep(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep_dir = tmp_path / "multirun" / "tune_rbm_smoke"
    best = OmegaConf.to_container(OmegaConf.load(sweep_dir / "optimization_results.yaml"))
    trials = [json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{RESULTS_FILE}")]
    assert len(trials) == 3
    objective = key(TEST_LOGLIK, AUG_OBS)
    values = [t["metrics"][objective] for t in trials]
    assert all(math.isfinite(v) and v < 0 for v in values)
    # the best value is the largest of the trials' own held-out log-likelihoods, and its
    # parameters are the generator options of a trial with that value (at 20 steps two RBMs
    # can stay close enough to their common start to draw the very same patterns: a tie)
    assert best["name"] == "optuna" and best["best_value"] == max(values)
    space = OmegaConf.load(CONFIG_DIR / "experiment" / "tune_rbm.yaml").tune.space
    assert best["best_params"].keys() == space.keys()
    winners = [t["config"]["generator"] for t, v in zip(trials, values, strict=True)
               if v == max(values)]
    assert any(all(generator[name.split(".", 1)[1]] == value
                   for name, value in best["best_params"].items()) for generator in winners)
    # the trials differ (the sampler proposes new points)
    assert len({t["config"]["generator"]["lr"] for t in trials}) == 3
    summary = json.loads((sweep_dir / SUMMARY_FILE).read_text())
    assert summary["counts"] == {"finished": 3, "failed": 0, "unfinished": 0}

    # the same command again: the seeded sampler proposes the same trials, each is skipped and
    # returns its saved objective, and the same best trial is reported
    again = tuning_sweep(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (again.stdout + again.stderr).count("skipped:") == 3
    assert OmegaConf.to_container(OmegaConf.load(sweep_dir / "optimization_results.yaml")) == best
