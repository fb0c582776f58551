"""Rotation prediction as a novelty detector (Golan & El-Yaniv 2018; Hendrycks et al. 2019): the
attention model's rotation guide without the attention branch; registers itself with :mod:`attn_ocgan.registry`."""
from ...registry import register_model
from .algorithm import RotNetAlgorithm
from .config import DATASET_PRESETS, RotNetConfig
from .torch_model import RotNet

register_model("rotnet", config=RotNetConfig, model=RotNet, algorithm=RotNetAlgorithm, presets=DATASET_PRESETS,
               test_args={"width": 8})

__all__ = ["DATASET_PRESETS", "RotNet", "RotNetAlgorithm", "RotNetConfig"]
