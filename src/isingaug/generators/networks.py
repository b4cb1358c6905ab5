"""Building blocks shared by the neural generators (diffusion, vae): seeded initialisation and
layer-width options."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from isingaug.errors import is_int, option_error
from isingaug.seeding import stream


def seeded_module(factory: Callable[[], nn.Module], seed: int, *keys: object) -> nn.Module:
    """Build a network whose initial weights come from stream(seed, *keys), on the CPU.

    The module is created on the meta device (so the global RNG is neither used nor advanced) and
    every Linear layer then gets PyTorch's default initialisation from the seeded stream: the same
    seed gives the same network on every device.
    """
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device="cpu")
    rng = stream(seed, *keys)
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=rng)
            if layer.bias is not None:
                bound = 1.0 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0.0
                nn.init.uniform_(layer.bias, -bound, bound, generator=rng)
        elif any(True for _ in layer.parameters(recurse=False)):
            raise TypeError(f"seeded_module cannot initialise {type(layer).__name__} layers")
    return module


def widths_option(key: str, value: Any) -> list[int]:
    """A non-empty list of layer widths >= 1 (lists or Hydra ListConfigs), else a ConfigError."""
    ok = (isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
          and all(is_int(w) and int(w) >= 1 for w in value))
    if not ok:
        raise option_error(key, "a non-empty list of integers >= 1", value)
    return [int(w) for w in value]
