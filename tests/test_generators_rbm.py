"""RBM and F&F RBM: exact gradients, Gibbs conditionals, the k-step protocols, training, resume.

Sizes are distinct primes (5 visible, 3 hidden, 7 spins of SK data, 11/13 chains) so that a
transposed or broadcast shape cannot pass by accident.
"""

from __future__ import annotations

import inspect
import itertools
import warnings
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import fit_context, make_trainer
from isingaug.config import CONFIG_DIR
from isingaug.data.sk import sk_truth
from isingaug.errors import ConfigError
from isingaug.generators import rbm
from isingaug.generators.learned import LearnedGenerator
from isingaug.generators.rbm import (
    FFRbm,
    Rbm,
    RbmParams,
    auto_hidden,
    free_energy,
    gibbs_steps,
    hidden_probs,
    rbm_gradient,
    sample_hiddens,
    sample_visibles,
    to_binary,
    visible_probs,
)
from isingaug.ising import IsingParams
from isingaug.sampling import exact_sample
from isingaug.seeding import stream

N_VIS, N_HID, N_SK = 5, 3, 7


def binary_states(n: int) -> torch.Tensor:
    """Every {0,1}^n state (itertools, independent of the package)."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def tiny_params(seed: int = 0, scale: float = 1.0) -> RbmParams:
    gen = torch.Generator().manual_seed(seed)
    return RbmParams(*(scale * torch.randn(shape, generator=gen, dtype=torch.float64)
                       for shape in ((N_VIS, N_HID), (N_VIS,), (N_HID,))))


def exact_p_v(params: RbmParams) -> torch.Tensor:
    """p(v) over binary_states(N_VIS), from the free energy."""
    return torch.softmax(-free_energy(binary_states(N_VIS), params), 0)


def tiny_data(seed: int = 1, rows: int = 11) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((rows, N_VIS), 0.6, dtype=torch.float64), generator=gen)


def mean_log_likelihood(v_data: torch.Tensor, W, b, c) -> torch.Tensor:
    """Exact mean log p(v_data): -F(v) - log Z, log Z by enumerating the visibles."""
    params = RbmParams(W, b, c)
    log_z = torch.logsumexp(-free_energy(binary_states(N_VIS), params), 0)
    return (-free_energy(v_data, params)).mean() - log_z


def autograd_gradient(v_data: torch.Tensor, params: RbmParams) -> RbmParams:
    leaves = [p.clone().requires_grad_(True) for p in params]
    return RbmParams(*torch.autograd.grad(mean_log_likelihood(v_data, *leaves), leaves))


def assert_close(a: RbmParams, b: RbmParams, atol: float = 1e-10) -> None:
    for x, y, name in zip(a, b, RbmParams._fields, strict=True):
        assert x.shape == y.shape, name
        torch.testing.assert_close(x, y, atol=atol, rtol=0, msg=name)


# ------------------------------------------------------------------------------------------------
# Kernels against enumeration
# ------------------------------------------------------------------------------------------------

def test_gradient_matches_joint_enumeration_and_autograd() -> None:
    params = tiny_params()
    v_data = tiny_data()
    grad = rbm_gradient(v_data, binary_states(N_VIS), params, model_weights=exact_p_v(params))

    # Independent route: the joint p(v, h) over 2^5 x 2^3 states, and E[h | v] over 2^3 states.
    V, H = binary_states(N_VIS), binary_states(N_HID)
    neg_energy = (V @ params.b)[:, None] + (H @ params.c)[None, :] + V @ params.W @ H.T
    joint = torch.softmax(neg_energy.reshape(-1), 0).reshape(len(V), len(H))
    torch.testing.assert_close(joint.sum(1), exact_p_v(params))
    model = RbmParams(V.T @ joint @ H, joint.sum(1) @ V, joint.sum(0) @ H)
    cond = torch.softmax((H @ params.c)[None, :] + v_data @ params.W @ H.T, 1)  # p(h | v_data)
    h_mean = cond @ H
    data = RbmParams(v_data.T @ h_mean / len(v_data), v_data.mean(0), h_mean.mean(0))
    assert_close(grad, RbmParams(*(d - m for d, m in zip(data, model, strict=True))))
    assert_close(grad, autograd_gradient(v_data, params))


def test_model_weights_equal_repeated_samples() -> None:
    params, v_data = tiny_params(2), tiny_data(3)
    states = binary_states(N_VIS)[:7]
    counts = torch.tensor([1, 0, 2, 3, 1, 1, 5])
    weighted = rbm_gradient(v_data, states, params, model_weights=counts.double())
    repeated = rbm_gradient(v_data, states.repeat_interleave(counts, 0), params)
    assert_close(weighted, repeated)


def centered_by_autograd(v_data, params: RbmParams, mu, lam) -> RbmParams:
    """Gradient in the centered parametrisation (b = b' - W lam, c = c' - W^T mu), mapped back."""
    W_c = params.W.clone().requires_grad_(True)
    b_c = (params.b + params.W @ lam).requires_grad_(True)
    c_c = (params.c + params.W.T @ mu).requires_grad_(True)
    loglik = mean_log_likelihood(v_data, W_c, b_c - W_c @ lam, c_c - W_c.T @ mu)
    gW, gb, gc = torch.autograd.grad(loglik, [W_c, b_c, c_c])
    return RbmParams(gW, gb - gW @ lam, gc - gW.T @ mu)


def test_centered_gradient_is_the_reparametrised_gradient() -> None:
    params, v_data = tiny_params(4), tiny_data(5)
    states, p_v = binary_states(N_VIS), exact_p_v(params)
    gen = torch.Generator().manual_seed(6)
    mu = torch.rand(N_VIS, generator=gen, dtype=torch.float64)
    lam = torch.rand(N_HID, generator=gen, dtype=torch.float64)
    plain = rbm_gradient(v_data, states, params, model_weights=p_v)
    centered = rbm_gradient(v_data, states, params, centered=True, offsets=(mu, lam),
                            model_weights=p_v)
    assert_close(centered, centered_by_autograd(v_data, params, mu, lam))

    # Zero offsets: the plain gradient.
    zero = (torch.zeros(N_VIS, dtype=torch.float64), torch.zeros(N_HID, dtype=torch.float64))
    assert_close(rbm_gradient(v_data, states, params, centered=True, offsets=zero,
                              model_weights=p_v), plain)
    # An ascent direction: <centered, plain> = |L^T g|^2 > 0 (dW, and the plain bias gradients).
    inner = sum(float((x * y).sum()) for x, y in zip(centered, plain, strict=True))
    expected = float((centered.W ** 2).sum() + (plain.b ** 2).sum() + (plain.c ** 2).sum())
    assert inner == pytest.approx(expected, rel=1e-10) and inner > 0
    # The map is invertible, so both gradients vanish at the same points.
    g_b = centered.b + centered.W @ lam
    g_c = centered.c + centered.W.T @ mu
    g_W = centered.W + torch.outer(mu, g_c) + torch.outer(g_b, lam)
    assert_close(RbmParams(g_W, g_b, g_c), plain)
    # Default offsets: the data's means of v and of p(h|v).
    data_offsets = (v_data.mean(0), hidden_probs(v_data, params.W, params.c).mean(0))
    assert_close(rbm_gradient(v_data, states, params, centered=True, model_weights=p_v),
                 rbm_gradient(v_data, states, params, centered=True, offsets=data_offsets,
                              model_weights=p_v))


def test_conditional_samplers_match_their_probabilities() -> None:
    params = tiny_params(7)
    gen = torch.Generator().manual_seed(8)
    v = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64).expand(40000, N_VIS)
    h = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64).expand(40000, N_HID)
    h_samples = sample_hiddens(v, params.W, params.c, gen)
    v_samples = sample_visibles(h, params.W, params.b, gen)
    assert h_samples.shape == (40000, N_HID) and v_samples.shape == (40000, N_VIS)
    assert set(h_samples.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(h_samples.mean(0), hidden_probs(v, params.W, params.c)[0],
                               atol=0.01, rtol=0)
    torch.testing.assert_close(v_samples.mean(0), visible_probs(h, params.W, params.b)[0],
                               atol=0.01, rtol=0)


def test_gibbs_chains_reach_the_exact_marginal() -> None:
    params = tiny_params(9, scale=0.8)
    gen = torch.Generator().manual_seed(10)
    start = torch.bernoulli(torch.full((30000, N_VIS), 0.5, dtype=torch.float64), generator=gen)
    final = gibbs_steps(start, params, 25, gen)
    index = (final @ (2.0 ** torch.arange(N_VIS - 1, -1, -1, dtype=torch.float64))).long()
    empirical = torch.bincount(index, minlength=2**N_VIS).double() / len(final)
    total_variation = 0.5 * float((empirical - exact_p_v(params)).abs().sum())
    assert total_variation < 0.03


# ------------------------------------------------------------------------------------------------
# Generators on SK data
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def train() -> torch.Tensor:
    truth = sk_truth(N_SK, 1.0, 0.5, data_seed=0)
    return exact_sample(truth, 200, torch.Generator().manual_seed(1)).float()


SMALL = {"hidden": N_HID, "batch_size": 16, "device": "cpu"}
CONFIGS = {
    "pcd": (Rbm, {**SMALL, "k": 3, "num_chains": 11, "gibbs_steps": 50}),
    "cd": (Rbm, {**SMALL, "method": "cd", "k": 2, "gibbs_steps": 50}),
    "pcd_adam_running": (Rbm, {**SMALL, "k": 3, "optimizer": "adam", "offset_momentum": 0.5,
                               "generate_start": "data", "gibbs_steps": 50}),
    "pcd_ema": (Rbm, {**SMALL, "k": 3, "ema_decay": 0.9}),
    "pcd_auto_hidden": (Rbm, {**SMALL, "hidden": "auto", "k": 3, "num_chains": 11}),
    "ff": (FFRbm, {**SMALL, "k": 4, "num_chains": 13, "init": "uniform"}),
    "ff_marginals": (FFRbm, {**SMALL, "k": 4, "init": "data_marginals", "centered": False}),
}


def fitted(name: str, train: torch.Tensor, steps: int, **overrides) -> Rbm:
    cls, kwargs = CONFIGS[name]
    gen = cls(**{**kwargs, **overrides})
    gen.fit(fit_context(train, make_trainer(steps)))
    return gen


class Recorder:
    """Wraps gibbs_step / gibbs_steps to count sweeps and keep each run's start and end."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sweeps = 0
        self.runs: list[dict] = []
        step, steps = rbm.gibbs_step, rbm.gibbs_steps

        def counted_step(v, params, generator):
            self.sweeps += 1
            return step(v, params, generator)

        def recorded_steps(v, params, k, generator):
            before = self.sweeps
            out = steps(v, params, k, generator)
            self.runs.append({"start": v.clone(), "k": k, "sweeps": self.sweeps - before,
                              "end": out.clone()})
            return out

        monkeypatch.setattr(rbm, "gibbs_step", counted_step)
        monkeypatch.setattr(rbm, "gibbs_steps", recorded_steps)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_trains_and_samples_reproducibly(name: str, train: torch.Tensor) -> None:
    first = fitted(name, train, 4, sample_batch_size=10)
    samples = first.sample(23, torch.Generator().manual_seed(0))
    assert samples.shape == (23, N_SK) and samples.dtype == torch.float32
    assert samples.device.type == "cpu" and set(samples.unique().tolist()) <= {-1.0, 1.0}
    second = fitted(name, train, 4, sample_batch_size=10)
    assert torch.equal(second.sample(23, torch.Generator().manual_seed(0)), samples)
    assert not torch.equal(second.sample(23, torch.Generator().manual_seed(1)), samples)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert first.global_step == 4


