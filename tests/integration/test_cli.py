import json
import subprocess
import sys

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from attn_ocgan.cli import main
from attn_ocgan.data import load_one_class
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint
from attn_ocgan.registry import known_models

SMALL = ["--model", "ocgan", "--model-arg", "generator_width=8", "--model-arg", "classifier_width=8",
         "--model-arg", "visual_disc_width=4"]


def _tags(run_dir):
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0, "histograms": 0})
    events.Reload()
    return events.Tags()


def test_train_writes_tensorboard_checkpoint_and_evaluation(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--normal-class", "1", "--out", str(out), *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "test AUC" in printed and "checkpoint:" in printed
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "config.yaml").is_file()
    tags = _tags(out)
    assert {"loss/classifier", "loss/generator/recon", "loss/latent_discriminator", "loss/visual_discriminator", "auc/test"} <= set(tags["scalars"])
    assert {"images/inputs", "images/reconstructions", "images/random_latent_decodes", "images/mined_latent_decodes",
            "images/test_normal_reconstructions", "images/test_novel_reconstructions"} <= set(tags["images"])
    assert {p.name for p in out.iterdir()} >= {"metrics.json", "roc.png", "score_histogram.png"}

    # evaluate rebuilds the model from the checkpoint alone and writes into --out
    evaluation = tmp_path / "evaluation"
    assert main(["evaluate", "--checkpoint", str(out / "checkpoints" / "last.pt"), "--out", str(evaluation)]) == 0
    assert "AUC" in capsys.readouterr().out
    assert {p.name for p in evaluation.iterdir()} == {"metrics.json", "roc.png", "score_histogram.png"}

    # an existing run folder is not overwritten silently
    assert main(["train", "--epochs", "1", "--out", str(out), *SMALL]) == 2
    assert "already exists" in capsys.readouterr().err


