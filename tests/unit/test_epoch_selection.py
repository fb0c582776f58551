"""--select-epoch validation: the validation split, the checkpoint it chooses, and the protocol rows."""
import dataclasses

import pytest
import torch

from attn_ocgan.cli import build_config
from attn_ocgan.config import DataConfig, RunConfig, TrainConfig
from attn_ocgan.data import make_one_class
from attn_ocgan.data.datasets import LabeledSplits
from attn_ocgan.engine import trainer as trainer_module
from attn_ocgan.engine.checkpoint import read_checkpoint
from attn_ocgan.protocol.runner import run_protocol
from attn_ocgan.protocol.tables import read_rows
from attn_ocgan.errors import UserError

SMALL_OCGAN = {"generator_width": 8, "latent_channels": 8, "classifier_width": 8, "visual_disc_width": 4}


def splits_whose_pixels_name_their_class(n_per_class: int = 20, n_classes: int = 5) -> LabeledSplits:
    labels = torch.arange(n_classes).repeat_interleave(n_per_class)
    images = labels.view(-1, 1, 1, 1).expand(-1, 1, 32, 32).to(torch.uint8).contiguous()
    return LabeledSplits(images, labels, images[:10].clone(), labels[:10].clone(), tuple(map(str, range(n_classes))))


def test_validation_split_holds_out_normal_images_and_samples_other_classes_of_the_training_split():
    splits = splits_whose_pixels_name_their_class()
    data = make_one_class(splits, normal_class=2, val_fraction=0.25, val_novel=30)
    assert len(data.train) == 15 and len(data.validation) == 5
    classes_of = lambda images: ((images[:, 0, 0, 0] + 1) * 127.5).round().long()  # noqa: E731 (pixel value = class)
    assert set(classes_of(data.validation).tolist()) == {2}
    novel_classes = classes_of(data.validation_novel)
    assert len(novel_classes) == 30 and 2 not in novel_classes.tolist() and len(set(novel_classes.tolist())) > 1
    images, is_novel = data.validation_set()
    assert torch.equal(is_novel, torch.tensor([0] * 5 + [1] * 30))
    assert torch.equal(classes_of(images) != 2, is_novel.bool())
    # a fixed sample per class, whatever the global random state
    torch.manual_seed(123)
    assert torch.equal(make_one_class(splits, 2, 0.25, 30).validation_novel, data.validation_novel)
    # no hold-out, no validation split
    assert len(make_one_class(splits, 2, 0.0, 30).validation_novel) == 0


def _config(**train) -> RunConfig:
    return RunConfig(model="ocgan", data=DataConfig(name="mnist5k", normal_class=1, val_fraction=0.1, val_novel=200),
                     train=TrainConfig(batch_size=100, eval_every=0, select_epoch="validation", **{"epochs": 3, **train}),
                     model_args=SMALL_OCGAN)


def _scripted_validation_auc(monkeypatch, values):
    """The trainer's validation AUC of each epoch comes from ``values`` (the test AUC it logs is left alone)."""
    script = iter(values)
    monkeypatch.setattr(trainer_module, "validation_record", lambda model, images, is_novel: {"auc": next(script)})


def test_the_best_validation_epoch_is_kept_and_survives_a_resume(tmp_path, monkeypatch):
    _scripted_validation_auc(monkeypatch, [0.6, 0.9, 0.7])
    result = trainer_module.train(_config(), tmp_path / "run", progress=False)
    assert (result["selected_epoch"], result["val_auc"]) == (2, 0.9)
    best, last = read_checkpoint(result["selected_checkpoint"]), read_checkpoint(result["checkpoint"])
    assert (best["epoch"], last["epoch"]) == (2, 3)
    assert any(not torch.equal(best["model"][k], last["model"][k]) for k in last["model"])  # epoch 2's weights, not 3's

    # Extending the run: the best so far is read back from best.pt, so a worse epoch 4 keeps epoch 2
    _scripted_validation_auc(monkeypatch, [0.8])
    result = trainer_module.train(_config(epochs=4), tmp_path / "run", resume=True, progress=False)
    assert (result["selected_epoch"], result["val_auc"]) == (2, 0.9)
    _scripted_validation_auc(monkeypatch, [0.95])
    result = trainer_module.train(_config(epochs=5), tmp_path / "run", resume=True, progress=False)
    assert (result["selected_epoch"], read_checkpoint(result["selected_checkpoint"])["epoch"]) == (5, 5)
    # one validation record per epoch, kept across the resumes
    assert [(r["epoch"], r["auc"]) for r in trainer_module.read_validation_trace(tmp_path / "run")] == \
        [(1, 0.6), (2, 0.9), (3, 0.7), (4, 0.8), (5, 0.95)]


def test_a_resume_drops_the_validation_records_written_after_its_checkpoint(tmp_path, monkeypatch):
    _scripted_validation_auc(monkeypatch, [0.6, 0.7])
    trainer_module.train(_config(epochs=2), tmp_path / "run", progress=False)
    trace = tmp_path / "run" / trainer_module.VALIDATION_TRACE_NAME
    trace.write_text(trace.read_text() + '{"epoch": 3, "auc": 0.1}\n')  # a run killed after the record, before last.pt
    _scripted_validation_auc(monkeypatch, [0.8])
    trainer_module.train(_config(epochs=3), tmp_path / "run", resume=True, progress=False)
    assert [(r["epoch"], r["auc"]) for r in trainer_module.read_validation_trace(tmp_path / "run")] == [(1, 0.6), (2, 0.7), (3, 0.8)]


