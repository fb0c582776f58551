import dataclasses

import pytest
import torch

from attn_ocgan.config import RunConfig
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from attn_ocgan.errors import UserError
from attn_ocgan.registry import create_algorithm, create_model, known_models, resolve_model_config
from tests.conftest import SMALL_MODEL_ARGS


class ArbitraryObject:
    """A pickled class instance: refused by torch.load(weights_only=True)."""




def _small_run(name="ocgan"):
    model_config = resolve_model_config(name, "mnist5k", SMALL_MODEL_ARGS[name], 1, 32)
    config = dataclasses.replace(RunConfig(model=name), model_args=dataclasses.asdict(model_config))
    model = create_model(name, model_config)
    algorithm = create_algorithm(name, model, model_config, config.train)
    algorithm.train_step(torch.rand(8, 1, 32, 32) * 2 - 1, 0)  # non-trivial weights and BN statistics
    algorithm.end_epoch(torch.rand(8, 1, 32, 32) * 2 - 1)  # e.g. score statistics
    return config, model, algorithm


@pytest.mark.parametrize("name", known_models())
def test_round_trip_rebuilds_the_model_from_the_file_alone(tmp_path, name):
    config, model, algorithm = _small_run(name)
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint(path, config, model, algorithm, epoch=3)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left behind
    payload = read_checkpoint(path)
    assert payload["epoch"] == 3
    restored_config, restored = model_from_checkpoint(payload)
    assert restored_config == config
    assert restored.config == model.config  # the tiny test arguments survive the file:
    assert all(getattr(restored.config, key) == value for key, value in SMALL_MODEL_ARGS[name].items())
    images = torch.rand(4, 1, 32, 32) * 2 - 1
    torch.testing.assert_close(restored.score(images), model.eval().score(images))


def test_unreadable_and_foreign_files_are_user_errors(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        read_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(UserError, match="not an attn-ocgan checkpoint"):
        read_checkpoint(foreign)
    pickled_object = tmp_path / "object.pt"
    torch.save({"format": "attn-ocgan-checkpoint", "payload": ArbitraryObject()}, pickled_object)  # not loadable with weights_only
    with pytest.raises(UserError, match="cannot read checkpoint"):
        read_checkpoint(pickled_object)
    with pytest.raises(UserError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pt")


def test_resume_accepts_a_checkpoint_written_before_a_model_option_existed():
    from attn_ocgan.engine.trainer import _same_run

    config, _, _ = _small_run("attn-ocgan")
    wanted = config.to_dict()
    older = config.to_dict()
    del older["model_args"]["mined_negative_fraction"]  # added after such runs started
    assert _same_run(older, wanted)  # the new option takes its default, as a fresh run would
    changed = dataclasses.replace(config, model_args={**config.model_args, "mined_negative_fraction": 0.5}).to_dict()
    assert not _same_run(older, changed)  # a non-default value of the new option is another run
    assert not _same_run({**older, "model_args": {**older["model_args"], "temperature": 1.0}}, wanted)
    assert not _same_run({**older, "model_args": {**older["model_args"], "retired_option": 1}}, wanted)


def test_a_checkpoint_written_before_the_defaults_changed_rebuilds_as_it_trained(tmp_path):
    # attn-ocgan's defaults changed (registered former_defaults): a run saved before its options
    # existed lacks those keys and must rebuild with the values it trained with, not today's defaults
    from attn_ocgan.engine.trainer import _same_run
    from attn_ocgan.models.attn_ocgan import FIRST_RECIPE

    name = "attn-ocgan"
    model_config = resolve_model_config(name, "mnist5k", {**SMALL_MODEL_ARGS[name], **FIRST_RECIPE}, 1, 32)
    config = dataclasses.replace(RunConfig(model=name), model_args=dataclasses.asdict(model_config))
    model = create_model(name, model_config)
    algorithm = create_algorithm(name, model, model_config, config.train)
    older = dataclasses.replace(config, model_args={k: v for k, v in config.model_args.items()
                                                    if k not in ("guide_task", "guide_evidence_score", "score_weights",
                                                                 "mask_area_constraint", "mask_complement_weight")})
    save_checkpoint(tmp_path / "last.pt", older, model, algorithm, epoch=1)
    _, restored = model_from_checkpoint(read_checkpoint(tmp_path / "last.pt"))  # the one-logit guide's weights fit
    assert all(getattr(restored.config, key) == value for key, value in FIRST_RECIPE.items())
    assert restored.guide.outputs == 1 and FIRST_RECIPE["guide_task"] != resolve_model_config(name, "mnist5k", {}, 1, 32).guide_task
    assert _same_run(older.to_dict(), config.to_dict())  # the first recipe asked for explicitly resumes it
    today = dataclasses.replace(config, model_args=dataclasses.asdict(resolve_model_config(name, "mnist5k", SMALL_MODEL_ARGS[name], 1, 32)))
    assert not _same_run(older.to_dict(), today.to_dict())  # today's defaults are another run
