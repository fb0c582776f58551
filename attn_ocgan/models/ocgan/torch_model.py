"""OCGAN networks (nn.Modules only: no optimisers, paths or devices)."""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ...layers import ConvDownStack, ConvUpStack, init_dcgan_weights
from ..base import NoveltyModel, draw_latent
from ..components import ConvCritic
from .config import OCGANConfig


def _latent_kernel(latent_size: int) -> int:
    if not 1 <= latent_size <= 4:
        raise ValueError(f"latent_size must be 1..4 (spatial side of the latent map), got {latent_size}")
    return 5 - latent_size  # a 4x4 map convolved with kernel k (no padding) -> (5 - k) x (5 - k)


class Encoder(nn.Module):
    """(B, C, S, S) in [-1, 1] -> latent (B, latent_channels, L, L) in (-1, 1) (tanh-bounded)."""

    def __init__(self, config: OCGANConfig):
        super().__init__()
        self.features = ConvDownStack(config.in_channels, config.generator_width, config.image_size)
        self.to_latent = nn.Conv2d(self.features.out_channels, config.latent_channels, _latent_kernel(config.latent_size))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_latent(self.features(images)))


class Decoder(nn.Module):
    """latent (B, latent_channels, L, L) -> image (B, C, S, S) in (-1, 1)."""

    def __init__(self, config: OCGANConfig):
        super().__init__()
        self.body = ConvUpStack(config.in_channels, config.generator_width, config.image_size)
        width = self.body.in_channels
        self.from_latent = nn.Sequential(
            nn.ConvTranspose2d(config.latent_channels, width, _latent_kernel(config.latent_size), bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.body(self.from_latent(latent))


class LatentCritic(nn.Module):
    """Latent (B, C, L, L) -> one logit (B,): is it a uniform sample or an encoded image?"""

    def __init__(self, latent_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(latent_dim, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent).flatten()


class OCGAN(NoveltyModel):
    """Encoder, decoder, latent and visual discriminators, and the classifier of OCGAN."""

    def __init__(self, config: OCGANConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.latent_discriminator = LatentCritic(self.latent_dim, config.latent_disc_hidden)
        self.visual_discriminator = ConvCritic(config.in_channels, config.visual_disc_width, config.image_size)
        self.classifier = ConvCritic(config.in_channels, config.classifier_width, config.image_size)
        init_dcgan_weights(self)
        if config.ema_decay > 0:
            # Averaged copies for scoring (torch.optim.swa_utils). Only the weights are averaged;
            # BatchNorm statistics are copied from the live networks (averaging them too was measured
            # to break the reconstructions: README.md).
            average = get_ema_multi_avg_fn(config.ema_decay)
            self.ema_encoder = AveragedModel(self.encoder, multi_avg_fn=average)
            self.ema_decoder = AveragedModel(self.decoder, multi_avg_fn=average)
            for parameter in [*self.ema_encoder.parameters(), *self.ema_decoder.parameters()]:
                parameter.requires_grad_(False)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Start again from fresh weights: DCGAN initialisation, cleared BatchNorm statistics, and the
        averaged copies (``ema_decay``) restarted from the new live networks."""
        init_dcgan_weights(self)
        for layer in self.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                layer.reset_running_stats()
        if self.config.ema_decay > 0:
            for averaged, live in ((self.ema_encoder, self.encoder), (self.ema_decoder, self.decoder)):
                averaged.module.load_state_dict(live.state_dict())
                averaged.n_averaged.zero_()

    @torch.no_grad()
    def update_ema(self) -> None:
        """Move the averaged encoder/decoder towards the live ones (after each generator step)."""
        if self.config.ema_decay > 0:
            for averaged, live in ((self.ema_encoder, self.encoder), (self.ema_decoder, self.decoder)):
                averaged.update_parameters(live)
                for averaged_buffer, live_buffer in zip(averaged.module.buffers(), live.buffers()):
                    averaged_buffer.copy_(live_buffer)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.config.latent_channels, self.config.latent_size, self.config.latent_size)

    @property
    def latent_dim(self) -> int:
        channels, height, width = self.latent_shape
        return channels * height * width

    def sample_latent(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """l2 ~ U(-1, 1)^d, shaped (B, C, L, L), on the model's device (``draw_latent``)."""
        return draw_latent(self, self.latent_shape, batch_size, "uniform", generator)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """De(En(x)); with ``ema_decay`` > 0, through the averaged encoder and decoder."""
        if self.config.ema_decay > 0:
            return self.ema_decoder(self.ema_encoder(images))
        return self.decoder(self.encoder(images))

    @property
    def score_name(self) -> str:
        """What ``score`` measures, for axis labels."""
        return "reconstruction MSE"

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Novelty score (B,): per-image MSE between the clean input and its reconstruction."""
        return (self.reconstruct(images) - images).pow(2).flatten(1).mean(1)

    def gradcam_heads(self) -> dict[str, nn.Module]:
        """The visual discriminator first: of the single-logit networks it is the one trained on
        raw images; the classifier only ever sees decoder outputs."""
        return {"visual_discriminator": self.visual_discriminator, "classifier": self.classifier}
