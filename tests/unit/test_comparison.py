"""attn-ocgan compare: one table per dataset family from the protocol CSVs, published rows beside them."""
import csv
import multiprocessing

from attn_ocgan.cli import main
from attn_ocgan.protocol.comparison import measured_rows
from attn_ocgan.protocol.tables import CSV_COLUMNS

from .lock_worker import add_one


def _write(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({"epochs": 25, "negatives": "strict one-class", "machine": "m", "date": "d", "command": "c",
                             "train_seconds": 1, **row})


def test_compare_writes_every_model_per_dataset_family(tmp_path):
    _write(tmp_path / "mnist_ocgan.csv", [{"dataset": "mnist", "model": "ocgan", "normal_class": 0, "seed": s, "auc": a}
                                          for s, a in ((0, 0.9), (1, 0.8))])
    _write(tmp_path / "mnist_ganomaly.csv", [{"dataset": "mnist", "model": "ganomaly", "normal_class": k, "seed": 0, "auc": 0.5}
                                             for k in range(10)])
    _write(tmp_path / "mnist5k_ocgan.csv", [{"dataset": "mnist5k", "model": "ocgan", "normal_class": 0, "seed": 0, "auc": 0.1}])
    _write(tmp_path / "cifar10-jpeg_attn-ocgan.csv", [{"dataset": "cifar10-jpeg", "model": "attn-ocgan", "normal_class": 9,
                                                       "seed": 0, "auc": 0.7}])
    assert [r.label for r in measured_rows(tmp_path, "mnist")] == ["ocgan (ours, mnist)", "ganomaly (ours, mnist)"]
    out = tmp_path / "comparison.md"
    assert main(["compare", "--results", str(tmp_path), "--out", str(out)]) == 0
    text = out.read_text()
    mnist, cifar = text.split("## cifar10")
    assert "| ocgan (ours, mnist) | 0.850 ± 0.071 | — |" in mnist and "(1/10 classes)" in mnist
    assert "| ganomaly (ours, mnist) | 0.500 |" in mnist and "**0.5000** |" in mnist
    assert "mnist5k" not in text  # a different test set: not comparable with the paper
    assert "| OCGAN (paper) | 0.998 |" in mnist and "| OCGAN (paper) | 0.757 |" in cifar
    assert "| attn-ocgan (ours, cifar10-jpeg) | — | — | — | — | — | — | — | — | — | 0.700 | **0.7000** (1/10 classes) |" in cifar
    assert (tmp_path / "comparison.png").stat().st_size > 1000
    # known-anomaly rows: each class saw other classes; the notes name the setting once, not per class
    _write(tmp_path / "cifar10-jpeg-known3_attn-ocgan.csv", [
        {"dataset": "cifar10-jpeg-known3", "model": "attn-ocgan", "normal_class": k, "seed": 0, "auc": 0.6,
         "negatives": f"known anomalies: training images of 3 other classes ({seen}), drawn with seed 0"}
        for k, seen in ((0, "automobile, cat, truck"), (1, "airplane, dog, horse"))])
    assert main(["compare", "--results", str(tmp_path), "--out", str(out)]) == 0
    assert ("- attn-ocgan (ours, cifar10-jpeg-known3): seeds [0], epochs [25]; model: last epoch; negatives: known "
            "anomalies: training images of 3 other classes, drawn with seed 0; rows in") in out.read_text()
    # an ablation view: only tags matching a glob, only some models
    ablation = tmp_path / "ablation.md"
    _write(tmp_path / "cifar10-jpeg-abl-t1_attn-ocgan.csv", [{"dataset": "cifar10-jpeg-abl-t1", "model": "attn-ocgan",
                                                              "normal_class": 9, "seed": 0, "auc": 0.6}])
    assert main(["compare", "--results", str(tmp_path), "--out", str(out)]) == 0
    assert "abl-t1" not in out.read_text()  # ablation settings stay out of the main table
    assert main(["compare", "--results", str(tmp_path), "--datasets", "cifar10", "--tags", "cifar10-jpeg*", "--exclude-tags", "",
                 "--models", "attn-ocgan", "--title", "Ablation", "--out", str(ablation)]) == 0
    text = ablation.read_text()
    assert text.startswith("# Ablation") and "## mnist" not in text
    assert "attn-ocgan (ours, cifar10-jpeg) |" in text and "attn-ocgan (ours, cifar10-jpeg-abl-t1) |" in text
    assert main(["compare", "--results", str(tmp_path), "--datasets", "cifar10", "--models", "ocgan", "--out", str(ablation)]) == 0
    assert "No protocol results of ours yet." in ablation.read_text()
    assert main(["compare", "--results", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert main(["compare", "--results", str(tmp_path), "--datasets", "svhn", "--out", str(out)]) == 2
    assert main(["compare", "--results", str(tmp_path), "--models", "ocgan,ocgn", "--out", str(out)]) == 2  # a typo
    # a CSV that is not a protocol table is no row; a damaged row of one is a one-line error
    (tmp_path / "mnist_notes.csv").write_text("what,when\nx,y\n")
    assert main(["compare", "--results", str(tmp_path), "--out", str(out)]) == 0 and "notes" not in out.read_text()
    _write(tmp_path / "mnist_rotnet.csv", [{"dataset": "mnist", "model": "rotnet", "normal_class": 0, "seed": 0, "auc": "n/a"}])
    assert main(["compare", "--results", str(tmp_path), "--out", str(out)]) == 2


def test_file_lock_serialises_read_modify_write_across_processes(tmp_path):
    counter = tmp_path / "counter.txt"
    counter.write_text("0")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=add_one, args=(counter, 25)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert int(counter.read_text()) == 75


def test_comparison_plot_gives_each_method_one_colour_in_every_panel():
    from attn_ocgan.viz.plots import method_colours

    panels = {"mnist": ([("ocgan (ours, mnist)", "ocgan", {0: 0.9}), ("ocgan (ours, mnist-ema)", "ocgan", {0: 0.9}),
                         ("anogan (ours, mnist)", "anogan", {0: 0.9})], {"OCGAN (paper)": [0.9]}, ["0"]),
              "cifar10": ([("anogan (ours, cifar10-jpeg)", "anogan", {0: 0.6})],
                          {"OCGAN (paper)": [0.7], "DSVDD (paper)": [0.6]}, ["plane"])}
    colours = method_colours(panels)
    assert set(colours) == {"ocgan", "anogan", "OCGAN (paper)", "DSVDD (paper)"}  # one entry per method, not per panel
    assert len(set(colours.values())) == 4  # and no two methods share one
