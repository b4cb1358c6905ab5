"""Run loggers: CSV always, wandb when the `logger` group asks for it (offline by default)."""

from __future__ import annotations

import os
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger


def make_loggers(logger_cfg: DictConfig | None, run_name: str, group: str,
                 job_type: str) -> list[Logger]:
    """Instantiate every logger node that has a `_target_`; wandb gets the run's identity."""
    loggers: list[Logger] = []
    for key, node in (logger_cfg or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        extra: dict[str, Any] = {}
        if key == "wandb":
            if os.environ.get("WANDB_MODE") == "disabled" or node.get("mode") == "disabled":
                continue
            extra = {"name": node.get("name") or run_name, "group": node.get("group") or group,
                     "job_type": node.get("job_type") or job_type}
        loggers.append(instantiate(node, **extra))
    return loggers


def log_run(loggers: list[Logger], config: DictConfig, metrics: dict[str, float],
            step: int = 0) -> None:
    """Log the full resolved config and the final metrics (at `step`, the generator's last
    training step, so wandb's monotonic step is kept), then close every logger."""
    flat_config = OmegaConf.to_container(config, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(flat_config)
        logger.log_metrics(metrics, step=step)
        logger.finalize("success")


def close_wandb() -> None:
    """End a wandb run if one is open, so the next job of a sweep starts its own."""
    try:
        import wandb
    except ImportError:  # pragma: no cover - wandb is a hard dependency
        return
    if wandb.run is not None:
        wandb.finish()
