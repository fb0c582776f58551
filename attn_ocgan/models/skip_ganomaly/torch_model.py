"""Skip-GANomaly networks: a U-Net generator (skip connections at every scale) and a DCGAN discriminator."""
from __future__ import annotations

import torch
from torch import nn

from ...layers import init_dcgan_weights
from ...layers.blocks import n_halvings
from ..base import NoveltyModel
from ..components import ConvCritic, evaluating
from .config import SkipGANomalyConfig

SCORE_COMPONENTS = ("reconstruction", "latent")  # mean (x - G(x))^2, mean (f(x) - f(G(x)))^2


class BottomConv2d(nn.Conv2d):
    """The U's last 4x4 stride-2 conv, padding 1: (B, C, 2, 2) -> (B, O, 1, 1). On a 2x2 input only the
    kernel's centre 2x2 taps meet data (the rest meet the padding), so it is one matrix product,
    about a quarter of the convolution's work; the same weights (and state_dict) as ``nn.Conv2d``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (2, 2):
            return super().forward(x)
        centre = self.weight[:, :, 1:3, 1:3].reshape(self.out_channels, -1)  # (O, C * 2 * 2)
        return nn.functional.linear(x.flatten(1), centre).view(-1, self.out_channels, 1, 1)


class BottomConvTranspose2d(nn.ConvTranspose2d):
    """The U's first 4x4 stride-2 transposed conv, padding 1: (B, C, 1, 1) -> (B, O, 2, 2). A 1x1 input
    reaches the output through the kernel's centre 2x2 taps only (the padding crops the rest): one
    matrix product; the same weights (and state_dict) as ``nn.ConvTranspose2d``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if x.shape[-2:] != (1, 1) or output_size is not None:
            return super().forward(x, output_size)
        centre = self.weight[:, :, 1:3, 1:3].reshape(self.in_channels, -1)  # (C, O * 2 * 2)
        return (x.flatten(1) @ centre).view(-1, self.out_channels, 2, 2)


