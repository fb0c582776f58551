"""tools/parallel_protocol.py (one protocol process per cell, one shared CSV) and tools/pack_image_folder.py."""
import subprocess
import sys

from attn_ocgan.protocol.tables import read_rows
from tests.conftest import REPO

TINY = ["--dataset", "mnist5k", "--epochs", "1", "--batch-size", "100", "--eval-every", "0", "--threads", "1",
        "--device", "cpu", "--model-arg", "generator_width=8", "--model-arg", "latent_channels=8",
        "--model-arg", "classifier_width=8", "--model-arg", "visual_disc_width=4"]


def _run(script, *args):
    return subprocess.run([sys.executable, str(REPO / "tools" / script), *args], capture_output=True, text=True, cwd=REPO, timeout=600)


def test_parallel_processes_fill_one_table(tmp_path):
    results, logs = tmp_path / "results", tmp_path / "logs"
    done = _run("parallel_protocol.py", "--models", "ocgan", "--classes", "3,5", "--jobs", "2", "--logs", str(logs), "--",
                *TINY, "--results", str(results), "--runs", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr + done.stdout
    rows = read_rows(results / "mnist5k_ocgan.csv")
    assert sorted(int(r["normal_class"]) for r in rows) == [3, 5]  # both appends survived
    assert all("--classes" in r["command"] and r["machine"].endswith("cpu") for r in rows)
    table = (results / "mnist5k_ocgan.md").read_text()
    assert "(2/10 classes)" in table
    assert {p.name for p in logs.iterdir()} == {"ocgan_class3.log", "ocgan_class5.log"}
    # a failing cell is reported with a non-zero exit
    failed = _run("parallel_protocol.py", "--models", "no-such-model", "--classes", "0", "--logs", str(logs), "--", *TINY)
    assert failed.returncode == 1 and "no-such-model class 0" in failed.stderr
    assert "unknown model" in (logs / "no-such-model_class0.log").read_text()


def test_pack_and_unpack_reproduce_a_folder_byte_for_byte(tmp_path):
    source = tmp_path / "src"
    for split, name, payload in (("train", "cat/1.jpg", b"\xff\xd8abc"), ("test", "dog/2.jpg", b""), ("test", "cat/3.jpg", b"x" * 5000)):
        (source / split / name).parent.mkdir(parents=True, exist_ok=True)
        (source / split / name).write_bytes(payload)
    packed = tmp_path / "data.pack"
    assert _run("pack_image_folder.py", "pack", str(source), str(packed)).returncode == 0
    assert _run("pack_image_folder.py", "unpack", str(packed), str(tmp_path / "dest")).returncode == 0
    files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "dest") for p in (tmp_path / "dest").rglob("*") if p.is_file())
    assert all((source / f).read_bytes() == (tmp_path / "dest" / f).read_bytes() for f in files)
    packed.write_bytes(packed.read_bytes()[:-10])  # truncated
    broken = _run("pack_image_folder.py", "unpack", str(packed), str(tmp_path / "again"))
    assert broken.returncode != 0 and "truncated" in broken.stderr
