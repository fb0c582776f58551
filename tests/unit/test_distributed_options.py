"""Ray settings and sweep files are checked before Ray starts (no Ray process in these tests)."""
import sys

import pytest

from attn_ocgan.cli import main
from attn_ocgan.errors import UserError
from attn_ocgan.protocol.distributed import INSTALL_HINT, Resources, import_ray
from attn_ocgan.protocol.sweep import read_sweep, trial_config


@pytest.mark.parametrize("resources, message", [
    (Resources(jobs=2, address="auto"), "give one of them"),
    (Resources(jobs=0), "--jobs must be at least 1"),
    (Resources(jobs=2, cpus_per_cell=0), "--cpus-per-cell must be above 0"),
    (Resources(jobs=2, gpus_per_cell=1.5), "--gpus-per-cell must be a fraction"),
    (Resources(jobs=2, max_retries=-1), "--max-retries must be 0 or more"),
    (Resources(gpus_per_cell=0.25), "add --jobs N or --ray-address"),
])
def test_resource_settings_are_refused_with_one_line(resources, message):
    with pytest.raises(UserError, match=message):
        resources.check()
    Resources(jobs=4, cpus_per_cell=0.5, gpus_per_cell=0.25).check()  # fractions are fine


def test_a_local_instance_without_a_gpu_refuses_gpu_cells(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="this machine has no CUDA GPU for the local Ray instance"):
        Resources(jobs=2, gpus_per_cell=0.5).check_local_gpus()
    Resources(jobs=2).check_local_gpus()  # CPU cells
    Resources(address="auto", gpus_per_cell=1).check_local_gpus()  # a cluster's GPUs are elsewhere


def test_without_ray_the_options_say_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if it were not installed
    with pytest.raises(UserError, match=r"pip install 'attn-ocgan\[distributed\]'"):
        import_ray()
    code = main(["protocol", "--dataset", "mnist5k", "--classes", "0", "--jobs", "2", "--results", str(tmp_path / "r"),
                 "--runs", str(tmp_path / "runs")])
    assert code == 2 and capsys.readouterr().err.strip() == f"error: {INSTALL_HINT}"
    assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()


def _sweep(tmp_path, text):
    path = tmp_path / "sweep.yaml"
    path.write_text("base: {model: ocgan, data: {name: mnist5k, normal_class: 1}, train: {epochs: 2}}\n" + text)
    return path


@pytest.mark.parametrize("text, message", [
    ("search: {latent_channels: {between: [1, 2]}}\n", "needs one of grid, choice"),
    ("search: {latent_channels: {uniform: [1, 2, 3]}}\n", r"uniform takes \[low, high\]"),
    ("search: {no_such_option: {grid: [1, 2]}}\n", "no_such_option"),
    ("search: {optim.lr: {grid: [1, 2]}}\n", "train.<key>"),
    ("search: {latent_channels: {grid: [8]}}\nscheduler: hyperband\n", "scheduler must be"),
    ("search: {latent_channels: {grid: [8]}}\nsamples: 0\n", "samples must be"),
    ("search: {latent_channels: {grid: [8]}}\ntrials: 3\n", "unknown key"),
    ("", "'search' must map keys"),
    ("search: {latent_channels: {randint: [5, 2]}}\n", r"randint takes \[low, high\] with low < high, got \[5, 2\]"),
])
def test_bad_sweep_files_fail_before_ray_starts(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        read_sweep(_sweep(tmp_path, text))


@pytest.mark.parametrize("content, message", [
    (b"base: [1, 2]\nsearch: {latent_channels: {grid: [8]}}\n", "'base' must be a run configuration"),
    (b"- name: a\n", "must hold a mapping with sections name/base/search/samples/scheduler"),
    (b"\xff\xfe\x00binary", "is not a text file"),
])
def test_a_sweep_file_of_the_wrong_shape_is_one_line(tmp_path, content, message):
    (tmp_path / "sweep.yaml").write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_sweep(tmp_path / "sweep.yaml")


def test_a_sweep_trains_on_a_validation_split_and_sets_searched_keys(tmp_path):
    spec = read_sweep(_sweep(tmp_path, "search: {latent_channels: {grid: [8, 16]}, train.lr: {loguniform: [1.0e-4, 1.0e-3]}}\n"))
    assert spec.base.train.select_epoch == "validation" and spec.base.data.val_fraction == 0.1
    assert spec.scheduler == {"grace_period": 1, "reduction_factor": 2}  # ASHA by default
    config = trial_config(spec.base, {"latent_channels": 16, "train.lr": 3e-4})
    assert config.model_args["latent_channels"] == 16 and config.train.lr == 3e-4 and config.train.epochs == 2
