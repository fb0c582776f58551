"""Fault injection (issue 28): bad input, kills, concurrent runners, divergence, full disks.

Every case shares one finished tiny run (``finished``: 2 epochs of a small OCGAN on the embedded
mnist5k digit 1) and checks that (a) the command says what was wrong in one line and exits 2,
(b) nothing is half-written and (c) the finished run is intact.
"""
from __future__ import annotations

import errno
import hashlib
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from attn_ocgan.cli import main
from attn_ocgan.engine import trainer as trainer_module
from attn_ocgan.engine.checkpoint import read_checkpoint
from attn_ocgan.engine.run_folder import MARKER, run_folder_lock
from attn_ocgan.protocol.tables import failures_path, read_rows
from attn_ocgan.registry import get_spec
from tests.conftest import REPO

SMALL = ["--model", "ocgan", "--model-arg", "generator_width=8", "--model-arg", "classifier_width=8",
         "--model-arg", "visual_disc_width=4", "--model-arg", "latent_channels=8"]
TRAIN = ["train", "--normal-class", "1", "--batch-size", "100", "--eval-every", "0", "--threads", "1", *SMALL]
PROTOCOL = ["protocol", "--dataset", "mnist5k", "--epochs", "1", "--batch-size", "100", "--eval-every", "0", "--threads", "1",
            "--device", "cpu", *SMALL]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".in-use"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One finished 2-epoch run, shared (read-only) by every test here."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main([*TRAIN, "--epochs", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


def _terminal_lines(err: str) -> list[str]:
    """The non-empty lines a terminal shows (progress bars erase themselves with carriage returns)."""
    return [line for line in (line.split("\r")[-1] for line in err.split("\n")) if line.strip()]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _folder_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, payload in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)
    return root


# (name, argv given the tmp folder and a copy of the finished run, expected message)
BAD_INPUTS = [
    ("model-arg not a number", lambda t, r: [*TRAIN, "--model-arg", "latent_channels=abc", "--out", str(t / "new")],
     "latent_channels='abc' in model_args must be an integer"),
    ("model-arg not an integer", lambda t, r: [*TRAIN, "--model-arg", "latent_channels=2.5", "--out", str(t / "new")],
     "latent_channels=2.5 in model_args must be an integer"),
    ("yaml epochs: abc", lambda t, r: [*TRAIN, "--config", str(_write(t / "c.yaml", "train:\n  epochs: abc\n")), "--out", str(t / "new")],
     "epochs='abc' in "),
    ("yaml lr: fast", lambda t, r: [*TRAIN, "--config", str(_write(t / "c.yaml", "train:\n  lr: fast\n")), "--out", str(t / "new")],
     "lr='fast' in "),
    ("yaml data: [1, 2]", lambda t, r: [*TRAIN, "--config", str(_write(t / "c.yaml", "data: [1, 2]\n")), "--out", str(t / "new")],
     "[data] must be a mapping"),
    ("negative lr", lambda t, r: [*TRAIN, "--lr", "-1", "--out", str(t / "new")], "lr=-1.0 must be > 0"),
    ("negative threads", lambda t, r: [*TRAIN, "--threads", "-1", "--out", str(t / "new")], "threads=-1 must be >= 0"),
    ("overwrite with a bad lr keeps the old run", lambda t, r: [*TRAIN, "--overwrite", "--lr", "-1", "--out", str(r)],
     "lr=-1.0 must be > 0"),
    ("overwrite a folder holding other files", lambda t, r: [*TRAIN, "--overwrite", "--out", str(
        _folder_tree(t / "thesis", {"config.yaml": b"model: x\n", "src/thesis.tex": b"\\chapter{One}"}))],
     "holds files attn-ocgan did not write (src)"),
    ("out is a file", lambda t, r: [*TRAIN, "--out", str(_write(t / "a-file", "keep"))], "is a file, not a folder"),
    ("evaluate out is a file", lambda t, r: ["evaluate", "--checkpoint", str(r / "checkpoints" / "last.pt"),
                                             "--out", str(_write(t / "a-file", "keep"))], "is a file, not a folder"),
    ("folder dataset without class folders", lambda t, r: [*TRAIN, "--dataset", "folder", "--data-root", str(
        _folder_tree(t / "tree", {"train/a.png": b"x", "test/b.png": b"x"})), "--normal-class", "0", "--out", str(t / "new")],
     "has no class sub-folders"),
    ("folder dataset of broken images", lambda t, r: [*TRAIN, "--dataset", "folder", "--data-root", str(
        _folder_tree(t / "tree", {"train/cat/a.jpg": b"\xff\xd8garbage", "test/cat/b.jpg": b"\xff\xd8garbage"})),
        "--normal-class", "0", "--out", str(t / "new")], "no readable image in"),
]


