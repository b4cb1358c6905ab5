"""The one train/test split of a (repeats x units x bins) recording, whichever builder reads it.

A recording shows the same stimulus once per repeat, and everything that can leak between
training and test runs along time, so the split is by whole repeats: `test_repeats` repeats (a
fraction of them, rounded, or a count) are drawn with the seed and held out. Repeats may have been
recorded back to back, so a training repeat loses its first `guard_bins` bins when the repeat
before it in file order is a test repeat and its last `guard_bins` when the repeat after it is: no
test bin neighbours a training bin. `M` training bins are then drawn without replacement and kept
in time order.

Bins are addressed by their global index `repeat * bins + bin`, the row of the pattern matrix in
which the repeats are concatenated. `dataset=neural` (its `seed`, `test_repeats`, `guard_bins`) and
`dataset=file layout=repeats_units_bins` (its `split_seed`, `test_fraction`, `guard_bins`) both
split here and draw from the same streams of their seed (`recording_streams`), so the same seed
holds out the same repeats through either entry point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isingaug.errors import ConfigError, is_int, is_number, option_error

#: The independent streams a recording's builder draws from, in spawn order.
STREAMS = ("neurons", "split", "subsample")


@dataclass(frozen=True)
class RepeatSplit:
    """Sorted training / test repeat indices and the global bin indices each side may use."""

    train_repeats: np.ndarray
    test_repeats: np.ndarray
    train_bins: np.ndarray
    test_bins: np.ndarray


def recording_streams(seed: int) -> dict[str, np.random.Generator]:
    """One generator per entry of STREAMS, spawned from `seed`.

    Independent streams keep each choice stable when another changes: the number of neurons does
    not move the held-out repeats, and a smaller M draws a subset of a larger M's bins.
    """
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children,
                                                                     strict=True)}


def held_out_count(total: int, amount: float | int, key: str, noun: str,
                   context: str | None = None) -> int:
    """round(fraction * total) for a float in [0, 1), the count for an int; 0 means no test set.

    A non-zero amount must leave both parts non-empty. `key` and `noun` ('repeats', 'patterns')
    name the option and what is counted in messages.
    """
    if is_int(amount):
        count = int(amount)
    elif is_number(amount) and 0 <= amount < 1:
        count = round(float(amount) * total)
    else:
        raise option_error(key, f"a fraction in [0, 1) (float) or a count of {noun} (int)",
                           amount, context)
    if amount and not 0 < count < total:
        prefix = f"{context}: " if context else ""
        raise ConfigError(
            f"{prefix}{key}={amount} of {total} {noun} gives {count} test and {total - count} "
            f"training {noun}; both must be non-empty"
        )
    return count


def split_repeats(num_repeats: int, test_repeats: float | int, rng: np.random.Generator,
                  key: str = "dataset.test_repeats",
                  context: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and test repeat indices; the test repeats are a seeded draw."""
    num_test = held_out_count(num_repeats, test_repeats, key, "repeats", context)
    order = rng.permutation(num_repeats)
    return np.sort(order[num_test:]), np.sort(order[:num_test])


def training_bins(train_repeats: np.ndarray, test_repeats: np.ndarray, bins: int,
                  guard_bins: int) -> np.ndarray:
    """Global indices of the usable training bins: the guard rule of the module docstring."""
    offsets = np.arange(bins)
    after_test = np.isin(train_repeats - 1, test_repeats)
    before_test = np.isin(train_repeats + 1, test_repeats)
    keep = ~((after_test[:, None] & (offsets < guard_bins))
             | (before_test[:, None] & (offsets >= bins - guard_bins)))
    return (train_repeats[:, None] * bins + offsets)[keep]


def split_by_repeats(num_repeats: int, bins: int, test_repeats: float | int, guard_bins: int,
                     rng: np.random.Generator, key: str = "dataset.test_repeats",
                     context: str | None = None) -> RepeatSplit:
    """The split of the module docstring; `key` (and `context`) name the amount in messages."""
    train, test = split_repeats(num_repeats, test_repeats, rng, key, context)
    test_bins = (test[:, None] * bins + np.arange(bins)).reshape(-1)
    return RepeatSplit(train, test, training_bins(train, test, bins, guard_bins), test_bins)


def subsample_bins(bins: np.ndarray, count: int | None, key: str, part: str,
                   rng: np.random.Generator) -> np.ndarray:
    """`count` bins drawn without replacement, kept in time order; all when count is None.

    The permutation is drawn whatever the count, so a smaller draw is a subset of a larger one
    and the stream is left in the same state.
    """
    order = rng.permutation(bins.shape[0])
    if count is None:
        return bins
    if count > bins.shape[0]:
        raise ConfigError(
            f"{key}={count} exceeds the {bins.shape[0]} {part} bins available (after the split "
            f"by repeats and the guard bins); use {key} <= {bins.shape[0]} or null for all"
        )
    return np.sort(bins[order[:count]])
