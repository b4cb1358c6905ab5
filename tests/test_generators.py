"""Baselines, the augmentation conditions and the energy-variance criterion."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from conftest import brute_force, fit_context
from isingaug.augment import augmented_conditions
from isingaug.data.sk import sk_truth
from isingaug.errors import ConfigError
from isingaug.generators.baselines import Bootstrap, NoGenerator, Oracle
from isingaug.generators.callbacks import EnergyReference, EnergyVarianceMonitor
from isingaug.ising import IsingParams
from isingaug.sampling import exact_sample


def test_bootstrap_only_resamples_observed_patterns():
    train = exact_sample(sk_truth(7, 1.0, 1.0, 0), 50, torch.Generator().manual_seed(1)).float()
    gen = Bootstrap()
    gen.fit(fit_context(train))
    out = gen.sample(400, torch.Generator().manual_seed(2))
    assert out.shape == (400, 7)
    assert (out[:, None, :] == train[None]).all(-1).any(-1).all()
    assert torch.equal(out, gen.sample(400, torch.Generator().manual_seed(2)))
    assert not torch.equal(out, gen.sample(400, torch.Generator().manual_seed(3)))


def test_oracle_samples_match_exact_marginals():
    truth = sk_truth(8, 1.0, 1.0, 3)
    gen = Oracle(sampler={"kind": "exact"}, device="cpu")
    gen.fit(fit_context(torch.ones(5, 8), truth=truth))
    samples = gen.sample(40000, torch.Generator().manual_seed(0)).double()
    _, mean, second = brute_force(truth)
    assert samples.shape == (40000, 8) and set(samples.unique().tolist()) == {-1.0, 1.0}
    assert torch.allclose(samples.mean(0), mean, atol=0.02)
    assert torch.allclose(samples.T @ samples / 40000, second, atol=0.02)


def test_oracle_by_mcmc_matches_exact_marginals():
    truth = sk_truth(8, 1.0, 1.0, 4)
    gen = Oracle(sampler={"kind": "mcmc", "chains": 500, "burn_in": 200, "thin": 4},
                 device="cpu")
    gen.fit(fit_context(torch.ones(5, 8), truth=truth))
    samples = gen.sample(20000, torch.Generator().manual_seed(0)).double()
    _, mean, _ = brute_force(truth)
    assert torch.allclose(samples.mean(0), mean, atol=0.03)
    assert gen.diagnostics["tau_int_energy"] > 0


def test_oracle_needs_a_truth_and_none_produces_nothing():
    with pytest.raises(ConfigError, match="generator=oracle needs the true parameters"):
        Oracle().fit(fit_context(torch.ones(5, 8), truth=None))
    with pytest.raises(ConfigError, match="generator=none produces no samples"):
        NoGenerator().sample(3)


def test_aug_obs_concatenates_and_weights_the_observed_part():
    train, generated = torch.ones(3, 4), -torch.ones(5, 4)
    plain = augmented_conditions(train, generated, ["aug", "aug_obs"], 1.0)
    assert torch.equal(plain["aug"].spins, generated) and plain["aug"].weights is None
    assert plain["aug_obs"].spins.shape == (8, 4) and plain["aug_obs"].weights is None
    weighted = augmented_conditions(train, generated, ["aug_obs"], 4.0)
    assert list(weighted) == ["aug_obs"]
    assert weighted["aug_obs"].weights.tolist() == [4.0] * 3 + [1.0] * 5


class _Scripted(pl.LightningModule):
    """A 'generator' whose samples at step s are scripted: spin 0 is +1 with probability p(s)."""

    def __init__(self, plus_fraction: dict[int, float], n: int = 3) -> None:
        super().__init__()
        self.plus_fraction = plus_fraction
        self.n = n
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.register_buffer("trained_until", torch.zeros((), dtype=torch.long))

    def training_step(self, batch, batch_idx):
        self.trained_until.fill_(self.global_step + 1)
        return (self.weight**2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(1000, 1), batch_size=1)

    def sample(self, num: int, generator=None) -> torch.Tensor:
        plus = round(self.plus_fraction[int(self.trained_until)] * num)
        out = -torch.ones(num, self.n)
        out[:plus, 0] = 1.0
        return out


def test_energy_variance_callback_picks_the_step_closest_to_the_training_variance(tmp_path):
    # Under h = (1, 0, 0), J = 0 the energy is -s_0, so Var[E] = 4 p (1 - p): 1 for balanced data.
    params = IsingParams(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
                         torch.zeros(3, 3, dtype=torch.float64))
    train = torch.ones(100, 3)
    train[:50, 0] = -1.0
    curve = {10: 1.0, 20: 0.9, 30: 0.55, 40: 0.8, 50: 0.95}
    monitor = EnergyVarianceMonitor(eval_every=10, eval_samples=100, select="energy_variance",
                                    checkpoint_dir=str(tmp_path))
    monitor.bind(EnergyReference(train, None, params))
    module = _Scripted(curve)
    trainer = pl.Trainer(max_steps=50, accelerator="cpu", logger=False, callbacks=[monitor],
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(module)
    steps = [point["step"] for point in monitor.curve]
    assert steps == [10, 20, 30, 40, 50]
    assert monitor.curve[2]["var_E_gen/obs"] == pytest.approx(4 * 0.55 * 0.45)
    assert monitor.curve[0]["copy_fraction"] == 0.0
    assert monitor.selected_step == 30
    monitor.restore_selected(module)
    assert int(module.trained_until) == 30
    assert monitor.summary()["reference"]["var_E_train/obs"] == pytest.approx(1.0)


def test_energy_variance_selection_needs_a_curve():
    with pytest.raises(ConfigError, match="eval_every"):
        EnergyVarianceMonitor(eval_every=None, select="energy_variance")
    with pytest.raises(ConfigError, match=r"callbacks\.energy_variance\.select"):
        EnergyVarianceMonitor(eval_every=5, select="best")
