"""attn-ocgan report score-components (attn_ocgan/protocol/reports/score_components.py): one diagnostic row
per attention checkpoint or per logged protocol cell."""
import dataclasses
import json
from pathlib import Path

from attn_ocgan.cli import main
from attn_ocgan.data import load_one_class
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint
from attn_ocgan.engine.evaluation import evaluate_model
from attn_ocgan.engine.trainer import train
from attn_ocgan.protocol.reports.component_means import ratio_points
from attn_ocgan.protocol.runner import run_protocol
from attn_ocgan.protocol.tables import metrics_log_path, read_metrics_log, read_rows
from tests.conftest import SMALL_MODEL_ARGS, untrained_checkpoint


def _checkpoint(tiny_config, folder: Path, **model_args) -> Path:
    config = dataclasses.replace(tiny_config, model="attn-ocgan", model_args={**SMALL_MODEL_ARGS["attn-ocgan"], **model_args})
    return Path(train(config, folder, progress=False)["checkpoint"])


def _cells(out: Path, normal_class: int = 1) -> list[str]:
    row = next(line for line in out.read_text().splitlines() if line.startswith(f"| {normal_class} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_rows_hold_the_protocol_auc_and_each_component(tiny_config, tmp_path):
    checkpoint = _checkpoint(tiny_config, tmp_path / "run")
    out = tmp_path / "components.md"
    assert main(["report", "score-components", "--out", str(out), str(checkpoint)]) == 0
    config, model = model_from_checkpoint(read_checkpoint(checkpoint))
    metrics = evaluate_model(model, load_one_class(config.data))
    cells = _cells(out)
    assert cells[:3] == ["1", "0", "1"]  # class, seed, epochs of the checkpoint
    expected = [metrics["auc"], metrics["auc_per_score_component"]["first_gan"], metrics["auc_per_score_component"]["masked_gan"]]
    assert cells[3:6] == [f"{value:.4f}" for value in expected]
    assert len({cells[3], cells[4], cells[5]}) > 1  # three different scores, not one copied thrice
    assert cells[8] == f"{metrics['masks']['test_normal']['template_share']:.3f}"
    shape = metrics["mask_aucs"]
    assert cells[-1] == f"{shape['shape_deviation']:.3f} ({shape['reference_image_deviation']:.3f})"
    assert f"    attn-ocgan report score-components --out {out} {checkpoint}\n" in out.read_text()  # "Produced by"


def test_a_checkpoint_without_attention_is_refused_and_nothing_written(tiny_config, tmp_path, capsys):
    checkpoint = _checkpoint(tiny_config, tmp_path / "run", attention=False)
    out = tmp_path / "components.md"
    assert main(["report", "score-components", "--out", str(out), str(checkpoint)]) == 2
    assert "without attention" in capsys.readouterr().err and not out.exists()


def test_before_the_masked_gan_trains_its_columns_say_so(tiny_config, tmp_path):
    checkpoint = _checkpoint(tiny_config, tmp_path / "run", mask_warmup_epochs=5)  # 1 epoch: the masked GAN never steps
    out = tmp_path / "components.md"
    assert main(["report", "score-components", "--out", str(out), str(checkpoint)]) == 0
    assert _cells(out)[4:6] == ["—", "— (untrained)"]


def test_the_protocol_logs_each_cells_metrics_and_the_table_is_rebuilt_from_them(tiny_config, tmp_path):
    """Run folders are not kept: the runner's metrics log must give the same row as the checkpoint."""
    config = dataclasses.replace(tiny_config, model="attn-ocgan", model_args=SMALL_MODEL_ARGS["attn-ocgan"])
    csv_path = run_protocol(config, [1], [0], tmp_path / "results", tmp_path / "runs", "cmd", progress=False, echo=lambda _: None)
    (cell,) = read_metrics_log(metrics_log_path(csv_path))
    assert (cell["normal_class"], cell["seed"], cell["model"]) == (1, 0, "attn-ocgan")
    (row,) = read_rows(csv_path)
    assert f"{cell['metrics']['auc']:.6f}" == row["auc"]
    from_log, from_checkpoint = tmp_path / "log.md", tmp_path / "checkpoint.md"
    assert main(["report", "score-components", "--metrics", str(metrics_log_path(csv_path)), "--out", str(from_log)]) == 0
    checkpoint = next((tmp_path / "runs").rglob("last.pt"))
    assert main(["report", "score-components", "--out", str(from_checkpoint), str(checkpoint)]) == 0
    assert _cells(from_log) == _cells(from_checkpoint)

    # report component-means reads the same log: one row per component, the logged raw means and their ratio
    means_out = tmp_path / "means.md"
    assert main(["report", "component-means", "--metrics", str(metrics_log_path(csv_path)), "--out", str(means_out)]) == 0
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in means_out.read_text().splitlines() if line.startswith("| 1 |")]
    logged = cell["metrics"]["score_component_mean"]
    assert [row[3] for row in rows] == list(logged) and len(rows) >= 2
    for row in rows:
        mean = logged[row[3]]
        assert row[5:8] == [f"{mean['test_normal']:.4g}", f"{mean['test_novel']:.4g}", f"{mean['test_novel'] / mean['test_normal']:.2f}"]
        assert row[8] == f"{cell['metrics']['auc_per_score_component'][row[3]]:.4f}"
    plot = means_out.with_suffix(".png")  # beside the table, one panel per component, linked from it
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({plot.name})" in means_out.read_text()
    assert ratio_points([cell]) == {name: [("1", mean["test_novel"] / mean["test_normal"],
                                            cell["metrics"]["auc_per_score_component"][name])] for name, mean in logged.items()}
    # or from the cell's checkpoint, its test split scored again: the same rows
    scored_out = tmp_path / "scored.md"
    assert main(["report", "component-means", "--out", str(scored_out), str(checkpoint)]) == 0
    table = lambda path: [line for line in path.read_text().splitlines() if line.startswith("| 1 |")]  # noqa: E731
    assert table(scored_out) == table(means_out)
    assert "# attn-ocgan on mnist5k" in scored_out.read_text() and scored_out.with_suffix(".png").is_file()


def test_component_means_refuses_a_log_without_them_and_writes_nothing(tmp_path, capsys):
    log = tmp_path / "old.metrics.jsonl"
    log.write_text(json.dumps({"dataset": "mnist", "model": "ocgan", "normal_class": 0, "seed": 0, "epochs": 1,
                               "selected_epoch": 1, "metrics": {"auc": 0.5, "normal_class_name": "0"}}) + "\n")
    out = tmp_path / "means.md"
    assert main(["report", "component-means", "--metrics", str(log), "--out", str(out)]) == 2
    assert "no score_component_mean" in capsys.readouterr().err and not out.exists() and not out.with_suffix(".png").exists()
    assert main(["report", "component-means", "--metrics", str(log), "--out", str(tmp_path / "means.png")]) == 2
    assert "--out" in capsys.readouterr().err and not (tmp_path / "means.png").exists()


def test_component_means_refuses_checkpoints_without_components_or_of_two_models_before_scoring(tmp_path, capsys, monkeypatch):
    from attn_ocgan.protocol.reports import component_means

    def never_scored(*args, **kwargs):
        raise AssertionError("every checkpoint is checked before any is scored")

    monkeypatch.setattr(component_means, "checkpoint_cell", never_scored)
    skip, fanogan, ocgan = (str(untrained_checkpoint(name, tmp_path / f"{name}.pt")) for name in ("skip-ganomaly", "fanogan", "ocgan"))
    out = tmp_path / "means.md"
    assert main(["report", "component-means", "--out", str(out), skip, ocgan]) == 2
    assert "ocgan checkpoint whose score has no components" in capsys.readouterr().err
    assert main(["report", "component-means", "--out", str(out), skip, fanogan]) == 2
    assert "pass the checkpoints of one model on one dataset" in capsys.readouterr().err
    assert main(["report", "component-means", "--out", str(out), "--metrics", "x.jsonl", skip]) == 2
    assert "pass either checkpoints or --metrics FILE" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".png").exists()


def test_missing_or_ambiguous_input_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "components.md"
    assert main(["report", "score-components", "--metrics", str(tmp_path / "nope.metrics.jsonl"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", "score-components", "--out", str(out)]) == 2
    assert "pass either checkpoints or --metrics FILE" in capsys.readouterr().err and not out.exists()
