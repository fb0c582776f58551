"""protocol --jobs: a Ctrl-C that Ray's blocking calls swallowed still stops the grid (the event path)."""
import threading
from pathlib import Path

import pytest

from attn_ocgan.protocol import distributed
from attn_ocgan.protocol.distributed import Resources, run_grid
from attn_ocgan.protocol.runner import Grid


class _Task:
    def __init__(self):
        self.submitted = []

    def options(self, **_):
        return self

    def remote(self, cell):
        self.submitted.append(cell)
        return f"ref-{cell}"


class _FakeRay:
    """Enough of ray for run_grid: no cell ever finishes, so only an interrupt ends the loop."""

    def __init__(self):
        self.task, self.cancelled, self.waits = _Task(), [], 0

    def remote(self, _function):
        return self.task

    def cluster_resources(self):
        return {"CPU": 2}

    def wait(self, references, num_returns, timeout):
        self.waits += 1
        assert self.waits < 3, "the grid went on waiting after the interrupt"
        return [], references

    def cancel(self, reference, force):
        self.cancelled.append(reference)


def test_a_set_interrupt_event_cancels_every_pending_cell(monkeypatch, tmp_path):
    monkeypatch.setattr(distributed, "_cell_for_worker", lambda cell, resources: cell)
    ray, interrupted, lines = _FakeRay(), threading.Event(), []
    grid = Grid(["a", "b"], Path(tmp_path) / "t.csv", ("x", "y"), "mnist")
    interrupted.set()
    with pytest.raises(KeyboardInterrupt):
        run_grid(ray, grid, Resources(), progress=False, echo=lines.append, interrupted=interrupted)
    assert ray.waits == 0 and sorted(ray.cancelled) == ["ref-a", "ref-b"]
    assert lines and lines[0].startswith("stopped: 2 cell(s) cancelled")


def test_sigint_sets_the_event_and_the_previous_handler_comes_back():
    import signal

    before = signal.getsignal(signal.SIGINT)
    with distributed._ctrl_c_between_waits() as interrupted:
        signal.raise_signal(signal.SIGINT)  # no KeyboardInterrupt: the handler only sets the event
        assert interrupted.is_set()
    assert signal.getsignal(signal.SIGINT) is before
