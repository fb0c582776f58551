"""benchmarks/process_parallelism.py: parallel workers really run at once, and the JSON it writes."""
import json
import statistics

import pytest

from tests.conftest import load_benchmark


class RecordingConnection:
    """Stands in for a worker's pipe: logs sends and receives; a worker 'takes' ``seconds``."""

    def __init__(self, name, seconds, events):
        self.name, self.seconds, self.events = name, seconds, events

    def send(self, message):
        self.events.append(("send", self.name, message))

    def recv(self):
        self.events.append(("recv", self.name))
        return self.seconds


def test_a_parallel_block_starts_every_worker_before_waiting_for_any():
    parallelism = load_benchmark("process_parallelism")
    events = []
    workers = [RecordingConnection("a", 2.0, events), RecordingConnection("b", 4.0, events)]
    assert parallelism.timed_block(workers, steps=3) == [2.0, 4.0]
    # Were the first result awaited before the second worker is told to start, the "parallel"
    # block would time the workers one after the other.
    assert [kind for kind, *_ in events] == ["send", "send", "recv", "recv"]
    assert events[0] == ("send", "a", 3) and events[1] == ("send", "b", 3)


def test_end_to_end_run_writes_rates_and_the_median_ratio(tmp_path):
    parallelism = load_benchmark("process_parallelism")
    out = tmp_path / "parallelism.json"
    result = parallelism.main(["--model", "ocgan", "--dataset", "mnist5k", "--channels", "1", "--batch-size", "4",
                               "--steps", "1", "--repeats", "3", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == result
    assert written["processes"] == 2 and written["single_process_threads"] == 2
    assert written["single_process_img_per_s"] > 0 and written["parallel_processes_total_img_per_s"] > 0
    assert len(written["parallel_speedup_repeats"]) == 3
    assert abs(written["parallel_speedup"] - statistics.median(written["parallel_speedup_repeats"])) < 1e-3
    assert written["command"].startswith("python benchmarks/process_parallelism.py --model ocgan")


def test_unknown_model_is_a_one_line_error_before_any_worker_starts(tmp_path):
    parallelism = load_benchmark("process_parallelism")
    with pytest.raises(SystemExit) as exit_info:
        parallelism.main(["--model", "nope", "--out", str(tmp_path / "x.json")])
    assert "unknown model 'nope'; known models:" in str(exit_info.value)
    assert not (tmp_path / "x.json").exists()
