"""GANomaly (Akcay et al., ACCV 2018); this folder registers itself with :mod:`attn_ocgan.registry`."""
from ...registry import register_model
from .algorithm import GANomalyAlgorithm
from .config import DATASET_PRESETS, GANomalyConfig
from .torch_model import GANomaly

register_model("ganomaly", config=GANomalyConfig, model=GANomaly, algorithm=GANomalyAlgorithm, presets=DATASET_PRESETS,
               test_args={"latent_dim": 6, "generator_width": 8, "discriminator_width": 8})

__all__ = ["GANomaly", "GANomalyAlgorithm", "GANomalyConfig", "DATASET_PRESETS"]
