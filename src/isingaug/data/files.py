"""Readers for users' files of binary spin patterns or spike times: .npz, .npy, .csv/.txt,
MATLAB .mat (v5 and v7.3) and NWB.

A user's file is the input most likely to be wrong, so everything is checked here and every error
names the file, the array or variable, and what is allowed. Past this module patterns are int8 +-1:
files in {0,1} are converted at the boundary (0 -> -1, 1 -> +1) and `meta["encoding"]` says so.

Orientation (`layout`): "patterns_by_units" takes rows as patterns, "units_by_patterns" transposes,
and "auto" takes rows as patterns unless the array has more columns than rows (then it transposes,
since a data set with fewer patterns than units is not one to fit an Ising model to); a square
array is read as is. When an .npz file ships the truth, n is fixed by the length of `h` instead.
"repeats_units_bins" reads a 3-D recording (repeats x units x time bins, like the bundled retina
file) and concatenates its repeats into patterns; it is never guessed, since a 3-D array can be
ordered in six ways.

Spike times (`bin_width` set, or any .nwb file) are binned into patterns: a bin of a unit is +1
when the unit fired at least once in it. Two forms are read: an .npz or .mat file with the vectors
`spike_times` and `spike_units` (the unit of each spike, an integer id) and optionally `unit_ids`
(every unit in column order, silent ones included; default: the ids that fire, sorted), and an NWB
file's Units table (read with pynwb, the optional extra `isingaug[nwb]`). Bins are `bin_width`
seconds wide on a grid through t = 0, from the bin holding the first spike to the one holding the
last.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io
import scipy.sparse
import torch
from scipy.io.matlab import MatReadError

from isingaug.data.base import Dataset
from isingaug.errors import ConfigError, DataError, is_int
from isingaug.ising import IsingParams

#: File suffixes read, and the format each one is read as.
SUFFIXES = (".npz", ".npy", ".csv", ".txt", ".mat", ".nwb")
LAYOUTS = ("auto", "patterns_by_units", "units_by_patterns", "repeats_units_bins")
#: The layout of 3-D recordings (repeats x units x time bins).
RECORDING = "repeats_units_bins"
#: Units the spike times of an .npz/.mat file may be in, as seconds per unit (NWB uses seconds).
TIME_UNITS = {"s": 1.0, "ms": 1e-3}
#: Names of the spike-time vectors in an .npz/.mat file.
SPIKE_TIMES, SPIKE_UNITS, UNIT_IDS = "spike_times", "spike_units", "unit_ids"
#: Most entries (bins x units) a binned raster may have: a typo in bin_width should not eat memory.
MAX_BINNED_ENTRIES = 1 << 30
#: How each encoding is named in messages.
_SETS = {"01": "{0,1}", "pm1": "{-1,+1}"}
#: Asymmetry and diagonal allowed in a shipped J, relative to max(1, max |J|).
J_TOLERANCE = 1e-6
#: Arrays of an .npz file that are not candidates for the samples.
_NPZ_EXTRAS = ("test", "h", "J")
#: What the libraries raise on a corrupt or unreadable file.
_READ_ERRORS = (OSError, ValueError, EOFError, TypeError, KeyError, zipfile.BadZipFile,
                MatReadError)


@dataclass
class RawPatterns:
    """What a file holds, validated: int8 +-1 patterns (M, n), optional test patterns and truth."""

    samples: np.ndarray
    test: np.ndarray | None
    h: np.ndarray | None
    J: np.ndarray | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Contents:
    """Named arrays found in a file.

    A format holding a single array (.npy, text) stores it under the name "". `noun` is what the
    format calls its arrays; `lines` maps the rows of a text file to its lines, for messages.
    """

    arrays: dict[str, np.ndarray]
    format: str
    noun: str
    lines: np.ndarray | None = None


def read_patterns(path: str | PathLike[str], key: str | None = None, layout: str = "auto",
                  bin_width: float | None = None, time_unit: str = "s") -> RawPatterns:
    """Read and validate one file of spin patterns; see the module docstring for the rules."""
    _check_options(key, layout)
    _check_time_options(bin_width, time_unit)
    file, label = _existing_file(path)
    if bin_width is not None or file.suffix.lower() == ".nwb":
        return _read_spike_times(file, label, key, layout, bin_width, time_unit)
    contents = _load(file, label)
    name = _select(contents, key, label)
    raw = contents.arrays[name]
    where = _where(contents, name, label)
    _check_pattern_array(raw, where, layout)
    encodings = {"samples": _spin_encoding(raw, where, contents.lines)}
    raw_test = contents.arrays.get("test") if contents.format == "npz" else None
    if raw_test is not None:
        _check_pattern_array(raw_test, f"{label}: array 'test'", layout)
        encodings["test"] = _spin_encoding(raw_test, f"{label}: array 'test'", None)
    encoding = _common_encoding(encodings, label)
    h, J = _truth_arrays(contents.arrays if contents.format == "npz" else {}, label)
    samples, resolved = _orient(raw, layout, None if h is None else h.shape[0])
    n = samples.shape[1]
    if n < 2:
        raise DataError(
            f"{where}: has {n} unit read as layout '{resolved}' (array shape {raw.shape}); "
            "need at least 2 units; set dataset.layout if the orientation is wrong"
        )
    test = None if raw_test is None else _orient_test(raw_test, layout, n, label)
    if h is not None:
        h, J = _check_truth(h, J, n, label)
    meta = {"source": str(file), "format": contents.format, "encoding": encoding,
            "key": name or None, "layout": resolved, "layout_requested": layout,
            "shape_in_file": list(raw.shape)}
    return RawPatterns(to_spins(samples), None if test is None else to_spins(test), h, J, meta)


def read_recording(path: str | PathLike[str],
                   key: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """A binary recording (repeats, units, bins) as a bool spike array, validated, and its meta.

    For readers that need the repeat structure (dataset=neural splits by whole repeats); values
    may be {0,1} or {-1,+1}, and a bin is a spike when its value is positive.
    """
    file, label = _existing_file(path)
    contents = _load(file, label)
    name = _select(contents, key, label)
    raw = contents.arrays[name]
    where = _where(contents, name, label)
    _check_pattern_array(raw, where, RECORDING)
    encoding = _spin_encoding(raw, where, None) or "pm1"
    meta = {"source": str(file), "format": contents.format, "encoding": encoding,
            "key": name or None, "shape_in_file": list(raw.shape)}
    return raw > 0, meta


def load_file_dataset(path: str | PathLike[str], key: str | None = None, layout: str = "auto",
                      M: int | None = None, test_fraction: float = 0.0, split_seed: int = 0,
                      bin_width: float | None = None, time_unit: str = "s") -> Dataset:
    """The `dataset=file` builder: a user's patterns, optionally split and cut to M patterns.

    One permutation drawn from default_rng(split_seed) serves both the split (its first
    round(test_fraction * M_file) entries are the test set) and the cut to M (the first M of the
    remaining ones), so the M-pattern training set for a smaller M is a subset of a larger one's.
    Without a split or M the file's order is kept.
    """
    _check_split_options(M, test_fraction, split_seed)
    raw = read_patterns(path, key, layout, bin_width, time_unit)
    label = str(path)
    samples, test = raw.samples, raw.test
    split = "file" if test is not None else "none"
    if test is not None and test_fraction > 0:
        raise ConfigError(
            f"{label}: the file has its own 'test' array, so dataset.test_fraction must be 0 "
            f"(got {test_fraction})"
        )
    order = np.random.default_rng(split_seed).permutation(samples.shape[0])
    if test_fraction > 0:
        num_test = _test_size(samples.shape[0], test_fraction, label)
        samples, test = samples[order[num_test:]], samples[order[:num_test]]
        split = "random"
    elif M is not None:
        samples = samples[order]
    if M is not None:
        samples = _first_m(samples, M, label, split)
    truth = None if raw.h is None else IsingParams.from_numpy(raw.h, raw.J, dtype=torch.float64)
    meta = {**raw.meta, "dataset": "file", "path": raw.meta["source"], "n": int(samples.shape[1]),
            "M_file": int(raw.samples.shape[0]), "M": int(samples.shape[0]),
            "M_test": 0 if test is None else int(test.shape[0]), "split": split,
            "test_fraction": float(test_fraction), "split_seed": int(split_seed),
            "has_truth": truth is not None}
    return Dataset(train=to_tensor(samples), test=None if test is None else to_tensor(test),
                   truth=truth, meta=meta)


# --- options ---------------------------------------------------------------------------------


def _check_options(key: str | None, layout: str) -> None:
    if layout not in LAYOUTS:
        raise ConfigError(f"dataset.layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
    if key is not None and (not isinstance(key, str) or not key):
        raise ConfigError(f"dataset.key must be an array/variable name or null; got {key!r}")


def _check_time_options(bin_width: float | None, time_unit: str) -> None:
    if bin_width is not None and (isinstance(bin_width, bool)
                                  or not isinstance(bin_width, int | float)
                                  or not math.isfinite(bin_width) or bin_width <= 0):
        raise ConfigError(
            f"dataset.bin_width must be a positive number of seconds, or null for files of "
            f"patterns; got {bin_width!r}"
        )
    if time_unit not in TIME_UNITS:
        raise ConfigError(
            f"dataset.time_unit must be one of {', '.join(TIME_UNITS)}; got {time_unit!r}"
        )


def _check_split_options(M: int | None, test_fraction: float, split_seed: int) -> None:
    if M is not None and (not is_int(M) or M < 1):
        raise ConfigError(f"dataset.M must be a positive integer or null (all patterns); got {M!r}")
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, int | float)
            or not 0 <= test_fraction < 1):
        raise ConfigError(f"dataset.test_fraction must be in [0, 1); got {test_fraction!r}")
    if not is_int(split_seed) or split_seed < 0:
        raise ConfigError(f"dataset.split_seed must be a non-negative integer; got {split_seed!r}")


def _test_size(total: int, test_fraction: float, label: str) -> int:
    """round(test_fraction * total), refused when either part would be empty."""
    num_test = round(test_fraction * total)
    if not 0 < num_test < total:
        raise ConfigError(
            f"{label}: dataset.test_fraction={test_fraction} of {total} patterns gives "
            f"{num_test} test and {total - num_test} training patterns; both must be non-empty"
        )
    return num_test


def _first_m(samples: np.ndarray, M: int, label: str, split: str) -> np.ndarray:
    if samples.shape[0] < M:
        after = " after the test split" if split == "random" else ""
        raise ConfigError(
            f"dataset.M={M} exceeds the {samples.shape[0]} training patterns in {label}{after}; "
            f"use dataset.M <= {samples.shape[0]} or null for all"
        )
    return samples[:M]


# --- reading ---------------------------------------------------------------------------------


def _existing_file(path: str | PathLike[str]) -> tuple[Path, str]:
    """The absolute path and the label used in messages (the path as the user wrote it)."""
    if path is None or str(path) == "":
        raise ConfigError("dataset.path is required: the file of patterns to read")
    label = str(path)
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "does not exist"
        raise DataError(f"{label}: {what} (dataset.path, resolved to {file})")
    if file.suffix.lower() not in SUFFIXES:
        raise DataError(
            f"{label}: unknown file type {file.suffix!r}; dataset.path must end in one of "
            f"{', '.join(SUFFIXES)}"
        )
    return file, label


def _load(file: Path, label: str) -> _Contents:
    """Dispatch on the suffix; any library error on a corrupt file becomes a DataError."""
    suffix = file.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(file, allow_pickle=False) as archive:
                return _Contents({name: archive[name] for name in archive.files}, "npz", "array")
        if suffix == ".npy":
            return _Contents({"": np.load(file, allow_pickle=False)}, "npy", "array")
        if suffix == ".mat":
            return _read_mat(file)
        text = file.read_text(encoding="utf-8")
    except _READ_ERRORS as err:
        raise DataError(f"{label}: cannot read it as a {suffix} file ({err})") from err
    array, lines = _parse_text(text, label)
    return _Contents({"": array}, suffix[1:], "array", lines)


def _parse_text(text: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of numbers separated by commas or by whitespace (as the first row is); no header.

    Blank lines and lines starting with '#' are skipped; returns the array and each row's line.
    """
    data = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")]
    if not data:
        return np.empty((0, 0)), np.empty(0, dtype=int)
    lines = [number for number, _ in data]
    if "," in data[0][1]:
        rows = [[token.strip() for token in line.split(",")] for _, line in data]
    else:
        rows = [line.split() for _, line in data]
    lengths = np.array([len(row) for row in rows])
    ragged = np.flatnonzero(lengths != lengths[0])
    if ragged.size:
        first = ragged[0]
        raise DataError(
            f"{label}: line {lines[first]} has {lengths[first]} values, expected {lengths[0]} "
            f"like line {lines[0]} (rows must all have the same length)"
        )
    try:
        return np.array(rows, dtype=np.float64), np.array(lines)
    except ValueError:
        raise _non_numeric_text(rows, lines, label) from None


