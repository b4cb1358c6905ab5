"""Real neural recordings: the bundled salamander-retina data (or a user's 3-D recording).

The recording is (repeats, units, bins) of binary spike counts, one repeat per showing of the
same stimulus. Everything that can leak between training and test runs along time, so the split is
by whole repeats, and `guard_bins` bins are dropped from a training repeat where it meets a test
repeat in file order (repeats may have been recorded back to back), so no test bin neighbours a
training bin. Spikes map to +1 and silences to -1.

Three independent random streams are spawned from `seed` (neuron choice, split, subsample), so
changing the number of neurons does not change which repeats are held out, and the M-pattern
training set of a smaller M is a subset of a larger one's.
"""

from __future__ import annotations

import hashlib
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from isingaug.data.base import Dataset
from isingaug.data.files import read_recording, to_spins, to_tensor
from isingaug.errors import ConfigError, DataError, check_options, is_int, is_number

#: The bundled recording, found from the repository root (src/isingaug/data/neural.py).
BUNDLED_PATH = (Path(__file__).resolve().parents[3] / "data" / "neural"
                / "salamander_retina_tkacik2014" / "bint_fishmovie32_100.mat")
BUNDLED_SHA256 = "50fa85a05950b76033809c8468f70c91fcd0c76d04587a685c1b76085f7f4dae"
SELECTIONS = ("most_active", "random", "list")


def load_neural_dataset(path: str | PathLike[str] | None = None, key: str | None = None,
                        n: int | None = 40, selection: str = "most_active",
                        neurons: list[int] | None = None, M: int | None = 8000,
                        M_test: int | None = None, merge_bins: int = 1,
                        test_repeats: float | int = 0.2, guard_bins: int = 1,
                        bin_ms: float = 20.0, seed: int = 0, checksum: bool = True) -> Dataset:
    """The `dataset=neural` builder: n chosen neurons, split by whole repeats, M training bins.

    `path` None reads the bundled file (its sha256 checked when `checksum`); `selection` is
    most_active (highest spike probability over the whole recording, ties to the lower index),
    random (seeded) or list (`neurons`, 0-based; `n` is then ignored). `test_repeats` is a
    fraction (float) or a count (int) of repeats held out, 0 for none. `M` / `M_test` draw that
    many bins (seeded, without replacement) from the training / test repeats; null keeps all.
    """
    _check_options(n, selection, neurons, M, M_test, merge_bins, guard_bins, bin_ms, seed)
    file, bundled = _recording_path(path)
    digest = _sha256(file)
    if bundled and checksum and digest != BUNDLED_SHA256:
        raise DataError(
            f"{file}: sha256 is {digest}, expected {BUNDLED_SHA256}; the bundled recording is "
            "damaged or replaced (restore it from the repository, or set dataset.checksum=false)"
        )
    spikes, file_meta = read_recording(file, key)
    num_repeats, num_units, _ = spikes.shape
    rates = spikes.mean(axis=(0, 2))
    neuron_rng, split_rng, subsample_rng = (np.random.default_rng(child) for child
                                            in np.random.SeedSequence(seed).spawn(3))
    chosen = choose_neurons(rates, n, selection, neurons, neuron_rng)
    merged = merge_adjacent_bins(spikes[:, chosen, :], merge_bins)
    bins = merged.shape[2]
    if bins == 0:
        raise ConfigError(f"dataset.merge_bins={merge_bins} exceeds the {spikes.shape[2]} bins "
                          "of a repeat")
    train_repeats, test_repeat_ids = split_repeats(num_repeats, test_repeats, split_rng)
    train_bins = training_bins(train_repeats, test_repeat_ids, bins, guard_bins)
    test_bins = (test_repeat_ids[:, None] * bins + np.arange(bins)).reshape(-1)
    train_bins = _subsample(train_bins, M, "M", "training", subsample_rng)
    test_bins = _subsample(test_bins, M_test, "M_test", "test", subsample_rng)
    patterns = to_spins(merged.transpose(0, 2, 1).reshape(-1, len(chosen)))
    meta: dict[str, Any] = {
        **file_meta, "dataset": "neural", "bundled": bundled, "sha256": digest, "n": len(chosen),
        "units_in_file": num_units, "selection": selection,
        "neurons": chosen.tolist(), "firing_rates": rates[chosen].tolist(),
        "repeats": num_repeats, "train_repeats": train_repeats.tolist(),
        "test_repeats": test_repeat_ids.tolist(), "merge_bins": merge_bins,
        "bins_per_repeat": bins, "bin_ms": bin_ms * merge_bins, "guard_bins": guard_bins,
        "M": int(train_bins.shape[0]), "M_test": int(test_bins.shape[0]), "seed": seed,
    }
    test = to_tensor(patterns[test_bins]) if test_bins.size else None
    return Dataset(train=to_tensor(patterns[train_bins]), test=test, truth=None, meta=meta)


def choose_neurons(rates: np.ndarray, n: int | None, selection: str, neurons: list[int] | None,
                   rng: np.random.Generator) -> np.ndarray:
    """Indices of the chosen units: by decreasing rate, sorted random draw, or the given list."""
    total = rates.shape[0]
    if selection == "list":
        return _checked_list(neurons, total)
    count = total if n is None else n
    if count > total:
        raise ConfigError(f"dataset.n={n} exceeds the {total} units of the recording")
    if selection == "most_active":
        return np.argsort(-rates, kind="stable")[:count]
    return np.sort(rng.choice(total, size=count, replace=False))


