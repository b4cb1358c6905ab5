"""Real neural recordings: the bundled salamander-retina data (or a user's 3-D recording).

The recording is (repeats, units, bins) of binary spike counts, one repeat per showing of the
same stimulus. The train/test split is the one rule of repeats.py, shared with
`dataset=file layout=repeats_units_bins`: whole repeats are held out (`test_repeats`, drawn with
the seed), `guard_bins` bins are dropped from a training repeat where it meets a test repeat in
file order, so no test bin neighbours a training bin, and `M` / `M_test` bins are seeded draws.
Spikes map to +1 and silences to -1.

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
from isingaug.data.patterns import read_recording
from isingaug.data.repeats import recording_streams, split_by_repeats, subsample_bins
from isingaug.data.validation import encoded_to_spins, to_tensor
from isingaug.errors import ConfigError, DataError, check_options, is_int, is_number, option_error

#: The bundled recording, shipped inside the package (and so inside the wheel).
BUNDLED_PATH = (Path(__file__).resolve().parent / "bundled" / "salamander_retina_tkacik2014"
                / "bint_fishmovie32_100.mat")
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
    streams = recording_streams(seed)
    chosen = choose_neurons(rates, n, selection, neurons, streams["neurons"])
    merged = merge_adjacent_bins(spikes[:, chosen, :], merge_bins)
    bins = merged.shape[2]
    if bins == 0:
        raise ConfigError(f"dataset.merge_bins={merge_bins} exceeds the {spikes.shape[2]} bins "
                          "of a repeat")
    split = split_by_repeats(num_repeats, bins, test_repeats, guard_bins, streams["split"])
    train_bins = subsample_bins(split.train_bins, M, "dataset.M", "training",
                                streams["subsample"])
    test_bins = subsample_bins(split.test_bins, M_test, "dataset.M_test", "test",
                               streams["subsample"])
    patterns = encoded_to_spins(merged.transpose(0, 2, 1).reshape(-1, len(chosen)))
    meta: dict[str, Any] = {
        **file_meta, "dataset": "neural", "bundled": bundled, "sha256": digest, "n": len(chosen),
        "units_in_file": num_units, "selection": selection,
        "neurons": chosen.tolist(), "firing_rates": rates[chosen].tolist(),
        "repeats": num_repeats, "train_repeats": split.train_repeats.tolist(),
        "test_repeats": split.test_repeats.tolist(), "merge_bins": merge_bins,
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


def _recording_path(path: str | PathLike[str] | None) -> tuple[Path, bool]:
    """The file to read and whether it is the bundled one (which must be present)."""
    if path is not None:
        return Path(path), False
    if not BUNDLED_PATH.is_file():
        raise DataError(
            f"{BUNDLED_PATH}: the bundled retina recording is missing from this installation "
            "(it ships inside the package, under isingaug/data/bundled/); reinstall isingaug, or "
            "set dataset.path to a copy of bint_fishmovie32_100.mat"
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
        raise option_error("dataset.neurons", "a list of at least 2 unit indices (0-based "
                           "integers) with dataset.selection=list", neurons)
    chosen = np.asarray(neurons, dtype=np.int64)
    outside = chosen[(chosen < 0) | (chosen >= total)]
    if outside.size:
        raise ConfigError(f"dataset.neurons: index {outside[0]} is outside 0..{total - 1} "
                          f"(the recording has {total} units)")
    values, counts = np.unique(chosen, return_counts=True)
    if (counts > 1).any():
        raise ConfigError(f"dataset.neurons: index {values[counts > 1][0]} is listed twice")
    return chosen


def _check_options(n: Any, selection: Any, neurons: Any, M: Any, M_test: Any, merge_bins: Any,
                   guard_bins: Any, bin_ms: Any, seed: Any) -> None:
    check_options([
        ("dataset.selection", selection, selection in SELECTIONS,
         f"one of {', '.join(SELECTIONS)}"),
        ("dataset.neurons", neurons, neurons is None or selection == "list",
         f"null with dataset.selection={selection} (it is used only with dataset.selection=list)"),
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
