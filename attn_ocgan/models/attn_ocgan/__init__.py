"""Attention OCGAN: OCGAN + CBAM attention maps, a guiding classifier and a masked GAN; this folder registers itself with :mod:`attn_ocgan.registry`."""
from ...registry import register_model
from .algorithm import AttnOCGANAlgorithm
from .config import DATASET_PRESETS, FIRST_RECIPE, AttnOCGANConfig
from .torch_model import AttnOCGAN

# Tiny test configuration: mask_warmup_epochs=0, so the masked GAN trains in the first step and
# the combined score is used; cbam_reduction=1, because at width 8 the default reduction leaves one
# hidden unit and 2 leaves four, all of which a ReLU can kill at some seeds (measured: seed 0 of
# the registered-model test, with the rotation defaults).
register_model("attn-ocgan", config=AttnOCGANConfig, model=AttnOCGAN, algorithm=AttnOCGANAlgorithm, presets=DATASET_PRESETS,
               test_args={"latent_channels": 6, "generator_width": 8, "guide_width": 8, "mask_warmup_epochs": 0, "cbam_reduction": 1},
               former_defaults=FIRST_RECIPE)

__all__ = ["AttnOCGAN", "AttnOCGANAlgorithm", "AttnOCGANConfig", "DATASET_PRESETS", "FIRST_RECIPE"]
