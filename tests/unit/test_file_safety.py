"""Atomic writes keep permission bits and reach the disk; stale checkpoint temporaries are removed."""
import os
import stat
import tempfile

import pytest

from attn_ocgan.engine import checkpoint as checkpoint_module
from attn_ocgan.engine.checkpoint import read_checkpoint, save_checkpoint
from attn_ocgan.utils.io import atomic_write_json, atomic_write_text, stale_temporaries
from tests.unit.test_checkpoint import _small_run


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_new_files_get_the_umask_default_not_0600(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_json(tmp_path / "sub" / "b.json", {"x": 1})
    assert _mode(tmp_path / "a.txt") == 0o644 and _mode(tmp_path / "sub" / "b.json") == 0o644
    os.umask(0o027)
    atomic_write_text(tmp_path / "c.txt", "x")
    assert _mode(tmp_path / "c.txt") == 0o640


def test_a_rewrite_keeps_the_existing_permission_bits(tmp_path, umask_022):
    target = tmp_path / "kept.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o640
    os.chmod(target, 0o604)
    atomic_write_json(target, [1])
    assert _mode(target) == 0o604


def test_checkpoints_get_the_same_permission_rules(tmp_path, umask_022):
    config, model, algorithm = _small_run()
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, config, model, algorithm, epoch=1)
    assert _mode(path) == 0o644
    os.chmod(path, 0o640)
    save_checkpoint(path, config, model, algorithm, epoch=2)
    assert _mode(path) == 0o640 and read_checkpoint(path)["epoch"] == 2


def test_the_file_is_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        info = os.fstat(descriptor)
        events.append(("fsync", "folder" if stat.S_ISDIR(info.st_mode) else "file", info.st_ino))
        real_fsync(descriptor)

    def replace(source, destination):
        events.append(("replace", os.stat(source).st_ino))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_text(tmp_path / "out.txt", "data")
    written, folder = os.stat(tmp_path / "out.txt").st_ino, os.stat(tmp_path).st_ino
    assert events == [("fsync", "file", written), ("replace", written), ("fsync", "folder", folder)]


def test_a_save_removes_stale_checkpoint_temporaries_and_nothing_else(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    stale = [folder / ".last.pt.k3j2_h10.tmp"]  # as a kill -9 during torch.save leaves it
    handle, made = tempfile.mkstemp(dir=folder, prefix=".best.pt.", suffix=".tmp")  # atomic_path's own naming
    os.close(handle)
    stale.append(folder / os.path.basename(made))
    stale[0].write_bytes(b"half a checkpoint")
    unrelated = ["notes.txt", ".last.pt.tmp", "last.pt.abcdefgh.tmp", ".metrics.json.abcdefgh.tmp",
                 ".last.pt.abcdefgh.tmp.bak", ".last.pt.abcdefghi.tmp", "other.pt"]
    for name in unrelated:
        (folder / name).write_text("keep me")
    (folder / ".dir.pt.abcdefgh.tmp").mkdir()  # a folder, not a file: kept
    assert stale_temporaries(folder, ".pt") == sorted(stale)

    config, model, algorithm = _small_run()
    save_checkpoint(folder / "last.pt", config, model, algorithm, epoch=1)
    names = sorted(entry.name for entry in folder.iterdir())
    assert names == sorted([*unrelated, ".dir.pt.abcdefgh.tmp", "last.pt"])
    assert all((folder / name).read_text() == "keep me" for name in unrelated)
    assert read_checkpoint(folder / "last.pt")["epoch"] == 1


def test_removing_stale_temporaries_of_a_missing_folder_is_a_no_op(tmp_path):
    assert checkpoint_module.remove_stale_temporaries(tmp_path / "nowhere") == []
    assert stale_temporaries(tmp_path / "nowhere", ".pt") == []


def test_a_folder_that_takes_no_file_is_reported_with_the_file_asked_for(tmp_path, monkeypatch):
    """mkstemp fails before any temporary exists (e.g. /proc, a read-only folder): the error names
    the file the user asked for, which the CLI prints, not the temporary's random name."""
    def refuse(dir, prefix, suffix):
        raise PermissionError(13, "Permission denied", f"{dir}/{prefix}x1y2z3w4{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OSError) as raised:
        atomic_write_text(tmp_path / "table.md", "text")
    assert raised.value.filename == str(tmp_path / "table.md") and raised.value.strerror == "Permission denied"
    assert list(tmp_path.iterdir()) == []
