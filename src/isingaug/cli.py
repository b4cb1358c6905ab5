"""Console entry point: a thin @hydra.main over conf/config.yaml (absolute path, so it works
from any working directory and from an installed package)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from isingaug.config import CONFIG_DIR
from isingaug.errors import IsingaugError
from isingaug.pipeline import run

log = logging.getLogger("isingaug")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        run(cfg, output_dir)
    except IsingaugError as err:
        log.error("%s", err)
        print(f"isingaug: error: {err}", file=sys.stderr)
        sys.exit(2)
    log.info("results written to %s", output_dir / "results.json")


def main() -> None:
    """`isingaug [overrides...]` and `python -m isingaug`."""
    _hydra_main()
