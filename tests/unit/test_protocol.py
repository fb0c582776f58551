import pytest

from attn_ocgan.config import DataConfig, RunConfig, TrainConfig
from attn_ocgan.protocol.runner import parse_int_list, run_protocol
from attn_ocgan.protocol.tables import read_rows, reference_rows
from attn_ocgan.errors import UserError


def test_parse_int_list():
    assert parse_int_list("0-9", "classes") == list(range(10))
    assert parse_int_list("1-3,7, 2", "classes") == [1, 2, 3, 7]
    with pytest.raises(UserError, match="cannot read seeds"):
        parse_int_list("a,b", "seeds")
    with pytest.raises(UserError, match="classes range '5-2' runs backwards; write it low-high, e.g. 2-5"):
        parse_int_list("0,5-2", "classes")


def test_runner_skips_finished_cells(tmp_path, monkeypatch):
    config = RunConfig(model="ocgan", data=DataConfig(name="mnist5k"), train=TrainConfig(epochs=1, batch_size=100, eval_every=0),
                       model_args={"generator_width": 8, "latent_channels": 8, "classifier_width": 8, "visual_disc_width": 4})
    messages = []
    csv_path = run_protocol(config, [0, 1], [0], tmp_path / "results", tmp_path / "runs", "cmd one", echo=messages.append, progress=False)
    rows = read_rows(csv_path)
    assert [(r["normal_class"], r["seed"]) for r in rows] == [("0", "0"), ("1", "0")]
    assert all(0.0 <= float(r["auc"]) <= 1.0 and r["command"] == "cmd one" for r in rows)
    assert {"dataset", "model", "normal_class", "seed", "epochs", "auc", "train_seconds", "negatives", "command"} <= set(rows[0])
    assert rows[0]["negatives"] == "strict one-class"
    table = csv_path.with_suffix(".md").read_text()
    assert "| ocgan (ours) |" in table and "(2/10 classes)" in table and "cmd one" in table

    import json

    import attn_ocgan.protocol.runner as protocol

    (tmp_path / "a-file").write_text("not a folder")
    with monkeypatch.context() as patch:
        patch.setattr(protocol, "train", lambda *a, **k: pytest.fail("trained before the results folder was checked"))
        with pytest.raises(OSError):
            run_protocol(config, [2], [0], tmp_path / "a-file", tmp_path / "runs", "cmd", echo=messages.append, progress=False)

    # A runner stopped between finishing a cell and appending its row: the next one records the row the
    # run folder kept (cell_result.json), without training or scoring again, for the very same cell only.
    finished, tables = read_rows(csv_path), list(csv_path.parent.iterdir())
    monkeypatch.setattr(protocol, "run_cell", lambda *a, **k: pytest.fail("a finished cell was trained or scored again"))
    kept = sorted((tmp_path / "runs").rglob("cell_result.json"))
    assert len(kept) == 2
    for path in tables:
        path.unlink()
    run_protocol(config, [0, 1], [0], tmp_path / "results", tmp_path / "runs", "cmd one", echo=messages.append, progress=False)
    assert read_rows(csv_path) == finished and sum("finished before its row was recorded" in m for m in messages) == 2
    saved = json.loads(kept[0].read_text())
    kept[0].write_text(json.dumps({**saved, "row": {**saved["row"], "config": "0" * 12}}))  # another setting's
    for path in tables:
        path.unlink()
    with pytest.raises(pytest.fail.Exception, match="trained or scored again"):
        run_protocol(config, [0], [0], tmp_path / "results", tmp_path / "runs", "cmd one", echo=messages.append, progress=False)
    kept[0].write_text(json.dumps(saved))
    run_protocol(config, [0, 1], [0], tmp_path / "results", tmp_path / "runs", "cmd one", echo=messages.append, progress=False)
    assert read_rows(csv_path) == finished
    monkeypatch.undo()

    trained = []
    real_train = protocol.train
    monkeypatch.setattr(protocol, "train", lambda *a, **k: trained.append(a[0].data.normal_class) or real_train(*a, **k))
    run_protocol(config, [0, 1, 2], [0], tmp_path / "results", tmp_path / "runs", "cmd two", echo=messages.append, progress=False)
    assert trained == [2]  # classes 0 and 1 were skipped
    assert sum(m.startswith("skip") for m in messages) == 2
    assert [r["normal_class"] for r in read_rows(csv_path)] == ["0", "1", "2"]
    csv_path.with_suffix(".md").write_text("an outdated view")
    run_protocol(config, [0], [0], tmp_path / "results", tmp_path / "runs", "cmd", echo=messages.append, progress=False)
    assert "| ocgan (ours) |" in csv_path.with_suffix(".md").read_text()  # a finished grid rewrites its view
    with pytest.raises(UserError, match="out of range"):
        run_protocol(config, [12], [0], tmp_path / "results", tmp_path / "runs", "cmd", echo=messages.append, progress=False)
    import dataclasses

    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=2))
    with pytest.raises(UserError, match="holds rows trained for 1 epochs, not 2; pass another --tag"):  # before training
        run_protocol(longer, [3], [0], tmp_path / "results", tmp_path / "runs", "cmd", echo=messages.append, progress=False)
    assert trained == [2]
    other = dataclasses.replace(config, model_args={**config.model_args, "generator_width": 16})
    with pytest.raises(UserError, match="holds rows trained with other settings"):
        run_protocol(other, [3], [0], tmp_path / "results", tmp_path / "runs", "cmd", echo=messages.append, progress=False)
    same = dataclasses.replace(config, model_args={**config.model_args, "generator_width": 8.0},  # 8.0 is 8
                               train=dataclasses.replace(config.train, threads=1, eval_every=1))  # not settings
    run_protocol(same, [0], [0], tmp_path / "results", tmp_path / "runs", "cmd", echo=messages.append, progress=False)
    assert trained == [2] and len({r["config"] for r in read_rows(csv_path)}) == 1 and len(read_rows(csv_path)[0]["config"]) == 12


