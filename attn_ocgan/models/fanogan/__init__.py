"""f-AnoGAN (Schlegl et al., Medical Image Analysis 2019); this folder registers itself with :mod:`attn_ocgan.registry`."""
from ...registry import register_model
from .algorithm import FAnoGANAlgorithm
from .config import DATASET_PRESETS, FAnoGANConfig
from .torch_model import FAnoGAN

# Tiny; the GAN trains in every epoch and the encoder beside it in the last: a 1-epoch test run trains all three networks.
register_model("fanogan", config=FAnoGANConfig, model=FAnoGAN, algorithm=FAnoGANAlgorithm, presets=DATASET_PRESETS,
               test_args={"latent_dim": 6, "generator_width": 8, "critic_width": 8, "encoder_width": 8, "n_critic": 1,
                          "encoder_epochs": 1, "freeze_gan_in_encoder_epochs": False})

__all__ = ["DATASET_PRESETS", "FAnoGAN", "FAnoGANAlgorithm", "FAnoGANConfig"]
