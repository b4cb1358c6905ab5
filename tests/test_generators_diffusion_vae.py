"""The diffusion and VAE generators: sampling contract, exact resume, DDPM maths, learning."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import fit_context, make_trainer
from isingaug import results as res
from isingaug.data.sk import sk_truth
from isingaug.errors import ConfigError
from isingaug.generators.base import Generator
from isingaug.generators.diffusion import Denoiser, Diffusion
from isingaug.generators.vae import Vae
from isingaug.sampling import exact_sample

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings(
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*LeafSpec.*is deprecated",
)]

SMALL_NET = {"encoder_widths": [32, 64], "decoder_widths": [64, 64, 32], "time_dim": 16}


@pytest.fixture(scope="module")
def train() -> torch.Tensor:
    truth = sk_truth(7, 1.0, 1.0, 0)
    return exact_sample(truth, 200, torch.Generator().manual_seed(0)).float()


def small_diffusion(**kwargs) -> Diffusion:
    options = {**SMALL_NET, "sampler": "ddim", "ddim_steps": 20, "batch_size": 64,
               "device": "cpu", **kwargs}
    return Diffusion(**options)


def small_vae(**kwargs) -> Vae:
    options = {"latent_dim": 4, "hidden_widths": [32, 32], "batch_size": 64, "device": "cpu",
               **kwargs}
    return Vae(**options)


FACTORIES = {"diffusion": small_diffusion, "vae": small_vae}


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_samples_are_spins_and_seeded(kind, train):
    gen = FACTORIES[kind](seed=3)
    assert isinstance(gen, Generator) and gen.name == kind and gen.trainable
    gen.fit(fit_context(train, make_trainer(3)))
    samples = gen.sample(50, torch.Generator().manual_seed(0))
    assert samples.shape == (50, 7)
    assert samples.device.type == "cpu" and samples.dtype == torch.float32
    assert set(samples.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(samples, gen.sample(50, torch.Generator().manual_seed(0)))
    assert not torch.equal(samples, gen.sample(50, torch.Generator().manual_seed(1)))
    # batching by sample_batch_size does not change the count or the values' domain
    gen.sample_batch_size = 16
    assert gen.sample(50, torch.Generator().manual_seed(0)).shape == (50, 7)
    assert gen.sample(0).shape == (0, 7)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_training_ignores_the_global_rng(kind, train):
    states = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        gen = FACTORIES[kind](seed=5)
        gen.fit(fit_context(train, make_trainer(2)))
        states.append(gen.state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    other = FACTORIES[kind](seed=6)
    other.fit(fit_context(train, make_trainer(2)))
    assert not all(torch.equal(states[0][k], other.state_dict()[k]) for k in states[0])


@pytest.mark.parametrize(("kind", "options"), [("diffusion", {"ema_decay": 0.9}), ("vae", {})])
def test_resume_from_checkpoint_is_exact(kind, options, train, tmp_path):
    straight = FACTORIES[kind](seed=2, **options)
    straight.fit(fit_context(train, make_trainer(6)))

    first = FACTORIES[kind](seed=2, **options)
    trainer = make_trainer(3)
    first.fit(fit_context(train, trainer))
    path = tmp_path / "half.ckpt"
    trainer.save_checkpoint(path)
    resumed = FACTORIES[kind](seed=2, **options)
    resumed_trainer = make_trainer(6)
    resumed.fit(fit_context(train, resumed_trainer, resume_from=str(path)))

    assert resumed_trainer.global_step == 6
    expected, got = straight.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys()
    if kind == "diffusion":
        assert any(key.startswith("ema_denoiser.") for key in got)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert torch.equal(straight.sample(20, torch.Generator().manual_seed(0)),
                       resumed.sample(20, torch.Generator().manual_seed(0)))
    # a run resumed from a finished checkpoint trains nothing: no speed to report
    finished = FACTORIES[kind](seed=2, **options)
    context = fit_context(train, make_trainer(3), resume_from=str(path))
    finished.fit(context)
    assert finished.global_step == 3
    assert math.isnan(context.training.metrics[res.GEN_STEPS_PER_SECOND])


def test_ema_is_updated_after_each_step_and_used_for_sampling(train):
    gen = small_diffusion(seed=4, ema_decay=0.75)
    gen.build(7)
    initial = {k: v.clone() for k, v in gen.denoiser.state_dict().items()}
    gen.fit(fit_context(train, make_trainer(1)))
    trained = gen.denoiser.state_dict()
    for key, value in gen.ema_denoiser.state_dict().items():
        torch.testing.assert_close(value, 0.75 * initial[key] + 0.25 * trained[key])
    assert gen.sampling_network() is gen.ema_denoiser
    assert not any(p.requires_grad for p in gen.ema_denoiser.parameters())
    assert small_diffusion().ema_denoiser is None


def test_schedule_matches_closed_form():
    gen = Diffusion(device="cpu")
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    assert gen.betas.shape == (1000,)
    torch.testing.assert_close(gen.betas.double(), betas)
    closed = torch.cumprod(1.0 - betas, 0)
    torch.testing.assert_close(gen.alpha_bars.double(), closed, rtol=1e-5, atol=1e-7)
    # by a log-sum, independently of cumprod
    log_sum = torch.log1p(-betas[:500]).sum()
    assert math.isclose(float(gen.alpha_bars[499]), math.exp(float(log_sum)), rel_tol=1e-5)
    assert float(gen.alpha_bars[-1]) < 1e-4  # x_T is (almost) pure noise
    assert "betas" not in gen.state_dict()  # follows from the config, not saved


def test_q_sample_formula_and_statistics():
    gen = Diffusion(device="cpu")
    x0 = torch.tensor([[1.0, -1.0, 1.0]]).expand(200000, 3)
    t = torch.full((200000,), 300)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    xt = gen.q_sample(x0, t, noise)
    ab = float(gen.alpha_bars[300])
    torch.testing.assert_close(xt, math.sqrt(ab) * x0 + math.sqrt(1 - ab) * noise)
    torch.testing.assert_close(xt.mean(0), math.sqrt(ab) * x0[0], atol=0.01, rtol=0)
    torch.testing.assert_close(xt.var(0), torch.full((3,), 1 - ab), atol=0.01, rtol=0)
    per_row = gen.q_sample(x0[:2], torch.tensor([0, 999]), noise[:2])
    assert abs(float(per_row[0, 0]) - 1.0) < 0.05 and abs(float(per_row[1, 0]) - noise[1, 0]) < 0.05


def test_ddim_timesteps():
    assert torch.equal(Diffusion(ddim_steps=1000, device="cpu").ddim_timesteps(),
                       torch.arange(1000))
    steps = Diffusion(ddim_steps=100, device="cpu").ddim_timesteps()
    assert steps.shape == (100,) and int(steps[-1]) == 999 and int(steps[0]) == 9
    assert bool((steps.diff() == 10).all())
    assert Diffusion(ddim_steps=1, device="cpu").ddim_timesteps().tolist() == [999]


def test_ddim_with_all_steps_and_eta_one_is_posterior_ancestral():
    common = {**SMALL_NET, "timesteps": 60, "beta_end": 0.2, "seed": 9, "device": "cpu"}
    ancestral = Diffusion(sampler="ancestral", ancestral_variance="posterior", **common)
    ddim = Diffusion(sampler="ddim", ddim_steps=60, ddim_eta=1.0, **common)
    outputs = []
    for gen in (ancestral, ddim):
        gen.n = 7
        gen.build(7)
        gen.eval()
        with torch.no_grad():
            outputs.append(gen.reverse(300, torch.Generator().manual_seed(0)))
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-4, rtol=1e-4)
    spins = ddim.sample(40, torch.Generator().manual_seed(0))
    assert spins.shape == (40, 7) and set(spins.unique().tolist()) <= {-1.0, 1.0}


def test_posterior_mean_through_x0_is_the_ancestral_eps_step():
    """Without clipping the x_0 form of the ancestral mean is the eps form (the float64
    schedule in closed form), at every step, and x_0 from x_t and eps inverts q_sample."""
    gen = Diffusion(device="cpu")
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alpha_bars = torch.cumprod(1.0 - betas, 0)
    rng = torch.Generator().manual_seed(3)
    x0_true = torch.randn(64, 7, generator=rng, dtype=torch.float64).clamp(-1, 1)
    eps = torch.randn(64, 7, generator=rng, dtype=torch.float64)
    for t in (0, 1, 500, 999):
        beta, ab = float(betas[t]), float(alpha_bars[t])
        x = math.sqrt(ab) * x0_true + math.sqrt(1.0 - ab) * eps
        x0 = gen.clipped_x0(x, eps, t)
        torch.testing.assert_close(x0, x0_true, atol=1e-5, rtol=1e-5)
        eps_step = (x - beta / math.sqrt(1.0 - ab) * eps) / math.sqrt(1.0 - beta)
        torch.testing.assert_close(gen.posterior_mean(x0, x, t), eps_step, atol=1e-6,
                                   rtol=1e-6)


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_clip_denoised_ends_inside_the_spin_range_and_changes_the_path(sampler):
    """The last step returns the clipped x_0, so every coordinate lies in [-1, 1]; an untrained
    denoiser's x_0 leaves that range, so clipping changes the end points."""
    common = {**SMALL_NET, "timesteps": 60, "beta_end": 0.2, "sampler": sampler,
              "ddim_steps": 20, "seed": 4, "device": "cpu"}
    ends = {}
    for clip in (False, True):
        gen = Diffusion(clip_denoised=clip, **common)
        gen.n = 7
        gen.build(7)
        gen.eval()
        with torch.no_grad():
            ends[clip] = gen.reverse(300, torch.Generator().manual_seed(0))
    assert float(ends[True].abs().max()) <= 1.0
    assert float(ends[False].abs().max()) > 1.0