def test_one_setting_has_one_fingerprint_however_it_is_spelled():
    """Rows of a table keep their fingerprint when a later version adds an option whose default keeps the
    old behaviour, or when a preset value is given explicitly; a changed setting changes it."""
    import dataclasses

    from attn_ocgan.protocol.runner import config_fingerprint
    from attn_ocgan.registry import resolve_model_config

    config = RunConfig(model="ocgan", data=DataConfig(name="folder", folder="cifar10-jpeg"), train=TrainConfig(epochs=8))
    fingerprint = config_fingerprint(config)
    assert config_fingerprint(dataclasses.replace(config, model_args={"latent_channels": 64.0})) == fingerprint  # the preset
    assert config_fingerprint(dataclasses.replace(config, model_args={"latent_channels": 32})) != fingerprint
    resolved = dataclasses.asdict(resolve_model_config("ocgan", "folder", {}, in_channels=3, image_size=32))
    assert config_fingerprint(dataclasses.replace(config, model_args=resolved)) == fingerprint  # a run folder's config.yaml
    assert config_fingerprint(dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=9))) != fingerprint
    later = dataclasses.make_dataclass("LaterTrainConfig", [("new_option", bool, dataclasses.field(default=False))],
                                       bases=(TrainConfig,))
    assert config_fingerprint(dataclasses.replace(config, train=later(epochs=8))) == fingerprint
    assert config_fingerprint(dataclasses.replace(config, train=later(epochs=8, new_option=True))) != fingerprint


def test_published_rows_only_where_the_test_set_is_the_papers():
    assert "OCGAN (paper)" in reference_rows("mnist", "mnist-ema")
    assert reference_rows("mnist5k", "mnist5k") == {}  # another test set: no paper numbers beside it
    assert "attention OCGAN (reported)" in reference_rows("folder", "cifar10-jpeg")
    assert reference_rows("folder", "coco32") == {}
    assert reference_rows("fashion-mnist", "fashion-mnist-oe-cifar10") == {}  # CIFAR-10 as outliers, not as the test set