def _non_numeric_text(rows: list[list[str]], lines: list[int], label: str) -> DataError:
    """Locate the first token that is not a number (only on the error path)."""
    for row, number in zip(rows, lines, strict=True):
        for column, token in enumerate(row, start=1):
            try:
                float(token)
            except ValueError:
                return DataError(
                    f"{label}: line {number}, column {column}: {token!r} is not a number "
                    "(values must be numbers separated by commas or whitespace, no header line)"
                )
    return DataError(f"{label}: holds values that are not numbers")


def _read_mat(file: Path) -> _Contents:
    """MATLAB v7.3 files are HDF5 (read with h5py); older ones are read by scipy."""
    if h5py.is_hdf5(file):
        return _Contents(_read_mat73(file), "mat-v7.3", "variable")
    variables = scipy.io.loadmat(file, squeeze_me=False)
    arrays = {name: value.toarray() if scipy.sparse.issparse(value) else np.asarray(value)
              for name, value in variables.items() if not name.startswith("__")}
    return _Contents(arrays, "mat-v5", "variable")


def _read_mat73(file: Path) -> dict[str, np.ndarray]:
    """Top-level variables of a v7.3 file, transposed back to MATLAB's (column-major) shape."""
    arrays = {}
    with h5py.File(file, "r") as handle:
        for name, obj in handle.items():
            if name.startswith("#") or not isinstance(obj, h5py.Dataset):
                continue
            matlab_class = obj.attrs.get("MATLAB_class", b"")
            if isinstance(matlab_class, bytes):
                matlab_class = matlab_class.decode()
            if obj.attrs.get("MATLAB_empty", 0):
                arrays[name] = np.empty((0, 0))
            elif matlab_class == "char":
                arrays[name] = np.vectorize(chr, otypes=[str])(obj[()].T)
            else:
                arrays[name] = np.asarray(obj[()]).T
    return arrays


