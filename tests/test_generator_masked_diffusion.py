"""The masked (absorbing) diffusion generator: schedules and ELBO weights in closed form, the ELBO
and the samplers against an exact predictor of a 3-spin Ising model, learning, exact resume."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from conftest import all_states, fit_context, make_trainer
from isingaug.config import compose_config
from isingaug.errors import ConfigError
from isingaug.generators.base import Generator
from isingaug.generators.masked_diffusion import (
    MaskedDiffusion,
    alpha,
    elbo_weight,
    time_of_alpha,
)
from isingaug.ising import IsingParams, energy
from isingaug.pipeline import run

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings(
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*LeafSpec.*is deprecated",
)]


# ---- schedule ----------------------------------------------------------------------------------

def test_schedules_in_closed_form():
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(alpha(t, "linear"), 1 - t)
    torch.testing.assert_close(alpha(t, "cosine"),
                               torch.tensor([1.0, 1 - math.cos(3 * math.pi / 8),
                                             1 - math.cos(math.pi / 4), 0.0],
                                            dtype=torch.float64))
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    torch.testing.assert_close(elbo_weight(t, "linear"), 1 / t)
    torch.testing.assert_close(elbo_weight(t, "cosine"),
                               math.pi / 2 * torch.cos(math.pi * t / 2)
                               / torch.sin(math.pi * t / 2))
    for schedule in ("linear", "cosine"):
        # w = -alpha'/(1 - alpha) with alpha' by autograd, and time_of_alpha inverts alpha
        tt = t.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(alpha(tt, schedule).sum(), tt)
        torch.testing.assert_close(elbo_weight(t, schedule), -grad / (1 - alpha(t, schedule)))
        torch.testing.assert_close(time_of_alpha(alpha(t, schedule), schedule), t)
        # the ELBO weight behaves as 1/t at small t for both
        assert abs(float(elbo_weight(torch.tensor(1e-4), schedule)) * 1e-4 - 1) < 1e-3


def test_low_discrepancy_times_are_stratified():
    gen = MaskedDiffusion(t_min=0.1, device="cpu")
    t = gen.draw_times(8, torch.Generator().manual_seed(0))
    u = (t - 0.1) / 0.9
    # one point in each eighth of [0, 1)
    assert sorted((u * 8).floor().long().tolist()) == list(range(8))
    assert float(t.min()) >= 0.1 and float(t.max()) < 1.0
    plain = MaskedDiffusion(low_discrepancy=False, device="cpu")
    assert not torch.equal(plain.draw_times(8, torch.Generator().manual_seed(0)), t)
    # masked counts: every k in 1..n equally often over a batch of a multiple of n
    for stratified in (True, False):
        gen = MaskedDiffusion(low_discrepancy=stratified, device="cpu")
        gen.n = 5
        k = gen.draw_counts(10_000 if not stratified else 20, torch.Generator().manual_seed(0))
        counts = torch.bincount(k, minlength=6)
        assert int(counts[0]) == 0 and int(k.max()) == 5
        if stratified:
            assert counts[1:].tolist() == [4] * 5
        else:
            assert float((counts[1:] / 10_000 - 0.2).abs().max()) < 0.02


# ---- an exact predictor of a 3-spin model ------------------------------------------------------

THREE = IsingParams(torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64),
                    torch.tensor([[0.0, 0.9, -0.7], [0.9, 0.0, 0.6], [-0.7, 0.6, 0.0]],
                                 dtype=torch.float64))


class ExactPredictor(MaskedDiffusion):
    """Predicts each masked spin's exact marginal given the unmasked ones: a table over the 3^n
    partially masked patterns, filled by enumeration of the 2^n states."""

    def __init__(self, params: IsingParams, **options) -> None:
        super().__init__(hidden_widths=[4], device="cpu", **options)
        n = params.n
        self.n = n
        self.build(n)
        self.states = all_states(n)
        log_w = -energy(params, self.states)
        self.p = torch.exp(log_w - torch.logsumexp(log_w, 0))
        self.powers = 3 ** torch.arange(n)
        # context c_i = 0 (masked), 1 (s_i = -1), 2 (s_i = +1); code = sum_i c_i 3^i
        contexts = torch.tensor(list(itertools.product([0, 1, 2], repeat=n)))
        coded = 1.5 + 0.5 * self.states  # each state's own context code
        agree = (contexts[:, None, :] == 0) | (contexts[:, None, :] == coded[None])
        w = agree.all(2).double() * self.p  # the states consistent with each context
        up = (w @ (self.states == 1).double()) / w.sum(1, keepdim=True)
        up = up.clamp(1e-12, 1 - 1e-12)
        self.table = torch.zeros(3**n, n)
        self.table[(contexts * self.powers).sum(1)] = (up.log() - (-up).log1p()).float()

    def predict(self, x, masked, t):
        context = torch.where(masked, 0, torch.where(x > 0, 2, 1))
        return self.table[(context * self.powers).sum(1)]


def state_counts(samples: torch.Tensor) -> torch.Tensor:
    """Counts of the 8 states in the order of all_states."""
    index = ((samples.double() + 1) / 2 * torch.tensor([4.0, 2.0, 1.0])).sum(1).long()
    return torch.bincount(index, minlength=8).double()


def chi2(counts: torch.Tensor, p: torch.Tensor) -> float:
    num = float(counts.sum())
    return float(((counts - num * p) ** 2 / (num * p)).sum())


@pytest.mark.parametrize(("estimator", "schedule"), [("time", "linear"), ("time", "cosine"),
                                                     ("count", "linear"), ("count", "cosine")])
def test_elbo_of_the_exact_conditionals_is_the_log_likelihood(estimator, schedule):
    """With the true conditionals the continuous-time NELBO is tight: -log p(x) for every x,
    whichever schedule weighs it and whether t is drawn or integrated out. Checked to 5
    standard errors of the one-draw estimates (heavy-tailed for `time`: weights up to 1/t_min),
    plus the part of the t integral below t_min (< t_min * 3 * 10 nats)."""
    model = ExactPredictor(THREE, estimator=estimator, schedule=schedule, t_min=1e-4)
    rng = torch.Generator().manual_seed(0)
    draws = 40_000
    for x, log_p in zip(model.states.float(), model.p.log(), strict=True):
        terms = model.nelbo_terms(x.expand(draws, 3), rng, rng).double()
        error = abs(float(terms.mean() + log_p))
        assert error < 5 * float(terms.std()) / draws**0.5 + 3e-3, (x, error)
    # the public estimate, with the low-variance estimator: within 0.02 nats (0.005 measured)
    if estimator == "count":
        nelbo = model.negative_elbo(model.states.float(), rng, draws=20_000)
        torch.testing.assert_close(nelbo, -model.p.log(), atol=0.02, rtol=0)


@pytest.mark.parametrize(("options", "num"), [({"sampling_steps": None}, 100_000),
                                             ({"sampling_steps": 250}, 40_000),
                                             ({"sampling_steps": 250, "schedule": "cosine"},
                                              40_000)])
def test_samplers_reproduce_the_exact_distribution(options, num):
    """Random-order unmasking is exact; MDLM's reverse process is exact as S grows (at S = 100
    its simultaneous unmasking shows: chi2 22-41 with 100,000 samples)."""
    model = ExactPredictor(THREE, **options)
    samples = model.sample(num, torch.Generator().manual_seed(1))
    assert samples.shape == (num, 3) and set(samples.unique().tolist()) == {-1.0, 1.0}
    counts = state_counts(samples)
    # 7 degrees of freedom: P(chi2 > 30) ~ 1e-4
    assert chi2(counts, model.p) < 30, (counts / num, model.p)


def test_one_reverse_step_draws_every_spin_independently():
    """S = 1 unmasks all spins at once from the all-masked prediction: the product of the exact
    marginals, not the joint (a check that the reverse step reveals what it is told to)."""
    model = ExactPredictor(THREE, sampling_steps=1)
    counts = state_counts(model.sample(100_000, torch.Generator().manual_seed(2)))
    up = (model.p @ (model.states == 1).double())
    product = torch.where(model.states == 1, up, 1 - up).prod(1)
    assert chi2(counts, product) < 30
    assert 0.5 * float((product - model.p).abs().sum()) > 0.1  # far from the joint


# ---- the learned generator ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny() -> torch.Tensor:
    """5 spins: independent magnetisations, except that spin 1 copies spin 0."""
    probs = torch.tensor([0.8, 0.5, 0.3, 0.9, 0.15])
    data = torch.where(torch.rand(2000, 5, generator=torch.Generator().manual_seed(0)) < probs,
                       1.0, -1.0)
    data[:, 1] = data[:, 0]
    return data


def small(**options) -> MaskedDiffusion:
    return MaskedDiffusion(**{"hidden_widths": [64, 64], "batch_size": 256, "lr": 3e-3,
                              "weight_decay": 0.0, "device": "cpu", **options})


@pytest.mark.parametrize("options", [{}, {"time_conditioning": True, "schedule": "cosine",
                                          "estimator": "time", "direct": True}])
def test_training_reproduces_magnetisations_and_the_copied_spin(options, tiny):
    untrained = small(**options)
    untrained.fit(fit_context(tiny, make_trainer(1)))
    gen = small(**options)
    assert isinstance(gen, Generator) and gen.trainable and not gen.tractable
    gen.fit(fit_context(tiny, make_trainer(300)))
    target = tiny.mean(0)
    before = untrained.sample(4000, torch.Generator().manual_seed(1))
    after = gen.sample(4000, torch.Generator().manual_seed(1))
    # the output biases start at the data's log-odds, so only the pair is left to learn:
    # independent spins give <s0 s1> = m0 m1 = 0.37
    assert float((before[:, 0] * before[:, 1]).mean()) < 0.6
    assert float((after[:, 0] * after[:, 1]).mean()) > 0.95
    # 4000 samples: std of a magnetisation <= 0.016 (0.02-0.05 off measured after 300 steps)
    assert float((after.mean(0) - target).abs().max()) < 0.08, (after.mean(0), target)
    # the NELBO falls from the independent-spin model's cross-entropy (2.36 nats) to near the
    # data's entropy (1.86 nats: spin 1 adds nothing)
    rng = torch.Generator().manual_seed(0)
    before_nelbo = float(untrained.negative_elbo(tiny[:500], rng).mean())
    after_nelbo = float(gen.negative_elbo(tiny[:500], rng).mean())
    assert before_nelbo > 2.2 and after_nelbo < 1.95, (before_nelbo, after_nelbo)


def test_samples_are_seeded_and_batched(tiny):
    gen = small(seed=3, sampling_steps=7)
    gen.fit(fit_context(tiny, make_trainer(3)))
    first = gen.sample(60, torch.Generator().manual_seed(0))
    assert first.dtype == torch.float32 and first.device.type == "cpu"
    assert torch.equal(first, gen.sample(60, torch.Generator().manual_seed(0)))
    assert not torch.equal(first, gen.sample(60, torch.Generator().manual_seed(1)))
    gen.sample_batch_size = 16
    assert gen.sample(60).shape == (60, 5) and gen.sample(0).shape == (0, 5)


def test_resume_from_checkpoint_is_exact(tiny, tmp_path):
    straight = small(seed=2, weight_decay=0.01)
    straight.fit(fit_context(tiny, make_trainer(6)))
    first = small(seed=2, weight_decay=0.01)
    trainer = make_trainer(3)
    first.fit(fit_context(tiny, trainer))
    path = tmp_path / "half.ckpt"
    trainer.save_checkpoint(path)
    resumed = small(seed=2, weight_decay=0.01)
    resumed_trainer = make_trainer(6)
    resumed.fit(fit_context(tiny, resumed_trainer, resume_from=str(path)))
    assert resumed_trainer.global_step == 6
    expected, got = straight.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert torch.equal(straight.sample(20, torch.Generator().manual_seed(0)),
                       resumed.sample(20, torch.Generator().manual_seed(0)))


def test_training_ignores_the_global_rng(tiny):
    states = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        gen = small(seed=5)
        gen.fit(fit_context(tiny, make_trainer(2)))
        states.append(gen.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


BAD = [("hidden_widths", []), ("hidden_widths", [0]), ("activation", "swish"),
       ("direct", 1), ("time_conditioning", 1), ("time_dim", 7), ("schedule", "geometric"),
       ("estimator", "exact"), ("t_min", 0.0),
       ("t_min", 1.0), ("low_discrepancy", "yes"), ("sampling_steps", 0),
       ("sampling_steps", 2.5), ("lr", -1.0), ("weight_decay", -0.1), ("max_steps", 0),
       ("sample_batch_size", 0)]


@pytest.mark.parametrize(("key", "value"), BAD)
def test_invalid_config_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"generator\\.{key}"):
        MaskedDiffusion(**{key: value}, device="cpu")


def test_misuse_is_a_config_error(tiny):
    gen = small()
    with pytest.raises(ConfigError, match="must be fitted"):
        gen.sample(3)
    with pytest.raises(ConfigError, match="must be fitted"):
        gen.negative_elbo(tiny, torch.Generator())
    with pytest.raises(ConfigError, match="needs a training session"):
        gen.fit(fit_context(tiny))


def test_pipeline_run(tmp_path):
    cfg = compose_config(["dataset.n=6", "dataset.M=300", "dataset.M_test=100", "device=cpu",
                          "generator=masked_diffusion", "generator.hidden_widths=[16]",
                          "M_plus=500", "trainer.max_steps=20", "trainer.accelerator=cpu",
                          f"paths.output_dir={tmp_path}"])
    result = run(cfg, tmp_path)
    assert result["run"]["generator"] == "masked_diffusion"
    assert not result["run"]["tractable"] and result["metrics"]["gen/steps"] == 20
    assert result["metrics"]["mse_J/aug_obs"] > 0
