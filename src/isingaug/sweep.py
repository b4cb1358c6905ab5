"""Sweep-level bookkeeping: stable sweep folders (so a rerun finds its finished jobs) and the
sweep summary that lists every job's outcome, failures included."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from isingaug.io import write_json_atomic
from isingaug.seeding import derived_seed

log = logging.getLogger("isingaug")

ERROR_FILE = "error.json"
SUMMARY_FILE = "sweep_summary.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,+-]+")


def sweep_name(overrides: list[str] | None) -> str:
    """A folder name for the sweep a command line describes: readable and the same every time.

    The overrides, joined and made file-name safe, cut to 80 characters, plus a short hash of the
    exact text, so two different commands never share a folder and one command always finds its
    own.
    """
    items = list(overrides or [])
    text = "_".join(items) or "default"
    readable = _UNSAFE.sub("-", text)[:80].strip("-_") or "sweep"
    return f"{readable}-{derived_seed(0, *items) % 16**8:08x}"


def register_resolvers() -> None:
    """`${isingaug_sweep_name:${hydra.overrides.task}}`, used by conf/hydra/default.yaml."""
    if not OmegaConf.has_resolver("isingaug_sweep_name"):
        OmegaConf.register_new_resolver("isingaug_sweep_name", sweep_name)


def job_outcomes(sweep_dir: Path) -> list[dict[str, Any]]:
    """One entry per job folder (a folder holding .hydra/): finished, failed or unfinished."""
    jobs = []
    for hydra_dir in sorted(sweep_dir.glob("*/.hydra"), key=lambda p: _natural(p.parent.name)):
        job_dir = hydra_dir.parent
        overrides_file = hydra_dir / "overrides.yaml"
        overrides = (list(OmegaConf.load(overrides_file)) if overrides_file.is_file() else [])
        entry: dict[str, Any] = {"dir": job_dir.name, "overrides": overrides}
        if (job_dir / "results.json").is_file():
            entry["status"] = "finished"
        elif (job_dir / ERROR_FILE).is_file():
            error = json.loads((job_dir / ERROR_FILE).read_text())
            entry.update(status="failed", error=f"{error.get('type')}: {error.get('error')}")
        else:
            entry["status"] = "unfinished"
        jobs.append(entry)
    return jobs


def _natural(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (sys.maxsize, name)


class SweepSummary(Callback):
    """Hydra callback: after a multirun, write sweep_summary.json and fail loudly on failures.

    The exit status is 1 when any job failed, after every job has run.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = job_outcomes(sweep_dir)
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