@pytest.mark.parametrize("name,argv,message", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_one_error_line_exit_2_and_nothing_half_written(name, argv, message, run_copy, tmp_path, capsys):
    before = _digest(run_copy)
    args = argv(tmp_path, run_copy)
    listing = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = _terminal_lines(err)
    assert lines and lines[-1].startswith("error: ") and message in lines[-1], err
    assert "Traceback" not in err and len(lines) == 1, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == listing  # nothing written, nothing removed
    assert _digest(run_copy) == before  # the old run intact


def test_a_full_disk_names_the_path_and_leaves_no_half_run(tmp_path, capsys, monkeypatch):
    def full(payload, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(torch, "save", full)
    assert main([*TRAIN, "--epochs", "1", "--out", str(tmp_path / "new")]) == 2
    (line,) = _terminal_lines(capsys.readouterr().err)
    assert line.startswith(f"error: cannot write or read {tmp_path / 'new' / 'checkpoints' / 'last.pt'}: No space left on device")
    assert not (tmp_path / "new").exists()


def test_a_checkpoint_whose_weights_do_not_fit_its_config_is_refused(run_copy, tmp_path, capsys):
    payload = read_checkpoint(run_copy / "checkpoints" / "last.pt")
    payload["config"]["model_args"]["generator_width"] = 16  # edited after training
    torch.save(payload, tmp_path / "edited.pt")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "edited.pt"), "--out", str(tmp_path / "eval")]) == 2
    (line,) = _terminal_lines(capsys.readouterr().err)
    assert "weights do not fit its own config" in line
    assert not (tmp_path / "eval").exists()


