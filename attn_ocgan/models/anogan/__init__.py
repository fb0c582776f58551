"""AnoGAN (Schlegl et al., IPMI 2017); this folder registers itself with :mod:`attn_ocgan.registry`."""
from ...registry import register_model
from .algorithm import AnoGANAlgorithm
from .config import DATASET_PRESETS, AnoGANConfig
from .torch_model import AnoGAN

register_model("anogan", config=AnoGANConfig, model=AnoGAN, algorithm=AnoGANAlgorithm, presets=DATASET_PRESETS,
               test_args={"latent_dim": 6, "generator_width": 8, "discriminator_width": 8, "search_steps": 5})

__all__ = ["AnoGAN", "AnoGANAlgorithm", "AnoGANConfig", "DATASET_PRESETS"]
