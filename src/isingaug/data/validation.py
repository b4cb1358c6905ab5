"""Checks that turn arrays read from a user's file into validated int8 +-1 patterns.

Spin encoding: values must be all in {0,1} or all in {-1,+1} (a bool array counts as {0,1});
`encoded_to_spins` maps either to +-1 (positive -> +1). Positions in messages count from 1, and in
a text file name the file's line and column.

Orientation (`layout`): "patterns_by_units" takes rows as patterns, "units_by_patterns"
transposes, and "auto" takes rows as patterns unless the array has more columns than rows (then it
transposes, since a data set with fewer patterns than units is not one to fit an Ising model to);
a square array is read as is. When the truth ships with the patterns, n is fixed by the length of
`h` instead. "repeats_units_bins" reads a 3-D recording (repeats x units x time bins) and
concatenates its repeats (row `repeat * bins + bin`); it is never guessed, since a 3-D array can
be ordered in six ways.

Truth: `h` (n,) and `J` (n, n), finite, J symmetric with a zero diagonal within J_TOLERANCE
(relative to max(1, max |J|)); J is then made exactly symmetric.
"""

from __future__ import annotations

import numpy as np
import torch

from isingaug.errors import DataError

LAYOUTS = ("auto", "patterns_by_units", "units_by_patterns", "repeats_units_bins")
#: The layout of 3-D recordings (repeats x units x time bins).
RECORDING = "repeats_units_bins"
#: Asymmetry and diagonal allowed in a shipped J, relative to max(1, max |J|).
J_TOLERANCE = 1e-6
#: How each encoding is named in messages.
_SETS = {"01": "{0,1}", "pm1": "{-1,+1}"}


def is_numeric(array: np.ndarray) -> bool:
    """Bool, integer or float values (what a pattern, a time or a parameter may be)."""
    return array.dtype.kind in "biuf"


def check_pattern_array(array: np.ndarray, where: str, layout: str) -> None:
    """Numeric, non-empty, 3-D for the recording layout and 2-D otherwise (with the way out)."""
    if not is_numeric(array):
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


def spin_encoding(array: np.ndarray, where: str, lines: np.ndarray | None = None,
                  column_offset: int = 0) -> str | None:
    """'01' or 'pm1' from the values present (None when only +1 occurs); refuses anything else.

    `lines` maps rows to a text file's lines and `column_offset` counts the leading columns
    dropped from it, so positions in messages are the file's own.
    """
    values = array.view(np.uint8) if array.dtype.kind == "b" else array
    zero, minus = values == 0, values == -1
    bad = ~(zero | minus | (values == 1))
    if bad.any():
        value, at = _first(values, bad, lines, column_offset)
        raise DataError(
            f"{where}: values must be in {{0,1}} or {{-1,+1}}; found {value} (first at {at})"
        )
    if zero.any() and minus.any():
        raise DataError(
            f"{where}: values mix 0 (first at {_first(values, zero, lines, column_offset)[1]}) "
            f"and -1 (first at {_first(values, minus, lines, column_offset)[1]}); use either "
            "{0,1} or {-1,+1}"
        )
    return "01" if zero.any() else "pm1" if minus.any() else None


def _first(values: np.ndarray, mask: np.ndarray, lines: np.ndarray | None,
           column_offset: int) -> tuple[str, str]:
    """The first masked value and its position, counted from 1 (text files: the file's line)."""
    index = np.unravel_index(int(np.argmax(mask)), mask.shape)
    value = _format_value(values[index])
    if len(index) == 3:
        repeat, unit, time_bin = (int(i) + 1 for i in index)
        return value, f"repeat {repeat}, unit {unit}, bin {time_bin}"
    row, column = index
    place = f"line {lines[row]}" if lines is not None else f"row {row + 1}"
    return value, f"{place}, column {column + 1 + column_offset}"


def _format_value(value: np.generic) -> str:
    number = value.item()
    if isinstance(number, float) and not np.isfinite(number):
        return "NaN" if np.isnan(number) else str(number)
    return f"{number:g}"


def common_encoding(encodings: dict[str, str | None], label: str) -> str:
    """The one encoding of 'samples' and 'test' (pm1 when neither shows 0 or -1)."""
    found = {name: enc for name, enc in encodings.items() if enc is not None}
    if len(set(found.values())) > 1:
        raise DataError(
            f"{label}: 'samples' use {_SETS[found['samples']]} but 'test' uses "
            f"{_SETS[found['test']]}; both must use the same encoding"
        )
    return next(iter(found.values()), "pm1")


def orient(array: np.ndarray, layout: str, n: int | None) -> tuple[np.ndarray, str]:
    """Patterns as rows, by the layout rule of the module docstring; and the layout used."""
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


def orient_test(array: np.ndarray, layout: str, n: int, label: str) -> np.ndarray:
    """The test array in the samples' layout ("auto": whichever side has n units)."""
    oriented, _ = orient(array, layout, n)
    if oriented.shape[1] != n:
        raise DataError(
            f"{label}: array 'test' has shape {array.shape}, i.e. {oriented.shape[1]} units, "
            f"but the samples have {n} units; the test patterns must have the same units"
        )
    return oriented


def truth_arrays(arrays: dict[str, np.ndarray],
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
        if not is_numeric(value) or not np.isfinite(value).all():
            raise DataError(f"{label}: array '{name}' must hold finite numbers")
        checked.append(np.asarray(value, dtype=np.float64))
    if checked[0].ndim != 1:
        raise DataError(f"{label}: array 'h' has shape {h.shape}; expected one field per unit (n,)")
    return checked[0], checked[1]


def check_truth(h: np.ndarray, J: np.ndarray, n: int, label: str) -> tuple[np.ndarray, np.ndarray]:
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


def encoded_to_spins(array: np.ndarray) -> np.ndarray:
    """A validated {0,1} or {-1,+1} (or bool) array as contiguous int8 +-1: positive -> +1.

    Both encodings go through the same map (0 and -1 both become -1), so a caller that has
    checked the encoding needs no branch on it.
    """
    return np.ascontiguousarray((array > 0).astype(np.int8) * 2 - 1)


def to_tensor(spins: np.ndarray) -> torch.Tensor:
    """The Dataset's form: float32 on the CPU."""
    return torch.from_numpy(np.ascontiguousarray(spins, dtype=np.float32))