def _where(contents: _Contents, name: str, label: str) -> str:
    """How messages name an array: the file, and the array's name when the file has several."""
    return f"{label}: {contents.noun} '{name}'" if name else label


def _select(contents: _Contents, key: str | None, label: str) -> str:
    """The name of the samples array: `key`, else 'samples' (.npz), else the only 2-D candidate."""
    arrays, noun = contents.arrays, contents.noun
    if "" in arrays:
        if key is not None:
            raise ConfigError(
                f"{label}: dataset.key={key!r} does not apply to a .{contents.format} file "
                "(it holds one array); set dataset.key to null"
            )
        return ""
    if key is not None:
        if key not in arrays:
            raise DataError(
                f"{label}: no {noun} named {key!r} (dataset.key); it has {_describe(arrays)}"
            )
        return key
    if contents.format == "npz" and "samples" in arrays:
        return "samples"
    extras = _NPZ_EXTRAS if contents.format == "npz" else ()
    candidates = [name for name, value in arrays.items()
                  if name not in extras and _is_numeric(value)
                  and np.count_nonzero(np.array(value.shape) > 1) >= 2]
    if len(candidates) == 1:
        return candidates[0]
    which = "several" if candidates else "no"
    no_samples = "has no array 'samples' and " if contents.format == "npz" else ""
    hint = ("; it holds spike times, so set dataset.bin_width to bin them"
            if SPIKE_TIMES in arrays and not candidates else "")
    raise DataError(
        f"{label}: {no_samples}found {which} {noun}s that could hold the patterns (numeric, "
        f"at least 2-D); choose one with dataset.key; it has {_describe(arrays)}{hint}"
    )


