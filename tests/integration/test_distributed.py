"""The protocol grid and the sweep on Ray (attn_ocgan/protocol/distributed.py, sweep.py), on a
two-worker-node cluster simulated on this machine (ray.cluster_utils.Cluster), loopback only.

One cluster serves the whole module; its teardown checks that no Ray process outlives it."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from attn_ocgan.cli import main  # noqa: E402
from attn_ocgan.config import DataConfig, RunConfig, TrainConfig  # noqa: E402
from attn_ocgan.errors import UserError  # noqa: E402
from attn_ocgan.protocol import distributed  # noqa: E402
from attn_ocgan.protocol.distributed import Resources, run_protocol_on_ray  # noqa: E402
from attn_ocgan.protocol.runner import run_protocol  # noqa: E402
from attn_ocgan.protocol.sweep import read_sweep, run_sweep  # noqa: E402
from attn_ocgan.protocol.tables import failures_path, read_rows  # noqa: E402
from attn_ocgan.engine.run_folder import run_folder_lock  # noqa: E402
from tests.conftest import REPO, SMALL_MODEL_ARGS  # noqa: E402

LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def _ray_processes(cluster) -> list[psutil.Process]:
    """Every process of the cluster's nodes and their workers."""
    pids = set()
    for node in [cluster.head_node, *cluster.worker_nodes]:
        for infos in [] if node is None else node.all_processes.values():
            pids.update(info.process.pid for info in infos)
    found = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            found += [process, *process.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture(scope="module")
def cluster():
    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"  # tests/conftest.py: loopback only, read at import
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # the head runs no cell
    cluster.workers = [cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1)]
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    processes = _ray_processes(cluster)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        processes += _ray_processes(cluster)
        _, alive = psutil.wait_procs([p for p in processes if p.is_running()], timeout=30)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], f"Ray processes outlived the tests: {alive}"


def _base_config():
    """Tiny OCGAN cells on mnist5k: what the CLI commands of these tests build too."""
    return RunConfig(model="ocgan", data=DataConfig(name="mnist5k"), model_args=dict(SMALL_MODEL_ARGS["ocgan"]),
                     train=TrainConfig(epochs=1, batch_size=64, seed=0, threads=1, eval_every=0, device="cpu"))


@pytest.fixture
def base_config():
    return _base_config()


@pytest.fixture(scope="module")
def in_process_aucs(tmp_path_factory):
    """Classes 0 and 1 trained by the in-process runner: the rows every Ray run must reproduce."""
    folder = tmp_path_factory.mktemp("in-process")
    path = run_protocol(_base_config(), [0, 1], [0], folder / "results", folder / "runs", "cmd", progress=False,
                        echo=lambda _: None)
    return {r["normal_class"]: r["auc"] for r in read_rows(path)}


def test_every_ray_server_listens_on_loopback_only(cluster):
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    pids = {p.pid for p in _ray_processes(cluster)}
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert listening and all(c.laddr.ip in LOOPBACK for c in listening), listening


def test_cluster_grid_gives_the_in_process_rows(cluster, base_config, in_process_aucs, tmp_path):
    there = run_protocol_on_ray(base_config, [0, 1], [0], tmp_path / "ray", tmp_path / "runs-ray", "cmd",
                                Resources(address=cluster.address), progress=False, echo=lambda _: None)
    assert {r["normal_class"]: r["auc"] for r in read_rows(there)} == in_process_aucs  # same seeds, same AUCs, to the digit
    assert len(in_process_aucs) == 2
    log = (tmp_path / "runs-ray" / "mnist5k_ocgan" / "class0_seed0_e1" / "cell.log").read_text()
    assert "epoch 1/1" in log and "AUC" in log  # the worker's lines stay in the run folder


def test_a_cell_with_a_real_error_is_recorded_and_the_others_go_on(cluster, base_config, tmp_path):
    broken = tmp_path / "runs" / "mnist5k_ocgan" / "class5_seed0_e1" / "checkpoints"
    broken.mkdir(parents=True)
    (broken / "last.pt").write_bytes(b"not a checkpoint")  # resuming it fails: a real error, never retried
    with pytest.raises(UserError, match=r"1 cell\(s\) failed \(class 5 seed 0\)"):
        run_protocol_on_ray(base_config, [5, 6], [0], tmp_path / "results", tmp_path / "runs", "cmd",
                            Resources(address=cluster.address), progress=False, echo=lambda _: None)
    csv_path = tmp_path / "results" / "mnist5k" / "mnist5k_ocgan.csv"
    assert [int(r["normal_class"]) for r in read_rows(csv_path)] == [6]
    (failure,) = [json.loads(line) for line in failures_path(csv_path).read_text().splitlines()]
    assert failure["normal_class"] == 5 and "cannot read checkpoint" in failure["reason"] and "\n" not in failure["reason"]


