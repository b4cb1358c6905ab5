"""Where the Hydra configs live and how they are composed outside the CLI (tests, notebooks)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

_PACKAGE_DIR = Path(__file__).resolve().parent
#: `conf/` at the repository root in a checkout; the copy packed into the wheel otherwise.
CONFIG_DIR = next(
    (path for path in (_PACKAGE_DIR.parents[1] / "conf", _PACKAGE_DIR / "conf") if path.is_dir()),
    _PACKAGE_DIR.parents[1] / "conf",
)


def compose_config(overrides: list[str] | None = None, config_name: str = "config",
                   return_hydra_config: bool = False) -> DictConfig:
    """Compose the run config with command-line style overrides, as the CLI would."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides or [],
                       return_hydra_config=return_hydra_config)
