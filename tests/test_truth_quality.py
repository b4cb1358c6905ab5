"""Generated patterns against the truth, the test patterns and exact likelihoods.

Every quantity is checked against plain enumeration (itertools states, loops) or a hand
computation; the noise floors against their expected size.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import all_states, brute_force, random_model
from isingaug import results as res
from isingaug.data.sk import sk_truth
from isingaug.errors import ConfigError
from isingaug.generators import rbm as rbm_module
from isingaug.generators.rbm import FFRbm, Rbm, RbmParams, rbm_log_partition
from isingaug.ising import IsingParams, energy, enumerate_states
from isingaug.metrics import samples as sq
from isingaug.metrics import truth_quality as tq
from isingaug.metrics.samples import sample_quality
from isingaug.sampling import exact_sample
from isingaug.seeding import stream

TRUTH = [key for pair in tq.TRUTH_KEYS.values() for key in pair] + [res.GEN_VAR_E_EXACT]
TEST = [key for pair in tq.TEST_KEYS.values() for key in pair]


def independent_spins(num: int, magnetisations: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    up = torch.rand(num, magnetisations.shape[0], generator=gen, dtype=torch.float64)
    return torch.where(up < (1 + magnetisations) / 2, 1.0, -1.0)


def loop_moments(p: np.ndarray, states: np.ndarray):
    """<s_i>, connected C_ij (i<j) and connected C_ijk (all i<j<k) of a distribution p by loops."""
    n = states.shape[1]
    m = np.array([np.sum(p * states[:, i]) for i in range(n)])
    d = states - m
    pairs = [np.sum(p * d[:, i] * d[:, j]) for i, j in itertools.combinations(range(n), 2)]
    three = [np.sum(p * d[:, i] * d[:, j] * d[:, k])
             for i, j, k in itertools.combinations(range(n), 3)]
    return m, np.array(pairs), np.array(three)


class ExactIsingGenerator:
    """A tractable stand-in: samples nothing, log_prob is the exact log P of an Ising model."""

    tractable = True

    def __init__(self, params: IsingParams) -> None:
        self.params = params
        self.log_z = brute_force(params)[0]

    def log_prob(self, spins: torch.Tensor) -> torch.Tensor:
        return -energy(self.params, spins.double()) - self.log_z


# ----------------------------------------------------------------------------- enumeration


@pytest.mark.parametrize("group_bits", [5, 2])  # 2: several Kronecker factors at small n
@pytest.mark.parametrize("n", range(0, 10))
def test_walsh_hadamard_is_the_dense_transform(n, group_bits, monkeypatch):
    monkeypatch.setattr(tq, "_WHT_GROUP_BITS", group_bits)
    x = torch.randn(1 << n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    common = np.bitwise_and.outer(np.arange(1 << n), np.arange(1 << n))
    parity = sum((common >> b) & 1 for b in range(n)) % 2 if n else np.zeros((1, 1), int)
    dense = torch.tensor(1 - 2 * parity, dtype=torch.float64)
    assert torch.allclose(tq.walsh_hadamard(x), dense @ x, rtol=1e-12, atol=1e-12)


def test_state_index_is_the_enumeration_order():
    states = torch.cat(list(enumerate_states(9, chunk=100)))
    assert torch.equal(tq.state_index(states), torch.arange(512))


def test_exact_distribution_matches_brute_force():
    params = random_model(7, g=1.5, seed=3)
    exact = tq.ExactDistribution.of(params, chunk=16)  # several blocks
    states = all_states(7)
    log_z, first, second = brute_force(params)
    log_p = -energy(params, states) - log_z
    assert torch.allclose(exact.log_p[tq.state_index(states)], log_p, atol=1e-12)
    assert exact.log_z == pytest.approx(float(log_z), abs=1e-12)
    p = torch.exp(log_p)
    e = energy(params, states)
    assert exact.var_energy == pytest.approx(float(p @ e**2 - (p @ e) ** 2), rel=1e-10)

    triplets = torch.tensor(list(itertools.combinations(range(7), 3)))
    moments = exact.moments(triplets)
    assert torch.allclose(moments.first, first, atol=1e-12)
    assert torch.allclose(moments.second, second, atol=1e-12)
    third = [float(p @ (states[:, i] * states[:, j] * states[:, k])) for i, j, k in triplets]
    assert torch.allclose(moments.third, torch.tensor(third, dtype=torch.float64), atol=1e-12)


def test_exact_distribution_refuses_sizes_above_its_limit():
    with pytest.raises(ConfigError, match="above the limit n <= 7"):
        tq.ExactDistribution.of(random_model(8), max_n=7)


# ----------------------------------------------------------------------------- against the truth


def test_truth_scores_by_hand():
    params = random_model(4, g=1.0, seed=5)
    states = all_states(4)
    log_z, _, _ = brute_force(params)
    p = torch.exp(-energy(params, states) - log_z).numpy()
    gen = torch.tensor([[1, 1, -1, 1], [1, 1, -1, 1], [-1, 1, 1, 1], [1, -1, -1, -1],
                        [1, 1, 1, 1], [-1, -1, 1, -1], [1, 1, -1, 1]], dtype=torch.float64)
    exact = tq.ExactDistribution.of(params)
    triplets = torch.tensor(list(itertools.combinations(range(4), 3)))
    scores = tq.truth_scores(gen, exact, exact.moments(triplets))

    x = gen.numpy()
    q = np.full(len(x), 1 / len(x))
    m_t, c_t, k_t = loop_moments(p, states.numpy())
    m_g, c_g, k_g = loop_moments(q, x)
    e_all = energy(params, states).numpy()
    e_gen = energy(params, gen).numpy()
    var_t = np.sum(p * (e_all - np.sum(p * e_all)) ** 2)
    counts = Counter(tuple(r) for r in x.tolist())
    p_of = {tuple(s): ps for s, ps in zip(states.tolist(), p, strict=True)}
    tv = 0.5 * sum(abs(counts.get(s, 0) / len(x) - ps) for s, ps in p_of.items())
    kl = sum(c / len(x) * math.log(c / len(x) / p_of[s]) for s, c in counts.items())
    expected = {"mag_err": np.mean((m_g - m_t) ** 2), "conn_corr_err": np.mean((c_g - c_t) ** 2),
                "three_point_err": np.mean((k_g - k_t) ** 2),
                "var_E_err": abs(np.var(e_gen) / var_t - 1), "tv": tv, "kl": kl}
    assert set(scores) == set(expected)
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, rel=1e-10, abs=1e-14), key


def test_truth_triplets_are_sample_qualitys_triplets():
    """With fewer triplets allowed than exist, the truth is scored on sample_quality's draw."""
    n, seed, allowed = 10, 4, 15
    params = sk_truth(n, 1.0, 1.0, 2)
    gen = exact_sample(params, 3000, torch.Generator().manual_seed(9))
    out = tq.truth_quality(gen, train=gen[:100], test=None, truth=params, params_obs=params,
                           seed=seed, max_triplets=allowed)
    triplets = sq.draw_triplets(n, allowed, stream(seed, "quality"))
    assert triplets.shape == (allowed, 3)
    states = all_states(n)
    p = torch.exp(-energy(params, states) - brute_force(params)[0])
    d_t = states - p @ states
    d_g = gen.double() - gen.double().mean(0)
    exact = torch.stack([p @ (d_t[:, i] * d_t[:, j] * d_t[:, k]) for i, j, k in triplets])
    emp = torch.stack([(d_g[:, i] * d_g[:, j] * d_g[:, k]).mean() for i, j, k in triplets])
    assert out[res.GEN_THREE_POINT_ERR_TRUE] == pytest.approx(float(((emp - exact) ** 2).mean()),
                                                              rel=1e-9)


