"""Spike times -> a binary raster (bins x units): a bin of a unit spikes when the unit fired at
least once in it.

Two forms are read: an .npz or .mat file with the vectors `spike_times` and `spike_units` (the unit
of each spike, an integer id) and optionally `unit_ids` (every unit in column order, silent ones
included; default: the ids that fire, sorted), and an NWB file's Units table (read with pynwb, the
optional extra `isingaug[nwb]`). Bins are `bin_width` seconds wide on a grid through t = 0, from
the bin holding the first spike to the one holding the last.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from isingaug.data.readers import READ_ERRORS, Contents, describe, load_contents
from isingaug.data.validation import is_numeric
from isingaug.errors import ConfigError, DataError, option_error

#: Units the spike times of an .npz/.mat file may be in, as seconds per unit (NWB uses seconds).
TIME_UNITS = {"s": 1.0, "ms": 1e-3}
#: Names of the spike-time vectors in an .npz/.mat file.
SPIKE_TIMES, SPIKE_UNITS, UNIT_IDS = "spike_times", "spike_units", "unit_ids"
#: Most entries (bins x units) a binned raster may have: a typo in bin_width should not eat memory.
MAX_BINNED_ENTRIES = 1 << 30


def read_spike_raster(file: Path, label: str, bin_width: float | None,
                      time_unit: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The bool raster (bins, units) of an .npz/.mat file's spike times or an NWB Units table,
    and its meta (format, bin width, the unit id of each column, ...)."""
    if bin_width is None:
        raise ConfigError(
            f"{label}: an NWB file holds spike times; set dataset.bin_width (seconds) to bin them"
        )
    if file.suffix.lower() == ".nwb":
        if time_unit != "s":
            raise option_error("dataset.time_unit", "s (NWB spike times are in seconds)",
                               time_unit, label)
        times, units, ids = _read_nwb_units(file, label)
        file_format = "nwb"
    else:
        contents = load_contents(file, label)
        times, units, ids = _spike_arrays(contents, label)
        file_format = contents.format
    seconds = times * TIME_UNITS[time_unit]
    raster, t_start, ids = bin_spikes(seconds, units, ids, float(bin_width), label)
    meta = {"source": str(file), "format": file_format, "encoding": "spike_times",
            "key": None, "layout": "spike_times", "shape_in_file": [int(times.shape[0])],
            "bin_width": float(bin_width), "time_unit": time_unit, "t_start": t_start,
            "units": ids.tolist(), "spikes": int(times.shape[0])}
    return raster, meta


def bin_spikes(seconds: np.ndarray, units: np.ndarray, ids: np.ndarray | None, bin_width: float,
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


def _spike_arrays(contents: Contents,
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
            f"{describe(arrays)}"
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


def _vector(array: np.ndarray, name: str, contents: Contents, label: str,
            integer: bool) -> np.ndarray:
    """A finite numeric vector (MATLAB's 1 x S and S x 1 included); integer ids as int64."""
    where = f"{label}: {contents.noun} '{name}'"
    if not is_numeric(array) or np.count_nonzero(np.array(array.shape) > 1) > 1:
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
    except (*READ_ERRORS, AttributeError) as err:
        raise DataError(f"{label}: cannot read it as an NWB file ({err})") from err
    if "spike_times" not in columns:
        raise DataError(f"{label}: has no Units table with a spike_times column")
    counts = np.diff(ends, prepend=0)
    return times, np.repeat(ids, counts), ids


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
