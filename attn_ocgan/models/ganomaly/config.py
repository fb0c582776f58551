"""GANomaly hyper-parameters (Akcay et al., ACCV 2018; official defaults)."""
from __future__ import annotations

from dataclasses import dataclass

from ..components import check_range


@dataclass
class GANomalyConfig:
    in_channels: int = 1  # filled from the dataset
    image_size: int = 32  # filled from the dataset
    latent_dim: int = 100  # nz
    generator_width: int = 64  # ngf: both encoders and the decoder
    discriminator_width: int = 64  # ndf
    adversarial_weight: float = 1.0  # w_adv: feature matching on the discriminator's last feature map
    contextual_weight: float = 50.0  # w_con: L1(G(x), x)
    encoder_weight: float = 1.0  # w_enc: L2(En2(G(x)), En1(x))
    # The official code re-initialises the discriminator when its loss collapses below this.
    reinit_discriminator_below: float = 1e-5

    def __post_init__(self):
        for name in ("latent_dim", "generator_width", "discriminator_width"):
            check_range(self, name, 1, None)
        for name in ("adversarial_weight", "contextual_weight", "encoder_weight", "reinit_discriminator_below"):
            check_range(self, name, 0.0, None)


DATASET_PRESETS: dict[str, dict] = {}  # the official defaults serve MNIST and CIFAR-10 alike
