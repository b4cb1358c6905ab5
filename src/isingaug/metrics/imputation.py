"""Missing-value reconstruction: hide k entries of each test pattern and fill them from the model.

Which entries are hidden (`rule`): "active" (default) draws k distinct units per pattern,
uniformly, from the units that fire in at least `min_rate` of the scored patterns (topped up with
the next most active units when fewer than k qualify); "uniform" draws from all units. Neurons
that almost never fire make the task trivial (predict silence) and would drown the comparison, so
they are left out of the pool. The hidden positions never depend on the values in the pattern:
choosing spikes preferentially would make the hidden set itself informative, which no model here
uses. Spike and silence accuracies are reported separately instead, since silences dominate.

How the hidden entries are filled (`predict`): "joint" (default) takes the most probable
completion argmax_{x_H} P(x_H | x_V), "marginal" the sign of each hidden entry's conditional
marginal (best for per-entry accuracy). For k <= exact_max_k both are exact: all 2^k completions
are scored for a chunk of patterns at once by one matrix product (pattern features [b, J_pairs]
against completion features [s, s_a s_b]), streaming over completions with a running
log-sum-exp, so memory stays near `max_elements` numbers. For larger k a heat-bath Gibbs sampler
runs `gibbs_chains` chains per pattern on the conditional model (visible entries clamped; all
patterns and chains advance together): "joint" returns the most probable state any chain visited
(a search for the mode; exact once a chain visits it), "marginal" the sign of the Rao-Blackwellised
marginal mean tanh(local field) over the sweeps after burn-in.

Scores: accuracy over all hidden entries, over hidden spikes (+1) and hidden silences (-1), the
fraction of hidden entries that are spikes, and (k <= exact_max_k only, where log Z of the
conditional is exact) the mean conditional log-likelihood of the true completion,
log P(x_H | x_V) in nats per pattern. Baselines use the training patterns only: each unit's most
frequent state, and the independent-unit model h_i = atanh(m_i) (whose most probable completion
is the same, sign(m_i), but which also gives a conditional log-likelihood).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from isingaug.data.base import Dataset
from isingaug.errors import ConfigError, is_int, is_number, option_error
from isingaug.ising import IsingParams, conditional_log_prob, enumerate_states, local_fields
from isingaug.sampling import random_spins

#: Where these options live in the config, for messages.
CONFIG_PREFIX = "imputation"
RULES = ("active", "uniform")
PREDICTIONS = ("joint", "marginal")
#: Largest k scored exactly: beyond it 2^k completions per pattern cost too much.
MAX_EXACT_K = 24
#: Completions scored per matrix product in the exact path.
COMPLETION_CHUNK = 1 << 14


@dataclass(frozen=True)
class ImputationSettings:
    """Every option of the reconstruction study; validated so bad values fail before fitting."""

    k: int = 10
    rule: str = "active"
    min_rate: float = 0.02
    predict: str = "joint"
    exact_max_k: int = 16
    gibbs_sweeps: int = 200
    gibbs_burn_in: int = 50
    gibbs_chains: int = 16
    max_patterns: int | None = None
    seed: int = 0
    max_elements: int = 1 << 22

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            _fail("rule", self.rule, f"one of {', '.join(RULES)}")
        if self.predict not in PREDICTIONS:
            _fail("predict", self.predict, f"one of {', '.join(PREDICTIONS)}")
        if not (is_number(self.min_rate) and 0 <= self.min_rate <= 1):
            _fail("min_rate", self.min_rate, "a spike probability per bin in [0, 1]")
        if not (is_int(self.exact_max_k) and 0 <= self.exact_max_k <= MAX_EXACT_K):
            _fail("exact_max_k", self.exact_max_k, f"an integer in 0..{MAX_EXACT_K}")
        for key, low in (("k", 1), ("gibbs_sweeps", 1), ("gibbs_burn_in", 0),
                         ("gibbs_chains", 1), ("seed", 0), ("max_elements", 1)):
            value = getattr(self, key)
            if not (is_int(value) and value >= low):
                _fail(key, value, f"an integer >= {low}")
        if self.max_patterns is not None and not (is_int(self.max_patterns)
                                                  and self.max_patterns >= 1):
            _fail("max_patterns", self.max_patterns, "a positive integer, or null for all")


@dataclass(frozen=True)
class Completion:
    """Predicted hidden values (P, k) and, when exact, log P(true x_H | x_V) per pattern (P,)."""

    predicted: Tensor
    cond_loglik: Tensor | None


def choose_hidden(test: Tensor, settings: ImputationSettings,
                  rng: torch.Generator | None = None) -> Tensor:
    """k distinct hidden units per pattern (P, k), uniform within the rule's pool of units."""
    num, n = test.shape
    if settings.k > n:
        raise ConfigError(f"{CONFIG_PREFIX}.k={settings.k} exceeds the {n} units of the data")
    pool = _pool(test, settings)
    keys = torch.rand((num, pool.shape[0]), generator=rng)
    return pool[keys.topk(settings.k, dim=1).indices]


