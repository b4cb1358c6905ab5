"""The bundled retina recording and dataset=neural: shapes, rates, selection, split, merging, M."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from isingaug.data import neural
from isingaug.data.neural import BUNDLED_PATH, load_neural_dataset, merge_adjacent_bins
from isingaug.data.repeats import split_repeats, training_bins
from isingaug.errors import ConfigError, DataError

REPEATS, UNITS, BINS = 297, 160, 953


@pytest.fixture(scope="module")
def bint() -> np.ndarray:
    """The bundled file read independently of the package: (repeats, units, bins) uint8."""
    return scipy.io.loadmat(BUNDLED_PATH)["bint"]


def spins_of(bint: np.ndarray, repeats: list[int], units: list[int]) -> np.ndarray:
    """Patterns (bins of the given repeats in order) x units, spike -> +1."""
    block = bint[np.asarray(repeats)][:, np.asarray(units), :]
    return (2.0 * block.transpose(0, 2, 1).reshape(-1, len(units)) - 1).astype(np.float32)


def test_bundled_file_loads_with_the_paper_setup(bint: np.ndarray) -> None:
    assert bint.shape == (REPEATS, UNITS, BINS) and bint.dtype == np.uint8
    data = load_neural_dataset()
    num_test = round(0.2 * REPEATS)
    assert data.train.shape == (8000, 40) and data.train.dtype == torch.float32
    assert data.test.shape == (num_test * BINS, 40)
    assert set(data.train.unique().tolist()) == {-1.0, 1.0} and data.truth is None
    meta = data.meta
    assert meta["bundled"] and meta["sha256"] == neural.BUNDLED_SHA256
    assert meta["bin_ms"] == 20.0 and (meta["M"], meta["M_test"]) == (8000, num_test * BINS)
    assert len(meta["train_repeats"]) + len(meta["test_repeats"]) == REPEATS
    assert meta["shape_in_file"] == [REPEATS, UNITS, BINS] and meta["key"] == "bint"


def test_mean_spike_probability_over_all_cells() -> None:
    data = load_neural_dataset(n=None, M=None, test_repeats=0)
    assert data.test is None and data.train.shape == (REPEATS * BINS, UNITS)
    spike_probability = float(((data.train + 1) / 2).mean())
    assert spike_probability == pytest.approx(0.0358, abs=5e-4)
    assert np.mean(data.meta["firing_rates"]) == pytest.approx(spike_probability, abs=1e-6)


def test_most_active_picks_the_highest_rates(bint: np.ndarray) -> None:
    rates = bint.mean(axis=(0, 2))
    data = load_neural_dataset(n=40, M=None, guard_bins=0)
    chosen = data.meta["neurons"]
    assert len(set(chosen)) == 40
    others = np.setdiff1d(np.arange(UNITS), chosen)
    assert rates[chosen].min() >= rates[others].max()
    np.testing.assert_allclose(data.meta["firing_rates"], rates[chosen])
    assert list(np.diff(data.meta["firing_rates"]) <= 0) == [True] * 39
    expected = spins_of(bint, data.meta["train_repeats"], chosen)
    np.testing.assert_array_equal(data.train.numpy(), expected)
    np.testing.assert_array_equal(data.test.numpy(),
                                  spins_of(bint, data.meta["test_repeats"], chosen))


def test_random_selection_is_seeded() -> None:
    first = load_neural_dataset(n=10, selection="random", M=50, seed=3)
    again = load_neural_dataset(n=10, selection="random", M=50, seed=3)
    other = load_neural_dataset(n=10, selection="random", M=50, seed=4)
    assert first.meta["neurons"] == again.meta["neurons"] == sorted(set(first.meta["neurons"]))
    assert torch.equal(first.train, again.train)
    assert first.meta["neurons"] != other.meta["neurons"]
    # the split and subsample streams do not depend on the neuron stream's use
    most = load_neural_dataset(n=10, M=50, seed=3)
    assert most.meta["test_repeats"] == first.meta["test_repeats"]


def test_explicit_list_keeps_its_order(bint: np.ndarray) -> None:
    data = load_neural_dataset(selection="list", neurons=[5, 2, 100], M=None, guard_bins=0)
    assert data.meta["neurons"] == [5, 2, 100] and data.n == 3
    np.testing.assert_array_equal(data.train.numpy(),
                                  spins_of(bint, data.meta["train_repeats"], [5, 2, 100]))


def test_split_shares_no_repeat_and_is_seeded() -> None:
    data = load_neural_dataset(n=5, M=100, test_repeats=30, seed=7)
    train, test = set(data.meta["train_repeats"]), set(data.meta["test_repeats"])
    assert not train & test and train | test == set(range(REPEATS)) and len(test) == 30
    again = load_neural_dataset(n=5, M=100, test_repeats=30, seed=7)
    assert again.meta["test_repeats"] == data.meta["test_repeats"]
    assert load_neural_dataset(n=5, M=100, test_repeats=30, seed=8).meta["test_repeats"] != (
        data.meta["test_repeats"])


@pytest.mark.parametrize("seed", range(5))
def test_no_test_bin_neighbours_a_training_bin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    train_repeats, test_repeats = split_repeats(20, 0.4, rng)
    bins = 7
    train = training_bins(train_repeats, test_repeats, bins, guard_bins=1)
    test = set((test_repeats[:, None] * bins + np.arange(bins)).ravel().tolist())
    assert not test & set(train.tolist())
    assert not test & set((train - 1).tolist()) and not test & set((train + 1).tolist())
    unguarded = training_bins(train_repeats, test_repeats, bins, guard_bins=0)
    assert unguarded.shape[0] == len(train_repeats) * bins
    touching = np.isin(unguarded - 1, list(test)) | np.isin(unguarded + 1, list(test))
    assert unguarded.shape[0] - train.shape[0] == touching.sum()


def test_guard_bins_shrink_the_training_pool() -> None:
    data = load_neural_dataset(n=3, M=None, test_repeats=0.2, guard_bins=2)
    test = set(data.meta["test_repeats"])
    meets = sum((r - 1 in test) + (r + 1 in test) for r in data.meta["train_repeats"])
    assert data.meta["M"] == len(data.meta["train_repeats"]) * BINS - 2 * meets


def test_merge_bins_by_hand() -> None:
    spikes = np.zeros((2, 1, 5), dtype=bool)
    spikes[0, 0, [1, 4]] = True
    spikes[1, 0, 2] = True
    merged = merge_adjacent_bins(spikes, 2)
    np.testing.assert_array_equal(merged[:, 0], [[True, False], [False, True]])


def test_merge_bins_in_the_loader(bint: np.ndarray) -> None:
    data = load_neural_dataset(n=4, M=None, merge_bins=3, guard_bins=0)
    assert data.meta["bins_per_repeat"] == BINS // 3 and data.meta["bin_ms"] == 60.0
    chosen, repeats = data.meta["neurons"], data.meta["train_repeats"]
    block = bint[np.asarray(repeats)][:, chosen, :BINS // 3 * 3]
    merged = block.reshape(len(repeats), 4, BINS // 3, 3).max(-1)
    expected = 2.0 * merged.transpose(0, 2, 1).reshape(-1, 4) - 1
    np.testing.assert_array_equal(data.train.numpy(), expected)


def test_m_draws_nested_subsets() -> None:
    small = load_neural_dataset(n=6, M=50, seed=1)
    large = load_neural_dataset(n=6, M=400, seed=1)
    assert small.train.shape == (50, 6) and small.meta["M"] == 50
    rows = Counter(map(tuple, large.train.tolist()))
    rows.subtract(Counter(map(tuple, small.train.tolist())))
    assert min(rows.values()) >= 0
    capped = load_neural_dataset(n=6, M=50, M_test=30, seed=1)
    assert capped.test.shape == (30, 6) and capped.meta["M_test"] == 30


def test_a_users_recording(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    recording = (rng.random((6, 5, 10)) < 0.3).astype(np.uint8)
    np.savez(tmp_path / "rec.npz", raster=recording)
    data = load_neural_dataset(path=tmp_path / "rec.npz", n=None, M=None, test_repeats=2,
                               guard_bins=0, bin_ms=10.0)
    assert not data.meta["bundled"] and data.meta["bin_ms"] == 10.0
    assert data.train.shape == (40, 5) and data.test.shape == (20, 5)
    np.testing.assert_array_equal(
        data.test.numpy(), 2.0 * recording[data.meta["test_repeats"]][:, np.argsort(
            -recording.mean(axis=(0, 2)), kind="stable")].transpose(0, 2, 1).reshape(-1, 5) - 1)


def test_checksum_is_verified(monkeypatch) -> None:
    monkeypatch.setattr(neural, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(DataError, match=r"bint_fishmovie32_100\.mat: sha256 is 50fa.*expected 0+"
                                        r".*dataset\.checksum=false"):
        load_neural_dataset()
    assert load_neural_dataset(checksum=False, n=3, M=10).train.shape == (10, 3)


def test_missing_bundled_file_is_explained(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(neural, "BUNDLED_PATH", tmp_path / "gone.mat")
    with pytest.raises(DataError, match=r"gone\.mat: the bundled retina recording is missing.*"
                                        r"dataset\.path"):
        load_neural_dataset()


def test_a_2d_user_file_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.zeros((20, 4)))
    with pytest.raises(DataError, match=r"flat\.npy: has shape \(20, 4\); layout "
                                        r"'repeats_units_bins' needs a 3-D array"):
        load_neural_dataset(path=tmp_path / "flat.npy")


CONFIG_ERRORS = [
    ({"selection": "best"}, r"dataset\.selection must be one of most_active, random, list"),
    ({"neurons": [1, 2]}, r"dataset\.neurons must be null with dataset\.selection=most_active "
                         r"\(it is used only with dataset\.selection=list\); got \[1, 2\]"),
    ({"selection": "list"}, r"dataset\.neurons must be a list of at least 2 unit indices"),
    ({"selection": "list", "neurons": [1, 1.5]},
     r"dataset\.neurons must be a list.*got \[1, 1\.5\]"),
    ({"selection": "list", "neurons": [3, 160]},
     r"dataset\.neurons: index 160 is outside 0\.\.159"),
    ({"selection": "list", "neurons": [3, -1]}, r"dataset\.neurons: index -1 is outside"),
    ({"selection": "list", "neurons": [3, 7, 3]}, r"dataset\.neurons: index 3 is listed twice"),
    ({"n": 1}, r"dataset\.n must be an integer >= 2, or null"),
    ({"n": 161}, r"dataset\.n=161 exceeds the 160 units"),
    ({"M": 0}, r"dataset\.M must be a positive integer, or null"),
    ({"M": 10**6}, r"dataset\.M=1000000 exceeds the \d+ training bins available"),
    ({"M_test": 10**6}, r"dataset\.M_test=1000000 exceeds the \d+ test bins available"),
    ({"merge_bins": 0}, r"dataset\.merge_bins must be an integer >= 1"),
    ({"merge_bins": 1000}, r"dataset\.merge_bins=1000 exceeds the 953 bins"),
    ({"test_repeats": 1.0}, r"dataset\.test_repeats must be a fraction in \[0, 1\)"),
    ({"test_repeats": "all"}, r"dataset\.test_repeats must be a fraction"),
    ({"test_repeats": 297}, r"dataset\.test_repeats=297 of 297 repeats gives 297 test and 0"),
    ({"test_repeats": 0.001}, r"dataset\.test_repeats=0\.001 of 297 repeats gives 0 test"),
    ({"guard_bins": -1}, r"dataset\.guard_bins must be an integer >= 0"),
    ({"bin_ms": 0}, r"dataset\.bin_ms must be a positive number"),
    ({"seed": -2}, r"dataset\.seed must be a non-negative integer"),
]


@pytest.mark.parametrize(("options", "problem"), CONFIG_ERRORS)
def test_config_errors_name_the_key(options: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_neural_dataset(**options)
