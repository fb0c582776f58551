"""benchmarks/train_throughput.py: the step-time ratio is timed in alternating blocks (fake clock, no timing)."""
import types

from tests.conftest import load_benchmark


def test_ratio_is_the_median_of_alternating_block_ratios(monkeypatch):
    throughput = load_benchmark("train_throughput")
    clock, order = [0.0], []

    class FakeVanilla:  # each vanilla step costs 1 s on the fake clock
        def train_step(self, batch, epoch):
            clock[0] += 1.0
            order.append("v")

    load = iter([1.0, 1.0, 5.0])  # machine load during the three model blocks: one slow outlier
    block_load = {"value": 1.0}

    def model_step():
        clock[0] += 2.5 * block_load["value"]
        order.append("m")

    monkeypatch.setattr(throughput.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(throughput, "resolve_model_config", lambda *a, **k: None)
    monkeypatch.setattr(throughput, "create_model", lambda *a, **k: None)
    monkeypatch.setattr(throughput, "create_algorithm", lambda *a, **k: FakeVanilla())

    def stepping_model():
        if order and order[-1] == "v":  # a new model block starts: draw its load
            block_load["value"] = next(load)
        model_step()

    args = types.SimpleNamespace(batch_size=8, steps=2, repeats=3)
    data = types.SimpleNamespace(in_channels=1, image_size=32)
    result = throughput.step_time_ratio_vs_vanilla("mnist", data, batch=None, args=args, model_step=stepping_model)
    assert "".join(order) == "v" + "vvmm" * 3  # warm-up, then vanilla and model blocks alternate
    assert result["step_time_ratio_vs_ocgan_repeats"] == [2.5, 2.5, 12.5]
    assert result["step_time_ratio_vs_ocgan"] == 2.5  # the median ignores the loaded block
    assert result["ocgan_train_img_per_s"] == 8.0  # 16 images per 2 s block
    assert result["train_img_per_s_alternating_blocks"] == 3.2  # 16 images per 5 s block
