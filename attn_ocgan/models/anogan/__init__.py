from .algorithm import AnoGANAlgorithm
from .config import DATASET_PRESETS, AnoGANConfig
from .torch_model import AnoGAN

__all__ = ["AnoGAN", "AnoGANAlgorithm", "AnoGANConfig", "DATASET_PRESETS"]
