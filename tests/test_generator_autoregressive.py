"""The autoregressive generator: normalisation, exact sampling, autoregressive masks, learning an
arDCA model, exact resume."""

from __future__ import annotations

import pytest
import torch

from conftest import all_states, fit_context, make_trainer
from isingaug.config import compose_config
from isingaug.errors import ConfigError
from isingaug.generators.autoregressive import Autoregressive, AutoregressiveNet
from isingaug.generators.base import Generator
from isingaug.pipeline import run

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings(
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*LeafSpec.*is deprecated",
)]


def logistic_chain(h: torch.Tensor, J: torch.Tensor, num: int, seed: int) -> torch.Tensor:
    """Samples of p(s) = prod_i exp(s_i f_i)/(2 cosh f_i), f_i = h_i + sum_{j<i} J_ij s_j, drawn
    spin by spin here (independently of the generator's code)."""
    gen = torch.Generator().manual_seed(seed)
    s = torch.zeros(num, h.shape[0], dtype=torch.float64)
    for i in range(h.shape[0]):
        field = h[i] + s[:, :i] @ J[i, :i]
        s[:, i] = torch.where(torch.rand(num, generator=gen, dtype=torch.float64)
                              < torch.sigmoid(2 * field), 1.0, -1.0)
    return s


def logistic_log_prob(h: torch.Tensor, J: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    fields = h + states @ torch.tril(J, -1).T
    return -torch.nn.functional.softplus(-2 * states * fields).sum(1)


@pytest.fixture(scope="module")
def correlated() -> torch.Tensor:
    """Patterns of 5 spins with unequal magnetisations (so the entropic order is not 0..4)."""
    h = torch.tensor([0.1, 1.2, -0.3, 0.7, 0.0], dtype=torch.float64)
    J = torch.tril(torch.randn(5, 5, generator=torch.Generator().manual_seed(1),
                               dtype=torch.float64), -1)
    return logistic_chain(h, J, 600, seed=2).float()


def fitted_model(data: torch.Tensor, steps: int = 30, **options) -> Autoregressive:
    options = {"hidden_widths": [16, 16], "batch_size": 64, "lr": 1e-2, "device": "cpu",
               **options}
    gen = Autoregressive(**options)
    gen.fit(fit_context(data, make_trainer(steps)))
    return gen


@pytest.mark.parametrize("options", [{"architecture": "logistic"},
                                     {"architecture": "made", "order": "entropic"},
                                     {"architecture": "made", "direct": False,
                                      "activation": "tanh"}])
def test_log_prob_is_normalised(options, correlated):
    gen = fitted_model(correlated, **options)
    assert isinstance(gen, Generator) and gen.tractable and gen.trainable
    if options.get("order") == "entropic":
        assert gen.spin_order.tolist() != list(range(5))
    log_p = gen.log_prob(all_states(5))
    assert log_p.shape == (32,) and log_p.dtype == torch.float64
    assert abs(float(torch.logsumexp(log_p, 0))) < 1e-5
    assert float(log_p.max() - log_p.min()) > 1.0  # trained away from uniform
    # chunked evaluation gives the same numbers, up to the float32 network's rounding
    gen.sample_batch_size = 7
    torch.testing.assert_close(gen.log_prob(all_states(5)), log_p, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("architecture", ["logistic", "made"])
def test_sampling_frequencies_match_the_likelihood(architecture, correlated):
    gen = fitted_model(correlated, architecture=architecture, order="entropic")
    states = all_states(5)
    p = gen.log_prob(states).exp()
    num = 200_000
    samples = gen.sample(num, torch.Generator().manual_seed(0)).double()
    assert samples.dtype == torch.float64 and set(samples.unique().tolist()) == {-1.0, 1.0}
    index = ((samples + 1) / 2 * (2 ** torch.arange(5))).sum(1).long()
    state_index = ((states + 1) / 2 * (2 ** torch.arange(5))).sum(1).long()
    counts = torch.bincount(index, minlength=32)[state_index].double()
    chi2 = float(((counts - num * p) ** 2 / (num * p)).sum())
    tv = 0.5 * float((counts / num - p).abs().sum())
    # 31 degrees of freedom: P(chi2 > 70) ~ 1e-4; TV of 2e5 exact draws is ~0.005
    assert chi2 < 70 and tv < 0.012, (chi2, tv)
    # reproducible from the rng, different for another
    assert torch.equal(gen.sample(50, torch.Generator().manual_seed(3)),
                       gen.sample(50, torch.Generator().manual_seed(3)))
    assert not torch.equal(gen.sample(50, torch.Generator().manual_seed(3)),
                           gen.sample(50, torch.Generator().manual_seed(4)))
    gen.sample_batch_size = 16
    assert gen.sample(50).shape == (50, 5) and gen.sample(0).shape == (0, 5)


@pytest.mark.parametrize(("widths", "direct"), [([], True), ([8, 8], True), ([3], False),
                                                ([12, 5, 9], True)])
def test_fields_are_autoregressive(widths, direct):
    n = 6
    net = AutoregressiveNet(n, widths, direct)
    net.set_masks()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(generator=torch.Generator().manual_seed(0))
    x = torch.where(torch.rand(n, generator=torch.Generator().manual_seed(1)) < 0.5, 1.0, -1.0)
    jac = torch.autograd.functional.jacobian(lambda v: net(v[None])[0], x)  # jac[i, j]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool))
    assert bool((jac[upper] == 0).all())
    # and nothing more is cut: output i sees every j < i (all degrees present when widths >= n-1,
    # or through the direct term)
    if direct or min(widths) >= n - 1:
        assert bool((jac[~upper] != 0).all())


@pytest.mark.parametrize(("widths", "direct"), [([], True), ([8, 8], True), ([3], False),
                                                ([12, 5, 9], True)])
def test_streamed_sampling_equals_a_full_pass_per_spin(widths, direct):
    """AutoregressiveNet.sample (first layer updated spin by spin, one output row) draws the
    same patterns as evaluating the whole network before each spin, from the same stream."""
    n, num = 7, 300
    net = AutoregressiveNet(n, widths, direct).double()
    net.set_masks()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(generator=torch.Generator().manual_seed(0))
    rng = torch.Generator().manual_seed(3)
    reference = torch.zeros(num, n, dtype=torch.float64)
    with torch.no_grad():
        for k in range(n):
            up = torch.sigmoid(2.0 * net(reference)[:, k])
            reference[:, k] = torch.where(torch.rand(num, generator=rng) < up, 1.0, -1.0)
    streamed = net.sample(num, torch.Generator().manual_seed(3), "cpu")
    assert torch.equal(streamed, reference)
    assert 0 < (streamed == 1).double().mean() < 1


def test_logistic_recovers_an_ardca_model():
    n = 6
    gen = torch.Generator().manual_seed(5)
    h = 0.5 * torch.randn(n, generator=gen, dtype=torch.float64)
    J = torch.tril(0.6 * torch.randn(n, n, generator=gen, dtype=torch.float64), -1)
    data = logistic_chain(h, J, 20_000, seed=6).float()
    model = fitted_model(data, steps=200, architecture="logistic", l2_prior=0.0, lr=0.05,
                         batch_size=20_000)
    states = all_states(n)
    log_true = logistic_log_prob(h, J, states)
    p_true = log_true.exp()
    kl = float((p_true * (log_true - model.log_prob(states))).sum())
    # the same KL of the independent-spin model of the data, which cannot represent J
    mags = data.double().mean(0)
    log_indep = torch.log((1 + states * mags) / 2).sum(1)
    kl_indep = float((p_true * (log_true - log_indep)).sum())
    # sampling floor: (n(n+1)/2 parameters) / (2 M) = 5e-4 nats (4e-4 measured)
    assert kl < 1.5e-3 < 0.1 < kl_indep, (kl, kl_indep)
    net = model.network()
    torch.testing.assert_close(net.output_bias.double(), h, atol=0.05, rtol=0)
    torch.testing.assert_close(net.weights()[0].detach().double(), J, atol=0.05, rtol=0)


def test_l2_shrinks_the_couplings(correlated):
    free = fitted_model(correlated, steps=100, architecture="logistic", l2_prior=0.0)
    shrunk = fitted_model(correlated, steps=100, architecture="logistic",
                          l2_prior=0.5 * len(correlated))
    with torch.no_grad():
        assert float(shrunk.penalty()) < 0.5 * float(free.penalty())


def test_prior_pull_per_pattern_fades_as_one_over_m(correlated, monkeypatch):
    """The loss is the mean NLL plus (l2_prior / M) |w|^2: on the data repeated 4 times, the
    same prior weighs 4x less per pattern, exactly as a 4x weaker prior on the data itself."""
    def loss_on_all_patterns(train, l2_prior):
        model = fitted_model(train, steps=0, l2_prior=l2_prior)
        monkeypatch.setattr(model, "batch", lambda: correlated)
        monkeypatch.setattr(model, "log", lambda *args, **kwargs: None)  # outside a fit loop
        with torch.no_grad():
            loss = float(model.training_step(None, 0))
            nll = float(-model.pattern_log_prob(correlated).mean())
            return loss, nll, float(model.penalty())

    loss, nll, penalty = loss_on_all_patterns(correlated, 30.0)
    assert penalty > 0 and loss == pytest.approx(nll + 30.0 / len(correlated) * penalty)
    repeated, _, _ = loss_on_all_patterns(correlated.repeat(4, 1), 30.0)
    weaker, _, _ = loss_on_all_patterns(correlated, 7.5)
    assert repeated == pytest.approx(weaker) and repeated < loss


def test_resume_from_checkpoint_is_exact(correlated, tmp_path):
    options = {"order": "entropic", "seed": 2}
    straight = fitted_model(correlated, steps=6, **options)
    first = Autoregressive(hidden_widths=[16, 16], batch_size=64, lr=1e-2, device="cpu",
                           **options)
    trainer = make_trainer(3)
    first.fit(fit_context(correlated, trainer))
    path = tmp_path / "half.ckpt"
    trainer.save_checkpoint(path)
    resumed = Autoregressive(hidden_widths=[16, 16], batch_size=64, lr=1e-2, device="cpu",
                             **options)
    resumed_trainer = make_trainer(6)
    resumed.fit(fit_context(correlated, resumed_trainer, resume_from=str(path)))
    assert resumed_trainer.global_step == 6
    expected, got = straight.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys() and "spin_order" in got
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert torch.equal(straight.sample(20, torch.Generator().manual_seed(0)),
                       resumed.sample(20, torch.Generator().manual_seed(0)))


def test_training_ignores_the_global_rng(correlated):
    states = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        states.append(fitted_model(correlated, steps=2, seed=5).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


BAD = [("architecture", "rnn"), ("hidden_widths", []), ("hidden_widths", [4, 0]),
       ("hidden_widths", "64"), ("direct", "yes"), ("activation", "swish"), ("order", "random"),
       ("lr", 0), ("l2_prior", -1.0), ("max_steps", 0), ("batch_size", 0)]


@pytest.mark.parametrize(("key", "value"), BAD)
def test_invalid_config_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"generator\\.{key}"):
        Autoregressive(**{key: value}, device="cpu")


def test_misuse_is_a_config_error(correlated):
    gen = Autoregressive(device="cpu")
    with pytest.raises(ConfigError, match="must be fitted"):
        gen.sample(3)
    with pytest.raises(ConfigError, match="must be fitted"):
        gen.log_prob(all_states(3))
    with pytest.raises(ConfigError, match="needs a training session"):
        gen.fit(fit_context(correlated))
    Autoregressive(architecture="logistic", hidden_widths=[], device="cpu")


def test_pipeline_run(tmp_path):
    cfg = compose_config(["dataset.n=6", "dataset.M=300", "dataset.M_test=100", "device=cpu",
                          "generator=autoregressive", "generator.hidden_widths=[16]",
                          "M_plus=500", "trainer.max_steps=20", "trainer.accelerator=cpu",
                          f"paths.output_dir={tmp_path}"])
    result = run(cfg, tmp_path)
    assert result["run"]["generator"] == "autoregressive" and result["run"]["tractable"]
    assert result["metrics"]["gen/steps"] == 20
    assert result["metrics"]["mse_J/aug_obs"] > 0
