"""OCGAN training recipe: optimisers and the per-iteration steps, in the paper's order."""
from __future__ import annotations

import torch

from ...config import TrainConfig
from ..base import Algorithm, adam, test_reconstruction_grids
from .config import OCGANConfig
from ..components import critic_loss
from .loss import GeneratorLoss
from .mining import mine_informative_negatives
from .torch_model import OCGAN


class OCGANAlgorithm(Algorithm):
    """Owns the optimisers; ``train_step`` runs (1) classifier, (2) discriminators, (3) mining, (4) generator."""

    def __init__(self, model: OCGAN, config: OCGANConfig, train: TrainConfig):
        self.model = model
        self.config = config
        self.generator_loss = GeneratorLoss(config.recon_weight, config.latent_adv_weight, config.visual_adv_weight)
        self.optimizers = {
            "generator": adam([model.encoder, model.decoder], train),
            "latent_discriminator": adam([model.latent_discriminator], train),
            "visual_discriminator": adam([model.visual_discriminator], train),
            "classifier": adam([model.classifier], train),
        }

    # -- one iteration -------------------------------------------------------------
    def train_step(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        model, config = self.model, self.config
        model.train()
        noisy = images + config.noise_std * torch.randn_like(images)
        encoded = model.encoder(noisy)  # l1: (B, C, L, L) in (-1, 1)
        reconstruction = model.decoder(encoded)  # De(En(x + n))
        if epoch < config.ae_warmup_epochs:
            return self._generator_step(images, reconstruction, None, None)

        uniform = model.sample_latent(images.shape[0])  # l2 ~ U(-1, 1)
        fake = model.decoder(uniform)  # De(l2)
        logs = {}

        # (1) classifier: reconstructions (label 1) vs decodes of random latents (label 0)
        loss = critic_loss(model.classifier(reconstruction.detach()), model.classifier(fake.detach()))
        logs["classifier"] = self._step("classifier", loss)

        # (2) discriminators: Dl sees U(-1,1) samples as real, encodings as fake;
        #     Dv sees training images as real, decodes of random latents as fake.
        loss = critic_loss(model.latent_discriminator(uniform), model.latent_discriminator(encoded.detach()))
        logs["latent_discriminator"] = self._step("latent_discriminator", loss)
        loss = critic_loss(model.visual_discriminator(images), model.visual_discriminator(fake.detach()))
        logs["visual_discriminator"] = self._step("visual_discriminator", loss)

        # (3) informative-negative mining (C and De frozen: only the latent moves)
        if config.mining_steps > 0 and epoch >= config.mining_start_epoch:
            mined = mine_informative_negatives(model.decoder, model.classifier, uniform, config.mining_steps, config.mining_step_size)
            fake = model.decoder(mined)
        # (4) generator (En + De): fool Dl with l1 and Dv with De(mined l2); reconstruct x
        logs.update(self._generator_step(images, reconstruction, model.latent_discriminator(encoded), model.visual_discriminator(fake)))
        return logs

    def _generator_step(self, images, reconstruction, latent_logits, visual_logits) -> dict[str, float]:
        terms = self.generator_loss(reconstruction, images, latent_logits, visual_logits)
        self._step("generator", terms["total"])
        self.model.update_ema()
        return {f"generator/{name}": value.item() for name, value in terms.items()}

    # -- images for TensorBoard ----------------------------------------------------
    @torch.no_grad()
    def image_grids(self, images: torch.Tensor, latent: torch.Tensor, test_normal: torch.Tensor | None = None,
                    test_novel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Fixed inputs, their reconstructions, decodes of fixed random latents and of mined latents;
        for fixed normal / novel test images, a row of inputs above a row of reconstructions."""
        model = self.model
        model.eval()
        grids = {"images/inputs": images, "images/reconstructions": model.reconstruct(images),
                 "images/random_latent_decodes": model.decoder(latent)}
        if self.config.mining_steps > 0:
            with torch.enable_grad():
                mined = mine_informative_negatives(model.decoder, model.classifier, latent, self.config.mining_steps, self.config.mining_step_size)
            grids["images/mined_latent_decodes"] = model.decoder(mined)
        grids.update(test_reconstruction_grids(model.reconstruct, test_normal, test_novel))
        return grids
