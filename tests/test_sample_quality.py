"""Generator-quality scores: ~0 for two draws of one model, large for a wrong one, exact by hand."""

from __future__ import annotations

import gzip
import itertools
import math

import numpy as np
import pytest
import torch

from isingaug.data.sk import sk_truth
from isingaug.errors import ConfigError, DataError
from isingaug.ising import exact_statistics
from isingaug.metrics import samples
from isingaug.metrics.samples import QUALITY_KEYS, copy_fraction, sample_quality
from isingaug.sampling import exact_sample

# ----------------------------------------------------------------------------- helpers


def independent_spins(num: int, magnetisations: torch.Tensor, seed: int) -> torch.Tensor:
    """Independent +-1 spins with <s_i> = magnetisations[i]."""
    gen = torch.Generator().manual_seed(seed)
    up = torch.rand(num, magnetisations.shape[0], generator=gen, dtype=torch.float64)
    return torch.where(up < (1 + magnetisations) / 2, 1.0, -1.0)


def reference_scores(gen: np.ndarray, data: np.ndarray, level: int) -> dict[str, float]:
    """Every score by plain loops (no subsampling: both sets are small and the same size)."""
    n = gen.shape[1]

    def stats(x: np.ndarray):
        m = np.array([np.mean(x[:, i]) for i in range(n)])
        two = np.array([[np.mean(x[:, i] * x[:, j]) for j in range(n)] for i in range(n)])
        d = x - m
        three = [np.mean(d[:, i] * d[:, j] * d[:, k])
                 for i, j, k in itertools.combinations(range(n), 3)]
        return m, two, two - np.outer(m, m), np.array(three)

    mg, tg, cg, kg = stats(gen)
    md, td, cd, kd = stats(data)
    upper = [(i, j) for i in range(n) for j in range(i + 1, n)]
    eg, ed = np.linalg.eigvalsh(cg), np.linalg.eigvalsh(cd)

    def size(x: np.ndarray) -> int:
        raw = bytes(int(v > 0) for row in x for v in row)
        return len(gzip.compress(raw, compresslevel=level, mtime=0))

    def hamming(a: np.ndarray, b: np.ndarray) -> int:
        return int(sum(u != v for u, v in zip(a, b, strict=True)))

    def nearest(rows: np.ndarray, others: np.ndarray, same: bool) -> list[float]:
        return [min((hamming(r, o) for b, o in enumerate(others) if not (same and a == b)),
                    default=math.inf) for a, r in enumerate(rows)]

    d_tt, d_ts = nearest(data, data, True), nearest(data, gen, False)
    d_ss, d_st = nearest(gen, gen, True), nearest(gen, data, False)
    aa_true = np.mean([ts > tt for ts, tt in zip(d_ts, d_tt, strict=True)])
    aa_syn = np.mean([st > ss for st, ss in zip(d_st, d_ss, strict=True)])
    data_rows = {tuple(r) for r in data}
    return {
        "mag_err": np.mean((mg - md) ** 2),
        "corr_err": np.mean([(tg[i, j] - td[i, j]) ** 2 for i, j in upper]),
        "conn_corr_err": np.mean([(cg[i, j] - cd[i, j]) ** 2 for i, j in upper]),
        "three_point_err": np.mean((kg - kd) ** 2),
        "spectrum_err": np.linalg.norm(eg - ed) / np.linalg.norm(ed),
        "entropy_err": size(gen) / size(data) - 1,
        "aa_true": aa_true,
        "aa_syn": aa_syn,
        "aai": (aa_true - 0.5) ** 2 + (aa_syn - 0.5) ** 2,
        "copy_fraction": np.mean([tuple(r) in data_rows for r in gen]),
    }


@pytest.fixture(scope="module")
def sk8():
    """Two independent exact draws of one SK model (n = 8) and its exact magnetisations."""
    params = sk_truth(n=8, g=1, g_h=1, data_seed=0)
    gen = torch.Generator().manual_seed(0)
    return (exact_sample(params, 20000, gen), exact_sample(params, 4000, gen),
            exact_statistics(params).first)


# ----------------------------------------------------------------------------- exact cases


