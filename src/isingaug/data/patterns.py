"""One user's file -> validated int8 +-1 patterns (and the truth it ships), or a 3-D recording.

A user's file is the input most likely to be wrong, so everything is checked on the way in and
every error names the file, the array or variable, and what is allowed. Files in {0,1} are
converted at the boundary (0 -> -1, 1 -> +1) and `meta["encoding"]` says which encoding was read.
The formats are in readers.py, the spin and truth checks and the layout rule in validation.py,
spike-time binning (`bin_width` set, or any .nwb file) in spikes.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

from isingaug.data.readers import existing_file, load_contents, select_array, where
from isingaug.data.spikes import SPIKE_TIMES, TIME_UNITS, read_spike_raster
from isingaug.data.validation import (
    LAYOUTS,
    RECORDING,
    check_pattern_array,
    check_truth,
    common_encoding,
    encoded_to_spins,
    orient,
    orient_test,
    spin_encoding,
    truth_arrays,
)
from isingaug.errors import DataError, check_options, is_int, is_number, option_error

_SPIKE_HINT = "; it holds spike times, so set dataset.bin_width (seconds) to bin them"


@dataclass
class RawPatterns:
    """What a file holds, validated: int8 +-1 patterns (M, n), optional test patterns and truth."""

    samples: np.ndarray
    test: np.ndarray | None
    h: np.ndarray | None
    J: np.ndarray | None
    meta: dict[str, Any] = field(default_factory=dict)


def check_read_options(key: Any, layout: Any, bin_width: Any, time_unit: Any,
                       skip_columns: Any) -> None:
    """The reading options, each named by its dataset.<key>."""
    check_options([
        ("dataset.layout", layout, layout in LAYOUTS, f"one of {', '.join(LAYOUTS)}"),
        ("dataset.key", key, key is None or (isinstance(key, str) and bool(key)),
         "an array/variable name or null"),
        ("dataset.bin_width", bin_width,
         bin_width is None or (is_number(bin_width) and 0 < bin_width < float("inf")),
         "a positive number of seconds, or null for files of patterns"),
        ("dataset.time_unit", time_unit, time_unit in TIME_UNITS,
         f"one of {', '.join(TIME_UNITS)}"),
        ("dataset.skip_columns", skip_columns, is_int(skip_columns) and skip_columns >= 0,
         "an integer >= 0 (leading columns of a text table to drop)"),
    ])


def read_patterns(path: str | PathLike[str], key: str | None = None, layout: str = "auto",
                  bin_width: float | None = None, time_unit: str = "s",
                  skip_columns: int = 0) -> RawPatterns:
    """Read and validate one file of spin patterns (or spike times, binned)."""
    check_read_options(key, layout, bin_width, time_unit, skip_columns)
    file, label = existing_file(path)
    if bin_width is not None or file.suffix.lower() == ".nwb":
        for name, value, default in (("key", key, None), ("layout", layout, "auto"),
                                     ("skip_columns", skip_columns, 0)):
            if value != default:
                allowed = "null" if default is None else str(default)
                raise option_error(f"dataset.{name}", f"{allowed} when reading spike times "
                                   "(dataset.bin_width set, or an .nwb file)", value, label)
        raster, meta = read_spike_raster(file, label, bin_width, time_unit)
        meta["layout_requested"] = layout
        return RawPatterns(encoded_to_spins(raster), None, None, None, meta)
    contents = load_contents(file, label, skip_columns)
    name = select_array(contents, key, label, _SPIKE_HINT if SPIKE_TIMES in contents.arrays else "")
    raw = contents.arrays[name]
    at = where(contents, name, label)
    check_pattern_array(raw, at, layout)
    encodings = {"samples": spin_encoding(raw, at, contents.lines, contents.columns_skipped)}
    raw_test = contents.arrays.get("test") if contents.format == "npz" else None
    if raw_test is not None:
        check_pattern_array(raw_test, f"{label}: array 'test'", layout)
        encodings["test"] = spin_encoding(raw_test, f"{label}: array 'test'")
    encoding = common_encoding(encodings, label)
    h, J = truth_arrays(contents.arrays if contents.format == "npz" else {}, label)
    samples, resolved = orient(raw, layout, None if h is None else h.shape[0])
    n = samples.shape[1]
    if n < 2:
        raise DataError(
            f"{at}: has {n} unit read as layout '{resolved}' (array shape {raw.shape}); "
            "need at least 2 units; set dataset.layout if the orientation is wrong"
        )
    test = None if raw_test is None else orient_test(raw_test, layout, n, label)
    if h is not None:
        h, J = check_truth(h, J, n, label)
    meta = {"source": str(file), "format": contents.format, "encoding": encoding,
            "key": name or None, "layout": resolved, "layout_requested": layout,
            "shape_in_file": list(raw.shape), "skip_columns": skip_columns}
    return RawPatterns(encoded_to_spins(samples),
                       None if test is None else encoded_to_spins(test), h, J, meta)


def read_recording(path: str | PathLike[str],
                   key: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """A binary recording (repeats, units, bins) as a bool spike array, validated, and its meta.

    For readers that need the repeat structure (dataset=neural); values may be {0,1} or
    {-1,+1}, and a bin is a spike when its value is positive.
    """
    check_options([("dataset.key", key, key is None or (isinstance(key, str) and bool(key)),
                    "an array/variable name or null")])
    file, label = existing_file(path)
    contents = load_contents(file, label)
    name = select_array(contents, key, label)
    raw = contents.arrays[name]
    at = where(contents, name, label)
    check_pattern_array(raw, at, RECORDING)
    encoding = spin_encoding(raw, at) or "pm1"
    meta = {"source": str(file), "format": contents.format, "encoding": encoding,
            "key": name or None, "shape_in_file": list(raw.shape)}
    return raw > 0, meta
