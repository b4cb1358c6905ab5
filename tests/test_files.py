"""Readers of users' pattern files: round-trips for every format, the split, every error path."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from isingaug.data.file_dataset import load_file_dataset
from isingaug.data.patterns import read_patterns
from isingaug.errors import ConfigError, DataError

# Distinct primes so a swapped axis shows up as a shape error.
M, N = 23, 7


def spins(num: int = M, n: int = N, seed: int = 0) -> np.ndarray:
    """Random int8 +-1 patterns, every value present."""
    return np.random.default_rng(seed).choice(np.array([-1, 1], dtype=np.int8), size=(num, n))


def distinct_spins(num: int, n: int) -> np.ndarray:
    """Pattern k is the binary code of k, so every row is unique (for split checks)."""
    bits = (np.arange(num)[:, None] >> np.arange(n)) & 1
    return (2 * bits - 1).astype(np.int8)


def truth(n: int = N, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(n, n))
    J = J + J.T
    np.fill_diagonal(J, 0.0)
    return rng.normal(size=n), J


def to01(patterns: np.ndarray) -> np.ndarray:
    return (patterns > 0).astype(np.uint8)


def write_text(path: Path, patterns: np.ndarray, sep: str) -> Path:
    path.write_text("\n".join(sep.join(str(v) for v in row) for row in patterns) + "\n")
    return path


def write_mat73(path: Path, variables: dict[str, np.ndarray]) -> Path:
    """Like MATLAB's -v7.3: HDF5 after a 512-byte user block, arrays stored transposed."""
    with h5py.File(path, "w", userblock_size=512) as handle:
        for name, value in variables.items():
            if value.dtype.kind == "U":
                codes = np.array([[ord(c) for c in str(value)]], dtype=np.uint16)
                dataset = handle.create_dataset(name, data=codes.T)
                dataset.attrs["MATLAB_class"] = np.bytes_("char")
            else:
                dataset = handle.create_dataset(name, data=np.asarray(value, dtype=np.float64).T)
                dataset.attrs["MATLAB_class"] = np.bytes_("double")
    return path


# --- round-trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["01", "pm1"])
def test_npy_round_trip(tmp_path: Path, encoding: str) -> None:
    patterns = spins()
    path = tmp_path / "x.npy"
    np.save(path, to01(patterns) if encoding == "01" else patterns.astype(np.float64))
    raw = read_patterns(path)
    assert raw.samples.dtype == np.int8
    np.testing.assert_array_equal(raw.samples, patterns)
    assert raw.test is None and raw.h is None and raw.J is None
    assert raw.meta["encoding"] == encoding
    assert raw.meta["format"] == "npy"
    assert raw.meta["source"] == str(path.resolve())
    assert raw.meta["layout"] == "patterns_by_units"


def test_bool_array_is_read_as_01(tmp_path: Path) -> None:
    patterns = spins()
    np.save(tmp_path / "b.npy", patterns > 0)
    raw = read_patterns(tmp_path / "b.npy")
    np.testing.assert_array_equal(raw.samples, patterns)
    assert raw.meta["encoding"] == "01"


def test_npz_with_truth_and_test(tmp_path: Path) -> None:
    patterns, test = spins(), spins(11, seed=5)
    h, J = truth()
    path = tmp_path / "t.npz"
    np.savez(path, samples=to01(patterns), test=to01(test), h=h, J=J)
    raw = read_patterns(path)
    np.testing.assert_array_equal(raw.samples, patterns)
    np.testing.assert_array_equal(raw.test, test)
    np.testing.assert_allclose(raw.h, h)
    np.testing.assert_allclose(raw.J, J)
    assert raw.meta["encoding"] == "01" and raw.meta["key"] == "samples"

    data = load_file_dataset(path)
    assert data.train.dtype == torch.float32 and data.test.dtype == torch.float32
    np.testing.assert_array_equal(data.train.numpy(), patterns)
    np.testing.assert_array_equal(data.test.numpy(), test)
    assert data.truth is not None and data.truth.J.dtype == torch.float64
    np.testing.assert_allclose(data.truth.J.numpy(), J)
    assert data.meta["split"] == "file"
    assert (data.meta["M"], data.meta["M_test"], data.meta["n"]) == (M, 11, N)
    assert data.meta["path"] == str(path.resolve()) and data.meta["has_truth"]


