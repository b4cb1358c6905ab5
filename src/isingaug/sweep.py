"""Sweep-level bookkeeping: stable job folders (so a rerun finds its finished jobs) and the
sweep summary that lists every job's outcome, failures included."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from isingaug.io import write_json_atomic
from isingaug.results import ERROR_FILE, RESULTS_FILE
from isingaug.seeding import derived_seed

log = logging.getLogger("isingaug")

SUMMARY_FILE = "sweep_summary.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,+-]+")


def job_folder_name(override_dirname: str) -> str:
    """A job's folder inside its sweep, named by the job's own overrides (e.g. `M=2000,seed=3`).

    The name depends only on the job's config, so rerunning a sweep command finds the folders of
    its finished jobs. Names longer than 120 characters are cut and given a hash of the full text.
    """
    name = _UNSAFE.sub("-", override_dirname).strip("-") or "default"
    if len(name) > 200:
        name = f"{name[:190]}-{derived_seed(0, override_dirname) % 16**8:08x}"
    return name


def register_resolvers() -> None:
    """`${isingaug_job_folder:${hydra.job.override_dirname}}`, used by conf/hydra/default.yaml."""
    if not OmegaConf.has_resolver("isingaug_job_folder"):
        OmegaConf.register_new_resolver("isingaug_job_folder", job_folder_name)


def job_outcomes(sweep_dir: Path, since: float = 0.0) -> list[dict[str, Any]]:
    """One entry per job folder (one holding .hydra/) started at or after `since` (a time
    stamp): finished, failed or unfinished."""
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
            entry["status"] = "unfinished"
        jobs.append(entry)
    return jobs


class SweepSummary(Callback):
    """Hydra callback: after a multirun, write sweep_summary.json and fail loudly on failures.

    A sweep folder holds every job ever run for it; the summary covers the jobs of this command
    (those started since it began). The exit status is 1 when any of them failed, after all ran.
    """

    def __init__(self) -> None:
        self.started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time() - 1.0

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = job_outcomes(sweep_dir, self.started)
        counts = {status: sum(job["status"] == status for job in jobs)
                  for status in ("finished", "failed", "unfinished")}
        write_json_atomic(sweep_dir / SUMMARY_FILE, {"sweep_dir": str(sweep_dir),
                                                     "counts": counts, "jobs": jobs})
        log.info("sweep %s: %s", sweep_dir, counts)
        failed = [job for job in jobs if job["status"] == "failed"]
        if failed:
            for job in failed:
                print(f"isingaug: job {job['dir']} ({' '.join(job['overrides'])}) failed: "
                      f"{job['error']}", file=sys.stderr)
            print(f"isingaug: {len(failed)} of {len(jobs)} jobs failed; the others' results "
                  f"are in {sweep_dir} (summary: {sweep_dir / SUMMARY_FILE})", file=sys.stderr)
            sys.exit(1)
