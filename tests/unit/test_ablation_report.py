"""attn-ocgan report ablation (attn_ocgan/protocol/reports/ablation.py): the ablation table compiled from
protocol tables, and its settings, one YAML each under configs/ablation/."""
import dataclasses

import pytest

from attn_ocgan.cli import main
from attn_ocgan.config import load_config_file, run_config_from_dict
from attn_ocgan.protocol.reports.ablation import read_settings
from attn_ocgan.protocol.tables import append_row, read_rows
from attn_ocgan.reference import CLASS_NAMES
from attn_ocgan.registry import resolve_model_config
from tests.conftest import REPO

SETTINGS = REPO / "configs" / "ablation"


def _cell(results, tag, model, normal_class, auc, first_gan=None, area=None):
    row = {"dataset": tag, "model": model, "normal_class": normal_class, "seed": 0, "epochs": 25, "auc": f"{auc:.6f}",
           "train_seconds": 1, "negatives": "strict one-class", "machine": "m", "date": "d", "command": "c",
           "selection": "last epoch", "selected_epoch": 25, "val_auc": ""}
    metrics = None
    if first_gan is not None:
        metrics = {"auc": auc, "auc_per_score_component": {"first_gan": first_gan, "masked_gan": auc - 0.01},
                   "masks": {"test_normal": {"area": area, "decisiveness": 0.1}}}
    append_row(results / f"{tag}_{model}.csv", row, CLASS_NAMES["cifar10"], dataset=tag, metrics=metrics)


def test_the_table_compares_each_setting_with_the_defaults_on_the_same_classes(tmp_path):
    tables = tmp_path / "cifar10-jpeg"  # the protocol runner's dataset folder below --results
    for k, auc, first in ((0, 0.70, 0.66), (1, 0.40, 0.42), (9, 0.30, 0.33)):
        _cell(tables, "cifar10-jpeg", "attn-ocgan", k, auc, first_gan=first, area=0.6)
        _cell(tables, "cifar10-jpeg", "ocgan", k, first + (0.02 if k else 0.08))
    _cell(tables, "cifar10-jpeg-abl-noarea", "attn-ocgan", 0, 0.60, first_gan=0.64, area=0.98)
    _cell(tables, "cifar10-jpeg-abl-noarea", "attn-ocgan", 1, 0.35, first_gan=0.40, area=0.96)
    assert main(["report", "ablation", "--configs", str(SETTINGS), "--results", str(tmp_path)]) == 0
    out = tables / "ablation_cifar10-jpeg_attn-ocgan.md"  # beside the tables it reads
    text = out.read_text()
    rows = {line.split(" | ")[0].lstrip("| ").split(":")[0]: line.split(" | ") for line in text.splitlines()
            if line.startswith("| ") and "---" not in line}
    defaults = next(cells for label, cells in rows.items() if label.startswith("first recipe"))
    assert defaults[1:5] == ["0.700", "0.400", "0.300", "0.4667"]
    noarea = rows["noarea"]
    assert noarea[0] == "| noarea: mask area prior off: nothing stops trivial masks"  # the file's first comment line
    assert noarea[1:4] == ["0.600", "0.350", "—"]
    assert noarea[4] == "0.4750 (2/3)"
    assert noarea[5] == "-0.075 (2 cl.)"  # (0.60 + 0.35) / 2 - (0.70 + 0.40) / 2: truck is not in both rows
    assert noarea[6] == "0.98 / 0.96 / —"  # mask area per class, none logged for truck
    assert noarea[8] == "0.64 / 0.40 / —" and defaults[8] == "0.66 / 0.42 / 0.33"  # first GAN alone
    assert rows["temperature1"][4] == "not run"
    assert set(rows) - {next(iter(rows))} >= {p.stem for p in SETTINGS.glob("*.yaml")}  # one row per settings file
    assert "median 0.020 (max 0.080)" in text  # |first GAN - vanilla ocgan| over the three classes
    assert f"- `noarea`: `--model-arg mask_area_weight=0` (`{(SETTINGS / 'noarea.yaml').as_posix()}`)" in text
    assert "negatives: strict one-class)" in text.splitlines()[0]  # read from the rows
    produced_by = text.split("Produced by:")[1].strip().splitlines()[0]
    assert produced_by == f"attn-ocgan report ablation --configs {SETTINGS} --results {tmp_path}"
    assert out.with_suffix(".png").stat().st_size > 1000


