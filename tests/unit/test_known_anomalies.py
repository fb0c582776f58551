"""--known-anomalies K: the original authors' setting. The guide's negatives are the *training*
images of K other classes; the test AUC is also reported on the seen and unseen classes apart."""
import json

import numpy as np
import pytest
import torch

from attn_ocgan.cli import main
from attn_ocgan.data import LabeledSplits, make_one_class
from attn_ocgan.data.one_class import choose_known_anomaly_classes
from attn_ocgan.engine.evaluation import seen_unseen_aucs
from attn_ocgan.errors import UserError
from attn_ocgan.protocol.tables import read_rows
from attn_ocgan.models.attn_ocgan import FIRST_RECIPE
from tests.conftest import SMALL_MODEL_ARGS

FIRST_RECIPE_ARGS = {**SMALL_MODEL_ARGS["attn-ocgan"], **FIRST_RECIPE}  # the guide that takes real negatives


def _splits(n_classes=5, per_class=6):
    """Train image i of class c is filled with 10 * c + 1, test images with 10 * c + 5: a test
    image can never be mistaken for a training one."""
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    train = (10 * labels + 1).to(torch.uint8)[:, None, None, None].expand(-1, 1, 4, 4).clone()
    test = (10 * labels + 5).to(torch.uint8)[:, None, None, None].expand(-1, 1, 4, 4).clone()
    return LabeledSplits(train, labels, test, labels.clone(), tuple(f"c{c}" for c in range(n_classes)))


def test_known_anomalies_are_training_images_of_k_other_classes_and_never_test_images():
    splits = _splits()
    data = make_one_class(splits, normal_class=2, known_anomalies=2, known_anomaly_seed=0, val_fraction=0.5, val_novel=50)
    assert len(data.known_anomaly_classes) == 2 and 2 not in data.known_anomaly_classes
    pixel_values = {round(float(v)) for v in ((data.known_anomalies + 1) * 127.5).flatten()}
    assert pixel_values == {10 * c + 1 for c in data.known_anomaly_classes}  # training images of the seen classes only
    assert len(data.known_anomalies) == 2 * 6
    # the validation split's novel half comes from the unseen classes only
    validation_values = {round(float(v)) for v in ((data.validation_novel + 1) * 127.5).flatten()}
    unseen = set(range(5)) - {2, *data.known_anomaly_classes}
    assert validation_values == {10 * c + 1 for c in unseen}


def test_the_choice_is_reproducible_and_follows_the_seed_and_normal_class():
    first = choose_known_anomaly_classes(10, 0, 3, seed=0)
    assert first == choose_known_anomaly_classes(10, 0, 3, seed=0)
    choices = {choose_known_anomaly_classes(10, normal, 3, seed) for normal in range(10) for seed in range(3)}
    assert len(choices) > 10  # not one fixed triple
    assert all(len(set(c)) == 3 for c in choices)
    assert choose_known_anomaly_classes(10, 4, 0) == ()
    with pytest.raises(UserError, match="--known-anomalies 10 must be in 0..9"):
        choose_known_anomaly_classes(10, 0, 10)


def test_seen_and_unseen_aucs_split_the_novel_test_classes():
    classes = np.array([0, 0, 1, 1, 2, 2])
    is_novel = (classes != 0).astype(int)
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.15, 0.05])  # class 1 (seen) is detected, class 2 (unseen) is not
    result = seen_unseen_aucs(is_novel, scores, classes, (1,), ("a", "b", "c"))
    assert result == {"known_anomaly_classes": ["b"], "auc_seen_anomalies": 1.0, "auc_unseen_anomalies": 0.25}


def test_protocol_with_known_anomalies_has_its_own_table_and_reports_seen_and_unseen(tmp_path, capsys):
    args = [f"{key}={value}" for key, value in FIRST_RECIPE_ARGS.items()]
    command = ["protocol", "--model", "attn-ocgan", "--dataset", "mnist5k", "--classes", "3", "--epochs", "1",
               "--known-anomalies", "2", "--eval-every", "0", "--results", str(tmp_path / "results"),
               "--runs", str(tmp_path / "runs"), *[a for pair in args for a in ("--model-arg", pair)]]
    assert main(command) == 0
    capsys.readouterr()
    assert main([*command, "--classes", "3,4", "--status"]) == 0  # the same table: its tag, one cell of two done
    status = capsys.readouterr().out.splitlines()
    assert status[0].startswith("mnist5k-known2 attn-ocgan, 1 epoch a cell") and status[0].endswith("1 of 2 cells done")
    assert status[1].split()[:5] == ["class", "3", "(3)", "seed", "0"] and "done" in status[1] and "to do" in status[2]
    csv_path = tmp_path / "results" / "mnist5k" / "mnist5k-known2_attn-ocgan.csv"
    row, = read_rows(csv_path)
    seen = choose_known_anomaly_classes(10, 3, 2, seed=0)
    assert row["negatives"].startswith("known anomalies: training images of 2 other classes")
    assert all(str(c) in row["negatives"] for c in seen)
    assert 0 <= float(row["auc_seen"]) <= 1 and 0 <= float(row["auc_unseen"]) <= 1
    table = csv_path.with_suffix(".md").read_text()
    assert "seen anomaly classes only" in table and "unseen anomaly classes only" in table
    metrics = json.loads((tmp_path / "runs" / "mnist5k-known2_attn-ocgan" / "class3_seed0_e1" / "metrics.json").read_text())
    assert metrics["known_anomaly_classes"] == [str(c) for c in seen]


def test_a_model_without_a_guide_refuses_known_anomalies(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "ocgan", "--known-anomalies", "3", "--epochs", "1", "--out", str(out)]) == 2
    assert "--known-anomalies needs a model that trains on auxiliary negatives (attn-ocgan with attention on with " \
           "guide_task=pseudo_anomaly" in capsys.readouterr().err
    assert not out.exists()


def test_the_rotation_guide_refuses_known_anomalies_instead_of_ignoring_them(tmp_path, capsys):
    # the rotation guide trains on normal images only: real negatives would be silently unused
    out = tmp_path / "run"
    assert main(["train", "--model", "attn-ocgan", "--known-anomalies", "3", "--epochs", "1", "--out", str(out),
                 "--model-arg", "guide_task=rotation"]) == 2
    assert "not attn-ocgan with these options" in capsys.readouterr().err
    assert not out.exists()


def test_the_trainer_gives_the_seen_classes_training_images_to_the_guide(tmp_path, monkeypatch):
    from attn_ocgan.config import DataConfig, RunConfig, TrainConfig
    from attn_ocgan.data import load_one_class
    from attn_ocgan.engine.trainer import train
    from attn_ocgan.models.attn_ocgan import AttnOCGANAlgorithm

    received = []
    monkeypatch.setattr(AttnOCGANAlgorithm, "set_outlier_images", lambda self, images: received.append(images.cpu()))
    config = RunConfig(model="attn-ocgan", data=DataConfig(name="mnist5k", normal_class=1, known_anomalies=2),
                       train=TrainConfig(epochs=1, eval_every=0), model_args=dict(FIRST_RECIPE_ARGS))
    data = load_one_class(config.data)
    train(config, tmp_path / "run", data=data, progress=False)
    assert len(received) == 1 and torch.equal(received[0], data.known_anomalies)
    assert len(received[0]) == 2 * 400  # mnist5k: 400 training images per class
