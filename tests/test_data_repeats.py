"""One split rule for (repeats x units x bins) recordings, through dataset=file and dataset=neural.

The recording is built so that every bin's pattern is the binary code of its global index
repeat * bins + bin: each pattern says which repeat and bin it came from, so the split can be
checked on the data the builders return, not on their meta alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from isingaug.data.file_dataset import load_file_dataset
from isingaug.data.neural import load_neural_dataset
from isingaug.errors import ConfigError

REPEATS, BINS, UNITS = 12, 5, 6  # 60 bins, coded on 6 bits
GUARD = 1


def labelled_recording(path: Path) -> Path:
    """(repeats, units, bins) in {0,1}: unit k of bin (r, b) is bit k of r * BINS + b."""
    index = np.arange(REPEATS)[:, None] * BINS + np.arange(BINS)          # (repeats, bins)
    bits = (index[:, None, :] >> np.arange(UNITS)[None, :, None]) & 1     # (repeats, units, bins)
    np.savez(path, raster=bits.astype(np.uint8))
    return path


def decode(patterns: torch.Tensor) -> np.ndarray:
    """The global bin index each +-1 pattern encodes."""
    return ((patterns.numpy() > 0).astype(np.int64) << np.arange(UNITS)).sum(axis=1)


def expected_training_bins(test_repeats: set[int]) -> set[int]:
    """The guard rule written out bin by bin."""
    kept = set()
    for r in set(range(REPEATS)) - test_repeats:
        for b in range(BINS):
            if (r - 1 in test_repeats and b < GUARD) or (r + 1 in test_repeats
                                                         and b >= BINS - GUARD):
                continue
            kept.add(r * BINS + b)
    return kept


def by_file(path: Path, seed: int, M: int | None = None):
    return load_file_dataset(path, layout="repeats_units_bins", test_fraction=0.25,
                             split_seed=seed, guard_bins=GUARD, M=M)


def by_neural(path: Path, seed: int, M: int | None = None):
    return load_neural_dataset(path=path, selection="list", neurons=list(range(UNITS)), M=M,
                               M_test=None, test_repeats=0.25, guard_bins=GUARD, bin_ms=10.0,
                               seed=seed)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("entry", [by_file, by_neural], ids=["file", "neural"])
def test_no_test_pattern_comes_from_a_training_repeat(tmp_path: Path, entry, seed: int) -> None:
    data = entry(labelled_recording(tmp_path / "rec.npz"), seed)
    train, test = decode(data.train), decode(data.test)
    train_repeats, test_repeats = set((train // BINS).tolist()), set((test // BINS).tolist())
    assert not train_repeats & test_repeats
    assert test_repeats == set(data.meta["test_repeats"])
    assert len(test_repeats) == round(0.25 * REPEATS)
    # every bin of a test repeat is a test pattern, once
    assert sorted(test.tolist()) == sorted(r * BINS + b for r in test_repeats for b in range(BINS))
    # the guard rule: exactly the bins it keeps, none next to a test bin
    assert sorted(train.tolist()) == sorted(expected_training_bins(test_repeats))
    assert not set(test.tolist()) & (set((train - 1).tolist()) | set((train + 1).tolist()))


@pytest.mark.parametrize("seed", range(3))
def test_both_entry_points_hold_out_the_same_repeats(tmp_path: Path, seed: int) -> None:
    path = labelled_recording(tmp_path / "rec.npz")
    from_file, from_neural = by_file(path, seed, M=20), by_neural(path, seed, M=20)
    assert from_file.meta["test_repeats"] == from_neural.meta["test_repeats"]
    assert from_file.meta["split"] == "repeats" and from_file.meta["guard_bins"] == GUARD
    assert torch.equal(from_file.train, from_neural.train)
    assert torch.equal(from_file.test, from_neural.test)
    drawn = decode(from_file.train)
    assert drawn.shape == (20,) and (np.diff(drawn) > 0).all()  # a draw kept in time order
    assert set(drawn.tolist()) <= set(decode(by_file(path, seed).train).tolist())


def test_m_draws_are_nested_for_recordings(tmp_path: Path) -> None:
    path = labelled_recording(tmp_path / "rec.npz")
    small, large = by_file(path, 1, M=10), by_file(path, 1, M=25)
    assert set(decode(small.train).tolist()) <= set(decode(large.train).tolist())
    assert torch.equal(small.test, large.test)


def test_a_recording_without_a_split_keeps_every_bin(tmp_path: Path) -> None:
    data = load_file_dataset(labelled_recording(tmp_path / "rec.npz"),
                             layout="repeats_units_bins")
    assert data.test is None and data.meta["split"] == "none"
    assert decode(data.train).tolist() == list(range(REPEATS * BINS))


def test_too_small_a_fraction_of_repeats_names_the_key(tmp_path: Path) -> None:
    path = labelled_recording(tmp_path / "rec.npz")
    with pytest.raises(ConfigError, match=r"rec\.npz: dataset\.test_fraction=0\.01 of 12 repeats "
                                          r"gives 0 test and 12 training repeats"):
        load_file_dataset(path, layout="repeats_units_bins", test_fraction=0.01)
    with pytest.raises(ConfigError, match=r"dataset\.guard_bins must be an integer >= 0; got -1"):
        load_file_dataset(path, layout="repeats_units_bins", guard_bins=-1)