@pytest.fixture(scope="module")
def sk8():
    truth = sk_truth(8, 1.0, 1.0, 0)
    return truth, exact_sample(truth, 20000, torch.Generator().manual_seed(1))


def test_the_floor_is_the_sampling_noise_of_exact_samples(sk8):
    """E[mag_err] of M exact samples is mean_i (1 - m_i^2) / M; ten seeded floors average to it."""
    truth, _ = sk8
    m = tq.ExactDistribution.of(truth).moments(torch.zeros(0, 3, dtype=torch.int64)).first
    generated = -torch.ones(2000, 8)  # only its size matters to the floor
    floors = [tq.truth_quality(generated, train=generated, test=None, truth=truth,
                               params_obs=truth, seed=seed)[res.GEN_MAG_ERR_TRUE_FLOOR]
              for seed in range(10)]
    expected = float((1 - m**2).mean()) / 2000
    assert 0.6 < np.mean(floors) / expected < 1.5  # one floor's relative spread is ~0.4
    assert len(set(floors)) == 10  # each seed its own draw


def test_exact_samples_sit_at_the_floor_and_a_wrong_model_far_above(sk8):
    truth, good = sk8
    m = tq.ExactDistribution.of(truth).moments(torch.zeros(0, 3, dtype=torch.int64)).first
    bad = independent_spins(20000, m, seed=2)  # right magnetisations, no correlations
    kw = {"train": good[:500], "test": None, "truth": truth, "params_obs": truth, "seed": 3}
    on_good, on_bad = tq.truth_quality(good, **kw), tq.truth_quality(bad, **kw)
    assert set(on_good) == set(TRUTH)
    assert {k: v for k, v in on_good.items() if k.endswith("_floor")} == {
        k: v for k, v in on_bad.items() if k.endswith("_floor")}  # one seeded draw, whatever set
    for name in ("mag_err", "conn_corr_err", "three_point_err", "tv", "kl"):
        score, floor = tq.TRUTH_KEYS[name]
        assert on_good[score] < 3 * on_good[floor], name  # exact samples: at the floor
    # one relative variance gap: its sampling sd is ~ sqrt(2 / M) = 0.01
    assert on_good[res.GEN_VAR_E_ERR_TRUE] < 0.03 and on_good[res.GEN_VAR_E_ERR_TRUE_FLOOR] < 0.03
    assert on_bad[res.GEN_MAG_ERR_TRUE] < 3 * on_bad[res.GEN_MAG_ERR_TRUE_FLOOR]
    for name in ("conn_corr_err", "three_point_err", "var_E_err", "tv", "kl"):
        score, floor = tq.TRUTH_KEYS[name]
        assert on_bad[score] > 10 * on_bad[floor], name
    assert on_good[res.GEN_VAR_E_EXACT] == pytest.approx(
        float(torch.var(energy(truth, good), correction=0)), rel=0.05)