def test_default_denoiser_is_a_unet_with_time_in_every_block():
    net = Denoiser(20)
    assert [b.linear.out_features for b in net.encoder] == [128, 256, 512]
    assert [b.linear.out_features for b in net.decoder] == [512, 512, 256, 128]
    assert net.skip_index == [None, 2, 1, 0]
    assert [b.linear.in_features for b in net.decoder] == [512, 1024, 768, 384]
    assert all(b.time.in_features == 128 for b in [*net.encoder, *net.decoder])
    x = torch.randn(5, 20)
    out = net(x, torch.tensor([0, 1, 10, 500, 999]))
    assert out.shape == (5, 20)
    # the time step changes the prediction
    assert not torch.allclose(net(x, torch.zeros(5, dtype=torch.long)),
                              net(x, torch.full((5,), 999)))


def test_one_shared_step_equals_the_step_repeated_per_row():
    """Sampling passes t of shape (1,), computed once and broadcast: the same prediction."""
    net = Denoiser(7, **SMALL_NET)
    x = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    for step in (0, 17, 999):
        shared = net(x, torch.tensor([step]))
        per_row = net(x, torch.full((50,), step))
        torch.testing.assert_close(shared, per_row, atol=1e-6, rtol=1e-5)


def test_vae_weight_decay_shrinks_the_weights(train):
    norms = {}
    for decay in (0.0, 1.0):
        gen = small_vae(seed=0, weight_decay=decay, lr=1e-2)
        gen.fit(fit_context(train, make_trainer(30)))
        norms[decay] = float(sum(p.detach().square().sum() for p in gen.parameters()))
    # AdamW's decay multiplies every weight by 1 - lr * wd per step: 30 steps shrink by ~26%
    assert norms[1.0] < 0.9 * norms[0.0]


