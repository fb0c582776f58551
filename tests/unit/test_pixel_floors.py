"""attn-ocgan report pixel-floors (attn_ocgan/studies/pixel_floors.py): training-free raw-pixel floors
written as protocol tables."""

import numpy as np

from attn_ocgan.cli import main
from attn_ocgan.protocol.comparison import comparison_markdown, measured_rows
from attn_ocgan.protocol.tables import read_rows
from attn_ocgan.studies.pixel_floors import nearest_neighbour_distance, pca_reconstruction_error


def test_nearest_neighbour_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(50, 7)), rng.normal(size=(23, 7))
    expected = np.sqrt(((test[:, None, :] - train[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_neighbour_distance(train, test, chunk=5), expected, rtol=1e-9)
    assert nearest_neighbour_distance(train, train[:3]).max() < 1e-6  # a training image is at distance 0


def test_pca_error_is_zero_inside_the_span_and_large_outside():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 10))
    train = rng.normal(size=(200, 2)) @ basis  # normal data on a 2-d plane
    inside, outside = rng.normal(size=(5, 2)) @ basis, rng.normal(size=(5, 10)) * 3
    errors = pca_reconstruction_error(train, np.concatenate([inside, outside]), variance=0.99)
    assert errors[:5].max() < 1e-8 and errors[5:].min() > 1.0


def test_command_writes_protocol_tables_that_compare_reads(tmp_path, capsys):
    # tag mnist-*: shown in the MNIST family by attn-ocgan compare (the data is the small embedded copy)
    args = ["report", "pixel-floors", "--dataset", "mnist5k", "--tag", "mnist-small", "--classes", "1", "--results", str(tmp_path)]
    assert main(args) == 0
    tables = tmp_path / "mnist5k"  # filed by dataset, as the protocol runner's tables
    knn, pca = read_rows(tables / "mnist-small_pixel-knn.csv"), read_rows(tables / "mnist-small_pixel-pca.csv")
    assert [r["normal_class"] for r in knn] == ["1"] and [r["normal_class"] for r in pca] == ["1"]
    assert float(knn[0]["auc"]) > 0.95 and float(pca[0]["auc"]) > 0.95  # digit 1 is the easy class
    assert knn[0]["command"] == f"attn-ocgan report pixel-floors --dataset mnist5k --tag mnist-small --classes 1 --results {tmp_path}"
    table = (tables / "mnist-small_pixel-knn.md").read_text()
    assert table.count("| pixel-knn (floor) |") == 1 and "training-free" in table and "last-epoch" not in table
    # a second run skips the finished class instead of appending a duplicate row
    assert main(args) == 0
    assert len(read_rows(tables / "mnist-small_pixel-knn.csv")) == 1 and "skip class 1" in capsys.readouterr().out
    labels = [r.label for r in measured_rows(tmp_path, "mnist")]
    assert labels == ["pixel-knn (floor, mnist-small)", "pixel-pca (floor, mnist-small)"]
    # another PCA setting gets its own table, never mixed into the default one
    assert main([*args, "--pca-variance", "0.95"]) == 0
    assert len(read_rows(tables / "mnist-small_pixel-pca95.csv")) == 1 and len(read_rows(tables / "mnist-small_pixel-pca.csv")) == 1
    # DESIGN.md's floor row stays beside a floor measured on other data, and goes once it is measured on MNIST itself
    assert "nearest-neighbour floor (DESIGN.md)" in comparison_markdown(tmp_path, datasets=("mnist",))
    assert main(["report", "pixel-floors", "--dataset", "mnist5k", "--tag", "mnist", "--classes", "1", "--results", str(tmp_path)]) == 0
    mnist_table = comparison_markdown(tmp_path, datasets=("mnist",))
    assert "| pixel-knn (floor, mnist) |" in mnist_table and "| OCGAN (paper) |" in mnist_table
    assert "nearest-neighbour floor (DESIGN.md)" not in mnist_table
    capsys.readouterr()


def test_bad_input_is_a_one_line_error_and_nothing_is_written(tmp_path, capsys):
    for extra, message in ((["--pca-variance", "90"], "--pca-variance 90.0 must be between 0 and 1"),
                           (["--classes", "12"], "class 12 is out of range")):
        assert main(["report", "pixel-floors", "--dataset", "mnist5k", "--results", str(tmp_path), *extra]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("error: ") and "\n" not in error and message in error
    assert not any(tmp_path.iterdir())