def test_truth_keys_absent_without_a_truth_or_above_the_limit(sk8):
    truth, good = sk8
    kw = {"train": good[:50], "test": None, "params_obs": truth,
          "generator": ExactIsingGenerator(truth)}
    assert tq.truth_quality(good, truth=None, **kw) == {}
    assert tq.truth_quality(good, truth=truth, exact_max_n=7, **kw) == {}
    assert res.GEN_KL_EXACT in tq.truth_quality(good, truth=truth, exact_max_n=8, **kw)
    for bad in (-1, 25, 2.5, True):
        with pytest.raises(ConfigError, match=r"metrics\.exact_quality_max_n must be an integer"):
            tq.truth_quality(good, truth=truth, exact_max_n=bad, **kw)


# ----------------------------------------------------------------------------- likelihoods


def test_exact_kl_and_test_loglik_of_a_tractable_generator():
    truth, other = random_model(6, g=1.0, seed=1), random_model(6, g=1.0, seed=2)
    states = all_states(6)
    log_p = -energy(truth, states) - brute_force(truth)[0]
    log_q = -energy(other, states) - brute_force(other)[0]
    kl = float(torch.exp(log_p) @ (log_p - log_q))
    exact = tq.ExactDistribution.of(truth)
    assert tq.exact_kl(exact, ExactIsingGenerator(other).log_prob, chunk=5) == pytest.approx(
        kl, rel=1e-10)
    assert abs(tq.exact_kl(exact, ExactIsingGenerator(truth).log_prob)) < 1e-12

    test = exact_sample(truth, 300, torch.Generator().manual_seed(0))
    gen = exact_sample(other, 2000, torch.Generator().manual_seed(1))
    out = tq.truth_quality(gen, train=test[:40], test=test, truth=truth, params_obs=truth,
                           generator=ExactIsingGenerator(other))
    assert out[res.GEN_KL_EXACT] == pytest.approx(kl, rel=1e-10)
    expected = float((-energy(other, test.double()) - brute_force(other)[0]).mean())
    assert out[res.GEN_TEST_LOGLIK] == pytest.approx(expected, rel=1e-12)
    untractable = tq.truth_quality(gen, train=test[:40], test=test, truth=truth,
                                   params_obs=truth, generator=object())
    assert res.GEN_KL_EXACT not in untractable and res.GEN_TEST_LOGLIK not in untractable


def joint_minus_energy(params: RbmParams) -> torch.Tensor:
    """-E(v, h) for every pair of {0,1} states (itertools order): rows v, columns h."""
    n, hidden = params.W.shape
    v = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)
    h = torch.tensor(list(itertools.product([0.0, 1.0], repeat=hidden)), dtype=torch.float64)
    return (v @ params.b)[:, None] + (h @ params.c)[None, :] + v @ params.W @ h.T


def joint_log_prob(params: RbmParams) -> torch.Tensor:
    """log p(v) over every {0,1}^n v (itertools order), marginalising the joint over (v, h)."""
    minus_e = joint_minus_energy(params)
    return torch.logsumexp(minus_e - torch.logsumexp(minus_e.reshape(-1), 0), 1)


