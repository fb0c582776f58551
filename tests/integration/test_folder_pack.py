"""The folder packing of tools/pack_image_folder.py (attn_ocgan/utils/folder_pack.py)."""
import subprocess
import sys

import pytest

from attn_ocgan.errors import UserError
from attn_ocgan.utils.folder_pack import pack_folder, unpack_folder
from tests.conftest import REPO


def _tool(script, *args):
    return subprocess.run([sys.executable, str(REPO / "tools" / script), *args], capture_output=True, text=True, cwd=REPO, timeout=600)


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
