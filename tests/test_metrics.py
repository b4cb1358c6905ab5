"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import torch

from conftest import all_states, brute_force, random_model
from isingaug.data.base import Dataset
from isingaug.ising import IsingParams, energy
from isingaug.metrics.evaluate import evaluate
from isingaug.metrics.parameters import parameter_errors


def test_parameter_errors_by_hand():
    truth = IsingParams(torch.tensor([1.0, 0.0, 0.0]),
                        torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 2.0], [0.0, 2.0, 0.0]]))
    estimate = IsingParams(torch.tensor([0.0, 0.0, 0.0]),
                           torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    errors = parameter_errors(estimate, truth)
    # dJ over (0,1), (0,2), (1,2) = 0, 1, -2; dh = -1, 0, 0
    assert math.isclose(errors["mse_J"], 5 / 3)
    assert math.isclose(errors["mse_h"], 1 / 3)
    assert math.isclose(errors["mse_all"], 6 / 6)
    assert math.isclose(errors["rel_err_J"], math.sqrt(5) / math.sqrt(5))


def test_evaluate_gives_exact_and_pseudo_likelihoods():
    params = random_model(5, seed=1)
    states = all_states(5)
    dataset = Dataset(train=states[:20].float(), test=states[10:].float(), truth=params)
    out = evaluate(params, dataset, exact_loglik_max_n=10)
    log_z, _, _ = brute_force(params)
    expected = float((-energy(params, states[10:]) - log_z).mean())
    assert math.isclose(out["test_loglik"], expected, rel_tol=1e-10)
    assert out["mse_J"] == 0.0 and out["rel_err_J"] == 0.0
    assert math.isclose(out["var_E_train"], float(energy(params, states[:20]).var(correction=0)))
    assert out["test_pseudo_loglik"] < 0
    assert "test_loglik" not in evaluate(params, dataset, exact_loglik_max_n=4)