def _describe(arrays: dict[str, np.ndarray]) -> str:
    if not arrays:
        return "nothing"
    return ", ".join(f"'{name}' {value.shape} {value.dtype}" for name, value in arrays.items())


# --- spike times -----------------------------------------------------------------------------


def _read_spike_times(file: Path, label: str, key: str | None, layout: str,
                      bin_width: float | None, time_unit: str) -> RawPatterns:
    """Spike times of an .npz/.mat file or an NWB Units table, binned into +-1 patterns."""
    is_nwb = file.suffix.lower() == ".nwb"
    if bin_width is None:
        raise ConfigError(
            f"{label}: an NWB file holds spike times; set dataset.bin_width (seconds) to bin them"
        )
    for option, value, default in (("key", key, None), ("layout", layout, "auto")):
        if value != default:
            raise ConfigError(
                f"{label}: dataset.{option}={value!r} does not apply to spike times; "
                f"set it to {'null' if default is None else default}"
            )
    if is_nwb:
        if time_unit != "s":
            raise ConfigError(f"{label}: NWB spike times are in seconds; set dataset.time_unit=s")
        times, units, ids = _read_nwb_units(file, label)
        file_format = "nwb"
    else:
        contents = _load(file, label)
        times, units, ids = _spike_arrays(contents, label)
        file_format = contents.format
    seconds = times * TIME_UNITS[time_unit]
    raster, t_start, ids = _bin_spikes(seconds, units, ids, float(bin_width), label)
    meta = {"source": str(file), "format": file_format, "encoding": "spike_times",
            "key": None, "layout": "spike_times", "layout_requested": layout,
            "shape_in_file": [int(times.shape[0])], "bin_width": float(bin_width),
            "time_unit": time_unit, "t_start": t_start, "units": ids.tolist(),
            "spikes": int(times.shape[0])}
    return RawPatterns(to_spins(raster), None, None, None, meta)