def test_last_epoch_selection_is_the_default_and_validation_needs_a_split(tmp_path):
    result = trainer_module.train(dataclasses.replace(_config(epochs=1), train=TrainConfig(epochs=1, batch_size=100, eval_every=0)),
                                  tmp_path / "last", progress=False)
    assert result["selected_checkpoint"] == result["checkpoint"] and result["val_auc"] is None
    no_split = dataclasses.replace(_config(), data=DataConfig(name="mnist5k", normal_class=1))
    with pytest.raises(UserError, match="--select-epoch validation needs a validation split"):
        trainer_module.train(no_split, tmp_path / "no-split", progress=False)
    with pytest.raises(UserError, match="--select-epoch 'best' is unknown"):
        trainer_module.train(dataclasses.replace(_config(), train=TrainConfig(select_epoch="best")), tmp_path / "bad", progress=False)
    assert not (tmp_path / "no-split").exists() and not (tmp_path / "bad").exists()  # nothing half-written


def test_cli_holds_out_ten_percent_for_validation_selection_unless_told():
    flags = dict(model="ocgan", dataset=None, normal_class=None, epochs=None, download=False)
    assert build_config({**flags, "select_epoch": "validation"}).data.val_fraction == 0.1
    assert build_config({**flags, "select_epoch": "validation", "val_fraction": 0.2, "val_novel": 50}).data.val_novel == 50
    assert build_config(flags).data.val_fraction == 0.0


def test_protocol_evaluates_the_chosen_epoch_and_keeps_selections_in_separate_tables(tmp_path, monkeypatch):
    import attn_ocgan.protocol.runner as protocol

    _scripted_validation_auc(monkeypatch, [0.8, 0.7])  # the best epoch is not the last
    evaluated = []
    real_read = protocol.read_checkpoint
    monkeypatch.setattr(protocol, "read_checkpoint", lambda path: evaluated.append(real_read(path)["epoch"]) or real_read(path))
    config = _config(epochs=2)
    messages = []
    csv_path = run_protocol(config, [1], [0], tmp_path / "results", tmp_path / "runs", "cmd", echo=messages.append, progress=False)
    assert evaluated == [1]  # best.pt (epoch 1) was scored, not last.pt (epoch 2)
    assert csv_path.name == "mnist5k-valsel_ocgan.csv"  # its own table by default
    (row,) = read_rows(csv_path)
    assert row["selection"].startswith("best validation epoch (10% of the normal training images held out vs 200")
    assert (row["selected_epoch"], row["val_auc"]) == ("1", "0.800000")
    assert (tmp_path / "runs" / "mnist5k-valsel_ocgan" / "class1_seed0_e2_valsel" / "checkpoints" / "best.pt").is_file()
    assert "chosen epochs [1]" in csv_path.with_suffix(".md").read_text()
    # a last-epoch run into the same table would mix two selections in one mean: refused before any training
    last = dataclasses.replace(config, train=dataclasses.replace(config.train, select_epoch="last"))
    with pytest.raises(UserError, match="holds rows whose model is the best validation epoch.*pass another --tag"):
        run_protocol(last, [2], [0], tmp_path / "results", tmp_path / "runs", "cmd", tag="mnist5k-valsel", echo=messages.append,
                     progress=False)
    assert len(read_rows(csv_path)) == 1


def test_a_finished_validation_run_serves_as_its_last_epoch_run_without_training(tmp_path, monkeypatch):
    _scripted_validation_auc(monkeypatch, [0.8, 0.7])
    trainer_module.train(_config(epochs=2), tmp_path / "run", progress=False)
    before = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    last = dataclasses.replace(_config(epochs=2), train=dataclasses.replace(_config(epochs=2).train, select_epoch="last"))
    result = trainer_module.train(last, tmp_path / "run", resume=True, progress=False)
    assert result["selected_checkpoint"] == result["checkpoint"] and result["selected_epoch"] == 2
    after = read_checkpoint(result["checkpoint"])
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])  # nothing trained
    # more epochs would train under the other selection: a different run, refused
    longer = dataclasses.replace(last, train=dataclasses.replace(last.train, epochs=3))
    with pytest.raises(UserError, match="different configuration"):
        trainer_module.train(longer, tmp_path / "run", resume=True, progress=False)


def test_runs_saved_before_the_selection_keys_existed_still_resume():
    wanted = _config().to_dict()
    wanted["train"]["select_epoch"], wanted["data"]["val_novel"] = "last", 2000  # the defaults
    older = {**wanted, "train": dict(wanted["train"]), "data": dict(wanted["data"])}
    del older["train"]["select_epoch"], older["data"]["val_novel"]
    assert trainer_module._same_run(older, wanted)
    moved = {**wanted, "data": {**wanted["data"], "root": "/elsewhere/data"}}  # the same images at another path
    assert trainer_module._same_run(older, moved)
    assert not trainer_module._same_run(older, {**wanted, "train": {**wanted["train"], "select_epoch": "validation"}})


@pytest.mark.parametrize("eval_every,scored_epochs", [(0, 0), (2, 2)])
def test_eval_every_scores_the_test_set_every_n_epochs_and_at_the_last_and_zero_never(tmp_path, monkeypatch, eval_every, scored_epochs):
    """--eval-every 0 leaves the test set to the evaluation after training (AnoGAN's scoring is a
    latent search per image: scoring it twice cost a third of a protocol cell); 2 of 3 epochs: 2 and 3."""
    n_test = len(trainer_module.load_one_class(_config().data).test)
    sizes = []
    real_compute_scores = trainer_module.compute_scores
    monkeypatch.setattr(trainer_module, "compute_scores", lambda model, images: sizes.append(len(images)) or real_compute_scores(model, images))
    config = dataclasses.replace(_config(), train=TrainConfig(epochs=3, batch_size=100, eval_every=eval_every))
    trainer_module.train(config, tmp_path / "run", progress=False)
    assert sizes.count(n_test) == scored_epochs
