"""The proxy sweep: per-epoch validation records (engine) and attn-ocgan report proxy (protocol/reports)."""
import dataclasses
import json

from attn_ocgan.cli import main
from attn_ocgan.config import DataConfig, RunConfig, TrainConfig
from attn_ocgan.data import load_one_class
from attn_ocgan.engine import trainer as trainer_module
from attn_ocgan.engine.evaluation import auc, compute_scores
from attn_ocgan.protocol.runner import run_protocol
from tests.conftest import SMALL_MODEL_ARGS


def _attention_config(epochs: int = 2, **model_args) -> RunConfig:
    return RunConfig(model="attn-ocgan", data=DataConfig(name="mnist5k", normal_class=1, val_fraction=0.1, val_novel=100),
                     train=TrainConfig(epochs=epochs, batch_size=64, eval_every=0, select_epoch="validation"),
                     model_args={**SMALL_MODEL_ARGS["attn-ocgan"], **model_args})


def test_each_epoch_records_the_validation_auc_its_components_and_the_masks_of_training_images_only(tmp_path, monkeypatch):
    scored = []
    real = trainer_module.validation_record
    monkeypatch.setattr(trainer_module, "validation_record",
                        lambda model, images, is_novel: scored.append(len(images)) or real(model, images, is_novel))
    result = trainer_module.train(_attention_config(), tmp_path / "run", progress=False)
    data = load_one_class(_attention_config().data)
    assert scored == [len(data.validation) + len(data.validation_novel)] * 2  # the validation split, never the test split
    trace = trainer_module.read_validation_trace(tmp_path / "run")
    assert [r["epoch"] for r in trace] == [1, 2]
    assert set(trace[-1]["component_aucs"]) == {"first_gan", "masked_gan", "guide_rotation_x", "guide_rotation_masked"}
    assert set(trace[-1]["masks"]) == {"normal", "novel"}
    assert 0 < trace[-1]["masks"]["normal"]["area"] < 1
    assert set(trace[-1]["mask_aucs"]) == {"area", "decisiveness", "on_bright_pixels", "reference_bright_share"}
    # the record's AUC is the selected model's validation AUC, recomputed from the checkpoint
    from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint
    _, model = model_from_checkpoint(read_checkpoint(result["selected_checkpoint"]))
    images, is_novel = data.validation_set()
    assert abs(auc(is_novel.numpy(), compute_scores(model, images)) - result["val_auc"]) < 1e-9
    assert result["val_auc"] == max(r["auc"] for r in trace)


def test_report_proxy_tables_each_recipe_per_class_and_draws_the_curves(tmp_path):
    for recipe, args, seeds in (("grey", {}, [0]), ("barrier", {"mask_area_constraint": "barrier", "mask_area_target": 0.3}, [0, 1])):
        config = _attention_config(**args)
        run_protocol(config, [1], seeds, tmp_path / "results", tmp_path / "runs" / recipe, "cmd", tag=f"proxy-{recipe}",
                     echo=lambda message: None, progress=False)
    folders = sorted(str(p) for p in (tmp_path / "runs").glob("*/proxy-*_attn-ocgan"))
    assert len(folders) == 2
    out = tmp_path / "proxy.md"
    assert main(["report", "proxy", "--out", str(out), *folders]) == 0
    text = out.read_text()
    assert out.with_suffix(".png").stat().st_size > 0
    rows = [line for line in text.splitlines() if line.startswith("| proxy-")]
    assert [row.split("|")[1].strip() for row in rows] == ["proxy-barrier_attn-ocgan", "proxy-grey_attn-ocgan"]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1:4] == ["1", "0,1", "2/2"]  # class, seeds, epochs per seed
    # the last-epoch AUC is the mean of the two seeds' last records
    records = [json.loads(line.splitlines()[-1]) for line in
               [(p / "validation.jsonl").read_text() for p in sorted((tmp_path / "runs").glob("barrier/*/class1_seed*"))]]
    mean = sum(r["auc"] for r in records) / 2
    assert cells[4].startswith(f"{mean:.3f}")
    assert "masked_gan alone, last" in text and "    attn-ocgan report proxy --out" in text


def test_report_proxy_refuses_a_folder_without_traces_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "runs" / "class1_seed0_e2").mkdir(parents=True)
    out = tmp_path / "proxy.md"
    assert main(["report", "proxy", "--out", str(out), str(tmp_path / "runs")]) == 2
    assert "has no cell with a validation.jsonl" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".png").exists()
    for damaged in ("not json\n", '{"foo": 1}\n', "[1, 2]\n"):
        (tmp_path / "runs" / "class1_seed0_e2" / "validation.jsonl").write_text('{"epoch": 1, "auc": 0.5}\n' + damaged)
        assert main(["report", "proxy", "--out", str(out), str(tmp_path / "runs")]) == 2
        assert "validation.jsonl, line 2, is not a validation record" in capsys.readouterr().err
        assert not out.exists()


def test_a_last_epoch_run_writes_no_trace(tmp_path):
    config = _attention_config(epochs=1)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, select_epoch="last"))
    trainer_module.train(config, tmp_path / "run", progress=False)
    assert trainer_module.read_validation_trace(tmp_path / "run") == []
