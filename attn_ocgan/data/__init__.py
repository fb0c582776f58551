"""One-class datasets (protocol 2): train on one class, test on the full test split."""
import dataclasses

from .datasets import DATASETS, LabeledSplits, dataset_class_names, dataset_label, dataset_path, load_splits
from .one_class import OneClassData, make_one_class, resolve_class

__all__ = ["DATASETS", "LabeledSplits", "dataset_label", "dataset_path", "load_splits", "OneClassData", "make_one_class", "load_one_class"]


def load_one_class(data_config, root: str | None = None) -> OneClassData:
    """Load the dataset named in ``data_config`` and select its normal class; ``root`` (if given)
    replaces its data root (e.g. a checkpoint's, scored on another machine)."""
    if root is not None:
        data_config = dataclasses.replace(data_config, root=root)
    if not data_config.download:  # a bad class is refused before a dataset is decoded (class names need no images)
        resolve_class(dataset_class_names(data_config.name, data_config.root, data_config.folder), data_config.normal_class)
    splits = load_splits(data_config.name, data_config.root, data_config.size, data_config.download,
                         data_config.variant, data_config.folder)
    return make_one_class(splits, data_config.normal_class, data_config.val_fraction, data_config.val_novel,
                          data_config.known_anomalies, data_config.known_anomaly_seed)
