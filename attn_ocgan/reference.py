"""Published per-class AUCs (protocol 2) from ../shared/DESIGN.md, for side-by-side tables."""

PAPER_ROWS: dict[str, dict[str, list[float]]] = {
    "mnist": {
        "OCGAN (paper)": [.998, .999, .942, .963, .975, .980, .991, .981, .939, .981],
        "DSVDD (paper)": [.980, .997, .917, .919, .949, .885, .983, .946, .939, .965],
        "AnoGAN (paper)": [.966, .992, .850, .887, .894, .883, .947, .935, .849, .924],
        "TF port (README, with mining)": [.9952, .9976, .9268, .9410, .9636, .9613, .9910, .9658, .9009, .9584],
        "nearest-neighbour floor (DESIGN.md)": [.993, .999, .925, .934, .945, .955, .980, .958, .885, .962],
    },
    "cifar10": {
        "OCGAN (paper)": [.757, .531, .640, .620, .723, .620, .723, .575, .820, .554],
        "attention OCGAN (reported)": [.791, .533, .632, .608, .723, .610, .742, .580, .801, .743],
        "DSVDD (paper)": [.617, .659, .508, .591, .609, .657, .677, .673, .759, .731],
        "AnoGAN (paper)": [.671, .547, .529, .545, .651, .603, .585, .625, .758, .665],
    },
}

# Column names of the tables above (class index order of torchvision / the CIFAR-10 folders).
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "cifar10": ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}


def is_floor(model: str) -> bool:
    """Training-free raw-pixel baselines (``attn-ocgan report pixel-floors``: ``pixel-knn``,
    ``pixel-pca``, ``pixel-pca95``, ...): the floor a trained model must beat."""
    return model.startswith("pixel-")


def without_measured_floor(rows: dict[str, list[float]]) -> dict[str, list[float]]:
    """The published rows less DESIGN.md's floor rows, for tables that show the floor as measured here."""
    return {name: values for name, values in rows.items() if "floor" not in name}
