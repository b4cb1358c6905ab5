"""Training assembly: every `_target_` node under `callbacks:` runs, whatever its name."""

from __future__ import annotations

import pytest

from isingaug.config import compose_config
from isingaug.errors import ConfigError
from isingaug.pipeline import run
from isingaug.training import build_callbacks, training_length

TINY = ["dataset.n=6", "dataset.M=200", "dataset.M_test=100", "device=cpu", "generator=vae",
        "M_plus=200", "trainer.max_steps=12", "generator.hidden_widths=[16]",
        "generator.latent_dim=2"]


def test_a_lightning_callback_added_in_yaml_runs(tmp_path):
    extra = tmp_path / "extra"
    cfg = compose_config([*TINY, f"paths.output_dir={tmp_path / 'run'}",
                          "+callbacks.every_four._target_="
                          "pytorch_lightning.callbacks.ModelCheckpoint",
                          f"+callbacks.every_four.dirpath={extra}",
                          "+callbacks.every_four.every_n_train_steps=4",
                          "+callbacks.every_four.save_top_k=-1",
                          "+callbacks.every_four.filename='s{step}'"])
    run(cfg, tmp_path / "run")
    assert sorted(p.name for p in extra.glob("*.ckpt")) == ["sstep=12.ckpt", "sstep=4.ckpt",
                                                           "sstep=8.ckpt"]


def test_a_callback_node_that_is_not_a_callback_is_refused(tmp_path):
    cfg = compose_config([f"paths.output_dir={tmp_path}",
                          "+callbacks.wrong._target_=collections.OrderedDict"])
    with pytest.raises(ConfigError, match=r"callbacks\.wrong: collections\.OrderedDict is not"):
        build_callbacks(cfg.callbacks)


def test_training_length_is_the_generators_unless_the_trainer_sets_one():
    assert training_length(None, 3000) == 3000
    assert training_length(50, 3000) == 50
    with pytest.raises(ConfigError, match=r"generator\.max_steps must be an integer >= 1"):
        training_length(None, 0)
    with pytest.raises(ConfigError, match=r"trainer\.max_steps must be an integer >= 1"):
        training_length("long", 3000)


def test_a_generator_trains_for_its_own_length(tmp_path):
    cfg = compose_config([*TINY[:-3], "generator.max_steps=7", "generator.hidden_widths=[16]",
                          "generator.latent_dim=2", "trainer.max_steps=null",
                          f"paths.output_dir={tmp_path}"])
    results = run(cfg, tmp_path)
    assert results["metrics"]["gen/steps"] == 7 and results["run"]["max_steps"] == 7
