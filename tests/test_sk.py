"""Synthetic SK data: the truth's statistics, the sampler choice, the cache, the checks."""

from __future__ import annotations

import pytest
import torch

from isingaug.data.sk import make_sk_dataset, sk_truth
from isingaug.errors import ConfigError
from isingaug.ising import exact_statistics, moments

EXACT = {"kind": "auto", "exact_max_n": 20}
MCMC = {"kind": "mcmc", "chains": 500, "burn_in": 200, "thin": 5}


def test_truth_has_the_sk_scales():
    truth = sk_truth(200, g=1.5, g_h=0.5, data_seed=3)
    assert torch.equal(truth.J, truth.J.T) and torch.all(torch.diagonal(truth.J) == 0)
    upper = truth.couplings_upper()
    assert abs(float(upper.std()) - 1.5 / 200**0.5) < 0.01 * 1.5
    assert abs(float(truth.h.std()) - 0.5 / 200**0.5) < 0.2 * 0.5 / 200**0.5
    assert torch.equal(sk_truth(200, 1.5, 0.5, 3).J, truth.J)
    assert not torch.equal(sk_truth(200, 1.5, 0.5, 4).J, truth.J)


def test_dataset_shapes_and_exact_moments(tmp_path):
    data = make_sk_dataset(n=8, g=1.0, M=30_000, M_test=100, data_seed=1, sampler=EXACT,
                           cache_dir=str(tmp_path), device="cpu")
    assert data.train.shape == (30_000, 8) and data.test.shape == (100, 8)
    assert data.train.dtype == torch.float32
    assert data.meta["sampler"]["kind"] == "exact"
    first, _ = moments(data.train)
    assert (first - exact_statistics(data.truth).first).abs().max() < 0.03


def test_cache_is_reused_and_keyed_by_everything(tmp_path):
    kwargs = {"n": 6, "g": 1.0, "M": 50, "M_test": 10, "data_seed": 2, "sampler": EXACT,
              "cache_dir": str(tmp_path), "device": "cpu"}
    first = make_sk_dataset(**kwargs)
    again = make_sk_dataset(**kwargs)
    assert not first.meta["from_cache"] and again.meta["from_cache"]
    assert torch.equal(first.train, again.train) and torch.equal(first.test, again.test)
    other = make_sk_dataset(**{**kwargs, "data_seed": 3})
    assert other.meta["cache_file"] != first.meta["cache_file"]
    assert len(list((tmp_path / "sk").glob("*.npz"))) == 2
    assert not list((tmp_path / "sk").glob("*.tmp"))


def test_mcmc_path_above_the_exact_limit(tmp_path):
    data = make_sk_dataset(n=12, g=1.0, M=2000, M_test=0, data_seed=0,
                           sampler={**MCMC, "exact_max_n": 10}, cache_dir=None, device="cpu")
    assert data.test is None and data.meta["sampler"]["kind"] == "mcmc"
    assert data.meta["sampling"]["tau_int_energy"] > 0
    first, _ = moments(data.train)
    assert (first - exact_statistics(data.truth).first).abs().max() < 0.1


def test_parallel_tempering_switches_on_at_strong_coupling():
    data = make_sk_dataset(n=10, g=1.6, M=200, M_test=0, data_seed=0,
                           sampler={**MCMC, "pt_replicas": 3}, cache_dir=None, device="cpu")
    assert data.meta["sampler"]["parallel_tempering"] is True
    assert len(data.meta["sampling"]["pt_swap_rates"]) == 2


@pytest.mark.parametrize(("key", "value", "message"), [
    ("n", 1, "dataset.n must be an integer >= 2"),
    ("M", 0, "dataset.M must be an integer >= 1"),
    ("M_test", -1, "dataset.M_test must be an integer >= 0"),
    ("g", -0.5, "dataset.g must be a finite number >= 0"),
    ("g_h", float("nan"), "dataset.g_h must be a finite number >= 0"),
    ("n", 2.5, "dataset.n must be an integer >= 2"),
])
def test_bad_sizes_name_the_key(key, value, message):
    kwargs = {"n": 6, "g": 1.0, "M": 10, "M_test": 0, "data_seed": 0, "sampler": EXACT,
              "cache_dir": None, "device": "cpu", key: value}
    with pytest.raises(ConfigError, match=message):
        make_sk_dataset(**kwargs)


def test_bad_sampler_settings_name_the_key():
    with pytest.raises(ConfigError, match=r"dataset\.sampler\.kind must be one of"):
        make_sk_dataset(6, 1.0, 10, 0, 0, {"kind": "gibbs"})
    with pytest.raises(ConfigError, match=r"dataset\.sampler has an unknown key"):
        make_sk_dataset(6, 1.0, 10, 0, 0, {"kind": "mcmc", "sweeps": 3})
