"""Sweep-level bookkeeping: stable job folders (so a rerun finds its finished jobs), one process
per job folder at a time, and the sweep summary that lists every job's outcome, failures
included."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from isingaug.io import write_json_atomic
from isingaug.results import ERROR_FILE, RESULTS_FILE
from isingaug.seeding import derived_seed

log = logging.getLogger("isingaug")

SUMMARY_FILE = "sweep_summary.json"
#: Held (flock) by the process running a job, so a second sweep over the same folder skips it.
LOCK_FILE = ".job.lock"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")
_LEGACY_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,+-]+")
#: Longest readable part of a job folder's name (the hash after it keeps names unique).
MAX_STEM = 200


def _digest(text: str) -> str:
    return f"{derived_seed(0, text) % 16**8:08x}"


def legacy_job_folder_name(override_dirname: str) -> str:
    """The folder name of sweeps written before job folders lost their '=' and ','
    (`design=n40_M2000,seed=3`)."""
    name = _LEGACY_UNSAFE.sub("-", override_dirname).strip("-") or "default"
    if len(name) > 200:
        name = f"{name[:190]}-{_digest(override_dirname)}"
    return name


def job_folder_name(override_dirname: str, sweep_dir: str | None = None) -> str:
    """A job's folder inside its sweep, named by the job's own overrides and a hash of them:
    `design=n40_M2000,seed=3` -> `design-n40_M2000_seed-3_6774e6ca`.

    No '=' or ',' (the override grammar's separators), so the folder's paths can be pasted into
    `resume_from=` and `dataset.path=` as they are. The name depends only on the overrides, so
    running a sweep command again finds its finished jobs; the hash keeps two jobs apart whose
    readable parts coincide. A job of a sweep folder written with the older names
    (`design=n40_M2000,seed=3`, found in `sweep_dir`) keeps its folder.
    """
    if sweep_dir:
        legacy = legacy_job_folder_name(override_dirname)
        if (Path(sweep_dir) / legacy / ".hydra").is_dir():
            return legacy
    if not override_dirname:
        return "default"
    stem = override_dirname.replace("=", "-").replace(",", "_")
    stem = _UNSAFE.sub("-", stem).strip("-_.")[:MAX_STEM].rstrip("-_.") or "job"
    return f"{stem}_{_digest(override_dirname)}"


def register_resolvers() -> None:
    """`${isingaug_job_folder:${hydra.job.override_dirname},${hydra.sweep.dir}}`, used by
    conf/hydra/default.yaml."""
    if not OmegaConf.has_resolver("isingaug_job_folder"):
        OmegaConf.register_new_resolver("isingaug_job_folder", job_folder_name)


@contextlib.contextmanager
def job_lock(job_dir: Path) -> Iterator[bool]:
    """Hold the job folder's lock for the block; yields False (holding nothing) when another
    process holds it. The lock goes with the process, so a killed job leaves none behind."""
    job_dir.mkdir(parents=True, exist_ok=True)
    with open(job_dir / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_running(job_dir: Path) -> bool:
    """True while some process holds the job folder's lock."""
    path = job_dir / LOCK_FILE
    if not path.is_file():
        return False
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def job_outcomes(sweep_dir: Path, since: float = 0.0) -> list[dict[str, Any]]:
    """One entry per job folder (one holding .hydra/) started at or after `since` (a time
    stamp): finished, failed or unfinished (`running: true` while a process holds it)."""
    jobs = []
    for hydra_dir in sorted(sweep_dir.glob("*/.hydra")):
        job_dir = hydra_dir.parent
        overrides_file = hydra_dir / "overrides.yaml"
        if overrides_file.is_file() and overrides_file.stat().st_mtime < since:
            continue
        overrides = (list(OmegaConf.load(overrides_file)) if overrides_file.is_file() else [])
        entry: dict[str, Any] = {"dir": job_dir.name, "overrides": overrides}
        if (job_dir / RESULTS_FILE).is_file():
            entry["status"] = "finished"
        elif (job_dir / ERROR_FILE).is_file():
            error = json.loads((job_dir / ERROR_FILE).read_text())
            entry.update(status="failed", error=f"{error.get('type')}: {error.get('error')}")
        else:
            entry.update(status="unfinished", running=is_running(job_dir))
        jobs.append(entry)
    return jobs


def _counts(jobs: list[dict[str, Any]]) -> dict[str, int]:
    return {status: sum(job["status"] == status for job in jobs)
            for status in ("finished", "failed", "unfinished")}


class SweepSummary(Callback):
    """Hydra callback: after a multirun, write sweep_summary.json and fail loudly on failures.

    The summary lists every job folder of the sweep as it is on disk (so two sweeps over one
    folder, finishing in any order, leave a complete view), and under `command` the jobs this
    command started. The exit status is 1 when any of those failed, after all ran.
    """

    def __init__(self) -> None:
        self.started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time() - 1.0

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        everything = job_outcomes(sweep_dir)
        mine = job_outcomes(sweep_dir, self.started)
        counts = _counts(everything)
        write_json_atomic(sweep_dir / SUMMARY_FILE, {
            "sweep_dir": str(sweep_dir), "counts": counts, "jobs": everything,
            "command": {"started": self.started, "counts": _counts(mine),
                        "jobs": [job["dir"] for job in mine]}})
        log.info("sweep %s: %s", sweep_dir, counts)
        failed = [job for job in mine if job["status"] == "failed"]
        if failed:
            for job in failed:
                print(f"isingaug: job {job['dir']} ({' '.join(job['overrides'])}) failed: "
                      f"{job['error']}", file=sys.stderr)
            print(f"isingaug: {len(failed)} of {len(mine)} jobs failed; the others' results "
                  f"are in {sweep_dir} (summary: {sweep_dir / SUMMARY_FILE})", file=sys.stderr)
            sys.exit(1)