class UNetGenerator(nn.Module):
    """(B, C, S, S) -> (B, C, S, S) in (-1, 1): stride-2 4x4 convs down to a (B, 8 width, 1, 1)
    bottleneck, stride-2 4x4 transposed convs back up, and at every scale the encoder's activation
    concatenated to the decoder's (the official ``UnetGenerator`` of pix2pix, unrolled).

    ``down[k]`` halves the size to S / 2**(k+1) with ``widths[k]`` = width * min(2**k, 8) channels:
    conv, BatchNorm (not on the first or the bottleneck), LeakyReLU 0.2 (not on the bottleneck).
    ``up[k]`` doubles it back: ReLU, transposed conv, BatchNorm; ``up[0]`` ends with tanh. The input
    of ``up[k]`` (k < last) is cat(down[k]'s output, up[k+1]'s output): the skip at that scale.
    """

    def __init__(self, channels: int, width: int, image_size: int):
        super().__init__()
        levels = n_halvings(image_size) + 2  # 4x4 -> 2x2 -> 1x1: log2(S) halvings, as the official num_downs
        self.widths = [width * min(2**k, 8) for k in range(levels)]
        down, up = [], []
        for k, out in enumerate(self.widths):
            previous = channels if k == 0 else self.widths[k - 1]
            bottom = k == levels - 1  # 2x2 -> 1x1 and back: one matrix product each (BottomConv2d)
            layers: list[nn.Module] = [BottomConv2d(previous, out) if bottom else nn.Conv2d(previous, out, 4, 2, 1, bias=False)]
            if k != 0 and not bottom:
                layers.append(nn.BatchNorm2d(out))
            if not bottom:
                layers.append(nn.LeakyReLU(0.2))  # not in place: the activation is also the skip
            down.append(nn.Sequential(*layers))
            into = out if bottom else 2 * out  # the innermost up stage has no skip beside it
            if k == 0:
                up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(into, channels, 4, 2, 1), nn.Tanh()))
            else:
                transposed = BottomConvTranspose2d(into, previous) if bottom else nn.ConvTranspose2d(into, previous, 4, 2, 1, bias=False)
                up.append(nn.Sequential(nn.ReLU(), transposed, nn.BatchNorm2d(previous)))
        self.down = nn.ModuleList(down)
        self.up = nn.ModuleList(up)

    @property
    def bottleneck(self) -> nn.Module:
        """The last down stage: its output (B, 8 width, 1, 1) is the code at the bottom of the U."""
        return self.down[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        skips, x = [], images
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        for k in reversed(range(len(self.up))):
            if k < len(self.up) - 1:
                x = torch.cat([skips[k], x], dim=1)
            x = self.up[k](x)
        return x


class SkipGANomaly(NoveltyModel):
    """x -> x' = G(x) (U-Net); D(x) a one-logit critic whose last feature map f is the latent
    representation. Score (B,): ``lambda`` z(mean (x - x')^2) + (1 - lambda) z(mean (f(x) - f(x'))^2),
    each error z-normalised with buffers ``score_mean``/``score_std`` (2,) fitted on the normal
    training images (``fit_score_statistics``, after each epoch)."""

    def __init__(self, config: SkipGANomalyConfig):
        super().__init__()
        self.config = config
        size, channels = config.image_size, config.in_channels
        self.generator = UNetGenerator(channels, config.generator_width, size)
        self.discriminator = ConvCritic(channels, config.discriminator_width, size)  # features: the latent loss
        init_dcgan_weights(self)
        self.register_buffer("score_mean", torch.zeros(len(SCORE_COMPONENTS)))
        self.register_buffer("score_std", torch.ones(len(SCORE_COMPONENTS)))

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator(images)

    # -- scoring ---------------------------------------------------------------------
    @property
    def score_name(self) -> str:
        weight = float(self.config.reconstruction_score_weight)
        return f"{weight:g} z(reconstruction error) + {1 - weight:g} z(latent error)"

    @property
    def score_component_names(self) -> tuple[str, ...]:
        return SCORE_COMPONENTS

    @property
    def score_component_weights(self) -> dict[str, float]:
        weight = float(self.config.reconstruction_score_weight)
        return {"reconstruction": weight, "latent": 1.0 - weight}

    def score_components(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 2): mean squared reconstruction error over pixels, and mean squared distance between
        the discriminator's last feature maps of x and G(x) (the official test code's R and L)."""
        reconstruction = self.generator(images)
        real, fake = self.discriminator.features(images), self.discriminator.features(reconstruction)
        return torch.stack([(images - reconstruction).pow(2).flatten(1).mean(1),
                            (real - fake).pow(2).flatten(1).mean(1)], dim=1)

    def normalise_score_components(self, components: torch.Tensor) -> torch.Tensor:
        """(B, 2) raw components -> z-scores with the normal-training-image statistics."""
        return (components - self.score_mean) / self.score_std

    def combine_score_components(self, components: torch.Tensor) -> torch.Tensor:
        normalised = self.normalise_score_components(components)
        weight = self.config.reconstruction_score_weight
        return weight * normalised[:, 0] + (1.0 - weight) * normalised[:, 1]

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Novelty score (B,): the weighted z-normalised errors (before any statistics are fitted,
        mean 0 and std 1: the official raw combination 0.9 R + 0.1 L)."""
        return self.combine_score_components(self.score_components(images))

    @torch.no_grad()
    def fit_score_statistics(self, train_images: torch.Tensor, batch_size: int = 1000) -> None:
        """Set ``score_mean``/``score_std`` from the normal *training* images (never test data)."""
        if len(train_images) == 0:
            return
        with evaluating(self):
            components = torch.cat([self.score_components(train_images[start:start + batch_size])
                                    for start in range(0, len(train_images), batch_size)])
        self.score_mean.copy_(components.mean(0))
        self.score_std.copy_(components.std(0).clamp_min(1e-8) if len(components) > 1 else torch.ones_like(self.score_std))

    def diagnostics(self) -> dict:
        """How the score combines the two errors: the weights and the normal-training-image statistics."""
        return {"score_combination": {"components": list(SCORE_COMPONENTS), "weights": self.score_component_weights,
                                      "component_mean": self.score_mean.tolist(), "component_std": self.score_std.tolist()}}

    # -- figures, Grad-CAM ------------------------------------------------------------
    @torch.no_grad()
    def residual_panel(self, images: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Labelled rows (each (B, C, H, W) in [-1, 1]): input, G(x), residual |x - G(x)|."""
        reconstruction = self.reconstruct(images)
        return [("input", images), ("G(x)", reconstruction), ("|x - G(x)|", (images - reconstruction).abs() - 1)]

    def figure_panels(self, images: torch.Tensor) -> dict[str, list[tuple[str, torch.Tensor]]]:
        return {"residuals": self.residual_panel(images)}

    def gradcam_heads(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}
