"""Building blocks and losses shared by several models (anomalib's ``models/components``)."""
from .checks import check_range
from .critics import ConvCritic
from .losses import bce_to, critic_loss, train_discriminator
from .modes import evaluating

__all__ = ["ConvCritic", "bce_to", "check_range", "critic_loss", "evaluating", "train_discriminator"]
