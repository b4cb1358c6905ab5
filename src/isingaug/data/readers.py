"""Format readers: a user's file -> its named arrays, with every library error made a DataError.

Formats by suffix: .npz and .npy (numpy, no pickles), .mat (MATLAB v5 through scipy; v7.3 is
HDF5, read with h5py and transposed back to MATLAB's shape), and text tables: .csv/.txt (numbers
separated by commas, when the first row has one, or by whitespace) and .hapt (always whitespace,
as population-genetics tools write haplotypes). Text tables have no header; blank lines and lines
starting with '#' are skipped; `skip_columns` drops that many leading columns of every line (labels,
ids, positions), and a table whose leading columns are text in every line is refused with the
value of dataset.skip_columns that drops them. Nothing here knows about spins: see validation.py.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import h5py
import numpy as np
import scipy.io
import scipy.sparse
from scipy.io.matlab import MatReadError

from isingaug.data.validation import is_numeric
from isingaug.errors import ConfigError, DataError, option_error

#: Suffixes read as text tables, and the ones of those split at whitespace only.
TEXT_SUFFIXES = (".csv", ".txt", ".hapt")
WHITESPACE_ONLY = (".hapt",)
#: File suffixes read (.nwb holds spike times: see spikes.py).
SUFFIXES = (".npz", ".npy", *TEXT_SUFFIXES, ".mat", ".nwb")
#: Arrays of an .npz file that are not candidates for the samples.
NPZ_EXTRAS = ("test", "h", "J")
#: What the libraries raise on a corrupt or unreadable file.
READ_ERRORS = (OSError, ValueError, EOFError, TypeError, KeyError, zipfile.BadZipFile,
               MatReadError)


@dataclass
class Contents:
    """Named arrays found in a file.

    A format holding a single array (.npy, text) stores it under the name "". `noun` is what the
    format calls its arrays; for a text table `lines` maps its rows to the file's lines and
    `columns_skipped` counts the leading columns dropped, so messages give the file's positions.
    """

    arrays: dict[str, np.ndarray]
    format: str
    noun: str
    lines: np.ndarray | None = None
    columns_skipped: int = 0


def existing_file(path: str | PathLike[str]) -> tuple[Path, str]:
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


def load_contents(file: Path, label: str, skip_columns: int = 0) -> Contents:
    """Dispatch on the suffix; `skip_columns` applies to text tables only."""
    suffix = file.suffix.lower()
    if skip_columns and suffix not in TEXT_SUFFIXES:
        raise option_error("dataset.skip_columns", f"0 for a {suffix} file (it drops leading "
                           f"columns of {'/'.join(TEXT_SUFFIXES)} tables)", skip_columns, label)
    try:
        if suffix == ".npz":
            with np.load(file, allow_pickle=False) as archive:
                return Contents({name: archive[name] for name in archive.files}, "npz", "array")
        if suffix == ".npy":
            return Contents({"": np.load(file, allow_pickle=False)}, "npy", "array")
        if suffix == ".mat":
            return _read_mat(file)
        text = file.read_text(encoding="utf-8")
    except READ_ERRORS as err:
        raise DataError(f"{label}: cannot read it as a {suffix} file ({err})") from err
    array, lines = parse_text(text, label, suffix in WHITESPACE_ONLY, skip_columns)
    return Contents({"": array}, suffix[1:], "array", lines, skip_columns)


def parse_text(text: str, label: str, whitespace_only: bool = False,
               skip_columns: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of numbers, the first `skip_columns` of each line dropped; and each row's line."""
    data = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")]
    if not data:
        return np.empty((0, 0)), np.empty(0, dtype=int)
    lines = [number for number, _ in data]
    if "," in data[0][1] and not whitespace_only:
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
    if skip_columns >= lengths[0]:
        raise option_error("dataset.skip_columns", f"less than the {lengths[0]} columns of "
                           f"line {lines[0]}", skip_columns, label)
    values = [row[skip_columns:] for row in rows]
    try:
        return np.array(values, dtype=np.float64), np.array(lines)
    except ValueError:
        raise _non_numeric_text(values, lines, label, skip_columns) from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _non_numeric_text(rows: list[list[str]], lines: list[int], label: str,
                      skipped: int) -> DataError | ConfigError:
    """Why the table is not numbers (only on the error path; columns counted in the file).

    Leading columns that are text in every line are labels or ids: the message gives the
    dataset.skip_columns that drops them. Anything else is located at its first token.
    """
    numeric = np.array([[_is_number(token) for token in row] for row in rows])
    text_columns = np.flatnonzero(~numeric.any(axis=0))
    last = int(text_columns.max()) + 1 if text_columns.size else 0
    if 0 < last < numeric.shape[1] and numeric[:, last:].all():
        names = ", ".join(str(column + 1 + skipped) for column in text_columns)
        example = ", ".join(repr(rows[0][column]) for column in text_columns)
        return ConfigError(
            f"{label}: column{'s' if text_columns.size > 1 else ''} {names} hold text in every "
            f"line (line {lines[0]}: {example}), not numbers; if the first {last + skipped} "
            f"columns are labels or ids, drop them with dataset.skip_columns={last + skipped}"
        )
    row, column = np.unravel_index(int(np.argmax(~numeric)), numeric.shape)
    return DataError(
        f"{label}: line {lines[row]}, column {column + 1 + skipped}: {rows[row][column]!r} is "
        "not a number (values must be numbers separated by commas or whitespace, no header line)"
    )


