"""Missing-value reconstruction: exact completion against brute force, Gibbs against exact,
baselines by hand, the choice of hidden entries and every option's error."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from conftest import random_model
from isingaug.data.base import Dataset
from isingaug.errors import ConfigError
from isingaug.ising import IsingParams, energy
from isingaug.metrics import imputation
from isingaug.metrics.imputation import (
    ImputationSettings,
    choose_hidden,
    complete,
    completion_scores,
    imputation_baselines,
    imputation_metrics,
    imputation_scores,
)


def random_patterns(num: int, n: int, p_spike: float = 0.3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(num, n, generator=gen) < p_spike, 1.0, -1.0).double()


def random_hidden(num: int, n: int, k: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(num, n, generator=gen).argsort(1)[:, :k]


def brute_force_completion(params: IsingParams, pattern: torch.Tensor, hidden: list[int]):
    """Score every completion of one pattern by the full energy: mode, log P(truth), marginals."""
    candidates = []
    for values in itertools.product([-1.0, 1.0], repeat=len(hidden)):
        filled = pattern.clone()
        filled[hidden] = torch.tensor(values, dtype=filled.dtype)
        candidates.append(filled)
    states = torch.stack(candidates)
    log_w = -energy(params, states)
    log_z = torch.logsumexp(log_w, 0)
    truth_index = next(i for i, s in enumerate(states) if torch.equal(s, pattern))
    marginal = torch.exp(log_w - log_z) @ states[:, hidden]
    return states[int(log_w.argmax()), hidden], float(log_w[truth_index] - log_z), marginal


@pytest.fixture
def tiny():
    params = random_model(7, g=1.5, seed=3)
    patterns = random_patterns(25, 7)
    return params, patterns, random_hidden(25, 7, 3)


@pytest.mark.parametrize("predict", ["joint", "marginal"])
def test_exact_completion_equals_brute_force(tiny, predict: str) -> None:
    params, patterns, hidden = tiny
    result = complete(params, patterns, hidden, ImputationSettings(k=3, predict=predict))
    for row in range(patterns.shape[0]):
        mode, loglik, marginal = brute_force_completion(params, patterns[row],
                                                         hidden[row].tolist())
        expected = mode if predict == "joint" else torch.where(marginal > 0, 1.0, -1.0)
        assert torch.equal(result.predicted[row], expected.double())
        assert result.cond_loglik[row].item() == pytest.approx(loglik, abs=1e-10)


def test_chunking_over_patterns_and_completions_changes_nothing(tiny, monkeypatch) -> None:
    params, patterns, hidden = tiny
    whole = complete(params, patterns, hidden, ImputationSettings(k=3))
    monkeypatch.setattr(imputation, "COMPLETION_CHUNK", 2)
    pieces = complete(params, patterns, hidden, ImputationSettings(k=3, max_elements=5))
    assert torch.equal(whole.predicted, pieces.predicted)
    torch.testing.assert_close(whole.cond_loglik, pieces.cond_loglik)


def test_forced_gibbs_agrees_with_exact() -> None:
    params = random_model(9, g=1.0, seed=5)
    patterns = random_patterns(40, 9, seed=2)
    hidden = random_hidden(40, 9, 4, seed=4)
    exact = complete(params, patterns, hidden, ImputationSettings(k=4))
    gibbs = complete(params, patterns, hidden,
                     ImputationSettings(k=4, exact_max_k=0, gibbs_chains=16, gibbs_sweeps=50,
                                        gibbs_burn_in=10),
                     torch.Generator().manual_seed(0))
    assert gibbs.cond_loglik is None
    assert torch.equal(gibbs.predicted, exact.predicted)


def test_forced_gibbs_marginals_agree_where_they_are_clear() -> None:
    params = random_model(9, g=1.0, seed=5)
    patterns = random_patterns(40, 9, seed=2)
    hidden = random_hidden(40, 9, 4, seed=4)
    settings = ImputationSettings(k=4, predict="marginal", exact_max_k=0, gibbs_chains=64,
                                  gibbs_sweeps=100, gibbs_burn_in=10)
    gibbs = complete(params, patterns, hidden, settings, torch.Generator().manual_seed(0))
    means = torch.stack([brute_force_completion(params, patterns[row], hidden[row].tolist())[2]
                         for row in range(40)])
    clear = means.abs() > 0.1
    assert clear.float().mean() > 0.8
    assert torch.equal(gibbs.predicted[clear], torch.where(means > 0, 1.0, -1.0)[clear].double())


def test_accuracies_split_into_spikes_and_silences() -> None:
    truth = torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]])
    predicted = torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, -1.0]])
    scores = completion_scores(predicted, truth, torch.tensor([-1.0, -2.0]))
    assert scores["impute_acc"] == pytest.approx(4 / 6)
    assert scores["impute_acc_spike"] == pytest.approx(1 / 2)
    assert scores["impute_acc_silence"] == pytest.approx(3 / 4)
    assert scores["impute_spike_frac"] == pytest.approx(2 / 6)
    frac = scores["impute_spike_frac"]
    assert scores["impute_acc"] == pytest.approx(frac * scores["impute_acc_spike"]
                                                 + (1 - frac) * scores["impute_acc_silence"])
    assert scores["impute_cond_loglik"] == pytest.approx(-1.5)
    assert "impute_cond_loglik" not in completion_scores(predicted, truth)
    assert math.isnan(completion_scores(predicted[:, 1:2], truth[:, 1:2])["impute_acc_spike"])


def test_baselines_by_hand() -> None:
    # unit 0 fires in 3 of 4 training patterns, unit 1 in 1 of 4, unit 2 never (clipped field)
    train = torch.tensor([[1, -1, -1], [1, 1, -1], [1, -1, -1], [-1, -1, -1]], dtype=torch.float32)
    test = torch.tensor([[1, 1, -1], [-1, -1, 1]], dtype=torch.float32)
    dataset = Dataset(train=train, test=test, truth=None)
    scores = imputation_baselines(dataset, ImputationSettings(k=3, rule="uniform"))
    # both predict (+1, -1, -1): right on 2 of 3 in the first pattern, 1 of 3 in the second
    for name in ("baseline_freq", "baseline_indep"):
        assert scores[f"impute_acc/{name}"] == pytest.approx(3 / 6)
        assert scores[f"impute_acc_spike/{name}"] == pytest.approx(1 / 3)
        assert scores[f"impute_acc_silence/{name}"] == pytest.approx(2 / 3)
    p_spike = [3 / 4, 1 / 4, 1 / 8]  # unit 2: m clipped to -(1 - 1/M) = -3/4
    loglik = [sum(math.log(p if s > 0 else 1 - p) for p, s in zip(p_spike, row, strict=True))
              for row in test.tolist()]
    assert scores["impute_cond_loglik/baseline_indep"] == pytest.approx(sum(loglik) / 2)
    assert "impute_cond_loglik/baseline_freq" not in scores


def test_independent_baseline_is_the_exact_path_with_no_couplings() -> None:
    train, test = random_patterns(200, 6, seed=7), random_patterns(30, 6, seed=8)
    dataset = Dataset(train=train.float(), test=test.float(), truth=None)
    settings = ImputationSettings(k=3, rule="uniform", seed=4)
    fields = torch.atanh(train.mean(0))
    model = imputation_metrics(IsingParams(fields, torch.zeros(6, 6, dtype=torch.float64)),
                               dataset, settings)
    baseline = imputation_baselines(dataset, settings)
    for key in ("impute_acc", "impute_acc_spike", "impute_cond_loglik"):
        assert baseline[f"{key}/baseline_indep"] == pytest.approx(model[key])


def test_metrics_hide_the_same_entries_every_call() -> None:
    params = random_model(8, seed=1)
    dataset = Dataset(train=random_patterns(50, 8).float(), test=random_patterns(300, 8).float(),
                      truth=None)
    settings = ImputationSettings(k=2, max_patterns=100, seed=3)
    first = imputation_metrics(params, dataset, settings)
    assert first == imputation_metrics(params, dataset, settings)
    assert first != imputation_metrics(params, dataset, ImputationSettings(k=2, max_patterns=100,
                                                                           seed=4))
    assert set(first) == {"impute_acc", "impute_acc_spike", "impute_acc_silence",
                          "impute_spike_frac", "impute_cond_loglik"}
    gibbs = imputation_metrics(params, dataset, ImputationSettings(k=2, exact_max_k=1))
    assert "impute_cond_loglik" not in gibbs


def test_scores_from_a_generator_are_reproducible() -> None:
    params, patterns = random_model(6, seed=2), random_patterns(20, 6)
    settings = ImputationSettings(k=2, rule="uniform")
    runs = [imputation_scores(params, patterns, settings, torch.Generator().manual_seed(9))
            for _ in range(2)]
    assert runs[0] == runs[1]


def test_hidden_entries_are_distinct_and_from_the_active_pool() -> None:
    rates = torch.tensor([0.5, 0.0, 0.3, 0.01, 0.2, 0.0])
    patterns = torch.where(torch.rand(2000, 6, generator=torch.Generator().manual_seed(0))
                           < rates, 1.0, -1.0)
    gen = torch.Generator().manual_seed(1)
    hidden = choose_hidden(patterns, ImputationSettings(k=2, min_rate=0.1), gen)
    assert hidden.shape == (2000, 2)
    assert (hidden[:, 0] != hidden[:, 1]).all()
    assert set(hidden.unique().tolist()) == {0, 2, 4}
    topped = choose_hidden(patterns, ImputationSettings(k=4, min_rate=0.1), gen)
    assert set(topped.unique().tolist()) == {0, 2, 3, 4}  # the next most active joins
    uniform = choose_hidden(patterns, ImputationSettings(k=2, rule="uniform"), gen)
    assert set(uniform.unique().tolist()) == set(range(6))


SETTING_ERRORS = [
    ({"k": 0}, r"imputation\.k must be an integer >= 1; got 0"),
    ({"rule": "spikes"}, r"imputation\.rule must be one of active, uniform"),
    ({"predict": "mode"}, r"imputation\.predict must be one of joint, marginal"),
    ({"min_rate": 1.5}, r"imputation\.min_rate must be a spike probability"),
    ({"exact_max_k": 30}, r"imputation\.exact_max_k must be an integer in 0\.\.24"),
    ({"gibbs_chains": 0}, r"imputation\.gibbs_chains must be an integer >= 1"),
    ({"gibbs_burn_in": -1}, r"imputation\.gibbs_burn_in must be an integer >= 0"),
    ({"max_patterns": 0}, r"imputation\.max_patterns must be a positive integer, or null"),
    ({"seed": True}, r"imputation\.seed must be an integer >= 0"),
]


@pytest.mark.parametrize(("options", "problem"), SETTING_ERRORS)
def test_setting_errors_name_the_key(options: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        ImputationSettings(**options)


def test_k_above_n_and_a_missing_test_set_are_refused() -> None:
    patterns = random_patterns(10, 4)
    with pytest.raises(ConfigError, match=r"imputation\.k=5 exceeds the 4 units"):
        choose_hidden(patterns, ImputationSettings(k=5))
    dataset = Dataset(train=patterns.float(), test=None, truth=None)
    with pytest.raises(ConfigError, match=r"needs test patterns"):
        imputation_baselines(dataset, ImputationSettings(k=2))
