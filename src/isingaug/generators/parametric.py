"""The parametric bootstrap: fresh samples from the Ising model inferred from the observed data.

It adds nothing beyond the fit, so augmenting with it measures what "augmenting with one's own
model" does: the solver's estimate refitted on its own samples comes back up to sampling noise,
and a generator that beats it adds a useful prior rather than information. The model is the run's
`params_obs` (the run's solver on the observed data) unless `solver` names another one, fitted on
the training patterns here. Samples come from the same samplers as the data and the oracle
(exact by enumeration for small n, MCMC above), and `log_prob` is exact by enumeration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from isingaug.config import build
from isingaug.device import resolve_device
from isingaug.errors import ConfigError, is_int
from isingaug.generators.base import FitContext, check_sample_count, fitted
from isingaug.ising import IsingParams, log_likelihood, log_partition
from isingaug.sampling import draw_samples, resolve_sampler
from isingaug.solvers.base import Solver


def coupling_scale(params: IsingParams) -> float:
    """The coupling strength g of an SK-like model (std of J times sqrt(n)), for the PT rule."""
    couplings = params.couplings_upper()
    return float(couplings.std() * params.n ** 0.5) if couplings.numel() > 1 else 0.0


def ising_samples(params: IsingParams, num: int, sampler: Mapping[str, Any], device: str,
                  rng: torch.Generator | None, owner: str = "generator"
                  ) -> tuple[Tensor, dict[str, Any]]:
    """`num` patterns (CPU float32) of exp(-E)/Z by a `sampler` config (the keys of
    dataset.sampler), with the sampler's diagnostics; the seed is one draw from `rng`."""
    target = resolve_device(device)
    if num == 0:
        return torch.empty(0, params.n), {}
    spec = resolve_sampler(dict(sampler), params.n, coupling_scale(params), owner)
    seed = int(torch.randint(0, 2**62, (1,), generator=rng))
    samples, diagnostics = draw_samples(params.to(target), num, spec,
                                        torch.Generator(device=target).manual_seed(seed))
    return samples.to(device="cpu", dtype=torch.float32), diagnostics


class Parametric:
    """`generator=parametric`: samples from the model inferred from the observed patterns.

    `solver`: null = the run's params_obs; else a Solver (a config node with `_target_`, which
    Hydra builds, e.g. `+solver@generator.solver=mle`) fitted on the training patterns.
    `sampler`: the keys of dataset.sampler. `max_enumeration_n`: log_prob enumerates the 2^n
    states up to this n (a ConfigError above, and `tractable` is False).
    """

    name = "parametric"
    produces_samples = True
    trainable = False

    def __init__(self, solver: Solver | Mapping[str, Any] | None = None,
                 sampler: Mapping[str, Any] | None = None, max_enumeration_n: int = 20,
                 device: str = "auto") -> None:
        if isinstance(solver, (Mapping, DictConfig)):
            if "_target_" not in solver:
                raise ConfigError("generator.solver must be null (the run's solver) or a solver "
                                  "config with _target_, e.g. +solver@generator.solver=mle; got "
                                  f"{dict(solver)!r}")
            solver = build(DictConfig(dict(solver)) if not isinstance(solver, DictConfig)
                           else solver, "generator.solver")
        if solver is not None and not isinstance(solver, Solver):
            raise ConfigError("generator.solver must be null (the run's solver) or a solver "
                              f"config with _target_; got {solver!r}")
        if not is_int(max_enumeration_n) or max_enumeration_n < 2:
            raise ConfigError(f"generator.max_enumeration_n must be an integer >= 2; "
                              f"got {max_enumeration_n!r}")
        self.solver = solver
        self.sampler = dict(sampler or {})
        self.max_enumeration_n = int(max_enumeration_n)
        self.device = device
        self.params: IsingParams | None = None
        self.diagnostics: dict[str, Any] = {}
        self._log_z: Tensor | None = None

    @property
    def tractable(self) -> bool:
        """log_prob is exact once fitted, for n <= max_enumeration_n (as the RBM's, False before
        fit(): the size is not known)."""
        return self.params is not None and self.params.n <= self.max_enumeration_n

    def fit(self, context: FitContext) -> None:
        """Take params_obs, or fit the configured solver on the training patterns."""
        self._log_z = None
        if self.solver is None:
            if context.params_obs is None:
                raise ConfigError("generator=parametric with generator.solver=null samples the "
                                  "run's inferred parameters, which this context does not have")
            self.params = context.params_obs
            self.diagnostics = {"source": "params_obs"}
            return
        self.params = self.solver.fit(context.train)
        self.diagnostics = {"source": self.solver.name,
                            "solver": dict(self.solver.diagnostics)}

    def sample(self, num: int, rng: torch.Generator | None = None) -> Tensor:
        check_sample_count(num)
        fitted(self.params, self.name)
        samples, sampling = ising_samples(self.params, int(num), self.sampler, self.device, rng)
        self.diagnostics["sampling"] = sampling
        return samples

    def log_prob(self, spins: Tensor) -> Tensor:
        """Exact log P(s) in nats under the fitted model, (M,) float64 on the CPU."""
        fitted(self.params, self.name)
        n = self.params.n
        if n > self.max_enumeration_n:
            raise ConfigError(f"generator=parametric: log_prob enumerates 2^n states and n={n} "
                              f"is above generator.max_enumeration_n={self.max_enumeration_n}; "
                              "raise it knowingly (2^n work) or do without log_prob")
        if self._log_z is None:
            self._log_z = log_partition(self.params, max_n=self.max_enumeration_n)
        spins = torch.as_tensor(spins).to(device=self.params.device, dtype=self.params.dtype)
        return log_likelihood(self.params, spins, self._log_z).to(device="cpu",
                                                                  dtype=torch.float64)