def test_by_hand_two_spins():
    data = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])  # m = 0, C = I
    generated = torch.tensor([[1.0, 1.0]] * 4)  # m = (1, 1), <s1 s2> = 1, C = 0
    q = sample_quality(generated, data)
    assert set(q) == set(QUALITY_KEYS)
    assert q["mag_err"] == 1.0 and q["corr_err"] == 1.0 and q["conn_corr_err"] == 0.0
    assert q["three_point_err"] == 0.0  # no triplets at n = 2
    assert math.isclose(q["spectrum_err"], 1.0)  # |(0,0) - (1,1)| / |(1,1)|
    assert q["copy_fraction"] == 1.0
    # d_TT = 1 for every state; d_TS = 0, 1, 1, 2: only (-1,-1) has d_TS > d_TT.
    # d_SS = 0 (duplicates) and d_ST = 0, so AA_syn = 0.
    assert q["aa_true"] == 0.25 and q["aa_syn"] == 0.0
    assert math.isclose(q["aai"], 0.25**2 + 0.5**2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loops_on_small_sets(seed):
    rng = np.random.default_rng(seed)
    n = 5
    data = np.where(rng.random((4, n)) < 0.6, 1.0, -1.0)
    gen = np.where(rng.random((4, n)) < 0.4, 1.0, -1.0)
    gen[0] = data[2]  # one copy
    q = sample_quality(torch.tensor(gen), torch.tensor(data))
    ref = reference_scores(gen, data, samples.GZIP_LEVEL)
    for key in QUALITY_KEYS:
        assert math.isclose(q[key], ref[key], rel_tol=1e-9, abs_tol=1e-12), key


def test_sampled_triplets_are_the_scored_ones():
    """With fewer triplets allowed than exist, the error is the mean over the drawn triplets."""
    rng = np.random.default_rng(3)
    n = 12
    data = np.where(rng.random((300, n)) < 0.7, 1.0, -1.0)
    gen = np.where(rng.random((500, n)) < 0.5, 1.0, -1.0)
    q = sample_quality(torch.tensor(gen), torch.tensor(data),
                       rng=torch.Generator().manual_seed(5), max_triplets=40)
    triplets = samples.draw_triplets(n, 40, torch.Generator().manual_seed(5))  # drawn first
    assert triplets.shape == (40, 3)

    def connected(x: np.ndarray) -> np.ndarray:
        d = x - x.mean(0)
        return np.array([np.mean(d[:, i] * d[:, j] * d[:, k]) for i, j, k in triplets.tolist()])

    expected = np.mean((connected(gen) - connected(data)) ** 2)
    assert math.isclose(q["three_point_err"], expected, rel_tol=1e-9)


@pytest.mark.parametrize("permute_max", [None, 10])
def test_triplet_draws_are_distinct_ordered_and_seeded(monkeypatch, permute_max):
    if permute_max is not None:  # the rank-rejection branch used for huge n
        monkeypatch.setattr(samples, "_PERMUTE_TRIPLETS_MAX", permute_max)
    t = samples.draw_triplets(20, 300, torch.Generator().manual_seed(1))
    assert t.shape == (300, 3)
    assert bool((t[:, 0] < t[:, 1]).all() and (t[:, 1] < t[:, 2]).all() and (t < 20).all())
    assert len({tuple(r) for r in t.tolist()}) == 300
    assert torch.equal(t, samples.draw_triplets(20, 300, torch.Generator().manual_seed(1)))
    every = samples.draw_triplets(7, 1000, torch.Generator())
    assert {tuple(r) for r in every.tolist()} == set(itertools.combinations(range(7), 3))


def test_chunking_and_dtype_do_not_change_scores(monkeypatch):
    params = sk_truth(n=10, g=1, g_h=1, data_seed=1)
    gen = torch.Generator().manual_seed(2)
    a, b = exact_sample(params, 1001, gen), exact_sample(params, 131, gen)
    ref = sample_quality(a, b, rng=torch.Generator().manual_seed(0))
    same = sample_quality(a.to(torch.int8), b.to(torch.float32),
                          rng=torch.Generator().manual_seed(0))
    monkeypatch.setattr(samples, "CHUNK_ELEMENTS", 2000)  # several chunks everywhere
    monkeypatch.setattr(samples, "_XOR_CHUNK_WORDS", 3)
    chunked = sample_quality(a, b, rng=torch.Generator().manual_seed(0))
    for key in QUALITY_KEYS:
        assert math.isclose(same[key], ref[key], rel_tol=1e-12, abs_tol=1e-15), key
        assert math.isclose(chunked[key], ref[key], rel_tol=1e-12, abs_tol=1e-15), key
    assert sample_quality(a, b) == sample_quality(a, b)  # default generator: reproducible


# ----------------------------------------------------------------------------- model tests


def test_same_model_scores_near_zero_and_wrong_model_far(sk8):
    generated, data, magnetisations = sk8
    same = sample_quality(generated, data, rng=torch.Generator().manual_seed(0))
    for key in ("mag_err", "corr_err", "conn_corr_err", "three_point_err"):
        assert same[key] < 2e-3, (key, same[key])
    assert same["spectrum_err"] < 0.05
    assert abs(same["entropy_err"]) < 0.03

    # independent spins with the right magnetisations: first moments fine, the rest wrong
    wrong = sample_quality(independent_spins(20000, magnetisations, seed=1), data,
                           rng=torch.Generator().manual_seed(0))
    assert wrong["mag_err"] < 2e-3
    assert wrong["conn_corr_err"] > 0.05 > 20 * same["conn_corr_err"]
    assert wrong["corr_err"] > 0.05
    assert wrong["three_point_err"] > 4 * same["three_point_err"]
    assert wrong["spectrum_err"] > 0.3
    assert wrong["entropy_err"] > 0.1  # no correlations: more entropy


def test_aai_near_zero_for_one_distribution_far_for_another():
    """At n = 512 Hamming ties are rare, so the strict tie rule biases AA little."""
    n, num = 512, 2000
    magnetisations = torch.linspace(-0.6, 0.6, n)
    data = independent_spins(num, magnetisations, seed=10)
    same = sample_quality(independent_spins(num, magnetisations, seed=11), data)
    assert same["aai"] < 0.01
    assert same["copy_fraction"] == 0.0
    shifted = sample_quality(independent_spins(num, magnetisations.flip(0), seed=12), data)
    assert shifted["aa_true"] > 0.9 and shifted["aa_syn"] > 0.9 and shifted["aai"] > 0.3
    few = independent_spins(50, magnetisations, seed=13).repeat(40, 1)  # low diversity
    low_diversity = sample_quality(few, data)
    assert low_diversity["aa_syn"] == 1.0  # every generated pattern has a twin, d_SS = 0


def test_aa_ties_split_evenly_for_one_distribution():
    """At small n ties are common; AA counted with ties as 1/2 is ~1/2, so strict > is the bias."""
    magnetisations = torch.linspace(-0.5, 0.5, 40)
    data = independent_spins(2000, magnetisations, seed=20)
    gen = independent_spins(2000, magnetisations, seed=21)
    d_tt, d_ts, d_st, d_ss = samples._nearest_distances(data, gen)
    q = sample_quality(gen, data)
    assert q["aa_true"] == float((d_ts > d_tt).double().mean())
    tie_true = float((d_ts == d_tt).double().mean())
    tie_syn = float((d_st == d_ss).double().mean())
    assert tie_true > 0.1  # the bias is real here ...
    assert abs(q["aa_true"] + tie_true / 2 - 0.5) < 0.04  # ... and is all there is
    assert abs(q["aa_syn"] + tie_syn / 2 - 0.5) < 0.04


def test_copied_data_gives_aa_zero_and_aai_half():
    data = independent_spins(500, torch.zeros(40), seed=30)
    for generated in (data.clone(), data[torch.randperm(500)]):
        q = sample_quality(generated, data)
        assert q["aa_true"] == 0.0 and q["aa_syn"] == 0.0  # d_TS = 0 is never > d_TT
        assert q["aai"] == 0.5 and q["copy_fraction"] == 1.0
        assert q["mag_err"] == q["corr_err"] == q["three_point_err"] == 0.0
        assert q["spectrum_err"] < 1e-12


# ----------------------------------------------------------------------------- copies


@pytest.mark.parametrize("n", [40, 63, 64, 65, 130, 160])
def test_copy_fraction_counts_exact_copies(n):
    gen = torch.Generator().manual_seed(n)
    train = torch.where(torch.rand(300, n, generator=gen) < 0.5, 1.0, -1.0)
    copies = train[torch.randint(300, (37,), generator=gen)]  # repeats allowed: each counts
    near = train[:20].clone()
    near[:10, -1] *= -1  # differ in the last word only
    near[10:, 0] *= -1  # differ in the first word only
    fresh = torch.where(torch.rand(143, n, generator=gen) < 0.5, 1.0, -1.0)
    generated = torch.cat([copies, near, fresh])[torch.randperm(200, generator=gen)]
    rows = {tuple(r) for r in train.tolist()}
    expected = sum(tuple(r) in rows for r in generated.tolist()) / 200
    assert expected == 37 / 200
    assert copy_fraction(generated, train) == expected
    assert copy_fraction(train, train) == 1.0


def test_copy_fraction_with_every_state():
    states = torch.tensor(list(itertools.product([-1, 1], repeat=6)), dtype=torch.int8)
    assert copy_fraction(states, states[::2]) == 0.5
    assert copy_fraction(states[::3], states) == 1.0


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("generated", "data", "match"), [
    (torch.ones(4), torch.ones(3, 4), "generated must be a 2-D"),
    (torch.ones(2, 3, 4), torch.ones(3, 4), "generated must be a 2-D"),
    (torch.ones(3, 4), torch.ones(0, 4), "data is empty"),
    (torch.ones(3, 0), torch.ones(3, 0), "generated is empty"),
    (torch.ones(3, 4), torch.ones(3, 5), "generated has 4 spins per pattern but data has 5"),
    (torch.zeros(3, 4), torch.ones(3, 4), "generated must hold only -1 and \\+1"),
    (torch.ones(3, 4), torch.full((3, 4), 2.0), "data must hold only -1 and \\+1"),
    (torch.ones(3, 4), torch.full((3, 4), math.nan), "data must hold only -1 and \\+1"),
    (torch.ones(3, 4, dtype=torch.bool), torch.ones(3, 4), "dtype torch.bool"),
    (torch.ones(3, 4), torch.full((3, 4), 255, dtype=torch.uint8), "dtype torch.uint8"),
])
def test_bad_patterns_raise_data_error(generated, data, match):
    with pytest.raises(DataError, match=match):
        sample_quality(generated, data)
    with pytest.raises(DataError):
        copy_fraction(generated, data)


@pytest.mark.parametrize("options", [{"max_patterns": 0}, {"max_triplets": 1.5},
                                     {"max_patterns": True}])
def test_bad_options_raise_config_error(options):
    with pytest.raises(ConfigError, match="sample_quality: max_"):
        sample_quality(torch.ones(3, 4), torch.ones(3, 4), **options)