def complete(params: IsingParams, test: Tensor, hidden: Tensor, settings: ImputationSettings,
             rng: torch.Generator | None = None) -> Completion:
    """Fill the hidden entries of every pattern: exact for k <= exact_max_k, Gibbs above."""
    k = hidden.shape[1]
    exact = k <= settings.exact_max_k
    per_pattern = min(1 << k, COMPLETION_CHUNK) if exact else settings.gibbs_chains * k
    step = max(1, settings.max_elements // per_pattern)
    predicted, logliks = [], []
    for start in range(0, test.shape[0], step):
        spins = test[start:start + step].to(params.device, params.dtype)
        where = hidden[start:start + step].to(params.device)
        fields, couplings = conditional_model(params, spins, where)
        truth = spins.gather(1, where)
        if exact:
            best, loglik = _exact(fields, couplings, truth, settings.predict)
            logliks.append(loglik)
        else:
            best = _gibbs(fields, couplings, settings, rng)
        predicted.append(best)
    loglik = torch.cat(logliks).cpu().double() if exact else None
    return Completion(torch.cat(predicted).cpu().double(), loglik)


def conditional_model(params: IsingParams, spins: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
    """The Ising model of the hidden entries given the visible ones, per pattern.

    Fields b = h_H + J_HV x_V (P, k): the local fields with the hidden entries zeroed; couplings
    J_HH (P, k, k). log P(x_H | x_V) = b.x_H + x_H.J_HH.x_H / 2 - log Z(b, J_HH).
    """
    visible = spins.scatter(1, hidden, 0.0)
    fields = local_fields(params, visible).gather(1, hidden)
    couplings = params.J[hidden[:, :, None], hidden[:, None, :]]
    return fields, couplings


def completion_scores(predicted: Tensor, truth: Tensor,
                      cond_loglik: Tensor | None = None) -> dict[str, float]:
    """Accuracies overall, on hidden spikes and on hidden silences (nan when there are none)."""
    correct = (predicted == truth).double()
    spike = truth > 0
    out = {
        "impute_acc": float(correct.mean()),
        "impute_acc_spike": float(correct[spike].mean()) if spike.any() else math.nan,
        "impute_acc_silence": float(correct[~spike].mean()) if (~spike).any() else math.nan,
        "impute_spike_frac": float(spike.double().mean()),
    }
    if cond_loglik is not None:
        out["impute_cond_loglik"] = float(cond_loglik.mean())
    return out


def imputation_scores(params: IsingParams, test: Tensor, settings: ImputationSettings,
                      rng: torch.Generator | None = None) -> dict[str, float]:
    """Hide entries of `test` with `rng`, fill them from `params`, score the completion."""
    hidden = choose_hidden(test, settings, rng)
    completion = complete(params, test, hidden, settings, rng)
    return completion_scores(completion.predicted, _hidden_truth(test, hidden),
                             completion.cond_loglik)


def imputation_metrics(params: IsingParams, dataset: Dataset,
                       settings: ImputationSettings) -> dict[str, float]:
    """The model's scores on the dataset's test patterns, under flat keys (impute_acc, ...).

    The hidden entries depend only on the test set and `settings.seed`, so every condition
    (obs, aug, ...) and both baselines are scored on the same entries: a paired comparison.
    """
    test, hidden = masked_test(dataset, settings)
    rng = torch.Generator().manual_seed(settings.seed + 1)
    completion = complete(params, test, hidden, settings, rng)
    return completion_scores(completion.predicted, _hidden_truth(test, hidden),
                             completion.cond_loglik)


def imputation_baselines(dataset: Dataset, settings: ImputationSettings) -> dict[str, float]:
    """Both baselines on the entries `imputation_metrics` hides, as `metric/baseline_*` keys.

    baseline_freq predicts each unit's most frequent training state (silence on a tie);
    baseline_indep is the independent-unit model h_i = atanh(m_i), with m_i clipped to
    +-(1 - 1/M) so a unit never seen to fire keeps a finite field.
    """
    test, hidden = masked_test(dataset, settings)
    truth = _hidden_truth(test, hidden)
    train = dataset.train.to(torch.float64)
    bound = 1.0 - 1.0 / train.shape[0]
    mean = train.mean(0)
    frequent = torch.where(mean > 0, 1.0, -1.0).to(torch.float64)
    fields = torch.atanh(mean.clamp(-bound, bound))
    independent = IsingParams(fields, torch.zeros(fields.shape[0], fields.shape[0],
                                                  dtype=torch.float64))
    loglik = conditional_log_prob(independent, test).gather(1, hidden).sum(1)
    freq = completion_scores(frequent[hidden], truth)
    indep = completion_scores(torch.where(fields > 0, 1.0, -1.0).to(torch.float64)[hidden],
                              truth, loglik)
    scores = {f"{key}/baseline_freq": value for key, value in freq.items()
              if key != "impute_spike_frac"}
    scores.update({f"{key}/baseline_indep": value for key, value in indep.items()
                   if key != "impute_spike_frac"})
    return scores


def masked_test(dataset: Dataset, settings: ImputationSettings) -> tuple[Tensor, Tensor]:
    """The scored test patterns (at most max_patterns, seeded) and their hidden units."""
    if dataset.test is None:
        raise ConfigError("missing-value reconstruction needs test patterns; hold some out "
                          "(dataset.test_repeats > 0, or dataset.test_fraction > 0)")
    rng = torch.Generator().manual_seed(settings.seed)
    test = dataset.test.to(torch.float64)
    if settings.max_patterns is not None and settings.max_patterns < test.shape[0]:
        rows = torch.randperm(test.shape[0], generator=rng)[:settings.max_patterns]
        test = test[rows.sort().values]
    return test, choose_hidden(test, settings, rng)


# --- exact ---------------------------------------------------------------------------------------


def _exact(fields: Tensor, couplings: Tensor, truth: Tensor,
           predict: str) -> tuple[Tensor, Tensor]:
    """Predicted completion and log P(truth | visible) by streaming over all 2^k completions."""
    num, k = fields.shape
    upper = torch.triu_indices(k, k, offset=1, device=fields.device)
    weights = torch.cat([fields, couplings[:, upper[0], upper[1]]], dim=1)
    ref = torch.full((num,), -math.inf, dtype=fields.dtype, device=fields.device)
    mass = torch.zeros_like(ref)
    spin_mass = torch.zeros_like(fields)
    best = torch.zeros(num, dtype=torch.long, device=fields.device)
    start = 0
    for states in enumerate_states(k, COMPLETION_CHUNK, fields.dtype, fields.device, max_n=k):
        features = torch.cat([states, states[:, upper[0]] * states[:, upper[1]]], dim=1)
        scores = weights @ features.T
        chunk_max, chunk_arg = scores.max(dim=1)
        best = torch.where(chunk_max > ref, chunk_arg + start, best)
        new_ref = torch.maximum(ref, chunk_max)
        scale = torch.exp(ref - new_ref)
        weight = torch.exp(scores - new_ref[:, None])
        mass = mass * scale + weight.sum(1)
        if predict == "marginal":
            spin_mass = spin_mass * scale[:, None] + weight @ states
        ref = new_ref
        start += states.shape[0]
    log_z = ref + torch.log(mass)
    loglik = _state_scores(fields, couplings, truth) - log_z
    if predict == "marginal":
        return torch.where(spin_mass > 0, 1.0, -1.0).to(fields.dtype), loglik
    bits = torch.arange(k, device=fields.device)
    return (((best[:, None] >> bits) & 1) * 2 - 1).to(fields.dtype), loglik


def _state_scores(fields: Tensor, couplings: Tensor, states: Tensor) -> Tensor:
    """b.s + s.J.s / 2 per pattern for states (P, k) or (P, C, k); -energy of the conditional."""
    if states.ndim == 2:
        return _state_scores(fields, couplings, states[:, None, :])[:, 0]
    quadratic = ((states @ couplings) * states).sum(-1)
    return (states * fields[:, None, :]).sum(-1) + 0.5 * quadratic


# --- Gibbs ---------------------------------------------------------------------------------------


def _gibbs(fields: Tensor, couplings: Tensor, settings: ImputationSettings,
           rng: torch.Generator | None) -> Tensor:
    """Heat-bath chains (P, C, k) on the conditional models; the joint or marginal estimate.

    sampling.run_sweeps cannot serve here: it runs one model for all chains, while each pattern
    has its own conditional fields and couplings. Random numbers come from the CPU generator so
    results do not depend on the device.
    """
    num, k = fields.shape
    chains = settings.gibbs_chains
    state = random_spins((num, chains, k), rng, dtype=fields.dtype).to(fields.device)
    best = state[:, 0].clone()
    best_score = torch.full((num,), -math.inf, dtype=fields.dtype, device=fields.device)
    mean_spin = torch.zeros_like(fields)
    for sweep in range(settings.gibbs_burn_in + settings.gibbs_sweeps):
        uniform = torch.rand((num, chains, k), generator=rng,
                             dtype=fields.dtype).to(fields.device)
        recording = sweep >= settings.gibbs_burn_in
        for site in range(k):
            local = fields[:, None, site] + (state @ couplings[:, :, site, None])[..., 0]
            state[..., site] = torch.where(uniform[..., site] < torch.sigmoid(2.0 * local),
                                           1.0, -1.0)
            if recording:
                mean_spin[:, site] += torch.tanh(local).mean(1)
        scores = _state_scores(fields, couplings, state)
        chunk_max, chain = scores.max(dim=1)
        better = chunk_max > best_score
        best = torch.where(better[:, None], state[torch.arange(num), chain], best)
        best_score = torch.maximum(best_score, chunk_max)
    if settings.predict == "marginal":
        return torch.where(mean_spin > 0, 1.0, -1.0).to(fields.dtype)
    return best


def _pool(test: Tensor, settings: ImputationSettings) -> Tensor:
    """Units eligible to be hidden: all, or the active ones topped up to k by rate."""
    n = test.shape[1]
    if settings.rule == "uniform":
        return torch.arange(n)
    rates = (test > 0).to(torch.float64).mean(0)
    size = max(settings.k, int((rates >= settings.min_rate).sum()))
    return torch.argsort(-rates, stable=True)[:size]


def _hidden_truth(test: Tensor, hidden: Tensor) -> Tensor:
    return test.to(torch.float64).gather(1, hidden)


def _fail(key: str, value: object, allowed: str) -> None:
    raise option_error(f"{CONFIG_PREFIX}.{key}", allowed, value)