def rbm_with(params: RbmParams) -> Rbm:
    n, hidden = params.W.shape
    model = Rbm(hidden=hidden, device="cpu")
    model.build(n)
    model.n = n  # what fit() sets
    with torch.no_grad():
        for mine, value in zip(model.params, params, strict=True):
            mine.copy_(value)
    return model


@pytest.mark.parametrize("low_bits", [12, 2])  # 2: the blocked -F table with several blocks
@pytest.mark.parametrize(("n", "hidden"), [(5, 3), (3, 5), (4, 4)])
def test_rbm_log_prob_is_the_joint_marginal(n, hidden, low_bits, monkeypatch):
    monkeypatch.setattr(rbm_module, "_TABLE_LOW_BITS", low_bits)
    gen = torch.Generator().manual_seed(n * 10 + hidden)
    params = RbmParams(*(torch.randn(shape, generator=gen, dtype=torch.float64)
                         for shape in ((n, hidden), (n,), (hidden,))))
    model = rbm_with(params)
    spins = 2 * torch.tensor(list(itertools.product([0.0, 1.0], repeat=n))) - 1
    expected = joint_log_prob(RbmParams(*(p.float().double() for p in params)))  # float32 weights
    assert torch.allclose(model.log_prob(spins), expected, atol=1e-10)
    assert float(torch.logsumexp(model.log_prob(spins), 0)) == pytest.approx(0.0, abs=1e-12)
    log_z = float(torch.logsumexp(joint_minus_energy(params).reshape(-1), 0))
    swapped = RbmParams(params.W.T.contiguous(), params.c, params.b)  # same Z, other layer summed
    assert float(rbm_log_partition(params)) == pytest.approx(log_z, rel=1e-12)
    assert float(rbm_log_partition(swapped)) == pytest.approx(log_z, rel=1e-12)

    with torch.no_grad():  # the cached log Z follows in-place weight changes
        model.weight.mul_(-0.5)
    changed = RbmParams(*(p.detach().double() for p in model.params))
    assert torch.allclose(model.log_prob(spins), joint_log_prob(changed), atol=1e-10)


def test_rbm_tractability_depends_on_its_size():
    model = Rbm(hidden=64, device="cpu")
    assert not model.tractable  # not fitted: n unknown
    model.n = 20
    assert model.tractable
    model.n = 100
    assert not model.tractable
    small_hidden = Rbm(hidden=16, device="cpu")
    small_hidden.n = 100
    assert small_hidden.tractable  # 2^16 hidden states
    ff = FFRbm(hidden=8, device="cpu")
    ff.n = 5
    assert not ff.tractable and not tq.is_tractable(ff)  # k-step samples, not its p(v)
    with pytest.raises(ConfigError, match=r"2\^3 states .* allowed up to 2\^2"):
        rbm_log_partition(RbmParams(torch.zeros(3, 4), torch.zeros(3), torch.zeros(4)), 2)


# ----------------------------------------------------------------------------- against the test


def test_test_scores_are_sample_quality_against_the_test_patterns():
    n, seed = 30, 7
    truth = sk_truth(n, 1.0, 1.0, 1)
    gen = torch.Generator().manual_seed(0)
    train = torch.where(torch.rand(400, n, generator=gen) < 0.5, 1.0, -1.0)
    test = torch.where(torch.rand(300, n, generator=gen) < 0.4, 1.0, -1.0)
    generated = torch.where(torch.rand(900, n, generator=gen) < 0.45, 1.0, -1.0)
    out = tq.truth_quality(generated, train=train, test=test, truth=truth, params_obs=truth,
                           seed=seed, max_triplets=60, max_patterns=200)
    assert set(out) == set(TEST)  # n = 30 > 20: nothing against the truth
    for patterns, which in ((generated, 0), (train, 1)):
        ref = sample_quality(patterns, test, rng=stream(seed, "quality"), max_triplets=60,
                             max_patterns=200)
        for name, keys in tq.TEST_KEYS.items():
            if name != "var_E_err":
                assert out[keys[which]] == ref[name], name
        var = float(torch.var(energy(truth, patterns), correction=0))
        var_test = float(torch.var(energy(truth, test), correction=0))
        assert out[tq.TEST_KEYS["var_E_err"][which]] == pytest.approx(abs(var / var_test - 1),
                                                                      rel=1e-10)
    assert tq.truth_quality(generated, train=train, test=None, truth=truth,
                            params_obs=truth) == {}
