"""attn_ocgan/utils/timing.py (benchmarks/train_throughput.py's step-time ratio): alternating blocks, fake clock."""
from attn_ocgan.utils import timing


def test_ratio_is_the_median_of_alternating_block_ratios(monkeypatch):
    clock, order = [0.0], []
    load = iter([1.0, 1.0, 5.0])  # machine load during the three model blocks: one slow outlier
    block_load = {"value": 1.0}

    def reference_step():  # each reference step costs 1 s on the fake clock
        clock[0] += 1.0
        order.append("v")

    def model_step():
        if order[-1] == "v":  # a new model block starts: draw its load
            block_load["value"] = next(load)
        clock[0] += 2.5 * block_load["value"]
        order.append("m")

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    result = timing.alternating_block_ratio(reference_step, model_step, steps=2, repeats=3, images_per_step=8)
    assert "".join(order) == "v" + "vvmm" * 3  # warm-up, then reference and model blocks alternate
    assert result["ratios"] == [2.5, 2.5, 12.5]
    assert result["ratio"] == 2.5  # the median ignores the loaded block
    assert result["reference_img_per_s"] == 8.0  # 16 images per 2 s block
    assert result["model_img_per_s"] == 3.2  # 16 images per 5 s block
