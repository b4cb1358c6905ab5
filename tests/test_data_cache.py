"""A damaged cache file is moved aside, reported and rebuilt; the run goes on."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from isingaug.data.sk import make_sk_dataset

SK = {"n": 6, "g": 1.0, "M": 200, "M_test": 50, "data_seed": 4,
      "sampler": {"kind": "auto", "exact_max_n": 20}, "device": "cpu"}


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def empty(data: bytes) -> bytes:
    return b""


def flip_middle(data: bytes) -> bytes:
    """Damage the compressed members but keep the zip's directory at the end intact."""
    middle = len(data) // 2
    return data[:middle - 32] + bytes(b ^ 0xFF for b in data[middle - 32:middle + 32]) + (
        data[middle + 32:])


@pytest.mark.parametrize("damage", [truncate, empty, flip_middle])
def test_a_damaged_cache_file_is_moved_aside_and_rebuilt(tmp_path: Path, caplog, damage) -> None:
    first = make_sk_dataset(**SK, cache_dir=str(tmp_path))
    path = Path(first.meta["cache_file"])
    damaged = damage(path.read_bytes())
    path.write_bytes(damaged)

    with caplog.at_level(logging.WARNING, logger="isingaug.data.cache"):
        again = make_sk_dataset(**SK, cache_dir=str(tmp_path))
    assert not again.meta["from_cache"]
    fresh = make_sk_dataset(**SK, cache_dir=None)
    for data in (again, first):
        assert torch.equal(data.train, fresh.train) and torch.equal(data.test, fresh.test)

    aside = list(path.parent.glob(f"{path.name}.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0] and str(aside[0]) in warnings[0]
    assert not list(path.parent.glob("*.tmp"))

    third = make_sk_dataset(**SK, cache_dir=str(tmp_path))  # the rebuilt file is a good one
    assert third.meta["from_cache"] and torch.equal(third.train, fresh.train)
