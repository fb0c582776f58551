from .algorithm import GANomalyAlgorithm
from .config import DATASET_PRESETS, GANomalyConfig
from .torch_model import GANomaly

__all__ = ["GANomaly", "GANomalyAlgorithm", "GANomalyConfig", "DATASET_PRESETS"]
