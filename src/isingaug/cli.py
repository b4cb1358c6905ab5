"""Console entry points: thin @hydra.main wrappers over conf/config.yaml (absolute path, so they
work from any working directory and from an installed package).

In a multirun sweep one job's failure must not cost the others: a failing job writes
`error.json` in its folder and the sweep goes on (the sweep summary lists it). A job whose folder
already holds results.json for the same resolved config is skipped, so rerunning a sweep command
finishes only what is missing; a job killed while training its generator continues from its own
`checkpoints/last.ckpt` (`resume_point`). One process runs a job folder at a time (a file lock),
so two sweeps over the same folder share its jobs instead of writing them twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict

from isingaug import progress
from isingaug.config import CONFIG_DIR
from isingaug.errors import ConfigError, IsingaugError, is_int
from isingaug.io import json_text, write_json_atomic
from isingaug.loggers import tune_objective
from isingaug.pipeline import run
from isingaug.results import ERROR_FILE, RESULTS_FILE
from isingaug.sweep import job_lock

log = logging.getLogger("isingaug")

#: Config keys that do not change a run's numbers: how progress is shown, the checkpoint a run
#: continued from (resuming gives the numbers of an uninterrupted run), the report's figures, the
#: study's smoke-size sweep and the number of tuning trials.
NOT_RESULTS = ("resume_from", "callbacks.progress", "report", "smoke_sweep", "tune.n_trials")
#: Written beside the checkpoints: the digest of the config they were trained with.
JOB_RECORD = "job.json"
LAST_CHECKPOINT = "last.ckpt"


def run_identity(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved config (as JSON would hold it) without the NOT_RESULTS keys."""
    config = json.loads(json_text(config))
    for dotted in NOT_RESULTS:
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return config


def config_digest(cfg: DictConfig) -> str:
    """A digest of everything in the resolved config that determines the run's numbers."""
    identity = run_identity(OmegaConf.to_container(cfg, resolve=True))
    return hashlib.sha256(json_text(identity).encode()).hexdigest()[:20]


def finished(output_dir: Path, cfg: DictConfig) -> bool:
    """True when output_dir holds results.json written for this resolved config (progress
    settings and `resume_from` aside)."""
    path = output_dir / RESULTS_FILE
    if not path.is_file():
        return False
    try:
        saved = json.loads(path.read_text()).get("config")
    except (OSError, json.JSONDecodeError):
        return False
    return (isinstance(saved, dict) and run_identity(saved)
            == run_identity(OmegaConf.to_container(cfg, resolve=True)))


def record_error(output_dir: Path, err: BaseException, overrides: list[str]) -> None:
    """Write error.json (the message, its type and traceback, the job's overrides)."""
    (output_dir / RESULTS_FILE).unlink(missing_ok=True)
    write_json_atomic(output_dir / ERROR_FILE, {
        "error": str(err), "type": type(err).__name__, "overrides": overrides,
        "traceback": "".join(traceback.format_exception(err))})


def trains_generator(cfg: DictConfig) -> bool:
    """Whether the configured generator is a trained one (it has checkpoints)."""
    target = OmegaConf.select(cfg, "generator._target_", default=None)
    if not target:
        return False
    try:
        return bool(getattr(get_class(str(target)), "trainable", False))
    except Exception:  # a bad target is reported by the pipeline, with its own message
        return False


def checkpoint_dir(cfg: DictConfig, output_dir: Path) -> Path:
    """The folder of the run's periodic checkpoints (callbacks.model_checkpoint.dirpath)."""
    path = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    return Path(str(path)) if path else output_dir / "checkpoints"


def _saved_digest(record: Path) -> str | None:
    try:
        return json.loads(record.read_text()).get("config_digest")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def _checkpoint_step(path: Path) -> int | None:
    """The step a checkpoint was saved at, None when it cannot be read."""
    from isingaug.generators.learned import load_checkpoint

    try:
        return int(load_checkpoint(path).get("global_step", 0))
    except (ConfigError, TypeError, ValueError):
        return None


def resume_point(cfg: DictConfig, output_dir: Path) -> str | None:
    """The checkpoint this run's generator continues from: the one decision of resuming.

    `resume_from` when set. Otherwise, for a trained generator, the run folder's own
    `checkpoints/last.ckpt` when it was written for this very config (the digest in
    checkpoints/job.json; progress settings aside): a job killed at any moment and started
    again by the same command continues where its last save left it, with the numbers of an
    uninterrupted run. Checkpoints left there by another config are removed, so a later
    restart never continues from them, and the folder is claimed for this config.
    """
    explicit = cfg.get("resume_from")
    if not trains_generator(cfg):
        return explicit
    folder = checkpoint_dir(cfg, output_dir)
    record = folder / JOB_RECORD
    digest = config_digest(cfg)
    last = folder / LAST_CHECKPOINT
    if not explicit and last.is_file() and _saved_digest(record) == digest:
        step = _checkpoint_step(last)
        if step is not None:
            log.info("resuming %s from its last checkpoint %s (step %d)", output_dir, last, step)
            return str(last)
        log.warning("%s cannot be read (cut off while written?); training from the start", last)
    if not explicit and folder.is_dir():
        stale = sorted(folder.glob("*.ckpt"))
        if stale:
            log.info("removing %d checkpoint(s) of another config from %s: %s", len(stale),
                     folder, ", ".join(p.name for p in stale))
            for path in stale:
                path.unlink(missing_ok=True)
    write_json_atomic(record, {"config_digest": digest, "written": time.time()})
    return explicit


