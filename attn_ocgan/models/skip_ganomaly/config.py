"""Skip-GANomaly hyper-parameters (Akcay et al., IJCNN 2019; the paper's weights, the official code's widths)."""
from __future__ import annotations

from dataclasses import dataclass

from ..components import check_range


@dataclass
class SkipGANomalyConfig:
    in_channels: int = 1  # filled from the dataset
    image_size: int = 32  # filled from the dataset (32 or 64: the U-Net halves it down to 1x1)
    generator_width: int = 64  # ngf: U-Net stage widths ngf, 2 ngf, 4 ngf, 8 ngf, 8 ngf, ...
    discriminator_width: int = 64  # ndf
    adversarial_weight: float = 1.0  # w_adv: BCE(D(G(x)), real)
    contextual_weight: float = 40.0  # w_con: L1(G(x), x) (the paper's 40; the official code's default is 50)
    latent_weight: float = 1.0  # w_lat: L2(f(x), f(G(x))), f = the discriminator's last feature map
    # Score: lambda * z(reconstruction error) + (1 - lambda) * z(latent error), each z-normalised with
    # the normal training images' statistics (the paper's lambda = 0.9).
    reconstruction_score_weight: float = 0.9
    # The official code re-initialises the discriminator when its loss collapses below this.
    reinit_discriminator_below: float = 1e-5

    def __post_init__(self):
        for name in ("generator_width", "discriminator_width"):
            check_range(self, name, 1, None)
        for name in ("adversarial_weight", "contextual_weight", "latent_weight", "reinit_discriminator_below"):
            check_range(self, name, 0.0, None)
        check_range(self, "reconstruction_score_weight", 0.0, 1.0)


DATASET_PRESETS: dict[str, dict] = {}  # the paper's weights serve MNIST and CIFAR-10 alike
