from .algorithm import AttnOCGANAlgorithm
from .config import DATASET_PRESETS, AttnOCGANConfig
from .torch_model import AttnOCGAN

__all__ = ["AttnOCGAN", "AttnOCGANAlgorithm", "AttnOCGANConfig", "DATASET_PRESETS"]
