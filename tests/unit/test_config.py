import pytest

from attn_ocgan.cli import build_config
from attn_ocgan.config import RunConfig, run_config_from_dict
from attn_ocgan.errors import UserError
from attn_ocgan.registry import resolve_model_config


def _build(config_file=None, **flags):
    return build_config({"config_file": config_file, **flags})


def test_precedence_defaults_then_file_then_flags(tmp_path):
    default = RunConfig()
    path = tmp_path / "run.yaml"
    path.write_text("data: {name: mnist, normal_class: 3}\ntrain: {epochs: 7, lr: 0.001}\nmodel_args: {latent_channels: 24}\n")
    from_file = _build(str(path))
    assert (from_file.data.name, from_file.data.normal_class, from_file.train.epochs, from_file.train.lr) == ("mnist", 3, 7, 0.001)
    assert from_file.train.batch_size == default.train.batch_size  # untouched keys keep their defaults
    from_flags = _build(str(path), epochs=2, normal_class=5, model_args=("noise_std=0.1",))
    assert (from_flags.train.epochs, from_flags.data.normal_class, from_flags.train.lr) == (2, 5, 0.001)
    assert from_flags.model_args == {"latent_channels": 24, "noise_std": 0.1}


def test_unknown_keys_are_errors(tmp_path):
    with pytest.raises(UserError, match="unknown key.*epoch"):
        run_config_from_dict({"train": {"epoch": 3}})
    with pytest.raises(UserError, match="unknown section"):
        run_config_from_dict({"optimizer": {}})
    with pytest.raises(UserError, match="unknown key.*latent_chanels"):
        resolve_model_config("ocgan", "mnist", {"latent_chanels": 3}, 1, 32)
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        _build(str(bad))


def test_dataset_presets_sit_between_defaults_and_user_args():
    cifar = resolve_model_config("ocgan", "cifar10", {}, 3, 32)
    mnist = resolve_model_config("ocgan", "mnist", {}, 1, 32)
    assert cifar.generator_width != mnist.generator_width  # the preset applied
    assert resolve_model_config("ocgan", "cifar10", {"generator_width": 8}, 3, 32).generator_width == 8
    assert cifar.in_channels == 3 and mnist.in_channels == 1
    # the scoring EMA is measured for OCGAN on full MNIST only; a flag still turns it off
    assert mnist.ema_decay == 0.995 and resolve_model_config("ocgan", "mnist5k", {}, 1, 32).ema_decay == 0
    assert resolve_model_config("ocgan", "mnist", {"ema_decay": 0}, 1, 32).ema_decay == 0
    assert resolve_model_config("attn-ocgan", "mnist", {}, 1, 32).ema_decay == 0
