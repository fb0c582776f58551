"""OCGAN hyper-parameters. Defaults and per-dataset presets are justified in README.md beside this file."""
from __future__ import annotations

from dataclasses import dataclass

from ..components import check_range


@dataclass
class OCGANConfig:
    in_channels: int = 1  # filled from the dataset
    image_size: int = 32  # filled from the dataset
    latent_channels: int = 16
    latent_size: int = 1  # spatial side of the latent map: 1..4 (latent_dim = channels * size**2)
    generator_width: int = 32  # encoder/decoder base channels (ngf)
    visual_disc_width: int = 16  # visual discriminator base channels (ndf)
    classifier_width: int = 32
    latent_disc_hidden: int = 128
    noise_std: float = 0.2  # denoising noise on the [-1, 1] scale
    recon_weight: float = 10.0
    latent_adv_weight: float = 1.0
    visual_adv_weight: float = 1.0
    mining_steps: int = 1  # official code: 1 SGD step of size 2, late in training
    mining_step_size: float = 2.0
    mining_start_epoch: int = 15  # mining is active from this (0-based) epoch on
    ae_warmup_epochs: int = 0  # epochs of reconstruction-only training before the GAN terms
    # Decay of an exponential moving average of the encoder/decoder weights used for scoring
    # (0: off, score with the live weights as the paper). See README.md for the measurement.
    ema_decay: float = 0.0

    def __post_init__(self):
        check_range(self, "latent_size", 1, 4)
        check_range(self, "ema_decay", 0.0, 0.9999999)
        for name in ("latent_channels", "generator_width", "visual_disc_width", "classifier_width", "latent_disc_hidden"):
            check_range(self, name, 1, None)
        for name in ("noise_std", "mining_steps", "mining_start_epoch", "ae_warmup_epochs"):
            check_range(self, name, 0, None)


# Per-dataset overrides of the defaults (measured; see README.md). The EMA decay is per
# step, so it is set only where it was measured: full MNIST (~92 steps per epoch).
DATASET_PRESETS: dict[str, dict] = {
    "mnist": {"ema_decay": 0.995},
    "mnist5k": {},
    "fashion-mnist": {},
    "cifar10": {"latent_channels": 64, "generator_width": 64, "visual_disc_width": 32, "classifier_width": 64},
    "folder": {"latent_channels": 64, "generator_width": 64, "visual_disc_width": 32, "classifier_width": 64},
    "coco32": {"latent_channels": 64, "generator_width": 64, "visual_disc_width": 32, "classifier_width": 64},
}