def test_npz_key_selects_the_array(tmp_path: Path) -> None:
    patterns = spins()
    np.savez(tmp_path / "k.npz", other=patterns, junk=np.zeros(3))
    raw = read_patterns(tmp_path / "k.npz", key="other")
    np.testing.assert_array_equal(raw.samples, patterns)
    assert raw.meta["key"] == "other"


def test_npz_single_unnamed_array_is_found(tmp_path: Path) -> None:
    patterns = spins()
    np.savez(tmp_path / "u.npz", patterns)
    np.testing.assert_array_equal(read_patterns(tmp_path / "u.npz").samples, patterns)


@pytest.mark.parametrize(("name", "sep"), [("c.csv", ","), ("c2.csv", ", "), ("w.txt", " "),
                                           ("t.txt", "\t"), ("ct.txt", ",")])
def test_text_round_trip(tmp_path: Path, name: str, sep: str) -> None:
    patterns = spins()
    raw = read_patterns(write_text(tmp_path / name, to01(patterns), sep))
    np.testing.assert_array_equal(raw.samples, patterns)
    assert raw.meta["encoding"] == "01"
    assert raw.meta["format"] == name.split(".")[1]


def test_text_skips_blank_and_comment_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("# spins\n1,-1,1\n\n-1,-1,1\n")
    raw = read_patterns(path, layout="patterns_by_units")
    np.testing.assert_array_equal(raw.samples, [[1, -1, 1], [-1, -1, 1]])


def test_mat_v5_round_trip(tmp_path: Path) -> None:
    patterns = spins()
    path = tmp_path / "m.mat"
    scipy.io.savemat(path, {"spikes": to01(patterns).astype(np.float64), "dt": 0.02,
                            "label": "retina"})
    raw = read_patterns(path)
    np.testing.assert_array_equal(raw.samples, patterns)
    assert raw.meta["format"] == "mat-v5" and raw.meta["key"] == "spikes"
    assert raw.meta["encoding"] == "01"


def test_mat_v5_key_picks_among_several(tmp_path: Path) -> None:
    patterns = spins()
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"a": patterns, "b": spins(seed=3)})
    with pytest.raises(DataError, match=r"two\.mat.*several.*dataset\.key.*'a'.*'b'"):
        read_patterns(path)
    np.testing.assert_array_equal(read_patterns(path, key="a").samples, patterns)


def test_mat_v73_round_trip(tmp_path: Path) -> None:
    patterns = spins()
    path = write_mat73(tmp_path / "big.mat", {"spikes": to01(patterns),
                                               "label": np.array("retina")})
    with h5py.File(path, "r") as handle:  # stored transposed, as MATLAB does
        assert handle["spikes"].shape == (N, M)
    raw = read_patterns(path)
    np.testing.assert_array_equal(raw.samples, patterns)
    assert raw.meta["format"] == "mat-v7.3" and raw.meta["key"] == "spikes"
    assert raw.meta["shape_in_file"] == [M, N]


def test_layout_transposes(tmp_path: Path) -> None:
    patterns = spins()
    np.save(tmp_path / "tr.npy", patterns.T)
    raw = read_patterns(tmp_path / "tr.npy", layout="units_by_patterns")
    np.testing.assert_array_equal(raw.samples, patterns)
    assert raw.meta["layout"] == "units_by_patterns"
    auto = read_patterns(tmp_path / "tr.npy")  # wider than tall: auto transposes
    np.testing.assert_array_equal(auto.samples, patterns)
    assert auto.meta["layout"] == "units_by_patterns" and auto.meta["layout_requested"] == "auto"
    kept = read_patterns(tmp_path / "tr.npy", layout="patterns_by_units")
    assert kept.samples.shape == (N, M)


