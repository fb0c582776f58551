"""f-AnoGAN training recipe, by epoch: first WGAN-GP epochs ((1) a critic step on every batch, (2) a
generator step after every n_critic-th critic step), then the last ``encoder_epochs`` epochs train the
encoder on izi_f with the generator and the critic frozen."""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from ...config import TrainConfig
from ...errors import UserError
from ..base import Algorithm
from ..components import evaluating
from .config import FAnoGANConfig
from .loss import gradient_penalty, wasserstein_critic_loss
from .torch_model import FAnoGAN


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """No parameter of ``modules`` takes a gradient (gradients still flow through them); restored after."""
    parameters = [p for module in modules for p in module.parameters()]
    flags = [p.requires_grad for p in parameters]
    for p in parameters:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(parameters, flags):
            p.requires_grad_(flag)


class FAnoGANAlgorithm(Algorithm):
    epoch = 0  # the epoch start_epoch last announced: which phase the progress line shows

    @property
    def progress_loss(self) -> str:
        """WGAN-GP's estimate of the distance, then in the encoder epochs the izi_f loss."""
        trains_gan, _ = self.phases(self.epoch)
        return "critic/wasserstein" if trains_gan else "encoder/izif"

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __init__(self, model: FAnoGAN, config: FAnoGANConfig, train: TrainConfig):
        self.model = model
        self.config = config
        self.encoder_start = train.epochs - config.encoder_epochs  # first (0-based) epoch that trains the encoder
        if config.freeze_gan_in_encoder_epochs and self.encoder_start < 1:
            raise UserError(f"fanogan: encoder_epochs={config.encoder_epochs} leaves no epoch of a {train.epochs}-epoch run "
                            f"for the WGAN-GP; pass more --epochs, a smaller --model-arg encoder_epochs, or "
                            f"--model-arg freeze_gan_in_encoder_epochs=false")
        lr, betas = train.lr * config.lr_factor, (config.adam_beta1, config.adam_beta2)
        self.optimizers = {name: torch.optim.Adam(module.parameters(), lr=lr, betas=betas)
                           for name, module in (("generator", model.generator), ("critic", model.critic),
                                                ("encoder", model.encoder))}
        self.critic_steps = 0  # over the whole run (saved with the checkpoint): the generator steps on every n_critic-th

    def phases(self, epoch: int) -> tuple[bool, bool]:
        """(whether the WGAN-GP trains, whether the encoder trains) in 0-based ``epoch``."""
        encoder = epoch >= self.encoder_start
        return not (encoder and self.config.freeze_gan_in_encoder_epochs), encoder

    def train_step(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        self.model.train()
        trains_gan, trains_encoder = self.phases(epoch)
        logs = self._gan_step(images) if trains_gan else {}
        if trains_encoder:
            logs.update(self._encoder_step(images))
        return logs

    def _gan_step(self, images: torch.Tensor) -> dict[str, float]:
        """One critic step on this batch; a generator step (fresh latents) after every n_critic-th.

        ``generator`` is logged on every step: -E[D(G(z))] on this step's samples, the generator's
        objective, so that its epoch mean is not diluted by the steps in which the generator waits."""
        model = self.model
        with torch.no_grad():
            fake = model.generator(model.sample_latent(len(images)))
        real_scores, fake_scores = model.critic(images), model.critic(fake)
        wasserstein = wasserstein_critic_loss(real_scores, fake_scores)
        penalty = gradient_penalty(model.critic, images, fake)
        logs = {"critic": self._step("critic", wasserstein + self.config.gradient_penalty_weight * penalty),
                "critic/wasserstein": -wasserstein.item(), "critic/gradient_penalty": penalty.item(),
                "generator": -fake_scores.mean().item()}
        self.critic_steps += 1
        if self.critic_steps % self.config.n_critic == 0:
            with frozen(model.critic):  # the generator's loss reaches the critic's weights no gradient
                self._step("generator", -model.critic(model.generator(model.sample_latent(len(images)))).mean())
        return logs

    def _encoder_step(self, images: torch.Tensor) -> dict[str, float]:
        """izi_f: mean over the batch of pixel + kappa x feature residual of G(E(x)); the generator in eval
        mode (its BatchNorm statistics fixed, as in the official code and at scoring), G and D weights frozen."""
        model = self.model
        with evaluating(model.generator), evaluating(model.critic), frozen(model.generator, model.critic):
            _, pixel, feature = model.residuals(images)
            loss = (pixel + self.config.kappa * feature).mean()
            return {"encoder/izif": self._step("encoder", loss), "encoder/pixel": pixel.mean().item(),
                    "encoder/feature": feature.mean().item()}

    @torch.no_grad()
    def image_grids(self, images: torch.Tensor, latent: torch.Tensor, test_normal: torch.Tensor | None = None,
                    test_novel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Inputs, decodes of fixed latents, G(E(x)), and residual rows (input / G(E(x)) / |x - G(E(x))|) of test images."""
        model = self.model
        model.eval()
        grids = {"images/inputs": images, "images/random_latent_decodes": model.generator(latent),
                 "images/reconstructions": model.reconstruct(images)}
        for group, batch in (("test_normal", test_normal), ("test_novel", test_novel)):
            if batch is not None and len(batch):
                grids[f"images/{group}_residuals"] = torch.cat([row for _, row in model.residual_panel(batch)])
        return grids

    @torch.no_grad()
    def histograms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """E(x) of the fixed inputs: how much of the prior's (-1, 1) the encoder uses (tanh saturation at +-1)."""
        self.model.eval()
        return {"latent/encoded": self.model.encoder(images).flatten()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "critic_steps": self.critic_steps}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.critic_steps = int(state.get("critic_steps", 0))