def configure_progress(cfg: DictConfig) -> None:
    """Progress of the data sampler, solvers and generation as callbacks.progress says."""
    node = OmegaConf.select(cfg, "callbacks.progress", default=None)
    if isinstance(node, DictConfig):
        progress.configure(node.get("mode", "auto"), node.get("log_every_s", 30.0))


def _job_overrides(hydra_cfg: Any, output_dir: Path) -> list[str]:
    """The job's overrides; a job rerun in place (no .hydra of its own) keeps its sweep's."""
    saved = output_dir / ".hydra" / "overrides.yaml"
    if hydra_cfg.output_subdir is None and saved.is_file():
        return [str(item) for item in OmegaConf.load(saved)]
    return list(hydra_cfg.overrides.task)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> float | None:
    """One job; returns its `tune.objective` value (what hydra/sweeper=optuna optimises; None
    outside a tuning preset and for a failed or skipped job)."""
    progress.quiet_lightning()
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = _job_overrides(hydra_cfg, output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    with job_lock(output_dir) as held:
        if not held:
            message = f"{output_dir} is being run by another process"
            if multirun:
                log.warning("skipped: %s", message)
                return None
            print(f"isingaug: error: {message}; wait for it to end", file=sys.stderr)
            sys.exit(2)
        if multirun and finished(output_dir, cfg):
            log.info("skipped: %s already holds results for this config", output_dir)
            return tune_objective(cfg, json.loads((output_dir / RESULTS_FILE).read_text())
                                  ["metrics"])
        (output_dir / ERROR_FILE).unlink(missing_ok=True)
        try:
            configure_progress(cfg)
            set_threads(cfg.get("threads", "auto"), hydra_cfg)
            resume = resume_point(cfg, output_dir)
            if resume != cfg.get("resume_from"):
                with open_dict(cfg):
                    cfg.resume_from = resume
            objective = tune_objective(cfg, run(cfg, output_dir)["metrics"])
        except IsingaugError as err:
            record_error(output_dir, err, overrides)
            log.error("%s", err)
            print(f"isingaug: error: {err}", file=sys.stderr)
            if not multirun:
                sys.exit(2)
            return None
        except Exception as err:
            record_error(output_dir, err, overrides)
            if not multirun:
                raise
            log.exception("job failed; the sweep goes on (see %s)", output_dir / ERROR_FILE)
            return None
    log.info("results written to %s", output_dir / RESULTS_FILE)
    return objective


def set_threads(threads: Any, hydra_cfg: Any) -> None:
    """torch's CPU threads: `threads` if an integer; with `auto`, the cores shared out among the
    jobs a local parallel launcher runs at once (oversubscribed cores made a diffusion training
    step 25x slower in our measurement), else torch's own default."""
    if threads == "auto":
        n_jobs = OmegaConf.select(hydra_cfg, "launcher.n_jobs", default=None)
        if not isinstance(n_jobs, int) or n_jobs == 1:
            return
        cores = os.cpu_count() or 1
        jobs = cores if n_jobs < 0 else min(n_jobs, cores)
        threads = max(1, cores // jobs)
    if not is_int(threads) or int(threads) < 1:
        raise ConfigError(f"threads must be auto or an integer >= 1; got {threads!r}")
    torch.set_num_threads(int(threads))


def main() -> None:
    """`isingaug [overrides...]` and `python -m isingaug`."""
    progress.quiet_lightning()
    _hydra_main()


def _quoted(text: str) -> str:
    """A value for Hydra's override grammar, single-quoted (older job folders hold '=', ',')."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def rerun() -> None:
    """`isingaug-rerun RUN_DIR [overrides...]`: run one job again from its own saved config.

    An unfinished job (no results.json: killed, or failed) given no overrides runs again in its
    own folder, continuing from its last checkpoint when it has one, so its sweep is complete
    afterwards. Otherwise the job runs again with the same config and seed, hence the same
    numbers, and overrides change values (for example a longer `trainer.max_steps`); that run
    goes to <log_dir>/reruns/<sweep>/<job>/<time stamp>, outside the sweep folder, so a report
    of the sweep does not count it twice.
    """
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print("usage: isingaug-rerun RUN_DIR [key=value ...]", file=sys.stderr)
        sys.exit(2)
    run_dir = Path(sys.argv[1]).resolve()
    extra = sys.argv[2:]
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        print(f"isingaug-rerun: error: {run_dir} has no .hydra/config.yaml (not a run folder)",
              file=sys.stderr)
        sys.exit(2)
    if not (run_dir / RESULTS_FILE).is_file() and not extra:
        print(f"isingaug-rerun: {run_dir} is unfinished: running it again in its own folder",
              file=sys.stderr)
        target = [f"hydra.run.dir={_quoted(str(run_dir))}", "hydra.output_subdir=null"]
    else:
        name = _quoted(f"{run_dir.parent.name}/{run_dir.name}")[1:-1]
        target = [f"hydra.run.dir='${{paths.log_dir}}/reruns/{name}/"
                  "${now:%Y-%m-%d_%H-%M-%S_%f}'"]
    sys.argv = [sys.argv[0], "--config-path", str(run_dir / ".hydra"), "--config-name", "config",
                *target, "hydra.job.chdir=false", *extra]
    progress.quiet_lightning()
    _hydra_main()
