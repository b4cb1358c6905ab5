"""The learned generators' shared training options: the cosine learning-rate schedule and each
generator's own training length (generator.max_steps unless trainer.max_steps is set)."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch

from conftest import fit_context
from isingaug.config import compose_config
from isingaug.errors import ConfigError
from isingaug.generators.diffusion import Diffusion
from isingaug.generators.rbm import FFRbm, Rbm
from isingaug.generators.vae import Vae
from isingaug.training import training_length

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*LeafSpec.*is deprecated",
)

SMALL = {
    "diffusion": (Diffusion, {"encoder_widths": [8], "decoder_widths": [8], "time_dim": 4,
                              "timesteps": 10, "sampler": "ddim", "ddim_steps": 2}),
    "vae": (Vae, {"latent_dim": 2, "hidden_widths": [8]}),
    "rbm": (Rbm, {"hidden": 3, "k": 1, "gibbs_steps": 2}),
    "ff_rbm": (FFRbm, {"hidden": 3, "k": 2}),
}
STEPS = 8


class LrRecorder(pl.Callback):
    """The learning rate each optimizer step runs with."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def trained_lrs(name: str, **options: object) -> list[float]:
    cls, small = SMALL[name]
    gen = cls(**small, lr=0.02, batch_size=8, device="cpu", **options)
    recorder = LrRecorder()
    trainer = pl.Trainer(max_steps=STEPS, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[recorder])
    gen.fit(fit_context(torch.randint(0, 2, (30, 4)).float() * 2 - 1, trainer))
    assert trainer.global_step == STEPS
    return recorder.lrs


@pytest.mark.parametrize("name", sorted(SMALL))
def test_cosine_schedule_decays_to_the_final_factor(name: str) -> None:
    lrs = trained_lrs(name, lr_schedule="cosine", lr_final_factor=0.1)
    expected = [0.02 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / STEPS)))
                for s in range(STEPS)]
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert trained_lrs(name) == pytest.approx([0.02] * STEPS, rel=1e-12)


@pytest.mark.parametrize(("key", "value"), [("lr_schedule", "step"), ("lr_final_factor", 2.0),
                                            ("max_steps", 0)])
def test_invalid_training_options_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"generator.{key}"):
        Vae(device="cpu", **{key: value})


@pytest.mark.parametrize("name", sorted(SMALL))
def test_each_generator_has_its_own_length_and_the_trainer_can_override_it(name: str) -> None:
    cfg = compose_config([f"generator={name}"])
    assert cfg.generator.max_steps >= 1000 and cfg.trainer.max_steps is None
    assert training_length(cfg.trainer.max_steps, cfg.generator.max_steps) == \
        cfg.generator.max_steps
    cfg = compose_config([f"generator={name}", "trainer.max_steps=7"])
    assert training_length(cfg.trainer.max_steps, cfg.generator.max_steps) == 7