def test_ctrl_c_stops_the_grid_and_keeps_the_finished_rows(in_process_aucs, tmp_path):
    """A local Ray instance (--jobs 2) in its own process. This test holds class 0's run-folder lock (as
    another runner would), so that cell waits and the grid cannot end before SIGINT, which is sent on
    the driver's first 'done' line: deterministic however fast the other cells are."""
    results, runs = tmp_path / "results", tmp_path / "runs"
    command = [sys.executable, "-m", "attn_ocgan.cli", "protocol", "--model", "ocgan", "--dataset", "mnist5k",
               "--classes", "0-3", "--epochs", "1", "--batch-size", "64", "--eval-every", "0", "--device", "cpu",
               "--model-arg", "generator_width=8", "--model-arg", "latent_channels=6", "--jobs", "2",
               "--results", str(results), "--runs", str(runs)]
    with run_folder_lock(runs / "mnist5k_ocgan" / "class0_seed0_e1"):
        driver = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True)
        seen = []
        for line in driver.stdout:  # universal newlines: the bar's carriage returns end lines too
            seen.append(line)
            if line.startswith("done "):
                break
        assert seen and seen[-1].startswith("done "), "".join(seen)[-2000:]
        before = psutil.Process(driver.pid).children(recursive=True)
        driver.send_signal(signal.SIGINT)
        output = "".join(seen) + driver.communicate(timeout=120)[0]
    assert driver.returncode == 130, output[-2000:]
    rows = read_rows(results / "mnist5k" / "mnist5k_ocgan.csv")
    classes = [r["normal_class"] for r in rows]
    assert 1 <= len(rows) <= 3 and "0" not in classes and len(set(classes)) == len(classes)  # kept, none twice
    assert all(r["auc"] == in_process_aucs[r["normal_class"]] for r in rows if r["normal_class"] in in_process_aucs)
    assert "stopped:" in output and "every finished row is in" in output
    _, alive = psutil.wait_procs([p for p in before if p.is_running()], timeout=30)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], "the local Ray instance outlived the driver"


def test_a_node_removed_mid_grid_loses_no_cell(cluster, base_config, tmp_path):
    config = dataclasses.replace(base_config, train=dataclasses.replace(base_config.train, epochs=3))
    runs, outcome = tmp_path / "runs", {}

    def grid():
        try:
            outcome["csv"] = run_protocol_on_ray(config, [2, 3, 4], [0], tmp_path / "results", runs, "cmd",
                                                 Resources(address=cluster.address), progress=False, echo=lambda _: None)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    thread = threading.Thread(target=grid)
    thread.start()
    victim = None
    deadline = time.monotonic() + 600
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        for log in runs.glob("*/*/cell.log"):  # a cell with its first epoch written: kill the node training it
            pid = int(log.read_text().split(" pid ")[1].split(":")[0])
            victim = next((node for node in cluster.workers
                           if psutil.Process(pid).ppid() == node.all_processes["raylet"][0].process.pid), None)
            if victim is not None:
                break
        time.sleep(0.2)
    assert victim is not None, "no cell started on a worker node"
    cluster.remove_node(victim, allow_graceful=False)
    thread.join(timeout=900)
    cluster.workers.remove(victim)
    cluster.workers.append(cluster.add_node(num_cpus=1))
    assert "error" not in outcome, outcome.get("error")
    rows = read_rows(outcome["csv"])
    assert sorted(int(r["normal_class"]) for r in rows) == [2, 3, 4]  # every cell exactly once
    assert not failures_path(outcome["csv"]).exists()
    resumed = [log for log in runs.glob("*/*/cell.log")
               if len({line.split(" pid ")[1].split(":")[0] for line in log.read_text().splitlines()}) > 1]
    assert resumed, "the killed cell should have been finished by a second worker"


def test_bad_option_fails_before_any_task_is_submitted(cluster, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(distributed, "run_grid", lambda *a, **k: pytest.fail("a task was submitted"))
    code = main(["protocol", "--model", "ocgan", "--dataset", "mnist5k", "--classes", "0", "--epochs", "1",
                 "--model-arg", "no_such_option=1", "--ray-address", cluster.address,
                 "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "no_such_option" in error[0]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()


def test_sweep_chooses_the_trial_with_the_best_validation_auc(cluster, tmp_path):
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(json.dumps({
        "name": "tiny", "samples": 1, "scheduler": {"asha": {"grace_period": 1, "reduction_factor": 2}},
        "base": {"model": "ocgan", "data": {"name": "mnist5k", "normal_class": 1, "val_novel": 200},
                 "train": {"epochs": 2, "batch_size": 64, "eval_every": 0, "device": "cpu"},
                 "model_args": {"generator_width": 8}},
        "search": {"latent_channels": {"grid": [4, 8]}, "train.lr": {"grid": [0.0001, 0.001]}}}))
    spec = read_sweep(sweep_file)
    table = run_sweep(spec, Resources(address=cluster.address), tmp_path / "runs", tmp_path / "results", "cmd",
                      echo=lambda _: None)
    trials = read_rows(table.with_suffix(".csv"))
    assert len(trials) == 4
    chosen = [t for t in trials if t["chosen"] == "yes"]
    assert len(chosen) == 1
    assert float(chosen[0]["best_val_auc"]) == max(float(t["best_val_auc"]) for t in trials if t["best_val_auc"])
    assert [bool(t["test_auc"]) for t in trials] == [t["chosen"] == "yes" for t in trials]  # only the chosen one saw test images
    for trial in trials:  # the objective is the run folder's own validation AUC
        trace = [json.loads(line) for line in (tmp_path / "runs" / "tiny" / "trials" / trial["trial"] / "validation.jsonl")
                 .read_text().splitlines()]
        assert float(trial["best_val_auc"]) == pytest.approx(max(r["auc"] for r in trace), abs=1e-6)