def test_without_the_defaults_table_it_is_a_one_line_error_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "ablation.md"
    assert main(["report", "ablation", "--configs", str(SETTINGS), "--results", str(tmp_path), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error and "attn-ocgan protocol --config configs/attention/first-recipe.yaml --tag cifar10-jpeg" in error
    assert not out.exists() and not out.with_suffix(".png").exists()


@pytest.mark.parametrize("extra, message", [(["--classes", "0,x"], "cannot read classes '0,x'"),
                                            (["--classes", "0,12"], "class 12 is out of range"),
                                            (["--configs", "nowhere"], "no ablation settings (*.yaml) in nowhere")])
def test_bad_input_is_a_one_line_error_and_nothing_is_written(tmp_path, capsys, extra, message):
    _cell(tmp_path, "cifar10-jpeg", "attn-ocgan", 0, 0.7)
    out = tmp_path / "ablation.md"
    assert main(["report", "ablation", "--configs", str(SETTINGS), "--results", str(tmp_path), "--out", str(out), *extra]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error and message in error
    assert not out.exists()


def test_every_setting_changes_the_attention_config_and_prints_as_protocol_flags(capsys):
    assert main(["report", "ablation", "--configs", str(SETTINGS), "--print-settings"]) == 0
    listed = dict(line.split(":", 1) for line in capsys.readouterr().out.strip().splitlines())
    settings = read_settings(SETTINGS)
    assert listed == {name: f"--config {setting.path.as_posix()}" for name, setting in settings.items()}
    assert {"temperature1", "noguide", "noarea", "nowarmup", "reset10", "complement"} <= set(settings)
    first_recipe = run_config_from_dict(load_config_file(REPO / "configs" / "attention" / "first-recipe.yaml"))
    baseline = resolve_model_config("attn-ocgan", "cifar10", first_recipe.model_args, 3, 32)
    for name, setting in settings.items():
        config = run_config_from_dict(load_config_file(setting.path))
        changed = resolve_model_config(config.model, "cifar10", config.model_args, 3, 32)
        differences = {f.name for f in dataclasses.fields(baseline) if getattr(baseline, f.name) != getattr(changed, f.name)}
        assert differences == set(setting.changes) != set(), f"setting {name} changes {differences} against the first recipe"
        assert setting.description, f"{setting.path} needs a first comment line saying what differs"


def test_run_trains_only_the_missing_cells_with_their_config_and_redraws_the_table(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the settings' paths are relative, as when run from the repository root
    _cell(tmp_path / "mnist5k", "mnist5k", "attn-ocgan", 3, 0.9)  # the defaults' row, where protocol --results puts it
    out, logs = tmp_path / "ablation.md", tmp_path / "logs"
    tiny = ["--dataset", "mnist5k", "--epochs", "1", "--batch-size", "100", "--eval-every", "0", "--threads", "1",
            "--device", "cpu", "--runs", str(tmp_path / "runs"), "--model-arg", "generator_width=8",
            "--model-arg", "latent_channels=6", "--model-arg", "guide_width=8", "--model-arg", "classifier_width=8",
            "--model-arg", "visual_disc_width=4"]
    table_args = ["report", "ablation", "--results", str(tmp_path), "--tag", "mnist5k", "--classes", "3", "--out", str(out)]
    run_args = [*table_args, "--run", "--settings", "nowarmup,reset10", "--jobs", "2", "--logs", str(logs), "--", *tiny]
    _cell(tmp_path / "mnist5k", "mnist5k-abl-reset10", "attn-ocgan", 3, 0.8)  # already done: not trained again
    assert main(run_args) == 0
    printed = capsys.readouterr().out
    assert "1 cells to train: nowarmup class 3" in printed
    (row,) = read_rows(tmp_path / "mnist5k" / "mnist5k-abl-nowarmup_attn-ocgan.csv")
    assert "--config configs/ablation/nowarmup.yaml" in row["command"] and "--tag mnist5k-abl-nowarmup" in row["command"]
    assert {p.name for p in logs.iterdir()} == {"nowarmup_class3.log"}
    text = out.read_text()
    nowarmup = next(line for line in text.splitlines() if line.startswith("| nowarmup"))
    assert nowarmup.split(" | ")[1] == f"{float(row['auc']):.3f}"
    produced_by = text.split("Produced by:")[1].strip().splitlines()[0]
    assert produced_by == f"attn-ocgan report ablation --results {tmp_path} --tag mnist5k --classes 3 --out {out}"  # re-draws, does not train
    # nothing left to train: a second run only redraws
    assert main(run_args) == 0
    assert "0 cells to train: none" in capsys.readouterr().out
    # options --run sets itself are refused after --, unknown settings by name
    assert main([*table_args, "--run", "--", *tiny, "--tag", "other"]) == 2
    assert "--tag is set by --run" in capsys.readouterr().err
    assert main([*table_args, "--run", "--settings", "nowarmup,typo"]) == 2
    assert "unknown setting(s) typo" in capsys.readouterr().err
    assert main([*table_args, "--settings", "nowarmup"]) == 2  # without --run it would choose nothing
    assert "--settings chooses the settings --run trains" in capsys.readouterr().err
