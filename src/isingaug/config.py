"""Where the Hydra configs live, how they are composed outside the CLI (tests, notebooks), and
how a config node becomes an object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from isingaug.errors import ConfigError, IsingaugError
from isingaug.sweep import register_resolvers

_PACKAGE_DIR = Path(__file__).resolve().parent
#: `conf/` at the repository root in a checkout; the copy packed into the wheel otherwise.
CONFIG_DIR = next(
    (path for path in (_PACKAGE_DIR.parents[1] / "conf", _PACKAGE_DIR / "conf") if path.is_dir()),
    _PACKAGE_DIR.parents[1] / "conf",
)


register_resolvers()


def compose_config(overrides: list[str] | None = None, config_name: str = "config",
                   return_hydra_config: bool = False) -> DictConfig:
    """Compose the run config with command-line style overrides, as the CLI would."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides or [],
                       return_hydra_config=return_hydra_config)


def build(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """instantiate() a config node, surfacing our own errors instead of Hydra's wrapper.

    `key` names the node in messages (e.g. `solver`); `kwargs` are passed to the target.
    """
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except MissingMandatoryValue as err:
        raise ConfigError(f"{err.full_key} is required: set it on the command line, "
                          f"e.g. {err.full_key}=...") from None
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, IsingaugError):
            raise cause from None
        raise ConfigError(f"{key}: {err}") from err
