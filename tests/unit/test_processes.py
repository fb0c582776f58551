"""attn_ocgan.protocol.processes: independent commands, a few at a time, each with its own log."""
import sys

import pytest

from attn_ocgan.protocol.processes import Job, run_jobs


def test_every_job_runs_logs_and_reports_its_exit(tmp_path):
    jobs = [Job(f"job {i}", [sys.executable, "-c", f"print('hello {i}'); raise SystemExit({i % 2})"], tmp_path / f"{i}.log")
            for i in range(3)]
    finished = []
    failed = run_jobs(jobs, 2, tmp_path, on_done=lambda job, code: finished.append((job.label, code)), poll_seconds=0.05)
    assert failed == [jobs[1]]
    assert sorted(finished) == [("job 0", 0), ("job 1", 1), ("job 2", 0)]
    assert [(tmp_path / f"{i}.log").read_text().strip() for i in range(3)] == ["hello 0", "hello 1", "hello 2"]


def test_at_most_max_running_at_once(tmp_path):
    # each job appends 'start'/'end' to one file; with one at a time they never interleave
    trace = tmp_path / "trace"
    code = f"import time; f = open({str(trace)!r}, 'a'); f.write('s'); f.flush(); time.sleep(0.2); f.write('e'); f.close()"
    run_jobs([Job(str(i), [sys.executable, "-c", code], tmp_path / f"{i}.log") for i in range(3)], 1, tmp_path, poll_seconds=0.05)
    assert trace.read_text() == "sesese"
    with pytest.raises(ValueError, match="max_running"):
        run_jobs([], 0, tmp_path)
