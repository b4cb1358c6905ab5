"""Console entry points: thin @hydra.main wrappers over conf/config.yaml (absolute path, so they
work from any working directory and from an installed package).

In a multirun sweep one job's failure must not cost the others: a failing job writes
`error.json` in its folder and the sweep goes on (the sweep summary lists it). A job whose folder
already holds results.json for the same resolved config is skipped, so rerunning a sweep command
finishes only what is missing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from isingaug.config import CONFIG_DIR
from isingaug.errors import ConfigError, IsingaugError, is_int
from isingaug.io import json_text, write_json_atomic
from isingaug.pipeline import run
from isingaug.results import ERROR_FILE, RESULTS_FILE

log = logging.getLogger("isingaug")


def finished(output_dir: Path, cfg: DictConfig) -> bool:
    """True when output_dir holds results.json written for exactly this resolved config."""
    path = output_dir / RESULTS_FILE
    if not path.is_file():
        return False
    try:
        saved = json.loads(path.read_text()).get("config")
    except (OSError, json.JSONDecodeError):
        return False
    return saved == json.loads(json_text(OmegaConf.to_container(cfg, resolve=True)))


def record_error(output_dir: Path, err: BaseException, overrides: list[str]) -> None:
    """Write error.json (the message, its type and traceback, the job's overrides)."""
    (output_dir / RESULTS_FILE).unlink(missing_ok=True)
    write_json_atomic(output_dir / ERROR_FILE, {
        "error": str(err), "type": type(err).__name__, "overrides": overrides,
        "traceback": "".join(traceback.format_exception(err))})


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if multirun and finished(output_dir, cfg):
        log.info("skipped: %s already holds results for this config", output_dir)
        return
    (output_dir / ERROR_FILE).unlink(missing_ok=True)
    try:
        set_threads(cfg.get("threads", "auto"), hydra_cfg)
        run(cfg, output_dir)
    except IsingaugError as err:
        record_error(output_dir, err, overrides)
        log.error("%s", err)
        print(f"isingaug: error: {err}", file=sys.stderr)
        if not multirun:
            sys.exit(2)
        return
    except Exception as err:
        record_error(output_dir, err, overrides)
        if not multirun:
            raise
        log.exception("job failed; the sweep goes on (see %s)", output_dir / ERROR_FILE)
        return
    log.info("results written to %s", output_dir / RESULTS_FILE)


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
    _hydra_main()


def rerun() -> None:
    """`isingaug-rerun RUN_DIR [overrides...]`: run one job again from its own saved config.

    Same config and seed, hence the same numbers; overrides change values (for example a longer
    `trainer.max_steps`). The new run goes to <log_dir>/reruns/<sweep>/<job>/<time stamp>, outside
    the sweep folder, so a report of the sweep does not count it twice.
    """
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print("usage: isingaug-rerun RUN_DIR [key=value ...]", file=sys.stderr)
        sys.exit(2)
    run_dir = Path(sys.argv[1]).resolve()
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        print(f"isingaug-rerun: error: {run_dir} has no .hydra/config.yaml (not a run folder)",
              file=sys.stderr)
        sys.exit(2)
    # Quoted: a sweep job's folder name holds '=' and ',' (its overrides).
    name = f"{run_dir.parent.name}/{run_dir.name}".replace("\\", "\\\\").replace("'", "\\'")
    sys.argv = [sys.argv[0], "--config-path", str(run_dir / ".hydra"), "--config-name", "config",
                f"hydra.run.dir='${{paths.log_dir}}/reruns/{name}/${{now:%Y-%m-%d_%H-%M-%S_%f}}'",
                "hydra.job.chdir=false", *sys.argv[2:]]
    _hydra_main()
