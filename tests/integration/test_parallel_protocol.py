"""One protocol process per cell, all appending to one table (attn_ocgan/protocol/processes.py, used by
tools/parallel_protocol.py), and the folder packing of tools/pack_image_folder.py (attn_ocgan/utils/folder_pack.py)."""
import subprocess
import sys

import pytest

from attn_ocgan.errors import UserError
from attn_ocgan.protocol.processes import exit_status, protocol_cell_jobs, run_jobs
from attn_ocgan.protocol.tables import read_rows
from attn_ocgan.utils.folder_pack import pack_folder, unpack_folder
from tests.conftest import REPO

TINY = ["--dataset", "mnist5k", "--epochs", "1", "--batch-size", "100", "--eval-every", "0", "--threads", "1",
        "--device", "cpu", "--model-arg", "generator_width=8", "--model-arg", "latent_channels=8",
        "--model-arg", "classifier_width=8", "--model-arg", "visual_disc_width=4"]


def _tool(script, *args):
    return subprocess.run([sys.executable, str(REPO / "tools" / script), *args], capture_output=True, text=True, cwd=REPO, timeout=600)


def test_cells_are_class_major_and_refuse_options_they_set(tmp_path):
    jobs = protocol_cell_jobs(["ocgan", "anogan"], [3, 5], ["--dataset", "mnist5k"], tmp_path)
    assert [job.label for job in jobs] == ["ocgan class 3", "anogan class 3", "ocgan class 5", "anogan class 5"]
    assert jobs[1].command[-6:] == ["--model", "anogan", "--classes", "3", "--dataset", "mnist5k"]
    assert jobs[1].log == tmp_path / "anogan_class3.log"
    with pytest.raises(UserError, match="give --classes as --models / --classes"):
        protocol_cell_jobs(["ocgan"], [3], ["--classes", "4"], tmp_path)


def test_parallel_processes_fill_one_table(tmp_path, capsys):
    results, logs = tmp_path / "results", tmp_path / "logs"
    jobs = protocol_cell_jobs(["ocgan"], [3, 5], [*TINY, "--results", str(results), "--runs", str(tmp_path / "runs")], logs)
    assert exit_status(run_jobs(jobs, 2, REPO, poll_seconds=0.2)) == 0
    rows = read_rows(results / "mnist5k" / "mnist5k_ocgan.csv")
    assert sorted(int(r["normal_class"]) for r in rows) == [3, 5]  # both appends survived
    assert all("--classes" in r["command"] and r["machine"].endswith("cpu") for r in rows)
    assert "(2/10 classes)" in (results / "mnist5k" / "mnist5k_ocgan.md").read_text()
    assert {p.name for p in logs.iterdir()} == {"ocgan_class3.log", "ocgan_class5.log"}
    capsys.readouterr()
    # the script: a failing cell is reported with a non-zero exit
    failed = _tool("parallel_protocol.py", "--models", "no-such-model", "--classes", "0", "--logs", str(logs), "--", *TINY)
    assert failed.returncode == 1 and "no-such-model class 0" in failed.stderr
    assert "unknown model" in (logs / "no-such-model_class0.log").read_text()


def test_pack_and_unpack_reproduce_a_folder_byte_for_byte(tmp_path):
    source = tmp_path / "src"
    for split, name, payload in (("train", "cat/1.jpg", b"\xff\xd8abc"), ("test", "dog/2.jpg", b""), ("test", "cat/3.jpg", b"x" * 5000)):
        (source / split / name).parent.mkdir(parents=True, exist_ok=True)
        (source / split / name).write_bytes(payload)
    packed = tmp_path / "data.pack"
    assert pack_folder(source, packed) == 3 and unpack_folder(packed, tmp_path / "dest") == 3
    files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "dest") for p in (tmp_path / "dest").rglob("*") if p.is_file())
    assert all((source / f).read_bytes() == (tmp_path / "dest" / f).read_bytes() for f in files)
    packed.write_bytes(packed.read_bytes()[:-10])  # truncated
    with pytest.raises(UserError, match="truncated"):
        unpack_folder(packed, tmp_path / "again")
    # the script: same round trip, errors as one line
    assert _tool("pack_image_folder.py", "pack", str(source), str(packed)).returncode == 0
    assert _tool("pack_image_folder.py", "unpack", str(packed), str(tmp_path / "dest2")).returncode == 0
    assert (tmp_path / "dest2" / "test" / "cat" / "3.jpg").read_bytes() == b"x" * 5000
    missing = _tool("pack_image_folder.py", "unpack", str(tmp_path / "nope.pack"), str(tmp_path / "x"))
    assert missing.returncode != 0 and missing.stderr.strip() == f"error: {tmp_path / 'nope.pack'} does not exist; pack a folder first"
