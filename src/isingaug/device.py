"""One rule for choosing where tensors live, shared by samplers, solvers and generators."""

from __future__ import annotations

import torch

from isingaug.errors import ConfigError

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' means the GPU when one is present, else the CPU; anything else is taken as given."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N; got {name!r}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} was asked for but no CUDA device is available; "
                          "use auto or cpu")
    return device


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    """Map a config string to a floating dtype; the message lists what is allowed."""
    if isinstance(name, torch.dtype):
        return name
    if name not in _DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(_DTYPES)}; got {name!r}")
    return _DTYPES[name]