def test_overwrite_keeps_the_finished_run_until_the_new_one_has_a_checkpoint(run_copy, monkeypatch, capsys):
    before = _digest(run_copy)
    algorithm = get_spec("ocgan").algorithm_class
    real_step = algorithm.train_step

    def crash(self, images, epoch):
        raise RuntimeError("power cut")

    monkeypatch.setattr(algorithm, "train_step", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        main([*TRAIN, "--epochs", "1", "--seed", "5", "--overwrite", "--out", str(run_copy)])
    assert _digest(run_copy) == before and not run_copy.with_name("run.replaced").exists()  # the old run came back

    monkeypatch.setattr(algorithm, "train_step", real_step)
    assert main([*TRAIN, "--epochs", "1", "--seed", "5", "--overwrite", "--out", str(run_copy)]) == 0
    assert read_checkpoint(run_copy / "checkpoints" / "last.pt")["config"]["train"]["seed"] == 5
    assert (run_copy / MARKER).is_file() and not run_copy.with_name("run.replaced").exists()
    capsys.readouterr()


def test_a_run_folder_in_use_is_never_replaced(run_copy, capsys):
    before = _digest(run_copy)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from attn_ocgan.engine.run_folder import run_folder_lock
        with run_folder_lock({str(run_copy)!r}):
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main([*TRAIN, "--epochs", "1", "--overwrite", "--out", str(run_copy)]) == 2
        assert "is in use by pid" in capsys.readouterr().err
        assert _digest(run_copy) == before
    finally:
        holder.kill()
        holder.wait()


def _training_script(out: Path, epochs: int, kill_at: str) -> str:
    """A real training process that SIGKILLs itself mid-epoch 2 or in the middle of writing epoch 2's checkpoint."""
    return textwrap.dedent(f"""
        import os, signal, torch
        from attn_ocgan.cli import main
        from attn_ocgan.registry import get_spec
        kill_at = {kill_at!r}
        algorithm = get_spec("ocgan").algorithm_class
        step, save = algorithm.train_step, torch.save
        def train_step(self, images, epoch):
            if kill_at == "mid-epoch" and epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return step(self, images, epoch)
        def half_save(payload, path, *args, **kwargs):
            if kill_at == "mid-write" and payload.get("epoch") == 2:
                with open(path, "wb") as handle:
                    handle.write(b"PK half a checkpoint")
                    handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return save(payload, path, *args, **kwargs)
        algorithm.train_step, torch.save = train_step, half_save
        main({[*TRAIN, "--epochs", str(epochs), "--out", str(out)]!r})
        """)


@pytest.mark.parametrize("kill_at", ["mid-epoch", "mid-write"])
def test_kill_9_then_resume_gives_the_uninterrupted_weights(kill_at, finished, tmp_path):
    out = tmp_path / "run"
    killed = subprocess.run([sys.executable, "-c", _training_script(out, 2, kill_at)], cwd=REPO, capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert read_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 1  # the last complete epoch, loadable
    temporaries = list((out / "checkpoints").glob(".*.tmp"))
    assert bool(temporaries) == (kill_at == "mid-write")
    assert main([*TRAIN, "--epochs", "2", "--resume", "--out", str(out)]) == 0
    resumed, straight = read_checkpoint(out / "checkpoints" / "last.pt"), read_checkpoint(finished / "checkpoints" / "last.pt")
    assert resumed["epoch"] == 2 and all(torch.equal(resumed["model"][k], straight["model"][k]) for k in straight["model"])
    assert not list((out / "checkpoints").glob(".*.tmp"))  # the stale temporary was removed


def test_a_diverging_run_stops_with_one_line_and_keeps_its_last_finite_checkpoint(tmp_path, monkeypatch, capsys):
    algorithm = get_spec("ocgan").algorithm_class
    real_step = algorithm.train_step
    monkeypatch.setattr(algorithm, "train_step", lambda self, images, epoch: (
        {**real_step(self, images, epoch), "generator/recon": math.nan} if epoch == 1 else real_step(self, images, epoch)))
    out = tmp_path / "run"
    assert main([*TRAIN, "--epochs", "3", "--out", str(out)]) == 2
    (line,) = _terminal_lines(capsys.readouterr().err)
    assert line.startswith("error: training diverged in epoch 2, step 1: loss generator/recon = nan;")
    assert read_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 1


def test_a_model_with_non_finite_scores_is_not_evaluated(run_copy, tmp_path, capsys):
    payload = read_checkpoint(run_copy / "checkpoints" / "last.pt")
    payload["model"] = {k: v.fill_(math.nan) if v.is_floating_point() else v for k, v in payload["model"].items()}
    torch.save(payload, tmp_path / "nan.pt")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nan.pt"), "--out", str(tmp_path / "eval")]) == 2
    assert "non-finite novelty scores" in capsys.readouterr().err
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_the_protocol_records_a_diverged_cell_as_failed_and_goes_on(tmp_path, monkeypatch, capsys):
    algorithm = get_spec("ocgan").algorithm_class
    real_step = algorithm.train_step
    real_epochs = trainer_module._train_epochs
    current = {}

    def tracking(config, *args, **kwargs):
        current["class"] = config.data.normal_class
        return real_epochs(config, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "_train_epochs", tracking)
    monkeypatch.setattr(algorithm, "train_step", lambda self, images, epoch: (
        {"generator/recon": math.inf} if current["class"] == 0 else real_step(self, images, epoch)))
    results = tmp_path / "results"
    args = [*PROTOCOL, "--classes", "0,1", "--results", str(results), "--runs", str(tmp_path / "runs")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "1 cell(s) failed (class 0 seed 0)" in err
    csv = results / "mnist5k" / "mnist5k_ocgan.csv"
    assert [r["normal_class"] for r in read_rows(csv)] == ["1"]
    (failure,) = [line for line in failures_path(csv).read_text().splitlines()]
    assert '"normal_class": 0' in failure and "training diverged" in failure
    assert "Failed cells (no row; run the protocol again to retry them): 0 seed 0: training diverged" in csv.with_suffix(".md").read_text()
    # fixed, the next run trains the failed cell and clears its failure
    monkeypatch.setattr(algorithm, "train_step", real_step)
    assert main(args) == 0
    assert sorted(r["normal_class"] for r in read_rows(csv)) == ["0", "1"]
    assert not failures_path(csv).read_text().strip() and "Failed cells" not in csv.with_suffix(".md").read_text()


def test_two_protocol_runners_on_one_tag_train_each_cell_once(tmp_path):
    args = [*PROTOCOL, "--classes", "1,3", "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs")]
    runners = [subprocess.Popen([sys.executable, "-m", "attn_ocgan.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [runner.communicate(timeout=600)[0] for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0], outputs
    rows = read_rows(tmp_path / "results" / "mnist5k" / "mnist5k_ocgan.csv")
    assert sorted(r["normal_class"] for r in rows) == ["1", "3"]  # one row per cell
    trained = [line for output in outputs for line in output.splitlines() if line.startswith("train mnist5k ocgan")]
    assert sorted(trained) == sorted(set(trained)) and len(trained) == 2  # each cell trained once


def test_a_killed_runners_claim_is_taken_over(tmp_path):
    cell = tmp_path / "runs" / "mnist5k_ocgan" / "class1_seed0_e1"
    holder = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal
        from attn_ocgan.engine.run_folder import run_folder_lock
        with run_folder_lock({str(cell)!r}):
            os.kill(os.getpid(), signal.SIGKILL)
        """)], cwd=REPO, timeout=120)
    assert holder.returncode == -signal.SIGKILL and (cell / ".in-use").is_file()
    with run_folder_lock(cell):  # the kernel released the dead process's lock
        pass
    args = [*PROTOCOL, "--classes", "1", "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs")]
    assert main(args) == 0
    assert len(read_rows(tmp_path / "results" / "mnist5k" / "mnist5k_ocgan.csv")) == 1


def test_atomic_rewrites_of_a_table_keep_its_mode(tmp_path):
    from attn_ocgan.utils.io import atomic_write_text

    table = _write(tmp_path / "t.csv", "a\n")
    os.chmod(table, 0o640)
    atomic_write_text(table, "b\n")
    assert (table.stat().st_mode & 0o777) == 0o640 and table.read_text() == "b\n"
