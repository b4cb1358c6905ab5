"""Text tables with leading label columns (.hapt as population-genetics tools write it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isingaug.config import build, compose_config
from isingaug.data.file_dataset import load_file_dataset
from isingaug.data.patterns import read_patterns
from isingaug.errors import ConfigError, DataError

M, N = 23, 7


def haplotypes(num: int = M, sites: int = N, seed: int = 0) -> np.ndarray:
    """{0,1} alleles, haplotypes x sites."""
    return np.random.default_rng(seed).integers(0, 2, size=(num, sites))


def write_hapt(path: Path, alleles: np.ndarray) -> Path:
    """One haplotype a line: a population label and an id, then its alleles."""
    lines = [f"POP{i % 3} hap_{i:03d}\t" + " ".join(map(str, row))
             for i, row in enumerate(alleles)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hapt_with_two_label_columns_reads_to_the_patterns(tmp_path: Path) -> None:
    alleles = haplotypes()
    path = write_hapt(tmp_path / "pop.hapt", alleles)
    raw = read_patterns(path, skip_columns=2)
    np.testing.assert_array_equal(raw.samples, 2 * alleles - 1)
    assert raw.meta["format"] == "hapt" and raw.meta["encoding"] == "01"
    assert raw.meta["skip_columns"] == 2 and raw.meta["shape_in_file"] == [M, N]
    data = load_file_dataset(path, skip_columns=2, test_fraction=0.2, split_seed=0)
    assert data.n == N and data.train.shape[0] + data.test.shape[0] == M


def test_hapt_through_the_config(tmp_path: Path) -> None:
    alleles = haplotypes()
    path = write_hapt(tmp_path / "pop.hapt", alleles)
    cfg = compose_config(["dataset=file", f"dataset.path={path}", "dataset.skip_columns=2"])
    data = build(cfg.dataset, "dataset")
    np.testing.assert_array_equal(data.train.numpy(), 2 * alleles - 1)


def test_missing_skip_columns_names_the_key_and_the_columns(tmp_path: Path) -> None:
    path = write_hapt(tmp_path / "pop.hapt", haplotypes())
    with pytest.raises(ConfigError, match=r"pop\.hapt: columns 1, 2 hold text in every line "
                                          r"\(line 1: 'POP0', 'hap_000'\).*"
                                          r"dataset\.skip_columns=2"):
        read_patterns(path)
    with pytest.raises(ConfigError, match=r"dataset\.skip_columns=2"):  # one dropped, one left
        read_patterns(path, skip_columns=1)


def test_sites_by_haplotypes_with_numeric_position_columns(tmp_path: Path) -> None:
    """Rows are sites: chromosome, id, position, two alleles' letters, then the haplotypes."""
    alleles = haplotypes(5, 31, seed=2)  # 5 sites x 31 haplotypes
    lines = [f"1 rs{100 + s} {1000 * (s + 1)} A G " + " ".join(map(str, alleles[s]))
             for s in range(5)]
    path = tmp_path / "sites.hapt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"columns 2, 4, 5 hold text.*dataset\.skip_columns=5"):
        read_patterns(path)
    raw = read_patterns(path, skip_columns=5, layout="units_by_patterns")
    np.testing.assert_array_equal(raw.samples, 2 * alleles.T - 1)


def test_positions_count_the_dropped_columns(tmp_path: Path) -> None:
    alleles = haplotypes()
    alleles[4, 3] = 3
    path = write_hapt(tmp_path / "bad.hapt", alleles)
    with pytest.raises(DataError, match=r"bad\.hapt: values must be in \{0,1\} or \{-1,\+1\}; "
                                        r"found 3 \(first at line 5, column 6\)"):
        read_patterns(path, skip_columns=2)


def test_hapt_is_split_at_whitespace_only(tmp_path: Path) -> None:
    path = tmp_path / "comma.hapt"
    path.write_text("a,b 0 1 1\nc,d 1 0 1\ne,f 1 1 0\n")  # commas inside a label
    raw = read_patterns(path, skip_columns=1, layout="patterns_by_units")
    np.testing.assert_array_equal(raw.samples, [[-1, 1, 1], [1, -1, 1], [1, 1, -1]])


def test_skip_columns_errors_name_the_key(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", 2 * haplotypes() - 1)
    with pytest.raises(ConfigError, match=r"x\.npy: dataset\.skip_columns must be 0 for a \.npy "
                                          r"file"):
        read_patterns(tmp_path / "x.npy", skip_columns=2)
    path = write_hapt(tmp_path / "pop.hapt", haplotypes())
    with pytest.raises(ConfigError, match=r"dataset\.skip_columns must be less than the 9 "
                                          r"columns of line 1; got 9"):
        read_patterns(path, skip_columns=9)
    with pytest.raises(ConfigError, match=r"dataset\.skip_columns must be an integer >= 0"):
        read_patterns(path, skip_columns=-1)
