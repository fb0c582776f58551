"""Skip-GANomaly (Akcay et al., IJCNN 2019); this folder registers itself with :mod:`attn_ocgan.registry`."""
from ...registry import register_model
from .algorithm import SkipGANomalyAlgorithm
from .config import DATASET_PRESETS, SkipGANomalyConfig
from .torch_model import SkipGANomaly, UNetGenerator

register_model("skip-ganomaly", config=SkipGANomalyConfig, model=SkipGANomaly, algorithm=SkipGANomalyAlgorithm,
               presets=DATASET_PRESETS, test_args={"generator_width": 8, "discriminator_width": 8})

__all__ = ["SkipGANomaly", "SkipGANomalyAlgorithm", "SkipGANomalyConfig", "UNetGenerator", "DATASET_PRESETS"]