def test_a_row_is_committed_last_and_a_killed_append_leaves_the_cell_to_do(tmp_path, monkeypatch):
    """append_row: the metrics entry first, the CSV row last (the commit); a retry after a kill
    between the two replaces the stale entry instead of adding a second one."""
    import json

    import attn_ocgan.protocol.tables as tables

    csv_path = tmp_path / "t_ocgan.csv"
    row = {"dataset": "t", "model": "ocgan", "normal_class": 0, "seed": 0, "epochs": 1, "auc": 0.5,
           "selection": "last epoch", "selected_epoch": 1}
    names = [str(d) for d in range(10)]
    real_write_rows = tables._write_rows
    monkeypatch.setattr(tables, "_write_rows", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        tables.append_row(csv_path, row, names, metrics={"auc": 0.4})
    assert read_rows(csv_path) == []  # not done: the next run trains and appends it again
    assert [e["metrics"]["auc"] for e in tables.read_metrics_log(tables.metrics_log_path(csv_path))] == [0.4]  # written first
    monkeypatch.setattr(tables, "_write_rows", real_write_rows)
    assert tables.append_row(csv_path, row, names, metrics={"auc": 0.5})
    entries = tables.read_metrics_log(tables.metrics_log_path(csv_path))
    assert [entry["metrics"]["auc"] for entry in entries] == [0.5] and len(read_rows(csv_path)) == 1
    tables.metrics_log_path(csv_path).write_text(json.dumps(entries[0]) + "\nnormal_class,auc\n")
    with pytest.raises(UserError, match="line 2, is not a JSON object"):
        tables.read_metrics_log(tables.metrics_log_path(csv_path))
    for content, message in ((b"[1, 2]\n", "line 1, is not a JSON object"), (b'{"a": 1}\n', "line 1, has no dataset, model"),
                             (b"\x80\x81 a checkpoint", "is not a text file")):
        tables.metrics_log_path(csv_path).write_bytes(content)
        with pytest.raises(UserError, match=message):
            tables.read_metrics_log(tables.metrics_log_path(csv_path), tables.LOGGED_CELL_KEYS)


def test_the_seed_spread_of_the_mean_uses_only_classes_with_every_seed():
    from attn_ocgan.protocol.tables import seed_spread_line

    rows = [{"normal_class": k, "seed": seed, "auc": auc}
            for k, seed, auc in [(0, 0, .6), (0, 1, .8), (1, 0, .7), (1, 1, .9), (2, 0, .1)]]  # class 2: seed 0 only
    line = seed_spread_line(rows, ["a", "b", "c"])
    assert "2 classes with every seed (a, b)" in line
    assert "0.6500 (seed 0), 0.8500 (seed 1)" in line and "0.7500 ± 0.1414" in line
    assert seed_spread_line([r for r in rows if r["seed"] == 0], ["a", "b", "c"]) is None  # one seed: no spread


def test_status_reports_each_cell_and_writes_nothing(tmp_path):
    """--status: done (AUC from the table), part-trained (epoch from last.pt), running (a live lock
    holder; a dead one's stale line does not count), failed (the failure log), to do; the training
    time left from the finished cells; no file is written or changed."""
    import dataclasses
    import os

    from attn_ocgan.engine.run_folder import LOCK_NAME, run_folder_lock
    from attn_ocgan.engine.trainer import train
    from attn_ocgan.protocol.runner import grid_cells
    from attn_ocgan.protocol.status import protocol_status
    from attn_ocgan.protocol.tables import record_failure

    config = RunConfig(model="ocgan", data=DataConfig(name="mnist5k"), train=TrainConfig(epochs=2, batch_size=100, eval_every=0),
                       model_args={"generator_width": 8, "latent_channels": 8, "classifier_width": 8, "visual_disc_width": 4})
    results, runs = tmp_path / "results", tmp_path / "runs"
    csv_path = run_protocol(config, [0], [0], results, runs, "cmd", echo=lambda m: None, progress=False)
    cells = grid_cells(config, [0, 1, 2, 3, 4], [0], results, runs, "", tuple(str(d) for d in range(10)))[0]
    one_epoch = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=1))
    train(dataclasses.replace(one_epoch, data=cells[1].config.data), cells[1].run_dir, progress=False)
    record_failure(csv_path, cells[3].keys, "training diverged in epoch 1", [str(d) for d in range(10)])
    cells[4].run_dir.mkdir(parents=True)
    (cells[4].run_dir / LOCK_NAME).write_text(f"pid 99999999 on {os.uname().nodename}\n")  # a holder long gone
    with run_folder_lock(cells[2].run_dir):  # this live process holds class 2
        files = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
        states, lines = protocol_status(config, [0, 1, 2, 3, 4], [0], results, runs)
        assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == files
    assert [state.state for state in states] == ["done", "part-trained", "running", "failed", "to do"]
    assert states[0].detail == f"AUC {float(read_rows(csv_path)[0]['auc']):.4f}"
    assert states[1].detail == "epoch 1 of 2; the next run resumes it"
    assert states[2].detail == f"pid {os.getpid()} on {os.uname().nodename}"
    assert "training diverged in epoch 1" in states[3].detail
    assert lines[0].endswith("1 of 5 cells done")
    seconds = float(read_rows(csv_path)[0]["train_seconds"]) / 2
    assert lines[-1].startswith("training left: 7 epochs, about ") and f"({seconds:.0f} s per epoch, the median of 1 finished" in lines[-1]
    csv_path.unlink()  # class 0 finished, its row not yet recorded (a runner stopped in between)
    states, _ = protocol_status(config, [0], [0], results, runs)
    assert (states[0].state, states[0].detail) == ("part-trained", "trained and scored; the next run records its row")
    assert states[0].epochs_left == 0