def test_default_diffusion_trains_and_samples(train):
    gen = Diffusion(sampler="ddim", ddim_steps=5, device="cpu", seed=0)
    gen.fit(fit_context(train, make_trainer(2)))
    assert gen.sample(8).shape == (8, 7)


BAD_DIFFUSION = [
    ("timesteps", 0), ("timesteps", 1.5), ("beta_start", 0.0), ("beta_start", "x"),
    ("beta_end", 1e-5), ("beta_end", 1.0), ("encoder_widths", []), ("encoder_widths", [8, 0]),
    ("decoder_widths", "128"), ("time_dim", 7), ("time_dim", 0), ("lr", 0), ("lr", True),
    ("ema_decay", 1.0), ("ema_decay", 0), ("sampler", "euler"), ("ddim_steps", 0),
    ("ddim_steps", 2.0), ("ddim_eta", -0.1), ("ddim_eta", 1.5),
    ("ancestral_variance", "fixed"), ("clip_denoised", "yes"), ("sample_precision", "fp16"),
    ("batch_size", 0),
    ("sample_batch_size", -1),
]
BAD_VAE = [
    ("latent_dim", 0), ("hidden_widths", []), ("hidden_widths", [3.5]), ("activation", "swish"),
    ("beta", -1.0), ("lr", -1e-3), ("weight_decay", -0.1), ("batch_size", 2.0),
]


