"""The parametric bootstrap: samples and likelihood of the inferred model, and in the pipeline
its augmented estimate comes back to the observed one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import all_states, brute_force, fit_context, random_model
from isingaug import results as res
from isingaug.config import build, compose_config
from isingaug.errors import ConfigError
from isingaug.generators.base import Generator
from isingaug.generators.parametric import Parametric
from isingaug.ising import moments
from isingaug.pipeline import run
from isingaug.sampling import exact_sample
from isingaug.solvers.plm import PseudoLikelihood

MODEL = random_model(6, g=1.0, seed=3)


@pytest.fixture(scope="module")
def train() -> torch.Tensor:
    return exact_sample(MODEL, 400, torch.Generator().manual_seed(0)).float()


@pytest.mark.parametrize(("sampler", "num", "tol"), [
    ({"kind": "exact"}, 100_000, 0.015),
    ({"kind": "mcmc", "chains": 2000, "burn_in": 50, "thin": 2}, 40_000, 0.03)])
def test_samples_have_the_moments_of_params_obs(sampler, num, tol, train):
    gen = Parametric(sampler=sampler, device="cpu")
    assert isinstance(gen, Generator) and not gen.trainable and not gen.tractable
    gen.fit(fit_context(train, params_obs=MODEL))
    assert gen.tractable
    samples = gen.sample(num, torch.Generator().manual_seed(1))
    assert samples.shape == (num, 6) and samples.dtype == torch.float32
    assert gen.diagnostics["source"] == "params_obs"
    _, first, second = brute_force(MODEL)
    got_first, got_second = moments(samples.double())
    # std of a +-1 mean: <= 0.0032 for 1e5 exact draws; <= 0.007 for 4e4 MCMC draws thinned
    # by 2 sweeps (tau_int(E) measured 1.6-2 sweeps for this model)
    torch.testing.assert_close(got_first, first, atol=tol, rtol=0)
    torch.testing.assert_close(got_second, second, atol=tol, rtol=0)
    assert torch.equal(samples[:100], gen.sample(num, torch.Generator().manual_seed(1))[:100])


def test_log_prob_is_the_exact_likelihood(train):
    gen = Parametric(device="cpu")
    gen.fit(fit_context(train, params_obs=MODEL))
    states = all_states(6)
    log_p = gen.log_prob(states)
    log_z, _, _ = brute_force(MODEL)
    assert log_p.dtype == torch.float64 and abs(float(torch.logsumexp(log_p, 0))) < 1e-10
    h, J = MODEL.h, MODEL.J
    by_hand = states @ h + 0.5 * ((states @ J) * states).sum(1) - log_z
    torch.testing.assert_close(log_p, by_hand)
    small = Parametric(max_enumeration_n=5, device="cpu")
    small.fit(fit_context(train, params_obs=MODEL))
    assert not small.tractable
    with pytest.raises(ConfigError, match=r"n=6 is above generator\.max_enumeration_n=5"):
        small.log_prob(states)


def test_a_named_solver_is_fitted_on_the_training_patterns(train):
    node = {"_target_": "isingaug.solvers.plm.PseudoLikelihood", "device": "cpu"}
    gen = Parametric(solver=node, device="cpu")
    gen.fit(fit_context(train, params_obs=None))
    expected = PseudoLikelihood(device="cpu").fit(train)
    torch.testing.assert_close(gen.params.J, expected.J)
    assert gen.diagnostics["source"] == "plm"
    # from the config: +solver@generator.solver=<option> puts a solver node under the generator
    cfg = compose_config(["generator=parametric", "+solver@generator.solver=mean_field",
                          "device=cpu"])
    built = build(cfg.generator, "generator")
    assert type(built.solver).__name__ == type(build(
        compose_config(["solver=mean_field", "device=cpu"]).solver, "solver")).__name__


def test_misuse_is_a_config_error(train):
    with pytest.raises(ConfigError, match="must be fitted"):
        Parametric(device="cpu").sample(3)
    with pytest.raises(ConfigError, match="does not have"):
        Parametric(device="cpu").fit(fit_context(train))
    with pytest.raises(ConfigError, match=r"generator\.solver must be null"):
        Parametric(solver={"l2": 0.1}, device="cpu")
    with pytest.raises(ConfigError, match=r"generator\.solver must be null"):
        Parametric(solver="plm", device="cpu")
    with pytest.raises(ConfigError, match=r"generator\.max_enumeration_n"):
        Parametric(max_enumeration_n=1.5, device="cpu")
    gen = Parametric(device="cpu")
    gen.fit(fit_context(train, params_obs=MODEL))
    assert gen.sample(0).shape == (0, 6)


def test_augmenting_with_the_parametric_bootstrap_gives_the_observed_estimate_back(tmp_path):
    """aug = PLM refitted on 50,000 samples of theta_obs: theta_obs again, up to sampling noise.

    Against the truth the ratio aug/obs of mse_J measured 0.95-1.12 over seeds 0-9 (seed 0:
    1.003): the noise of the cross term between the observed error and the refit's. The refit's
    own distance to theta_obs is about M / M_plus = 1% of the observed error (0.3-2.0% measured
    over seeds 0-9), the sharper check."""
    cfg = compose_config(["dataset.n=8", "dataset.M=500", "dataset.M_test=200", "device=cpu",
                          "generator=parametric", "M_plus=50000", "seed=0",
                          f"paths.output_dir={tmp_path}"])
    result = run(cfg, tmp_path)
    metrics = result["metrics"]
    assert result["run"]["generator"] == "parametric" and not result["run"]["trainable"]
    obs = metrics[res.key(res.MSE_J, res.OBS)]
    for condition in (res.AUG, res.AUG_OBS):
        assert abs(metrics[res.key(res.MSE_J, condition)] / obs - 1) < 0.15, condition
    params = np.load(tmp_path / res.PARAMS_FILE)
    refit = float(np.mean((params["J_aug"] - params["J_obs"]) ** 2))
    observed = float(np.mean((params["J_obs"] - params["J_true"]) ** 2))
    assert refit < 0.05 * observed, (refit, observed)
