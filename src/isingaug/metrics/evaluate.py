"""All metrics of one inferred model, under stable flat keys (no condition suffix here)."""

from __future__ import annotations

import torch

from isingaug.data.base import Dataset
from isingaug.ising import IsingParams
from isingaug.metrics.likelihood import mean_log_likelihood, mean_pseudo_log_likelihood
from isingaug.metrics.parameters import parameter_errors
from isingaug.metrics.samples import energy_variance


def evaluate(params: IsingParams, dataset: Dataset,
             exact_loglik_max_n: int = 20) -> dict[str, float]:
    """Parameter errors (when the truth is known), Var[E] of train/test and (pseudo-)likelihoods.

    The test log-likelihood is exact (enumeration) for n <= exact_loglik_max_n and left out above;
    the pseudo-log-likelihood is always given.
    """
    model = params.to(device="cpu", dtype=torch.float64)
    out: dict[str, float] = {}
    if dataset.truth is not None:
        out.update(parameter_errors(model, dataset.truth))
    out["var_E_train"] = energy_variance(model, dataset.train)
    out["train_pseudo_loglik"] = mean_pseudo_log_likelihood(model, dataset.train)
    if dataset.test is not None:
        out["var_E_test"] = energy_variance(model, dataset.test)
        out["test_pseudo_loglik"] = mean_pseudo_log_likelihood(model, dataset.test)
        if model.n <= exact_loglik_max_n:
            out["test_loglik"] = mean_log_likelihood(model, dataset.test, exact_loglik_max_n)
    return out