def _read_mat(file: Path) -> Contents:
    """MATLAB v7.3 files are HDF5 (read with h5py); older ones are read by scipy."""
    if h5py.is_hdf5(file):
        return Contents(_read_mat73(file), "mat-v7.3", "variable")
    variables = scipy.io.loadmat(file, squeeze_me=False)
    arrays = {name: value.toarray() if scipy.sparse.issparse(value) else np.asarray(value)
              for name, value in variables.items() if not name.startswith("__")}
    return Contents(arrays, "mat-v5", "variable")


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


def where(contents: Contents, name: str, label: str) -> str:
    """How messages name an array: the file, and the array's name when the file has several."""
    return f"{label}: {contents.noun} '{name}'" if name else label


def select_array(contents: Contents, key: str | None, label: str, hint: str = "") -> str:
    """The name of the samples array: `key`, else 'samples' (.npz), else the only 2-D candidate.

    `hint` is added to the message when no candidate is found.
    """
    arrays, noun = contents.arrays, contents.noun
    if "" in arrays:
        if key is not None:
            raise option_error("dataset.key", f"null for a .{contents.format} file (it holds one "
                               "array)", key, label)
        return ""
    if key is not None:
        if key not in arrays:
            raise DataError(
                f"{label}: no {noun} named {key!r} (dataset.key); it has {describe(arrays)}"
            )
        return key
    if contents.format == "npz" and "samples" in arrays:
        return "samples"
    extras = NPZ_EXTRAS if contents.format == "npz" else ()
    candidates = [name for name, value in arrays.items()
                  if name not in extras and is_numeric(value)
                  and np.count_nonzero(np.array(value.shape) > 1) >= 2]
    if len(candidates) == 1:
        return candidates[0]
    which = "several" if candidates else "no"
    no_samples = "has no array 'samples' and " if contents.format == "npz" else ""
    raise DataError(
        f"{label}: {no_samples}found {which} {noun}s that could hold the patterns (numeric, "
        f"at least 2-D); choose one with dataset.key; it has {describe(arrays)}"
        f"{'' if candidates else hint}"
    )


def describe(arrays: dict[str, np.ndarray]) -> str:
    """Each array's name, shape and type, for messages."""
    if not arrays:
        return "nothing"
    return ", ".join(f"'{name}' {value.shape} {value.dtype}" for name, value in arrays.items())