def merge_adjacent_bins(spikes: np.ndarray, width: int) -> np.ndarray:
    """(repeats, units, bins // width): a merged bin spikes if any of its bins does.

    The last bins % width bins of each repeat are dropped so no merged bin spans two repeats.
    """
    repeats, units, bins = spikes.shape
    kept = bins // width * width
    return spikes[:, :, :kept].reshape(repeats, units, bins // width, width).any(axis=-1)


def split_repeats(num_repeats: int, test_repeats: float | int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and test repeat indices; a float is a fraction, an int a count."""
    num_test = _test_count(num_repeats, test_repeats)
    order = rng.permutation(num_repeats)
    return np.sort(order[num_test:]), np.sort(order[:num_test])


def training_bins(train_repeats: np.ndarray, test_repeats: np.ndarray, bins: int,
                  guard_bins: int) -> np.ndarray:
    """Global indices (repeat * bins + bin) of the usable training bins.

    A training repeat loses its first `guard_bins` bins when the repeat before it (in file
    order) is a test repeat, and its last ones when the repeat after it is.
    """
    offsets = np.arange(bins)
    after_test = np.isin(train_repeats - 1, test_repeats)
    before_test = np.isin(train_repeats + 1, test_repeats)
    keep = ~((after_test[:, None] & (offsets < guard_bins))
             | (before_test[:, None] & (offsets >= bins - guard_bins)))
    return (train_repeats[:, None] * bins + offsets)[keep]


def _recording_path(path: str | PathLike[str] | None) -> tuple[Path, bool]:
    """The file to read and whether it is the bundled one (which must be present)."""
    if path is not None:
        return Path(path), False
    if not BUNDLED_PATH.is_file():
        raise DataError(
            f"{BUNDLED_PATH}: the bundled retina recording is missing from this checkout "
            "(it lives in the repository under data/neural/); restore it, or set dataset.path "
            "to a copy of bint_fishmovie32_100.mat"
        )
    return BUNDLED_PATH, True


def _sha256(file: Path) -> str | None:
    """The file's sha256 (None when it cannot be read; the reader then says why)."""
    try:
        return hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError:
        return None


def _checked_list(neurons: list[int] | None, total: int) -> np.ndarray:
    if neurons is None or len(neurons) < 2 or not all(is_int(i) for i in neurons):
        raise ConfigError(
            f"dataset.neurons must list at least 2 unit indices (0-based integers) with "
            f"dataset.selection=list; got {neurons!r}"
        )
    chosen = np.asarray(neurons, dtype=np.int64)
    outside = chosen[(chosen < 0) | (chosen >= total)]
    if outside.size:
        raise ConfigError(f"dataset.neurons: index {outside[0]} is outside 0..{total - 1} "
                          f"(the recording has {total} units)")
    values, counts = np.unique(chosen, return_counts=True)
    if (counts > 1).any():
        raise ConfigError(f"dataset.neurons: index {values[counts > 1][0]} is listed twice")
    return chosen


def _test_count(num_repeats: int, test_repeats: float | int) -> int:
    """Repeats held out: round(fraction * repeats) or the count; both parts non-empty unless 0."""
    if is_int(test_repeats):
        num_test = int(test_repeats)
    elif isinstance(test_repeats, float) and 0 <= test_repeats < 1:
        num_test = round(test_repeats * num_repeats)
    else:
        raise ConfigError(
            "dataset.test_repeats must be a fraction in [0, 1) (float) or a count of repeats "
            f"(int); got {test_repeats!r}"
        )
    if test_repeats and not 0 < num_test < num_repeats:
        raise ConfigError(
            f"dataset.test_repeats={test_repeats} of {num_repeats} repeats gives {num_test} test "
            f"and {num_repeats - num_test} training repeats; both must be non-empty"
        )
    return num_test


def _subsample(bins: np.ndarray, count: int | None, key: str, part: str,
               rng: np.random.Generator) -> np.ndarray:
    """`count` bins drawn without replacement, kept in time order; all when count is None.

    The permutation is drawn whatever the count, so a smaller draw is a prefix of a larger one.
    """
    order = rng.permutation(bins.shape[0])
    if count is None:
        return bins
    if count > bins.shape[0]:
        raise ConfigError(
            f"dataset.{key}={count} exceeds the {bins.shape[0]} {part} bins available "
            f"(after the split by repeats and the guard bins); use dataset.{key} <= "
            f"{bins.shape[0]} or null for all"
        )
    return np.sort(bins[order[:count]])


def _check_options(n: Any, selection: Any, neurons: Any, M: Any, M_test: Any, merge_bins: Any,
                   guard_bins: Any, bin_ms: Any, seed: Any) -> None:
    if selection not in SELECTIONS:
        raise ConfigError(f"dataset.selection must be one of {', '.join(SELECTIONS)}; "
                          f"got {selection!r}")
    if neurons is not None and selection != "list":
        raise ConfigError(f"dataset.neurons is used only with dataset.selection=list (got "
                          f"selection={selection}); set dataset.neurons=null")
    check_options([
        ("dataset.n", n, n is None or (is_int(n) and n >= 2), "an integer >= 2, or null for all"),
        ("dataset.M", M, M is None or (is_int(M) and M >= 1),
         "a positive integer, or null for all"),
        ("dataset.M_test", M_test, M_test is None or (is_int(M_test) and M_test >= 1),
         "a positive integer, or null for all"),
        ("dataset.merge_bins", merge_bins, is_int(merge_bins) and merge_bins >= 1,
         "an integer >= 1"),
        ("dataset.guard_bins", guard_bins, is_int(guard_bins) and guard_bins >= 0,
         "an integer >= 0"),
        ("dataset.bin_ms", bin_ms, is_number(bin_ms) and bin_ms > 0,
         "a positive number of milliseconds"),
        ("dataset.seed", seed, is_int(seed) and seed >= 0, "a non-negative integer"),
    ])