def test_seeded_runs_repeat_and_resume_continues(tmp_path, capsys):
    def weights(run):
        return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]

    args = ["train", "--normal-class", "0", "--seed", "3", "--eval-every", "0", *SMALL]
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "b"), "--resume"]) == 0  # nothing to resume: a new run
    assert f"note: nothing to resume in {tmp_path / 'b'}; starting a new run there" in capsys.readouterr().err
    first, second = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(first[k], second[k]) for k in first)

    # 1 epoch, then resume to 2, gives the same weights as 2 epochs straight
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "c")]) == 0
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "c"), "--resume"]) == 0
    resumed = weights(tmp_path / "c")
    assert torch.load(tmp_path / "c" / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 2
    assert all(torch.equal(first[k], resumed[k]) for k in first)


@pytest.mark.parametrize("argv,message", [
    (["train", "--dataset", "mnist", "--data-root", "/nonexistent/data"], "data root /nonexistent/data does not exist"),
    (["train", "--dataset", "svhn"], "unknown dataset 'svhn'"),
    (["train", "--normal-class", "11"], "normal class 11 is out of range"),
    (["train", "--model", "vae"], "unknown model 'vae'; known models: " + ", ".join(known_models())),
    (["evaluate", "--checkpoint", "README.md"], "cannot read checkpoint README.md"),
    (["train", "--epochs", "0"], "epochs=0 must be >= 1"),
    (["train", "--temperature", "0"], "model option temperature=0.0 must be >= 1e-06"),
    (["train", "--model", "ocgan", "--model-arg", "latent_size=7"], "model option latent_size=7 must be in [1, 4]"),
])
def test_bad_input_is_one_line_and_non_zero(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent if "README.md" not in argv else __import__("pathlib").Path(__file__).parents[2])
    assert main([*argv, *(["--out", str(tmp_path / "run")] if argv[0] == "train" else [])]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_foreign_checkpoint_from_the_console_script(tmp_path):
    foreign = tmp_path / "resnet.pt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, foreign)
    result = subprocess.run([sys.executable, "-m", "attn_ocgan.cli", "evaluate", "--checkpoint", str(foreign)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {foreign} is not an attn-ocgan checkpoint; pass a file written by 'attn-ocgan train'"]


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    keep = tmp_path / "notes.txt"
    keep.write_text("precious")
    assert main(["train", "--epochs", "1", "--out", str(tmp_path), "--overwrite", *SMALL]) == 2
    assert "not an attn-ocgan run folder" in capsys.readouterr().err
    assert keep.read_text() == "precious"


def test_attention_train_with_temperature_writes_masks_to_tensorboard(tmp_path, capsys):
    """The documented command, on the embedded default data (made small and short)."""
    out = tmp_path / "attn"
    small = ["--model-arg", "generator_width=8", "--model-arg", "classifier_width=8", "--model-arg", "visual_disc_width=4",
             "--model-arg", "guide_width=8"]
    assert main(["train", "--temperature", "0.5", "--epochs", "2", "--mask-warmup-epochs", "1", "--normal-class", "1",
                 "--out", str(out), *small]) == 0
    assert "test AUC" in capsys.readouterr().out
    saved = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert saved["config"]["model"] == "attn-ocgan" and saved["config"]["model_args"]["temperature"] == 0.5
    assert int(saved["model"]["masked_gan_steps"]) > 0
    assert {"metrics.json", "roc.png", "score_histogram.png", "masks.png"} <= {p.name for p in out.iterdir()}
    masks = json.loads((out / "metrics.json").read_text())["masks"]
    assert set(masks) == {"train_normal", "test_normal", "test_novel"}
    assert all(0 < group["area"] < 1 and 0 <= group["decisiveness"] <= 0.5 for group in masks.values())
    mask_aucs = json.loads((out / "metrics.json").read_text())["mask_aucs"]
    assert set(mask_aucs) == {"area", "decisiveness", "on_bright_pixels", "reference_bright_share", "shape_deviation",
                             "reference_image_deviation"} and all(0 <= v <= 1 for v in mask_aucs.values())
    combination = json.loads((out / "metrics.json").read_text())["score_combination"]
    assert combination["masked_score_weight"] == 0.5 and combination["active"]
    components = json.loads((out / "metrics.json").read_text())["auc_per_score_component"]
    # the defaults: both GANs' errors and the rotation guide's evidence, equal weights
    assert set(components) == {"first_gan", "masked_gan", "guide_rotation_x", "guide_rotation_masked"}
    assert all(0 <= value <= 1 for value in components.values())
    assert combination["score_weights"] == "equal" and combination["weights"] == pytest.approx(dict.fromkeys(components, 0.25))
    tags = _tags(out)
    assert {"masks/test_normal", "masks/test_novel"} <= set(tags["images"])
    assert {"masks/values", "masks/area_per_image"} <= set(tags["histograms"])
    assert {"loss/attention/mask_area", "loss/attention/rotation_kept", "loss/attention/erased_confusion",
            "loss/attention/area_barrier", "loss/masked_gan/generator/recon"} <= set(tags["scalars"])
    # the trainer fitted the score statistics on the normal training images (not the test split)
    config, model = model_from_checkpoint(read_checkpoint(out / "checkpoints" / "last.pt"))
    data = load_one_class(config.data)
    with torch.no_grad():
        train_components, test_components = model.score_components(data.train), model.score_components(data.test)
    torch.testing.assert_close(model.score_mean, train_components.mean(0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(model.score_std, train_components.std(0), rtol=1e-4, atol=1e-6)
    assert combination["component_mean"] == pytest.approx(model.score_mean.tolist())
    assert not torch.allclose(model.score_mean, test_components.mean(0), rtol=1e-3)


def test_temperature_is_refused_for_vanilla_ocgan(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "ocgan", "--temperature", "0.5"]) == 2
    assert not (tmp_path / "runs").exists()
    assert "unknown key(s) temperature" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "predict", "export", "gradcam", "figures", "localize"])
def test_threads_is_set_before_a_checkpoint_command_runs(command, tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    missing = str(tmp_path / "missing.pt")
    extra = {"predict": ["--out", str(tmp_path / "scores"), "image.png"], "gradcam": ["--out", str(tmp_path / "g.png")],
             "figures": ["--out", str(tmp_path / "f")]}.get(command, [])
    assert main([command, "--threads", "1", "--checkpoint", missing, *extra]) == 2  # parsed, then the checkpoint is missing
    assert calls == [1] and "Traceback" not in capsys.readouterr().err
    assert main([command, "--threads", "0", "--checkpoint", missing, *extra]) == 2
    assert "'--threads': 0 is not in the range x>=1" in capsys.readouterr().err and calls == [1]


@pytest.mark.parametrize("report", ["score-components", "component-means"])
@pytest.mark.parametrize("content, message", [(b"", "holds no cells"), (b'{"a": 1}\n', "line 1, has no dataset"),
                                              (b"\x80binary", "is not a text file")])
def test_a_metrics_log_that_holds_no_cells_is_one_line(report, content, message, tmp_path, capsys):
    log = tmp_path / "t_ocgan.metrics.jsonl"
    log.write_bytes(content)
    assert main(["report", report, "--metrics", str(log), "--out", str(tmp_path / "table.md")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "table.md").exists()


def test_a_file_that_is_not_a_whole_checkpoint_is_one_line(tmp_path, capsys):
    """An exported scorer (TorchScript, ONNX) or a checkpoint missing its weights, given where a
    checkpoint goes: one line that says what the file is and what to pass instead."""
    import warnings

    from tests.conftest import untrained_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "scorer.pt")
    (tmp_path / "scorer.onnx").write_bytes(b"\x08\x07onnx")
    payload = torch.load(untrained_checkpoint("ocgan", tmp_path / "last.pt"), weights_only=True)
    del payload["model"]
    torch.save(payload, tmp_path / "cut.pt")
    for name, message in (("scorer.pt", "is a scorer written by 'attn-ocgan export', not a checkpoint"),
                          ("scorer.onnx", "is a scorer written by 'attn-ocgan export', not a checkpoint"),
                          ("cut.pt", "is an incomplete attn-ocgan checkpoint (no model)")):
        assert main(["evaluate", "--checkpoint", str(tmp_path / name), "--threshold", "0.5"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_an_error_inside_a_progress_bar_starts_its_own_line(tmp_path, capsys):
    from tests.conftest import untrained_checkpoint

    checkpoint = untrained_checkpoint("ocgan", tmp_path / "last.pt")  # score-components needs attention checkpoints
    assert main(["report", "score-components", "--out", str(tmp_path / "t.md"), str(checkpoint)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("error: ") and "without attention" in line for line in lines), lines


def test_export_warns_on_the_checkpoint_of_an_unfinished_run(tmp_path, capsys):
    from tests.conftest import untrained_checkpoint

    checkpoint = untrained_checkpoint("ocgan", tmp_path / "last.pt")  # epoch 1 of the default schedule, no scores
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "scorer.pt")]) == 0
    assert "is from epoch 1 of 25: its training has not finished" in capsys.readouterr().err
    assert (tmp_path / "scorer.pt").is_file()
