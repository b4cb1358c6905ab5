"""Shared fixtures: no network, no writes outside tmp, small models with exact answers."""

from __future__ import annotations

import itertools

import pytest
import torch

from isingaug.ising import IsingParams, energy


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """wandb disabled and every output or cache folder under the test's tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.setenv("ISINGAUG_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("ISINGAUG_CACHE_DIR", str(tmp_path / "cache"))


def random_model(n: int, g: float = 1.0, seed: int = 0) -> IsingParams:
    """An SK-like model with fields and couplings of scale g/sqrt(n)."""
    gen = torch.Generator().manual_seed(seed)
    J = torch.randn(n, n, generator=gen, dtype=torch.float64) * g / n**0.5
    upper = torch.triu(J, 1)
    h = torch.randn(n, generator=gen, dtype=torch.float64) * g / n**0.5
    return IsingParams(h, upper + upper.T)


def all_states(n: int) -> torch.Tensor:
    """Every +-1 state, by itertools (independent of the library's enumeration)."""
    return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=n)), dtype=torch.float64)


def brute_force(params: IsingParams):
    """log Z, <s>, <s s^T> by direct summation over itertools states."""
    states = all_states(params.n)
    log_w = -energy(params, states)
    log_z = torch.logsumexp(log_w, 0)
    p = torch.exp(log_w - log_z)
    return log_z, p @ states, states.T @ (p[:, None] * states)


def fit_context(train: torch.Tensor, trainer=None, *, truth: IsingParams | None = None,
                test: torch.Tensor | None = None, params_obs: IsingParams | None = None,
                resume_from: str | None = None, seed: int = 0):
    """A generator's FitContext for unit tests: `trainer` (a ready Trainer) for learned ones."""
    from isingaug.generators.base import FitContext
    from isingaug.training import TrainingSession

    training = None if trainer is None else TrainingSession(lambda _steps: trainer, resume_from)
    return FitContext(train=train, test=test, truth=truth, params_obs=params_obs, solver=None,
                      seed=seed, training=training)


def make_trainer(steps: int):
    """A bare Lightning Trainer for unit tests of generators: no logger, checkpoints or bar."""
    import pytorch_lightning as pl

    return pl.Trainer(max_steps=steps, accelerator="cpu", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny nets gain nothing from a second thread, and on a shared 2-core machine two OpenMP
    threads that wait on each other made the suite 5-10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