def _spike_arrays(contents: _Contents,
                  label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The validated spike_times, spike_units and optional unit_ids vectors of an .npz/.mat."""
    arrays = contents.arrays
    if contents.format not in ("npz", "mat-v5", "mat-v7.3"):
        raise DataError(
            f"{label}: a .{contents.format} file holds one raster, not spike times; spike times "
            f"need an .npz/.mat file with vectors '{SPIKE_TIMES}' and '{SPIKE_UNITS}', or an "
            ".nwb file (or set dataset.bin_width to null to read the raster)"
        )
    missing = [name for name in (SPIKE_TIMES, SPIKE_UNITS) if name not in arrays]
    if missing:
        raise DataError(
            f"{label}: dataset.bin_width is set, so spike times are read, but it has no "
            f"{contents.noun} {' or '.join(repr(name) for name in missing)}; it has "
            f"{_describe(arrays)}"
        )
    times = _vector(arrays[SPIKE_TIMES], SPIKE_TIMES, contents, label, integer=False)
    units = _vector(arrays[SPIKE_UNITS], SPIKE_UNITS, contents, label, integer=True)
    if times.shape != units.shape:
        raise DataError(
            f"{label}: '{SPIKE_TIMES}' has {times.shape[0]} entries but '{SPIKE_UNITS}' has "
            f"{units.shape[0]}; they need one unit per spike"
        )
    ids = arrays.get(UNIT_IDS)
    if ids is not None:
        ids = _vector(ids, UNIT_IDS, contents, label, integer=True)
    return times, units, ids


def _vector(array: np.ndarray, name: str, contents: _Contents, label: str,
            integer: bool) -> np.ndarray:
    """A finite numeric vector (MATLAB's 1 x S and S x 1 included); integer ids as int64."""
    where = f"{label}: {contents.noun} '{name}'"
    if not _is_numeric(array) or np.count_nonzero(np.array(array.shape) > 1) > 1:
        raise DataError(f"{where}: has shape {array.shape} and type {array.dtype}; "
                        "expected a vector of numbers")
    vector = array.reshape(-1)
    if not np.isfinite(vector).all():
        raise DataError(f"{where}: holds NaN or infinite values")
    if integer:
        if not np.array_equal(vector, np.round(vector)):
            raise DataError(f"{where}: holds non-integer values; units are integer ids")
        return vector.astype(np.int64)
    return vector.astype(np.float64)


def _read_nwb_units(file: Path, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat spike times (s), the unit id of each spike and every unit's id, from the Units table.

    The table stores all spike times in one vector cut by an index of end offsets, so the units
    of the spikes follow from the offsets without a loop over units.
    """
    try:
        from pynwb import NWBHDF5IO
    except ImportError as err:
        raise DataError(
            f"{label}: reading NWB files needs the optional package pynwb; install it with "
            "`pip install isingaug[nwb]` (or `pip install pynwb`)"
        ) from err
    try:
        with NWBHDF5IO(str(file), "r") as io:
            units = io.read().units
            columns = () if units is None else units.colnames
            if "spike_times" in columns:
                ids = np.asarray(units.id[:], dtype=np.int64)
                times = np.asarray(units.spike_times.data[:], dtype=np.float64)
                ends = np.asarray(units.spike_times_index.data[:], dtype=np.int64)
    except (*_READ_ERRORS, AttributeError) as err:
        raise DataError(f"{label}: cannot read it as an NWB file ({err})") from err
    if "spike_times" not in columns:
        raise DataError(f"{label}: has no Units table with a spike_times column")
    counts = np.diff(ends, prepend=0)
    return times, np.repeat(ids, counts), ids


def _bin_spikes(seconds: np.ndarray, units: np.ndarray, ids: np.ndarray | None, bin_width: float,
                label: str) -> tuple[np.ndarray, float, np.ndarray]:
    """A bool raster (bins, units), the start of its first bin, and the unit id of each column."""
    if seconds.size == 0:
        raise DataError(f"{label}: holds no spike times")
    if ids is None:
        ids, columns = np.unique(units, return_inverse=True)
    else:
        columns = _columns_of(units, ids, label)
    if ids.shape[0] < 2:
        raise DataError(f"{label}: has spikes of {ids.shape[0]} unit; need at least 2 units")
    t_start = math.floor(seconds.min() / bin_width) * bin_width
    index = np.floor((seconds - t_start) / bin_width).astype(np.int64)
    num_bins = int(index.max()) + 1
    if num_bins * ids.shape[0] > MAX_BINNED_ENTRIES:
        raise ConfigError(
            f"{label}: dataset.bin_width={bin_width:g} s over {seconds.max() - t_start:g} s "
            f"gives {num_bins} bins x {ids.shape[0]} units, above {MAX_BINNED_ENTRIES} entries; "
            "is the bin width in seconds and dataset.time_unit right?"
        )
    raster = np.zeros((num_bins, ids.shape[0]), dtype=bool)
    raster[index, columns] = True
    return raster, float(t_start), ids


def _columns_of(units: np.ndarray, ids: np.ndarray, label: str) -> np.ndarray:
    """The column of each spike's unit in `ids` (unique ids, any order)."""
    if np.unique(ids).shape[0] != ids.shape[0]:
        raise DataError(f"{label}: '{UNIT_IDS}' lists a unit twice; ids must be unique")
    order = np.argsort(ids)
    position = np.searchsorted(ids, units, sorter=order).clip(max=ids.shape[0] - 1)
    columns = order[position]
    unknown = ids[columns] != units
    if unknown.any():
        raise DataError(
            f"{label}: '{SPIKE_UNITS}' has unit {units[np.argmax(unknown)]} that is not in "
            f"'{UNIT_IDS}'; list every unit that fires"
        )
    return columns


# --- validation ------------------------------------------------------------------------------


def _is_numeric(array: np.ndarray) -> bool:
    return array.dtype.kind in "biuf"


def _check_pattern_array(array: np.ndarray, where: str, layout: str) -> None:
    """Numeric, non-empty, 3-D for the recording layout and 2-D otherwise (with the way out)."""
    if not _is_numeric(array):
        raise DataError(f"{where}: holds {array.dtype} values; expected numbers (0/1 or -1/+1)")
    if layout == RECORDING and array.ndim != 3:
        raise DataError(
            f"{where}: has shape {array.shape}; layout '{RECORDING}' needs a 3-D array "
            "(repeats x units x time bins)"
        )
    if layout != RECORDING and array.ndim == 3:
        raise DataError(
            f"{where}: is 3-D with shape {array.shape}; layout '{layout}' needs a 2-D array of "
            f"patterns x units; if it is repeats x units x time bins set "
            f"dataset.layout={RECORDING} (repeats are concatenated), otherwise reshape it to 2-D"
        )
    if array.ndim not in (2, 3):
        raise DataError(
            f"{where}: has shape {array.shape}; expected a 2-D array (patterns x units)"
        )
    if array.size == 0:
        raise DataError(f"{where}: is empty (shape {array.shape}); expected at least one pattern")


def _spin_encoding(array: np.ndarray, where: str, lines: np.ndarray | None) -> str | None:
    """'01' or 'pm1' from the values present (None when only +1 occurs); refuses anything else."""
    values = array.view(np.uint8) if array.dtype.kind == "b" else array
    zero, minus = values == 0, values == -1
    bad = ~(zero | minus | (values == 1))
    if bad.any():
        value, at = _first(values, bad, lines)
        raise DataError(
            f"{where}: values must be in {{0,1}} or {{-1,+1}}; found {value} (first at {at})"
        )
    if zero.any() and minus.any():
        raise DataError(
            f"{where}: values mix 0 (first at {_first(values, zero, lines)[1]}) and -1 "
            f"(first at {_first(values, minus, lines)[1]}); use either {{0,1}} or {{-1,+1}}"
        )
    return "01" if zero.any() else "pm1" if minus.any() else None


def _first(values: np.ndarray, mask: np.ndarray, lines: np.ndarray | None) -> tuple[str, str]:
    """The first masked value and its position, counted from 1 (text files: the file's line)."""
    index = np.unravel_index(int(np.argmax(mask)), mask.shape)
    value = _format_value(values[index])
    if len(index) == 3:
        repeat, unit, time_bin = (int(i) + 1 for i in index)
        return value, f"repeat {repeat}, unit {unit}, bin {time_bin}"
    row, column = index
    place = f"line {lines[row]}" if lines is not None else f"row {row + 1}"
    return value, f"{place}, column {column + 1}"


def _format_value(value: np.generic) -> str:
    number = value.item()
    if isinstance(number, float) and not np.isfinite(number):
        return "NaN" if np.isnan(number) else str(number)
    return f"{number:g}"


def _common_encoding(encodings: dict[str, str | None], label: str) -> str:
    found = {name: enc for name, enc in encodings.items() if enc is not None}
    if len(set(found.values())) > 1:
        raise DataError(
            f"{label}: 'samples' use {_SETS[found['samples']]} but 'test' uses "
            f"{_SETS[found['test']]}; both must use the same encoding"
        )
    return next(iter(found.values()), "pm1")


def _orient(array: np.ndarray, layout: str, n: int | None) -> tuple[np.ndarray, str]:
    """Patterns as rows, by the layout rule of the module docstring."""
    if layout == RECORDING:
        return array.transpose(0, 2, 1).reshape(-1, array.shape[1]), RECORDING
    rows, columns = array.shape
    if layout == "auto":
        transpose = (rows == n and columns != n) if n is not None else columns > rows
    else:
        transpose = layout == "units_by_patterns"
    if transpose:
        return array.T, "units_by_patterns"
    return array, "patterns_by_units"


def _orient_test(array: np.ndarray, layout: str, n: int, label: str) -> np.ndarray:
    """The test array in the samples' layout ("auto": whichever side has n units)."""
    oriented, _ = _orient(array, layout, n)
    if oriented.shape[1] != n:
        raise DataError(
            f"{label}: array 'test' has shape {array.shape}, i.e. {oriented.shape[1]} units, "
            f"but the samples have {n} units; the test patterns must have the same units"
        )
    return oriented


def _truth_arrays(arrays: dict[str, np.ndarray],
                  label: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """h and J as float64 when both are present; one without the other is refused."""
    h, J = arrays.get("h"), arrays.get("J")
    if h is None and J is None:
        return None, None
    if h is None or J is None:
        present, missing = ("h", "J") if J is None else ("J", "h")
        raise DataError(
            f"{label}: has array '{present}' but no '{missing}'; the true model needs both "
            "h (n,) and J (n, n), or neither"
        )
    checked = []
    for name, value in (("h", h), ("J", J)):
        if not _is_numeric(value) or not np.isfinite(value).all():
            raise DataError(f"{label}: array '{name}' must hold finite numbers")
        checked.append(np.asarray(value, dtype=np.float64))
    if checked[0].ndim != 1:
        raise DataError(f"{label}: array 'h' has shape {h.shape}; expected one field per unit (n,)")
    return checked[0], checked[1]


def _check_truth(h: np.ndarray, J: np.ndarray, n: int, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Shapes matching n, J symmetric with a zero diagonal (within J_TOLERANCE); J made exact."""
    if h.shape != (n,):
        raise DataError(
            f"{label}: array 'h' has shape {h.shape}, expected ({n},) (the samples have {n} units)"
        )
    if J.shape != (n, n):
        raise DataError(
            f"{label}: array 'J' has shape {J.shape}, expected ({n}, {n}) "
            f"(the samples have {n} units)"
        )
    tolerance = J_TOLERANCE * max(1.0, float(np.abs(J).max()))
    asymmetry = np.abs(J - J.T)
    if asymmetry.max() > tolerance:
        i, j = np.unravel_index(int(np.argmax(asymmetry)), J.shape)
        raise DataError(
            f"{label}: array 'J' must be symmetric; row {i + 1}, column {j + 1} is {J[i, j]:g} "
            f"but row {j + 1}, column {i + 1} is {J[j, i]:g}"
        )
    diagonal = np.abs(np.diagonal(J))
    if diagonal.max() > tolerance:
        i = int(np.argmax(diagonal))
        raise DataError(
            f"{label}: array 'J' must have a zero diagonal; row {i + 1}, column {i + 1} is "
            f"{J[i, i]:g}"
        )
    J = 0.5 * (J + J.T)
    np.fill_diagonal(J, 0.0)
    return h, J


# --- conversion ------------------------------------------------------------------------------


def to_spins(array: np.ndarray) -> np.ndarray:
    """Validated {0,1} or {-1,+1} values as contiguous int8 +-1 (0 and -1 both map to -1)."""
    return np.ascontiguousarray((array > 0).astype(np.int8) * 2 - 1)


def to_tensor(spins: np.ndarray) -> torch.Tensor:
    """The Dataset's form: float32 on the CPU."""
    return torch.from_numpy(np.ascontiguousarray(spins, dtype=np.float32))
