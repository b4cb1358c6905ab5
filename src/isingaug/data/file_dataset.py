"""The `dataset=file` builder: a user's file of patterns -> a Dataset, split and cut to M.

Patterns (2-D, or spike times binned): one permutation drawn from default_rng(split_seed) serves
both the split (its first round(test_fraction * M_file) entries are the test set) and the cut to M
(the first M of the remaining ones), so the M-pattern training set for a smaller M is a subset of
a larger one's. Without a split or M the file's order is kept.

Recordings (layout=repeats_units_bins): the split is by whole repeats, the one rule of
repeats.py shared with dataset=neural: round(test_fraction * repeats) repeats are held out,
`guard_bins` bins are dropped where a training repeat meets a test repeat, and M training bins are
a seeded draw kept in time order; with the same seed the same repeats are held out as by
`dataset=neural path=<file> seed=<split_seed>`. A file that ships its own `test` array is never
split again.
"""

from __future__ import annotations

from os import PathLike
from typing import Any

import numpy as np
import torch

from isingaug.data.base import Dataset
from isingaug.data.patterns import RawPatterns, read_patterns
from isingaug.data.repeats import (
    held_out_count,
    recording_streams,
    split_by_repeats,
    subsample_bins,
)
from isingaug.data.validation import RECORDING, to_tensor
from isingaug.errors import ConfigError, check_options, is_int, is_number
from isingaug.ising import IsingParams

_Split = tuple[np.ndarray, np.ndarray | None, dict[str, Any]]


def load_file_dataset(path: str | PathLike[str], key: str | None = None, layout: str = "auto",
                      M: int | None = None, test_fraction: float = 0.0, split_seed: int = 0,
                      guard_bins: int = 1, bin_width: float | None = None,
                      time_unit: str = "s", skip_columns: int = 0) -> Dataset:
    """A user's patterns as a Dataset, split and cut to M by the rules of the module docstring."""
    check_options([
        ("dataset.M", M, M is None or (is_int(M) and M >= 1),
         "a positive integer or null (all patterns)"),
        ("dataset.test_fraction", test_fraction, is_number(test_fraction)
         and 0 <= test_fraction < 1, "in [0, 1)"),
        ("dataset.split_seed", split_seed, is_int(split_seed) and split_seed >= 0,
         "a non-negative integer"),
        ("dataset.guard_bins", guard_bins, is_int(guard_bins) and guard_bins >= 0,
         "an integer >= 0"),
    ])
    raw = read_patterns(path, key, layout, bin_width, time_unit, skip_columns)
    label = str(path)
    if raw.test is not None and test_fraction > 0:
        raise ConfigError(
            f"{label}: the file has its own 'test' array, so dataset.test_fraction must be 0 "
            f"(got {test_fraction})"
        )
    if raw.meta["layout"] == RECORDING:
        train, test, split = _split_recording(raw, M, test_fraction, split_seed, guard_bins,
                                              label)
    else:
        train, test, split = _split_patterns(raw, M, test_fraction, split_seed, label)
    truth = None if raw.h is None else IsingParams.from_numpy(raw.h, raw.J, dtype=torch.float64)
    meta = {**raw.meta, "dataset": "file", "path": raw.meta["source"], "n": int(train.shape[1]),
            "M_file": int(raw.samples.shape[0]), "M": int(train.shape[0]),
            "M_test": 0 if test is None else int(test.shape[0]),
            "test_fraction": float(test_fraction), "split_seed": int(split_seed),
            "has_truth": truth is not None, **split}
    return Dataset(train=to_tensor(train), test=None if test is None else to_tensor(test),
                   truth=truth, meta=meta)


def _split_patterns(raw: RawPatterns, M: int | None, test_fraction: float, split_seed: int,
                    label: str) -> _Split:
    """Patterns without repeats: the one-permutation rule of the module docstring."""
    samples, test = raw.samples, raw.test
    split = "file" if test is not None else "none"
    order = np.random.default_rng(split_seed).permutation(samples.shape[0])
    if test_fraction > 0:
        num_test = held_out_count(samples.shape[0], test_fraction, "dataset.test_fraction",
                                  "patterns", label)
        samples, test = samples[order[num_test:]], samples[order[:num_test]]
        split = "random"
    elif M is not None:
        samples = samples[order]
    if M is not None:
        if samples.shape[0] < M:
            after = " after the test split" if split == "random" else ""
            raise ConfigError(
                f"dataset.M={M} exceeds the {samples.shape[0]} training patterns in {label}"
                f"{after}; use dataset.M <= {samples.shape[0]} or null for all"
            )
        samples = samples[:M]
    return samples, test, {"split": split}


def _split_recording(raw: RawPatterns, M: int | None, test_fraction: float, split_seed: int,
                     guard_bins: int, label: str) -> _Split:
    """A (repeats x units x bins) recording: split by whole repeats (repeats.py), then M bins."""
    streams = recording_streams(split_seed)
    if raw.test is not None:
        pool, test = np.arange(raw.samples.shape[0]), raw.test
        meta: dict[str, Any] = {"split": "file"}
    else:
        repeats, _, bins = raw.meta["shape_in_file"]
        split = split_by_repeats(repeats, bins, test_fraction, guard_bins, streams["split"],
                                 "dataset.test_fraction", label)
        pool = split.train_bins
        test = raw.samples[split.test_bins] if split.test_bins.size else None
        meta = {"split": "repeats" if test is not None else "none", "repeats": repeats,
                "bins_per_repeat": bins, "guard_bins": guard_bins,
                "train_repeats": split.train_repeats.tolist(),
                "test_repeats": split.test_repeats.tolist()}
    chosen = subsample_bins(pool, M, "dataset.M", "training", streams["subsample"])
    return raw.samples[chosen], test, meta
