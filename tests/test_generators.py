"""Baselines, the augmentation conditions and the energy-variance criterion."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import brute_force, fit_context
from isingaug.augment import augmented_conditions
from isingaug.data.sk import sk_truth
from isingaug.errors import ConfigError
from isingaug.generators.baselines import Bootstrap, NoGenerator, Oracle
from isingaug.generators.callbacks import BEST_CHECKPOINTS, EnergyReference, EnergyVarianceMonitor
from isingaug.generators.rbm import Rbm
from isingaug.ising import IsingParams
from isingaug.metrics.truth_quality import ExactDistribution, exact_kl
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


class _ScriptedTractable(_Scripted):
    """The scripted generator with an exact likelihood: spin 0 is +1 with probability p(s), the
    other spins uniform, so log p(s) = log P(s_0) + (n - 1) log 1/2."""

    tractable = True

    def log_prob(self, spins: torch.Tensor) -> torch.Tensor:
        p = self.plus_fraction[int(self.trained_until)]
        log_p = torch.tensor([math.log(1 - p), math.log(p)], dtype=torch.float64)
        return log_p[(spins[:, 0] > 0).long()] + (self.n - 1) * math.log(0.5)


def _quiet_trainer(steps: int, monitor: EnergyVarianceMonitor) -> pl.Trainer:
    return pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, callbacks=[monitor],
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)


def test_test_loglik_selection_and_both_criteria_on_one_curve(tmp_path):
    # theta_obs: h = (1, 0, 0), so Var[E] = 4 p (1 - p); test: 30 % of s_0 = +1; truth: the same.
    params = IsingParams(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
                         torch.zeros(3, 3, dtype=torch.float64))
    train = torch.ones(100, 3)
    train[:50, 0] = -1.0
    test = -torch.ones(100, 3)
    test[:30, 0] = 1.0
    q = 0.3
    truth = IsingParams(torch.tensor([math.atanh(2 * q - 1), 0.0, 0.0], dtype=torch.float64),
                        torch.zeros(3, 3, dtype=torch.float64))
    curve = {10: 0.9, 20: 0.8, 30: 0.55, 40: 0.3, 50: 0.95}
    monitor = EnergyVarianceMonitor(eval_every=10, eval_samples=100, select="test_loglik",
                                    checkpoint_dir=str(tmp_path))
    monitor.bind(EnergyReference(train, test, params, truth))
    module = _ScriptedTractable(curve)
    _quiet_trainer(50, monitor).fit(module)

    assert [point["step"] for point in monitor.curve] == list(curve)
    for point, p in zip(monitor.curve, curve.values(), strict=True):
        assert point["var_E_gap"] == pytest.approx(abs(4 * p * (1 - p) - 1.0))
        assert point["test_loglik"] == pytest.approx(
            q * math.log(p) + (1 - q) * math.log(1 - p) + 2 * math.log(0.5))
        assert point["kl_exact"] == pytest.approx(
            q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p)), abs=1e-12)
    gaps = {point["step"]: point["var_E_gap"] for point in monitor.curve}
    assert min(gaps, key=gaps.get) == 30  # what select=energy_variance would have chosen
    assert monitor.selected_step == 40  # the highest test log-likelihood
    assert (tmp_path / BEST_CHECKPOINTS["test_loglik"]).exists()
    monitor.restore_selected(module)
    assert int(module.trained_until) == 40


def test_points_of_an_untractable_generator_have_no_likelihood(tmp_path):
    params = IsingParams(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
                         torch.zeros(3, 3, dtype=torch.float64))
    monitor = EnergyVarianceMonitor(eval_every=10, eval_samples=100)
    monitor.bind(EnergyReference(torch.ones(10, 3), -torch.ones(10, 3), params, params))
    _quiet_trainer(20, monitor).fit(_Scripted({10: 0.5, 20: 0.5}))
    assert set(monitor.curve[-1]) == {"step", "var_E_gen/obs", "var_E_gen/true",
                                      "copy_fraction", "var_E_gap"}


def test_test_loglik_selection_needs_test_patterns_and_a_likelihood(tmp_path):
    params = IsingParams.zeros(3)
    monitor = EnergyVarianceMonitor(eval_every=10, select="test_loglik",
                                    checkpoint_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="select=test_loglik needs held-out test patterns"):
        monitor.bind(EnergyReference(torch.ones(10, 3), None, params))
    monitor.bind(EnergyReference(torch.ones(10, 3), torch.ones(10, 3), params))
    with pytest.raises(ConfigError, match="needs a generator with an exact likelihood"):
        _quiet_trainer(20, monitor).fit(_Scripted({10: 0.5, 20: 0.5}))
    with pytest.raises(ConfigError, match="checkpoint_dir is required for select=test_loglik"):
        EnergyVarianceMonitor(eval_every=10, select="test_loglik")
    with pytest.raises(ConfigError, match=r"callbacks\.energy_variance\.exact_max_n"):
        EnergyVarianceMonitor(exact_max_n=30)


def test_monitor_state_resumes_and_reads_old_checkpoints():
    monitor = EnergyVarianceMonitor(eval_every=5, select="energy_variance", checkpoint_dir="x")
    monitor._best_score, monitor.selected_step, monitor.curve = 0.25, 5, [{"step": 5}]
    other = EnergyVarianceMonitor(eval_every=5, select="energy_variance", checkpoint_dir="x")
    other.load_state_dict(monitor.state_dict())
    assert (other._best_score, other.selected_step, other.curve) == (0.25, 5, [{"step": 5}])
    other.load_state_dict({"curve": [], "selected_step": 10, "best_gap": 0.5,
                           "best_path": "p.ckpt"})  # written before select=test_loglik existed
    assert (other._best_score, other.selected_step, other._best_path) == (0.5, 10, "p.ckpt")


def test_rbm_is_restored_to_its_highest_test_loglik_step(tmp_path: Path):
    truth = sk_truth(6, 1.0, 1.0, 0)
    gen = torch.Generator().manual_seed(0)
    train, test = (exact_sample(truth, 300, gen).float() for _ in range(2))
    monitor = EnergyVarianceMonitor(eval_every=10, eval_samples=200, select="test_loglik",
                                    checkpoint_dir=str(tmp_path), seed=1)
    monitor.bind(EnergyReference(train, test, truth, truth))
    rbm = Rbm(hidden=4, k=3, lr=0.05, batch_size=32, gibbs_steps=20, device="cpu")
    rbm.fit(fit_context(train, _quiet_trainer(60, monitor)))
    assert rbm.tractable
    logliks = {point["step"]: point["test_loglik"] for point in monitor.curve}
    assert list(logliks) == [10, 20, 30, 40, 50, 60]
    best = max(logliks, key=logliks.get)
    assert monitor.selected_step == best
    assert float(rbm.log_prob(test).mean()) == pytest.approx(logliks[best], rel=1e-9)
    kl = {point["step"]: point["kl_exact"] for point in monitor.curve}
    assert exact_kl(ExactDistribution.of(truth), rbm.log_prob) == pytest.approx(kl[best],
                                                                               rel=1e-9)
    assert all(value > 0 for value in kl.values())
