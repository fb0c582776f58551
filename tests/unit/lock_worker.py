"""Worker of the cross-process file-lock test, in a module of its own so that a spawned process
imports only the standard library and attn_ocgan.utils.io (not torch): its start-up stays short
even on a loaded machine."""
import time

from attn_ocgan.utils.io import file_lock


def add_one(path, times):
    for _ in range(times):
        with file_lock(path):
            value = int(path.read_text())
            time.sleep(0.002)  # widen the read-modify-write window
            path.write_text(str(value + 1))