def test_auto_layout_takes_n_from_truth(tmp_path: Path) -> None:
    patterns = spins(5, 11)  # fewer patterns than units: shape alone would transpose
    h, J = truth(11)
    np.savez(tmp_path / "few.npz", samples=patterns, test=spins(13, 11).T, h=h, J=J)
    raw = read_patterns(tmp_path / "few.npz")
    np.testing.assert_array_equal(raw.samples, patterns)
    assert raw.test.shape == (13, 11)


def test_split_is_reproducible_and_disjoint(tmp_path: Path) -> None:
    patterns = distinct_spins(100, 9)
    np.save(tmp_path / "s.npy", patterns)
    first = load_file_dataset(tmp_path / "s.npy", test_fraction=0.25, split_seed=4)
    again = load_file_dataset(tmp_path / "s.npy", test_fraction=0.25, split_seed=4)
    other = load_file_dataset(tmp_path / "s.npy", test_fraction=0.25, split_seed=5)
    assert torch.equal(first.train, again.train) and torch.equal(first.test, again.test)
    assert not torch.equal(first.test, other.test)
    assert (first.train.shape[0], first.test.shape[0]) == (75, 25)
    train, test = ({tuple(row) for row in part.numpy()} for part in (first.train, first.test))
    assert not train & test
    assert train | test == {tuple(row) for row in patterns.astype(np.float32)}
    assert first.meta["split"] == "random" and first.meta["M_test"] == 25


