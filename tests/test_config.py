"""Typed configs: presets, the plain-dict round trip that checkpoints use, and the sets of allowed
values that validation and the command line read from one place."""

from __future__ import annotations

import pytest

from mmslim import config
from mmslim.config import ModelConfig, TrainConfig


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig])
def test_paper_preset_is_the_default_and_presets_only_override(cls):
    assert cls.preset("paper") == cls()
    for name in config.PRESETS:
        assert cls.preset(name) == cls(**cls._presets.get(name, {})), name


def test_presets_have_the_documented_sizes():
    small, tiny = ModelConfig.preset("cpu-small"), ModelConfig.preset("tiny")
    assert (small.hidden, small.res_hidden, small.code_dim, small.num_codes) == (48, 16, 32, 512)
    assert (tiny.hidden, tiny.num_codes, tiny.code_dim, tiny.n_res_layers) == (16, 64, 8, 1)
    paper = ModelConfig()  # the reference release's sizes
    assert (paper.hidden, paper.res_hidden, paper.n_res_layers) == (128, 32, 2)
    assert (paper.num_codes, paper.code_dim, paper.beta) == (512, 64, 0.25)
    recipe = TrainConfig()
    assert (recipe.lr_hi, recipe.lr_lo, recipe.lr_mask) == (5e-5, 1e-5, 5e-5)
    assert (recipe.plateau_factor, recipe.plateau_patience, recipe.batch_size) == (0.5, 3, 32)
    assert recipe.amsgrad and recipe.ssim_window == "box" and recipe.val_fraction == 0.25


def test_preset_overrides_and_unknown_preset():
    assert ModelConfig.preset("tiny", num_codes=32).num_codes == 32
    assert ModelConfig.preset("tiny", num_codes=32).hidden == 16
    with pytest.raises(
        ValueError, match="unknown preset 'huge'; choose one of paper, cpu-small, tiny"
    ):
        TrainConfig.preset("huge")


@pytest.mark.parametrize("cfg", [ModelConfig.preset("tiny", fsq_levels=(8, 8)), TrainConfig()])
def test_dict_round_trip(cfg):
    d = cfg.to_dict()
    assert type(cfg).from_dict(d) == cfg
    assert cfg.same_as(d)


def test_same_as_fills_missing_fields_with_defaults_and_sees_differences():
    tiny = ModelConfig.preset("tiny")
    stored = tiny.to_dict()
    del stored["soft_tau"]  # a checkpoint written before the field existed
    assert tiny.same_as(stored)
    assert not tiny.same_as({**stored, "hidden": 17})
    assert not ModelConfig.preset("tiny", soft_tau=2.0).same_as(stored)
    # a tuple stored as a list (as JSON or a checkpoint gives it back) is the same value
    levels = ModelConfig.preset("tiny", fsq_levels=(8, 8))
    assert levels.same_as({**levels.to_dict(), "fsq_levels": [8, 8]})


def test_from_dict_names_unknown_fields():
    with pytest.raises(ValueError, match=r"ModelConfig: unknown fields \['colour', 'size'\]"):
        ModelConfig.from_dict({"hidden": 8, "size": 1, "colour": "red"})


def test_allowed_values_are_defined_once():
    assert config.STAGES == config.KINDS == ("amplitude", "phase")
    assert config.BRANCHES == ("hi", "lo")
    assert config.QUANTIZER_BRANCHES == ("both", "hi", "lo")
    assert config.CODING_MODES == ("fixed", "huffman", "ans")  # the order is the file's code
    assert ModelConfig().mask in config.MASK_MODES and ModelConfig().mask == config.MASK_MODES[0]
    assert TrainConfig().ssim_window in config.SSIM_WINDOWS
    assert config.MAX_CODES == 2**15


def test_every_module_that_checks_a_choice_reads_the_shared_set():
    from mmslim.codec import prior
    from mmslim.data import dataset
    from mmslim.nn import model
    from mmslim.training import fit

    assert fit.STAGES is config.STAGES
    assert dataset.KINDS is config.KINDS
    assert prior.BRANCHES is config.BRANCHES
    assert model.MASK_MODES is config.MASK_MODES
