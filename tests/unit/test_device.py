"""--device: resolution, one-line errors, resumable across hardware, and (where a GPU exists) every
registered model trains and scores on CUDA with the same scores as on the CPU."""
import dataclasses

import numpy as np
import pytest
import torch

from attn_ocgan.config import DataConfig, RunConfig, TrainConfig
from attn_ocgan.data import load_one_class
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint, restore_rng
from attn_ocgan.engine.device import model_device, resolve_device
from attn_ocgan.engine.evaluation import auc, compute_scores, evaluate_model
from attn_ocgan.engine.trainer import _same_run, train
from attn_ocgan.errors import UserError
from attn_ocgan.registry import known_models
from tests.conftest import SMALL_MODEL_ARGS


def test_auto_is_cpu_without_a_gpu_and_cuda_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="no CUDA GPU.*--device cpu"):
        resolve_device("cuda")
    for bad in ("tpu", "gpu0", "meta"):
        with pytest.raises(UserError, match="device"):
            resolve_device(bad)


def test_a_resume_may_change_device_threads_and_epochs_but_nothing_else():
    saved = RunConfig(train=TrainConfig(epochs=5, device="cuda", threads=0)).to_dict()
    assert _same_run(saved, RunConfig(train=TrainConfig(epochs=9, device="cpu", threads=2)).to_dict())
    assert not _same_run(saved, RunConfig(train=TrainConfig(epochs=5, device="cuda", lr=1e-3)).to_dict())


def test_checkpoints_written_before_the_device_option_still_load(tmp_path, tiny_config):
    run = train(tiny_config, tmp_path / "run", progress=False)
    payload = read_checkpoint(run["checkpoint"])
    del payload["config"]["train"]["device"]  # as written by earlier versions
    config, model = model_from_checkpoint(payload)
    assert config.train.device == "auto" and model_device(model) == torch.device("cpu")


def test_restore_rng_resets_the_cpu_stream_and_skips_cuda_states_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    torch.manual_seed(3)
    payload = {"rng": torch.get_rng_state(), "cuda_rng": [torch.zeros(16, dtype=torch.uint8)]}
    expected = torch.rand(5)
    torch.rand(100)  # move the stream on
    restore_rng(payload)  # a checkpoint of a GPU run, resumed where there is no GPU
    assert torch.equal(torch.rand(5), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run this file on the device machine)")
@pytest.mark.parametrize("name", known_models())
def test_every_model_trains_and_scores_on_cuda_like_on_the_cpu(tmp_path, name):
    config = RunConfig(model=name, data=DataConfig(name="mnist5k", normal_class=1),
                       train=TrainConfig(epochs=2, batch_size=64, seed=0, device="cuda", eval_every=1),
                       model_args=dict(SMALL_MODEL_ARGS[name]))
    data = load_one_class(config.data)
    data = dataclasses.replace(data, test=data.test[:300], test_is_novel=data.test_is_novel[:300],
                               test_classes=data.test_classes[:300])
    run = train(config, tmp_path / "run", data=data, progress=False)
    payload = read_checkpoint(run["checkpoint"])
    assert len(payload["cuda_rng"]) == torch.cuda.device_count()  # a GPU resume continues the same random stream
    restore_rng(payload)
    first_draw = torch.rand(4, device="cuda")
    restore_rng(payload)
    assert torch.equal(torch.rand(4, device="cuda"), first_draw)
    _, on_gpu = model_from_checkpoint(payload, "cuda")
    _, on_cpu = model_from_checkpoint(payload, "cpu")
    assert model_device(on_gpu).type == "cuda"
    gpu_scores, cpu_scores = compute_scores(on_gpu, data.test), compute_scores(on_cpu, data.test)
    # the same model on both devices (TF32 convolutions on the GPU: close, not bit-equal)
    assert np.corrcoef(gpu_scores, cpu_scores)[0, 1] > 0.999
    is_novel = data.test_is_novel.numpy()
    assert abs(auc(is_novel, gpu_scores) - auc(is_novel, cpu_scores)) < 0.01
    metrics = evaluate_model(on_gpu, data, tmp_path / "eval")
    assert 0.0 <= metrics["auc"] <= 1.0 and (tmp_path / "eval" / "metrics.json").is_file()
    # a resume continues on the CPU from the GPU's checkpoint
    cpu_config = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=3, device="cpu"))
    assert train(cpu_config, tmp_path / "run", resume=True, data=data, progress=False)["epochs"] == 3