@pytest.mark.parametrize(("cls", "key", "value"),
                         [(Diffusion, k, v) for k, v in BAD_DIFFUSION]
                         + [(Vae, k, v) for k, v in BAD_VAE])
def test_invalid_config_names_the_key(cls, key, value):
    with pytest.raises(ConfigError, match=f"generator\\.{key}"):
        cls(**{key: value}, device="cpu")


def test_ddim_steps_beyond_timesteps_is_refused_only_for_ddim():
    with pytest.raises(ConfigError, match=r"generator\.ddim_steps must be an integer in \[1, "):
        Diffusion(timesteps=50, sampler="ddim", ddim_steps=100, device="cpu")
    Diffusion(timesteps=50, sampler="ancestral", device="cpu")


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_fit_and_sample_misuse_is_a_config_error(kind, train):
    gen = FACTORIES[kind]()
    with pytest.raises(ConfigError, match="must be fitted"):
        gen.sample(3)
    with pytest.raises(ConfigError, match="needs a training session"):
        gen.fit(fit_context(train))


def test_diffusion_learns_per_spin_magnetisations():
    n, probs = 5, torch.tensor([0.95, 0.9, 0.8, 0.2, 0.05])
    data_gen = torch.Generator().manual_seed(0)
    data = torch.where(torch.rand(2000, n, generator=data_gen) < probs, 1.0, -1.0)
    target = data.mean(0)  # about [0.9, 0.8, 0.6, -0.6, -0.9]
    options = {"encoder_widths": [64, 64], "decoder_widths": [64, 64], "time_dim": 32,
               "lr": 2e-3, "batch_size": 512, "seed": 0, "device": "cpu"}
    untrained = Diffusion(**options)
    untrained.fit(fit_context(data, make_trainer(1)))
    trained = Diffusion(**options)
    trained.fit(fit_context(data, make_trainer(400)))
    before = (untrained.sample(1000, torch.Generator().manual_seed(1)).mean(0) - target).abs()
    after = (trained.sample(1000, torch.Generator().manual_seed(1)).mean(0) - target).abs()
    # untrained: about 1 off; after 400 steps every spin's sign and size are right to 0.2
    # (0.13 here; about 0.02 after 3000 steps of a wider net, so the gap is training time)
    assert float(before.max()) > 0.8
    assert float(after.max()) < 0.2, (after, target)
    # bf16 matmuls while sampling: end points within bf16 rounding of fp32's (so bf16 did run),
    # the same learned magnetisations, few spins flipped
    ends, reverse = {}, trained.reverse

    def recorded_reverse(num, rng):
        ends[trained.sample_precision] = reverse(num, rng)
        return ends[trained.sample_precision]

    trained.reverse = recorded_reverse
    fp32 = trained.sample(1000, torch.Generator().manual_seed(1))
    trained.sample_precision = "bf16"
    bf16 = trained.sample(1000, torch.Generator().manual_seed(1))
    gap = (ends["bf16"] - ends["fp32"]).abs()
    assert 0 < float(gap.max()) < 0.2 and float(gap.mean()) < 0.01  # 0.03 and 0.0014 here
    assert float((bf16.mean(0) - target).abs().max()) < 0.2
    assert float((bf16 != fp32).float().mean()) < 0.02


def test_vae_elbo_decreases(train):
    options = {"latent_dim": 4, "hidden_widths": [64, 64], "lr": 3e-3, "seed": 1,
               "device": "cpu"}
    early, late = Vae(**options), Vae(**options)
    early.fit(fit_context(train, make_trainer(1)))
    late.fit(fit_context(train, make_trainer(200)))
    before = early.negative_elbo(train, torch.Generator().manual_seed(0))
    after = late.negative_elbo(train, torch.Generator().manual_seed(0))
    # 7 * ln 2 = 4.85 nats is the uniform distribution's; training must clearly beat its start
    assert before > 4.5 and after < before - 0.5, (before, after)
