"""attn_ocgan/studies/anomalib_side_by_side.py (benchmarks/anomalib_side_by_side.py): the split anomalib reads
must be exactly ours.

anomalib itself is not installed here (it lives in the benchmark's own environment); what can
break silently is the export: a wrong group, a lost image, or pixels that do not round-trip.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from attn_ocgan.config import DataConfig
from attn_ocgan.data.one_class import OneClassData
from attn_ocgan.studies import anomalib_side_by_side as side_by_side


def _split(channels: int) -> OneClassData:
    generator = torch.Generator().manual_seed(0)
    pixels = lambda n: torch.randint(0, 256, (n, channels, 8, 8), generator=generator).float() / 127.5 - 1  # noqa: E731
    novel = torch.tensor([0, 1, 1, 0, 1, 1, 1])
    return OneClassData(train=pixels(5), validation=pixels(0), test=pixels(len(novel)), test_is_novel=novel,
                        test_classes=novel * 3, normal_class=0, class_names=tuple("abcd"))


def _read_folder(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(path)) for path in sorted(folder.glob("*.png"))])


@pytest.mark.parametrize("channels", [1, 3])
def test_export_split_writes_each_group_pixel_exact(tmp_path, channels):
    data = _split(channels)
    sizes = side_by_side.export_split(data, tmp_path)
    assert sizes == {"train_normal": 5, "test_normal": 2, "test_abnormal": 5}
    groups = {"train_normal": data.train, "test_normal": data.test[data.test_is_novel == 0],
              "test_abnormal": data.test[data.test_is_novel == 1]}
    for name, images in groups.items():
        written = _read_folder(tmp_path / name)
        expected = ((images + 1) * 127.5).round().to(torch.uint8).numpy()
        expected = expected[:, 0] if channels == 1 else np.moveaxis(expected, 1, -1)  # PNG: (H, W) or (H, W, C)
        np.testing.assert_array_equal(written, expected)


def test_one_json_with_both_sides_and_their_speed_ratio(tmp_path, monkeypatch):
    """Both implementations get the same exported split; the JSON holds both results, the split's
    sizes and the ratio of anomalib's median seconds per epoch to ours."""
    seen = {}

    def fake_anomalib(root, epochs, batch_size, seed):
        seen["anomalib"] = sorted(p.name for p in Path(root).iterdir())
        return {"auc": 0.7, "seconds_per_epoch": [30.0, 10.0, 12.0], "auc_per_epoch_validation_on_test": [0.6, 0.7, 0.7]}

    def fake_ours(data_config, epochs, batch_size, seed, run_dir):
        seen["ours"] = (data_config.name, data_config.normal_class, epochs, batch_size, seed)
        return {"auc": 0.8, "seconds_per_epoch": 4.0}

    monkeypatch.setattr(side_by_side, "run_anomalib", fake_anomalib)
    monkeypatch.setattr(side_by_side, "run_ours", fake_ours)
    out = tmp_path / "side_by_side.json"
    side_by_side.run_side_by_side(DataConfig(name="mnist5k", normal_class=3), epochs=3, batch_size=16, seed=0, out=out,
                                  command="python benchmarks/anomalib_side_by_side.py ...", echo=lambda _: None)
    payload = json.loads(out.read_text())
    assert seen == {"anomalib": ["test_abnormal", "test_normal", "train_normal"], "ours": ("mnist5k", 3, 3, 16, 0)}
    assert payload["ratio_seconds_per_epoch_anomalib_over_ours"] == 3.0  # median 12 s / 4 s
    assert payload["anomalib_ganomaly"]["auc"] == 0.7 and payload["attn_ocgan_ganomaly"]["auc"] == 0.8
    assert payload["normal_class"] == 3 and payload["images"]["train_normal"] > 0
    assert payload["images"]["test_normal"] + payload["images"]["test_abnormal"] > payload["images"]["test_normal"] > 0
    assert payload["command"] == "python benchmarks/anomalib_side_by_side.py ..." and payload["machine"] and payload["date"]
    assert [p.name for p in tmp_path.iterdir()] == ["side_by_side.json"]  # written atomically, nothing else
