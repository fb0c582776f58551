"""benchmarks/ocgan_config_sweep.py: one validation row per epoch, resumable, summarised."""
import json
import shlex

import pytest

from tests.conftest import SMALL_MODEL_ARGS, load_benchmark


@pytest.fixture(scope="module")
def sweep():
    return load_benchmark("ocgan_config_sweep")


def test_rows_carry_validation_and_calibrated_aucs_and_a_finished_run_is_skipped(sweep, tmp_path, capsys):
    log = tmp_path / "sweep.jsonl"
    argv = ["--dataset", "mnist5k", "--classes", "1", "--epochs", "2", "--val-novel", "200", "--log", str(log),
            "--variant", json.dumps(SMALL_MODEL_ARGS["ocgan"])]
    sweep.main(argv)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        assert 0 <= row["val_auc"] <= 1 and 0 <= row["val_auc_calibrated"] <= 1
        assert row["val_auc_calibrated"] != row["val_auc"]  # a different score, not a copy
    sweep.main(argv)
    assert "skip class 1" in capsys.readouterr().out and len(log.read_text().splitlines()) == 2
    sweep.main(["--summarise", "--log", str(log), "--summary-epochs", "1,2", "--window", "1,2"])
    summary = log.with_suffix(".md").read_text()
    assert "Complexity-calibrated score" in summary and f"{(rows[0]['val_auc_calibrated'] + rows[1]['val_auc_calibrated']) / 2:.4f}" in summary
    assert log.with_suffix(".png").is_file()
    assert {row["command"] for row in rows} == {"python benchmarks/ocgan_config_sweep.py " + shlex.join(argv)}
    assert "Produced by:" in summary and rows[0]["command"] in summary and rows[0]["machine"] in summary
    skipped = tmp_path / "skipped.jsonl"
    sweep.main([*argv[:-4], "--epochs", "1", "--log", str(skipped), "--no-calibration", *argv[-2:]])
    assert "val_auc_calibrated" not in json.loads(skipped.read_text())


@pytest.mark.parametrize("extra, message", [
    (["--variant", "{latent: 8}"], "is not JSON"),
    (["--variant", "{}", "--variant", '{"no_such_arg": 1}'], "no_such_arg"),
    (["--classes", "1,12"], "class 12 is out of range"),
])
def test_bad_input_fails_before_any_training_with_one_line(sweep, tmp_path, capsys, extra, message):
    log = tmp_path / "sweep.jsonl"
    assert sweep.main(["--dataset", "mnist5k", "--classes", "1", "--epochs", "1", "--log", str(log), *extra]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and error.startswith("error: ")
    assert not log.exists()  # nothing trained, nothing written


def test_summarise_without_a_log_is_a_one_line_error(sweep, tmp_path, capsys):
    assert sweep.main(["--summarise", "--log", str(tmp_path / "missing.jsonl")]) == 2
    assert "--summarise reads an existing --log" in capsys.readouterr().err