def test_m_keeps_a_nested_seeded_subset(tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", distinct_spins(60, 8))
    small = load_file_dataset(tmp_path / "s.npy", M=10, test_fraction=0.5, split_seed=2)
    large = load_file_dataset(tmp_path / "s.npy", M=20, test_fraction=0.5, split_seed=2)
    assert small.train.shape == (10, 8) and small.meta["M"] == 10 and small.meta["M_file"] == 60
    assert torch.equal(small.train, large.train[:10]) and torch.equal(small.test, large.test)
    plain = load_file_dataset(tmp_path / "s.npy")
    assert plain.test is None and plain.meta["split"] == "none" and plain.train.shape == (60, 8)


# --- errors ----------------------------------------------------------------------------------


def _npz(**arrays: np.ndarray):
    return lambda path: np.savez(path, **arrays)


def _npy(array: np.ndarray):
    return lambda path: np.save(path, array)


def _text(content: str):
    return lambda path: path.write_text(content)


def _bytes(content: bytes):
    return lambda path: path.write_bytes(content)


H, J = truth()
ASYMMETRIC = J.copy()
ASYMMETRIC[0, 1] += 0.5
DIAGONAL = J.copy()
DIAGONAL[2, 2] = 1.0
NAN = spins().astype(np.float64)
NAN[4, 0] = np.nan
TWO = spins()
TWO[4, 0] = 2
MIXED = spins()
MIXED[1, 1] = 0

DATA_ERRORS = [
    ("nan.npy", _npy(NAN), r"found NaN \(first at row 5, column 1\)"),
    ("two.npz", _npz(samples=TWO), r"\{0,1\} or \{-1,\+1\}; found 2 \(first at row 5, column 1\)"),
    ("mixed.npy", _npy(MIXED), r"mix 0 \(first at row 2, column 2\) and -1"),
    ("ragged.csv", _text("0,1,1\n1,1,0\n1,0\n"), r"line 3 has 2 values, expected 3"),
    ("header.csv", _text("a,b,c\n0,1,1\n"), r"line 1, column 1: 'a' is not a number"),
    ("value.txt", _text("0 1\n\n1 3\n"), r"found 3 \(first at line 3, column 2\)"),
    ("empty.npy", _npy(np.zeros((0, 5))), r"is empty"),
    ("empty.csv", _text("\n# nothing\n"), r"is empty"),
    ("text.npy", _npy(np.array([["a", "b"], ["c", "d"]])), r"expected numbers"),
    ("cube.npy", _npy(np.ones((3, 4, 5))), r"3-D.*2-D array of patterns x units"),
    ("vector.npy", _npy(np.ones(5)), r"expected a 2-D array"),
    ("one.npy", _npy(np.ones((6, 1))), r"1 unit.*at least 2 units"),
    ("bad_h.npz", _npz(samples=spins(), h=np.zeros(N + 1), J=J), r"'h' has shape \(8,\)"),
    ("bad_J.npz", _npz(samples=spins(), h=H, J=np.zeros((N, N - 1))), r"'J' has shape \(7, 6\)"),
    ("asym.npz", _npz(samples=spins(), h=H, J=ASYMMETRIC), r"'J' must be symmetric; row 1"),
    ("diag.npz", _npz(samples=spins(), h=H, J=DIAGONAL), r"zero diagonal; row 3, column 3"),
    ("only_h.npz", _npz(samples=spins(), h=H), r"has array 'h' but no 'J'"),
    ("nan_J.npz", _npz(samples=spins(), h=H, J=J * np.nan), r"'J' must hold finite numbers"),
    ("test_n.npz", _npz(samples=spins(), test=spins(11, N + 2)), r"'test'.*9 units.*7 units"),
    ("test_enc.npz", _npz(samples=to01(spins()), test=spins(11)),
     r"'samples' use \{0,1\} but 'test' uses \{-1,\+1\}"),
    ("nosamples.npz", _npz(a=spins(), b=spins()), r"several arrays.*'a'.*'b'"),
    ("corrupt.npz", _bytes(b"PK\x03\x04 not really a zip"), r"cannot read it as a \.npz"),
    ("corrupt.npy", _bytes(b"\x93NUMPY garbage"), r"cannot read it as a \.npy"),
    ("corrupt.mat", _bytes(b"not a mat file at all" * 10), r"cannot read it as a \.mat"),
    ("binary.csv", _bytes(b"\xff\xfe\x00\x81"), r"cannot read it as a \.csv"),
    ("data.xlsx", _text("0,1\n"), r"unknown file type '\.xlsx'.*\.npz, \.npy, \.csv"),
]


@pytest.mark.parametrize(("name", "write", "problem"), DATA_ERRORS,
                         ids=[case[0] for case in DATA_ERRORS])
def test_data_errors_name_the_file_and_problem(tmp_path: Path, name: str, write,
                                               problem: str) -> None:
    path = tmp_path / name
    write(path)
    with pytest.raises(DataError, match=problem) as info:
        load_file_dataset(path)
    assert name in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere\.npz: does not exist \(dataset\.path"):
        read_patterns(tmp_path / "nowhere.npz")


def test_mat_key_not_found_lists_variables(tmp_path: Path) -> None:
    path = tmp_path / "v.mat"
    scipy.io.savemat(path, {"spikes": spins()})
    with pytest.raises(DataError, match=r"v\.mat: no variable named 'bint' \(dataset\.key\).*"
                                        r"'spikes'"):
        read_patterns(path, key="bint")


def test_mat_v73_3d_recording_is_refused(tmp_path: Path) -> None:
    path = write_mat73(tmp_path / "retina.mat", {"bint": np.ones((3, 5, 4))})
    with pytest.raises(DataError, match=r"retina\.mat: variable 'bint': is 3-D with shape"
                                        r" \(3, 5, 4\)"):
        read_patterns(path)


CONFIG_ERRORS = [
    ({"layout": "rows"}, r"dataset\.layout must be one of"),
    ({"key": "x"}, r"f\.npy: dataset\.key must be null for a \.npy file \(it holds one array\); "
                   r"got 'x'"),
    ({"test_fraction": 1.0}, r"dataset\.test_fraction must be in \[0, 1\); got 1\.0"),
    ({"test_fraction": -0.1}, r"dataset\.test_fraction must be in \[0, 1\)"),
    ({"test_fraction": "half"}, r"dataset\.test_fraction must be in \[0, 1\)"),
    ({"test_fraction": 0.001}, r"f\.npy: dataset\.test_fraction=0\.001 of 23 patterns gives 0"),
    ({"M": 24}, r"dataset\.M=24 exceeds the 23 training patterns in .*f\.npy"),
    ({"M": 20, "test_fraction": 0.5}, r"dataset\.M=20 exceeds the 11 .*after the test split"),
    ({"M": 0}, r"dataset\.M must be a positive integer"),
    ({"split_seed": -1}, r"dataset\.split_seed must be a non-negative integer"),
]


@pytest.mark.parametrize(("options", "problem"), CONFIG_ERRORS)
def test_config_errors_name_the_key(tmp_path: Path, options: dict, problem: str) -> None:
    np.save(tmp_path / "f.npy", spins())
    with pytest.raises(ConfigError, match=problem):
        load_file_dataset(tmp_path / "f.npy", **options)


def test_test_fraction_with_a_file_test_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "own.npz", samples=spins(), test=spins(11))
    with pytest.raises(ConfigError, match=r"own\.npz: the file has its own 'test' array"):
        load_file_dataset(tmp_path / "own.npz", test_fraction=0.2)


# --- 3-D recordings --------------------------------------------------------------------------


def recording(repeats: int = 3, units: int = 5, bins: int = 4, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((repeats, units, bins)) < 0.4).astype(np.uint8)


def concatenated(rec: np.ndarray) -> np.ndarray:
    """Repeats one after another: row r * bins + b is bin b of repeat r."""
    rows = [rec[r, :, b] for r in range(rec.shape[0]) for b in range(rec.shape[2])]
    return np.array(rows, dtype=np.int8) * 2 - 1


@pytest.mark.parametrize("fmt", ["npy", "mat-v5", "mat-v7.3"])
def test_3d_recording_concatenates_repeats(tmp_path: Path, fmt: str) -> None:
    rec = recording()
    path = tmp_path / ("r.npy" if fmt == "npy" else "r.mat")
    if fmt == "npy":
        np.save(path, rec)
    elif fmt == "mat-v5":
        scipy.io.savemat(path, {"bint": rec})
    else:
        write_mat73(path, {"bint": rec})
    raw = read_patterns(path, layout="repeats_units_bins")
    np.testing.assert_array_equal(raw.samples, concatenated(rec))
    assert raw.meta["layout"] == "repeats_units_bins" and raw.meta["shape_in_file"] == [3, 5, 4]
    data = load_file_dataset(path, layout="repeats_units_bins", M=5, split_seed=1)
    assert data.train.shape == (5, 5) and data.meta["M_file"] == 12


def test_3d_npz_with_a_3d_test(tmp_path: Path) -> None:
    rec, test = recording(), recording(2, seed=1)
    np.savez(tmp_path / "r.npz", samples=rec, test=test)
    raw = read_patterns(tmp_path / "r.npz", layout="repeats_units_bins")
    np.testing.assert_array_equal(raw.test, concatenated(test))


def test_3d_errors_point_to_the_layout(tmp_path: Path) -> None:
    np.save(tmp_path / "cube.npy", recording())
    with pytest.raises(DataError, match=r"cube\.npy: is 3-D with shape \(3, 5, 4\).*"
                                        r"set dataset\.layout=repeats_units_bins"):
        read_patterns(tmp_path / "cube.npy")
    np.save(tmp_path / "flat.npy", spins())
    with pytest.raises(DataError, match=r"flat\.npy: has shape \(23, 7\); layout "
                                        r"'repeats_units_bins' needs a 3-D array"):
        read_patterns(tmp_path / "flat.npy", layout="repeats_units_bins")
    bad = recording().astype(np.float64)
    bad[1, 2, 3] = 0.5
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(DataError, match=r"bad\.npy: values must be in \{0,1\} or \{-1,\+1\}; "
                                        r"found 0\.5 \(first at repeat 2, unit 3, bin 4\)"):
        read_patterns(tmp_path / "bad.npy", layout="repeats_units_bins")


# --- spike times -----------------------------------------------------------------------------

# Unit 7 fires at 0.005 and 0.012 s, unit 3 at 0.031 s, unit 9 twice in the bin [0.02, 0.03).
TIMES = np.array([0.005, 0.031, 0.012, 0.021, 0.029])
UNITS = np.array([7, 3, 7, 9, 9])
# 10 ms bins from t = 0; columns are the sorted ids 3, 7, 9.
BINNED = np.array([[-1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, -1]], dtype=np.int8)


@pytest.mark.parametrize("suffix", ["npz", "mat"])
def test_spike_times_are_binned(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"spikes.{suffix}"
    arrays = {"spike_times": TIMES, "spike_units": UNITS}
    np.savez(path, **arrays) if suffix == "npz" else scipy.io.savemat(path, arrays)
    raw = read_patterns(path, bin_width=0.01)
    np.testing.assert_array_equal(raw.samples, BINNED)
    assert raw.meta["units"] == [3, 7, 9] and raw.meta["layout"] == "spike_times"
    assert raw.meta["bin_width"] == 0.01 and raw.meta["t_start"] == 0.0
    assert raw.meta["spikes"] == 5 and raw.meta["encoding"] == "spike_times"
    data = load_file_dataset(path, bin_width=0.01, test_fraction=0.25)
    assert (data.train.shape, data.test.shape) == ((3, 3), (1, 3))


def test_spike_times_in_ms_with_silent_units(tmp_path: Path) -> None:
    np.savez(tmp_path / "ms.npz", spike_times=TIMES * 1000 + 2000, spike_units=UNITS,
             unit_ids=np.array([9, 3, 5, 7]))
    raw = read_patterns(tmp_path / "ms.npz", bin_width=0.01, time_unit="ms")
    assert raw.meta["units"] == [9, 3, 5, 7] and raw.meta["t_start"] == pytest.approx(2.0)
    np.testing.assert_array_equal(raw.samples[:, [1, 3, 0]], BINNED)
    assert (raw.samples[:, 2] == -1).all()


SPIKE_ERRORS = [
    ("len.npz", {"spike_times": TIMES, "spike_units": UNITS[:4]},
     r"'spike_times' has 5 entries but 'spike_units' has 4"),
    ("unknown.npz", {"spike_times": TIMES, "spike_units": UNITS, "unit_ids": np.array([3, 7])},
     r"'spike_units' has unit 9 that is not in 'unit_ids'"),
    ("twice.npz", {"spike_times": TIMES, "spike_units": UNITS, "unit_ids": np.array([3, 7, 3, 9])},
     r"'unit_ids' lists a unit twice"),
    ("frac.npz", {"spike_times": TIMES, "spike_units": UNITS + 0.5}, r"non-integer values"),
    ("nan.npz", {"spike_times": TIMES * np.nan, "spike_units": UNITS}, r"NaN or infinite"),
    ("matrix.npz", {"spike_times": np.ones((2, 3)), "spike_units": UNITS},
     r"'spike_times': has shape \(2, 3\).*expected a vector"),
    ("nounits.npz", {"spike_times": TIMES}, r"no array 'spike_units'; it has 'spike_times'"),
    ("empty.npz", {"spike_times": np.zeros(0), "spike_units": np.zeros(0)}, r"no spike times"),
    ("single.npz", {"spike_times": TIMES, "spike_units": np.full(5, 2)},
     r"spikes of 1 unit; need at least 2"),
]


@pytest.mark.parametrize(("name", "arrays", "problem"), SPIKE_ERRORS,
                         ids=[case[0] for case in SPIKE_ERRORS])
def test_spike_time_errors(tmp_path: Path, name: str, arrays: dict, problem: str) -> None:
    np.savez(tmp_path / name, **arrays)
    with pytest.raises(DataError, match=problem) as info:
        read_patterns(tmp_path / name, bin_width=0.01)
    assert name in str(info.value)


def test_spike_time_option_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "s.npz", spike_times=TIMES, spike_units=UNITS)
    np.save(tmp_path / "r.npy", spins())
    cases = [
        ({"bin_width": 0}, r"dataset\.bin_width must be a positive number of seconds"),
        ({"bin_width": "20ms"}, r"dataset\.bin_width must be a positive number"),
        ({"bin_width": 0.01, "time_unit": "us"}, r"dataset\.time_unit must be one of s, ms"),
        ({"bin_width": 0.01, "key": "spike_times"},
         r"s\.npz: dataset\.key must be null when reading spike times.*got 'spike_times'"),
        ({"bin_width": 0.01, "layout": "units_by_patterns"},
         r"dataset\.layout must be auto when reading spike times"),
        ({"bin_width": 0.01, "skip_columns": 1}, r"dataset\.skip_columns must be 0 when reading"),
        ({"bin_width": 1e-12}, r"s\.npz: dataset\.bin_width=1e-12 s .* bins x 3 units, above"),
    ]
    for options, problem in cases:
        with pytest.raises(ConfigError, match=problem):
            read_patterns(tmp_path / "s.npz", **options)
    with pytest.raises(DataError, match=r"it holds spike times, so set dataset\.bin_width"):
        read_patterns(tmp_path / "s.npz")
    with pytest.raises(DataError, match=r"r\.npy: a \.npy file holds one raster"):
        read_patterns(tmp_path / "r.npy", bin_width=0.01)


# --- NWB -------------------------------------------------------------------------------------


def write_nwb(path: Path, spike_trains: list[list[float]] | None) -> Path:
    pynwb = pytest.importorskip("pynwb")
    nwbfile = pynwb.NWBFile(session_description="test", identifier=path.stem,
                            session_start_time=datetime(2020, 1, 1, tzinfo=UTC))
    for train in spike_trains or []:
        nwbfile.add_unit(spike_times=train)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


def test_nwb_units_are_binned(tmp_path: Path) -> None:
    path = write_nwb(tmp_path / "rec.nwb", [[0.031], [0.005, 0.012], [], [0.021, 0.029]])
    data = load_file_dataset(path, bin_width=0.01)
    expected = np.insert(BINNED, 2, -1, axis=1)  # the silent unit keeps its column
    np.testing.assert_array_equal(data.train.numpy(), expected)
    assert data.meta["format"] == "nwb" and data.meta["units"] == [0, 1, 2, 3]


def test_nwb_errors(tmp_path: Path) -> None:
    no_units = write_nwb(tmp_path / "none.nwb", None)
    with pytest.raises(DataError, match=r"none\.nwb: has no Units table"):
        read_patterns(no_units, bin_width=0.01)
    with pytest.raises(ConfigError, match=r"none\.nwb: an NWB file holds spike times; set "
                                          r"dataset\.bin_width"):
        read_patterns(no_units)
    with pytest.raises(ConfigError, match=r"NWB spike times are in seconds"):
        read_patterns(no_units, bin_width=0.01, time_unit="ms")
    (tmp_path / "bad.nwb").write_bytes(b"not hdf5" * 8)
    with pytest.raises(DataError, match=r"bad\.nwb: cannot read it as an NWB file"):
        read_patterns(tmp_path / "bad.nwb", bin_width=0.01)


def test_nwb_without_pynwb_says_how_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb now raises ImportError
    (tmp_path / "rec.nwb").write_bytes(b"")
    with pytest.raises(DataError, match=r"rec\.nwb: reading NWB files needs the optional package "
                                        r"pynwb.*pip install isingaug\[nwb\]"):
        read_patterns(tmp_path / "rec.nwb", bin_width=0.01)
