"""Typed configs: presets, the plain-dict round trip that checkpoints use, and the sets of allowed
values that validation and the command line read from one place."""

from __future__ import annotations

import pytest

from mmslim import config
from mmslim.config import (
    FSQConfig,
    GumbelConfig,
    LibraryVQConfig,
    ModelConfig,
    SoftConfig,
    TrainConfig,
    VQConfig,
)


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


FAMILY_CONFIGS = [
    VQConfig(codebook_init="kmeans", ema_decay=0.99, dead_code_steps=20),
    VQConfig(gradient="rotation", affine="learned"),
    VQConfig(sync_nu=0.2, affine="statistics"),
    VQConfig(inplace_optimizer="sgd", inplace_lr=5.0, codebook_init="kmeans"),
    SoftConfig(learnable_std=True, alter_penalty="spread", learnable_gamma=True),
    FSQConfig(levels=(8, 8)),
    GumbelConfig(tau_start=2.0, anneal_steps=10),
    SoftConfig(tau=0.5, codebook_init="rd_gaussian"),
    LibraryVQConfig(codebook_init="kmeans", dead_code=True),
]


@pytest.mark.parametrize(
    "cfg",
    [ModelConfig.preset("tiny", quantizer=q, quantizer_branches="hi") for q in FAMILY_CONFIGS]
    + [TrainConfig()],
)
def test_dict_round_trip(cfg):
    d = cfg.to_dict()
    assert type(cfg).from_dict(d) == cfg
    assert cfg.same_as(d)
    if isinstance(cfg, ModelConfig):  # the family travels with its options
        assert d["quantizer"]["family"] == cfg.quantizer.family
        assert config.quantizer_config_from_dict(d["quantizer"]) == cfg.quantizer


def test_same_as_fills_missing_fields_with_defaults_and_sees_differences():
    tiny = ModelConfig.preset("tiny", quantizer=SoftConfig())
    stored = tiny.to_dict()
    del stored["quantizer"]["tau"]  # a checkpoint written before the option existed
    assert tiny.same_as(stored)
    assert not tiny.same_as({**stored, "hidden": 17})
    assert not ModelConfig.preset("tiny", quantizer=SoftConfig(tau=2.0)).same_as(stored)
    # a tuple stored as a list (as JSON or a checkpoint gives it back) is the same value
    levels = ModelConfig.preset("tiny", quantizer=FSQConfig(levels=(8, 8)))
    stored = levels.to_dict()
    assert levels.same_as({**stored, "quantizer": {**stored["quantizer"], "levels": [8, 8]}})


# The flat form of ModelConfig dicts written before the family configs (the shipped
# checkpoints hold it): every quantizer option beside the family's name, at its default if unused.
FLAT = {"hidden": 48, "res_hidden": 16, "n_res_layers": 2, "num_codes": 512, "code_dim": 32,
        "beta": 0.25, "mask_hidden": 16, "quantizer": "vq", "mask": "learned",
        "mask_head": "sigmoid", "quantizer_branches": "both", "codebook_init": "kmeans",
        "ema_decay": 0.99, "dead_code_steps": 20, "vq_gradient": "ste", "codebook_affine": False,
        "fsq_levels": (), "gumbel_tau_start": 1.0, "gumbel_tau_end": 0.0625,
        "gumbel_anneal_steps": 5000, "soft_tau": 1.0}  # fmt: skip
PLAIN = {"codebook_init": "uniform", "ema_decay": 0.0, "dead_code_steps": 0}


def test_flat_dicts_written_before_the_family_configs_still_read():
    assert ModelConfig.from_dict(FLAT) == ModelConfig.preset("cpu-small")
    assert ModelConfig.preset("cpu-small").same_as(FLAT)
    cases = [
        ({"quantizer": "vq", "vq_gradient": "rotation", "codebook_affine": True},
         VQConfig(gradient="rotation", affine="learned")),
        ({"quantizer": "fsq", "fsq_levels": [8, 8, 8]}, FSQConfig(levels=(8, 8, 8))),
        ({"quantizer": "gumbel", "gumbel_anneal_steps": 115, "dead_code_steps": 3},
         GumbelConfig(anneal_steps=115, dead_code_steps=3)),
        ({"quantizer": "soft", "soft_tau": 2.0}, SoftConfig(tau=2.0)),
        ({"quantizer": "vqp", "ema_decay": 0.99, "codebook_init": "kmeans", "dead_code_steps": 20},
         LibraryVQConfig(codebook_init="kmeans", dead_code=True)),
    ]  # fmt: skip
    for changes, expected in cases:
        assert ModelConfig.from_dict({**FLAT, **PLAIN, **changes}).quantizer == expected
    # older still: no quantizer field at all (plain VQ), no mask head (the paper's)
    old = {k: FLAT[k] for k in ("hidden", "res_hidden", "n_res_layers", "num_codes", "code_dim")}
    assert ModelConfig.from_dict(old).quantizer == VQConfig()
    assert ModelConfig.from_dict(old).mask_head == "reference"


def test_flat_dicts_that_could_never_be_built_are_refused():
    with pytest.raises(ValueError, match="quantizer 'fsq' has no option ema_decay$"):
        ModelConfig.from_dict({**FLAT, **PLAIN, "quantizer": "fsq", "ema_decay": 0.99})
    with pytest.raises(ValueError, match="unknown quantizer 'nope'"):
        ModelConfig.from_dict({**FLAT, "quantizer": "nope"})
    with pytest.raises(ValueError, match=r"unknown fields \['soft_tau'\] beside a quantizer"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "soft_tau": 1.0})
    with pytest.raises(ValueError, match="unknown quantizer family 'nope'"):
        ModelConfig.from_dict({"quantizer": {"family": "nope"}})


def test_family_configs_validate_themselves():
    with pytest.raises(ValueError, match=r"VQConfig.codebook_init = 'random'; choose one of"):
        VQConfig(codebook_init="random")
    with pytest.raises(ValueError, match="ema_decay = 1.5"):
        VQConfig(ema_decay=1.5)
    with pytest.raises(ValueError, match="dead_code_steps = -1 < 0"):
        SoftConfig(dead_code_steps=-1)
    with pytest.raises(ValueError, match=r"FSQConfig: levels \(8, 1\) must all be >= 2"):
        FSQConfig(levels=(8, 1))
    with pytest.raises(ValueError, match="need 0 < tau_end <= tau_start"):
        GumbelConfig(tau_start=0.1, tau_end=1.0)
    with pytest.raises(ValueError, match="SoftConfig: tau = 0"):
        SoftConfig(tau=0)
    with pytest.raises(ValueError, match=r"LibraryVQConfig.codebook_init = 'rd_gaussian'"):
        LibraryVQConfig(codebook_init="rd_gaussian")
    with pytest.raises(TypeError):  # a family config simply has no foreign option
        FSQConfig(ema_decay=0.99)
    assert tuple(config.QUANTIZER_CONFIGS) == config.QUANTIZER_FAMILIES


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