@pytest.mark.parametrize("name", ["pcd", "pcd_adam_running", "pcd_ema", "pcd_auto_hidden", "ff"])
def test_resume_from_checkpoint_is_exact(name: str, train: torch.Tensor, tmp_path: Path) -> None:
    straight = fitted(name, train, 6)
    cls, kwargs = CONFIGS[name]
    first, trainer = cls(**kwargs), make_trainer(3)
    first.fit(fit_context(train, trainer))
    path = str(tmp_path / "half.ckpt")
    trainer.save_checkpoint(path)
    resumed = cls(**kwargs)
    resumed.fit(fit_context(train, make_trainer(6), resume_from=path))
    state, expected = resumed.state_dict(), straight.state_dict()
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    assert not torch.equal(first.state_dict()["weight"], expected["weight"])


def test_ff_updates_run_exactly_k_sweeps_from_fresh_uniform_chains(
        train: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    record = Recorder(monkeypatch)
    gen = fitted("ff", train, 3)
    assert [(run["k"], run["sweeps"]) for run in record.runs] == [(4, 4)] * 3
    for step, run in enumerate(record.runs):
        fresh = torch.bernoulli(torch.full((13, N_SK), 0.5),
                                generator=stream(0, "train", step, "chains"))
        assert torch.equal(run["start"], fresh)  # a new draw from p_0 at every update
        if step:
            assert not torch.equal(run["start"], record.runs[step - 1]["end"])
    assert "chains" not in gen.state_dict()

    record.runs.clear()
    samples = gen.sample(2000, torch.Generator().manual_seed(0))
    assert samples.shape == (2000, N_SK)
    (run,) = record.runs
    assert (run["k"], run["sweeps"]) == (4, 4)
    assert run["start"].shape == (2000, N_SK)
    assert float(run["start"].mean()) == pytest.approx(0.5, abs=0.02)
    assert torch.equal(samples, 2 * run["end"] - 1)


def test_ff_data_marginals_start(train: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    record = Recorder(monkeypatch)
    fitted("ff_marginals", train, 1, num_chains=4001, k=1)
    torch.testing.assert_close(record.runs[0]["start"].mean(0), to_binary(train).mean(0),
                               atol=0.04, rtol=0)


def test_ff_generation_length_other_than_k_warns(train: torch.Tensor,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert FFRbm(k=4, device="cpu").gibbs_steps == 4
        assert FFRbm(k=4, gibbs_steps=4, device="cpu").gibbs_steps == 4
    with pytest.warns(UserWarning, match="k-step protocol"):
        gen = FFRbm(**{**CONFIGS["ff"][1], "gibbs_steps": 7})
    gen.fit(fit_context(train, make_trainer(1)))
    record = Recorder(monkeypatch)
    gen.sample(5)
    assert [(run["k"], run["sweeps"]) for run in record.runs] == [(7, 7)]


def test_auto_hidden_grows_with_the_spins_and_the_data(train: torch.Tensor) -> None:
    """`hidden: auto` (the rbm default) fixes the hidden layer at fit time from M and n and
    reports it (CONFIGS' pcd_auto_hidden runs it through the reproducibility tests)."""
    assert [auto_hidden(M, n) for M, n in ((1000, 20), (1000, 40), (4000, 20), (4000, 40))] == [
        32, 64, 63, 64]
    assert Rbm(device="cpu").hidden_option == "auto"
    options = {**CONFIGS["pcd"][1], "hidden": "auto"}
    for patterns, size in ((9, round(1.6 * N_SK)), (200, round(200 ** 0.5))):
        gen = Rbm(**options)
        gen.fit(fit_context(train[:patterns], make_trainer(2)))
        assert gen.weight.shape == (N_SK, size) and gen.hidden_bias.shape == (size,)
        assert gen.diagnostics == {"hidden": size}
        assert gen.sample(5).shape == (5, N_SK)
    with pytest.raises(ConfigError, match=r"training patterns must be \(M, n\)"):
        Rbm(**options).fit(fit_context(train[0], make_trainer(1)))


def test_pcd_chains_persist_between_updates(train: torch.Tensor,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    initial = Rbm(**CONFIGS["pcd"][1])
    initial.build(N_SK)
    record = Recorder(monkeypatch)
    gen = fitted("pcd", train, 3)
    assert [(run["k"], run["sweeps"]) for run in record.runs] == [(3, 3)] * 3
    assert torch.equal(record.runs[0]["start"], initial.chains)
    for before, after in itertools.pairwise(record.runs):
        assert torch.equal(after["start"], before["end"])
    assert "chains" in gen.state_dict() and gen.chains.shape == (11, N_SK)
    assert torch.equal(gen.state_dict()["chains"], record.runs[-1]["end"])
    assert not torch.equal(gen.chains, initial.chains)

    record.runs.clear()
    chains = gen.chains.clone()
    gen.sample(17)
    (run,) = record.runs
    assert (run["k"], run["start"].shape) == (50, (17, N_SK))  # generation: gibbs_steps sweeps
    assert torch.equal(gen.chains, chains)  # generation leaves the training chains alone


def test_cd_chains_start_from_the_data_batch(train: torch.Tensor,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    record = Recorder(monkeypatch)
    gen = fitted("cd", train, 3)
    assert [(run["k"], run["sweeps"]) for run in record.runs] == [(2, 2)] * 3
    for step, run in enumerate(record.runs):
        rows = torch.randint(len(train), (16,), generator=stream(0, "train", step, "batch"))
        assert torch.equal(run["start"], to_binary(train[rows]))
    assert "chains" not in gen.state_dict()


def test_bias_init_and_offsets(train: torch.Tensor) -> None:
    gen = fitted("pcd", train, 1, lr=1e-12)
    freq = to_binary(train).mean(0).clamp(rbm.FREQUENCY_EPS, 1 - rbm.FREQUENCY_EPS)
    torch.testing.assert_close(gen.visible_bias.detach(), torch.logit(freq), atol=1e-5, rtol=0)
    assert torch.equal(gen.data_mean, to_binary(train).mean(0))
    zero = fitted("pcd", train, 1, lr=1e-12, visible_bias_init="zero")
    assert float(zero.visible_bias.detach().abs().max()) < 1e-9
    assert float(zero.weight.detach().std()) == pytest.approx(0.01, rel=0.5)


@pytest.mark.parametrize("cls", [Rbm, FFRbm])
def test_learns_a_biased_correlated_distribution(cls: type) -> None:
    couplings = torch.full((N_SK, N_SK), 0.22, dtype=torch.float64).fill_diagonal_(0.0)
    truth = IsingParams(torch.full((N_SK,), 0.12, dtype=torch.float64), couplings)
    data = exact_sample(truth, 400, torch.Generator().manual_seed(11)).float()
    m_data = data.mean(0)  # about 0.47 per site; mean connected correlation about 0.46

    def connected(x: torch.Tensor) -> float:
        cov = x.T @ x / len(x) - torch.outer(x.mean(0), x.mean(0))
        return float(cov.triu(1).sum()) / (N_SK * (N_SK - 1) / 2)

    model = cls(hidden=N_HID, lr=0.1, k=10, batch_size=64, visible_bias_init="zero",
                weight_init_std=0.1, seed=0, device="cpu",
                **({"gibbs_steps": 200} if cls is Rbm else {}))
    model.fit(fit_context(data, make_trainer(1)))
    before = model.sample(4000, torch.Generator().manual_seed(0))
    model.fit(fit_context(data, make_trainer(400)))
    after = model.sample(4000, torch.Generator().manual_seed(0))
    assert float((before.mean(0) - m_data).abs().min()) > 0.3
    assert float((after.mean(0) - m_data).abs().max()) < 0.1
    assert connected(before) < 0.05 < 0.15 < connected(after) < connected(data) + 0.1


@pytest.mark.parametrize("name", ["pcd", "ff"])
def test_weight_decay_subtracts_its_multiple_of_w_from_the_ascent(name: str,
                                                                  train: torch.Tensor) -> None:
    """One SGD update with weight_decay differs from the plain one by -lr * wd * W in W only."""
    lr, decay = 0.05, 0.3
    cls, kwargs = CONFIGS[name]
    start = cls(**kwargs, lr=lr, weight_init_std=0.5)
    start.fit(fit_context(train, make_trainer(0)))
    plain = fitted(name, train, 1, lr=lr, weight_init_std=0.5)
    decayed = fitted(name, train, 1, lr=lr, weight_init_std=0.5, weight_decay=decay)
    w0 = start.weight.detach()
    torch.testing.assert_close(decayed.weight.detach() - plain.weight.detach(),
                               -lr * decay * w0, atol=1e-6, rtol=0)
    for bias in ("visible_bias", "hidden_bias"):
        assert torch.equal(getattr(decayed, bias), getattr(plain, bias))


@pytest.mark.parametrize("name", ["pcd", "ff"])
def test_ema_averages_the_trajectory_and_is_what_generation_uses(name: str,
                                                                 train: torch.Tensor) -> None:
    """Training is unchanged by ema_decay; the average follows a <- a + (1 - d)(p - a) from the
    initial parameters, and sampling and log Z use the average, not the last parameters."""
    decay, steps = 0.7, 4
    cls, kwargs = CONFIGS[name]
    trajectory = []
    for done in range(steps + 1):
        plain = cls(**kwargs)
        plain.fit(fit_context(train, make_trainer(done)))
        trajectory.append([p.detach().clone() for p in plain.params])
    averaged = fitted(name, train, steps, ema_decay=decay)
    for param, last in zip(averaged.params, trajectory[-1], strict=True):
        assert torch.equal(param.detach(), last)
    expected = [p.clone() for p in trajectory[0]]
    for point in trajectory[1:]:
        expected = [a + (1.0 - decay) * (p - a) for a, p in zip(expected, point, strict=True)]
    for average, want in zip(averaged.sampling_params, expected, strict=True):
        torch.testing.assert_close(average, want, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(averaged.sampling_params.W, averaged.weight)
    with torch.no_grad():
        for param, average in zip(plain.params, averaged.sampling_params, strict=True):
            param.copy_(average)
    rng = torch.Generator().manual_seed(3)
    assert torch.equal(averaged.sample(31, rng), plain.sample(31, rng.manual_seed(3)))
    if averaged.tractable:
        torch.testing.assert_close(averaged.log_partition(), plain.log_partition())


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------

BAD = [
    (Rbm, "hidden", 0), (Rbm, "hidden", 2.5), (Rbm, "hidden", "many"), (Rbm, "lr", 0.0),
    (Rbm, "optimizer", "rmsprop"),
    (Rbm, "method", "ff"), (Rbm, "k", 0), (Rbm, "num_chains", 0), (Rbm, "centered", "yes"),
    (Rbm, "offset_momentum", 1.0), (Rbm, "weight_init_std", -0.1), (Rbm, "weight_decay", -1e-3),
    (Rbm, "ema_decay", 1.0), (Rbm, "ema_decay", 0), (FFRbm, "ema_decay", "x"),
    (Rbm, "visible_bias_init", "ones"), (Rbm, "gibbs_steps", 0),
    (Rbm, "generate_start", "uniform"), (Rbm, "batch_size", 0),
    (FFRbm, "init", "random"), (FFRbm, "k", 0), (FFRbm, "gibbs_steps", 0),
    (FFRbm, "weight_decay", "x"), (FFRbm, "hidden", -1), (FFRbm, "optimizer", "lbfgs"),
    (FFRbm, "num_chains", 1.5),
]


@pytest.mark.parametrize(("cls", "key", "value"), BAD)
def test_invalid_values_name_the_key(cls: type, key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"generator\.{key}\b"):
        cls(**{key: value, "device": "cpu"})


def test_ff_rbm_has_no_method_or_generate_start() -> None:
    for key in ("method", "generate_start"):
        with pytest.raises(TypeError):
            FFRbm(**{key: "pcd", "device": "cpu"})


@pytest.mark.parametrize(("option", "cls"), [("rbm", Rbm), ("ff_rbm", FFRbm)])
def test_yaml_lists_every_key_with_the_class_defaults(option: str, cls: type) -> None:
    node = OmegaConf.load(CONFIG_DIR / "generator" / f"{option}.yaml")
    node.seed, node.device = 3, "cpu"
    keys = set(node) - {"_target_"}
    # the options every learned generator shares come through **training
    signature = {**inspect.signature(LearnedGenerator.__init__).parameters,
                 **inspect.signature(cls.__init__).parameters}
    assert keys == set(signature) - {"self", "training"}
    for key in keys - {"seed", "device", "max_steps"}:
        assert node[key] == signature[key].default, key
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gen = instantiate(node, _convert_="all")
    assert type(gen) is cls and gen.name == option and gen.seed == 3
