from .algorithm import OCGANAlgorithm
from .config import DATASET_PRESETS, OCGANConfig
from .mining import mine_informative_negatives
from .torch_model import OCGAN

__all__ = ["OCGAN", "OCGANAlgorithm", "OCGANConfig", "DATASET_PRESETS", "mine_informative_negatives"]
