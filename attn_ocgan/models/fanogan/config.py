"""f-AnoGAN hyper-parameters (Schlegl et al., Medical Image Analysis 2019)."""
from __future__ import annotations

from dataclasses import dataclass

from ..components import check_range


@dataclass
class FAnoGANConfig:
    in_channels: int = 1  # filled from the dataset
    image_size: int = 32  # filled from the dataset
    latent_dim: int = 128  # the official code's ZDIM; z ~ U(-1, 1)^latent_dim
    generator_width: int = 64
    critic_width: int = 64
    encoder_width: int = 64
    # Phase 1, WGAN-GP: n_critic critic steps (one batch each) per generator step, gradient penalty lambda.
    n_critic: int = 5
    gradient_penalty_weight: float = 10.0
    # Adam of all three networks: lr = lr_factor x --lr (0.5 x the harness's 2e-4 = WGAN-GP's 1e-4, and
    # --lr still scales it), betas (adam_beta1, adam_beta2) = WGAN-GP's (0, 0.9); the train section's beta1
    # (DCGAN's 0.5) is not used.
    lr_factor: float = 0.5
    adam_beta1: float = 0.0
    adam_beta2: float = 0.9
    # Phase 2, izi_f: the last encoder_epochs epochs of the run train the encoder only (G and the critic
    # frozen); the epochs before train the WGAN-GP. False: the GAN keeps training in those epochs too
    # (not the paper; for runs too short for two phases, e.g. the tests' 1-epoch runs).
    encoder_epochs: int = 5
    freeze_gan_in_encoder_epochs: bool = True
    kappa: float = 1.0  # weight of the critic-feature residual, in the encoder's loss and in the score

    def __post_init__(self):
        for name in ("latent_dim", "generator_width", "critic_width", "encoder_width", "n_critic", "encoder_epochs"):
            check_range(self, name, 1, None)
        for name in ("gradient_penalty_weight", "kappa"):
            check_range(self, name, 0.0, None)
        check_range(self, "lr_factor", 1e-8, None)
        for name in ("adam_beta1", "adam_beta2"):
            check_range(self, name, 0.0, 0.999)


DATASET_PRESETS: dict[str, dict] = {}  # one setting for every dataset, as the paper's recipe
