"""OCGAN (Perera et al., CVPR 2019); this folder registers itself with :mod:`attn_ocgan.registry`."""
from ...registry import register_model
from .algorithm import OCGANAlgorithm
from .config import DATASET_PRESETS, OCGANConfig
from .mining import mine_informative_negatives
from .torch_model import OCGAN

register_model("ocgan", config=OCGANConfig, model=OCGAN, algorithm=OCGANAlgorithm, presets=DATASET_PRESETS,
               test_args={"latent_channels": 6, "generator_width": 8})

__all__ = ["OCGAN", "OCGANAlgorithm", "OCGANConfig", "DATASET_PRESETS", "mine_informative_negatives"]
