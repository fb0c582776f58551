"""Attention OCGAN hyper-parameters: every OCGAN field plus the attention branch.

``attention=False`` leaves exactly vanilla OCGAN (same modules, same random stream).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ocgan.config import DATASET_PRESETS as OCGAN_PRESETS
from ..components import check_range
from ..ocgan.config import OCGANConfig


@dataclass
class AttnOCGANConfig(OCGANConfig):
    attention: bool = True  # False: vanilla OCGAN, nothing else is built or trained
    temperature: float = 0.5  # M = sigmoid(logits / T); lower T gives more decisive masks
    cbam_reduction: int = 8  # CBAM channel-gate reduction (hidden channels = max(1, C // r))
    guide_width: int = 16  # guiding classifier base channels (it sees 4 batches a step: kept narrow for speed)
    guide_weight: float = 1.0  # 0 switches the guiding classifier off (ablation)
    mask_area_target: float = 0.5  # mean mask value the area prior pulls towards
    mask_area_weight: float = 1.0  # 0 switches the area prior off (ablation)
    mask_binary_weight: float = 0.0  # weight of mean(M (1 - M)): pushes masks away from a uniform 0.5 (not yet measured)
    # weight of the complement game: the guide classifies x * (1 - M) too, the attention generator
    # is trained to leave it no evidence (loss.py); 0 switches it off
    mask_complement_weight: float = 0.0
    corruption_fraction: float = 0.5  # share of pseudo-anomalies that are patch-shuffled normals (rest: decodes)
    shuffle_patch: int = 8  # patch side of the patch-shuffle corruption
    # share of the decoded pseudo-anomalies whose uniform latents are first moved by OCGAN's
    # informative-negative mining (the first GAN's classifier, mining_steps steps); 0: random latents only (not yet measured)
    mined_negative_fraction: float = 0.0
    masked_score_weight: float = 0.5  # novelty = (1 - w) * z(first GAN) + w * z(masked GAN)
    pretrain_attention_epochs: int = 0  # epochs where only the attention generator and guide learn
    mask_warmup_epochs: int = 2  # then epochs where the first GAN, attention and guide learn; masked GAN waits
    reset_masked_gan_at: int = 0  # re-initialise the masked GAN at the start of this (1-based) epoch; 0: never

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "temperature", 1e-6, None)
        for name in ("mask_area_target", "corruption_fraction", "masked_score_weight", "mined_negative_fraction"):
            check_range(self, name, 0.0, 1.0)
        for name in ("cbam_reduction", "guide_width", "shuffle_patch"):
            check_range(self, name, 1, None)
        for name in ("guide_weight", "mask_area_weight", "mask_binary_weight", "mask_complement_weight", "pretrain_attention_epochs",
                     "mask_warmup_epochs", "reset_masked_gan_at"):
            check_range(self, name, 0, None)


# OCGAN's presets without the scoring EMA (measured for vanilla OCGAN only), plus a wider
# guide where the networks are wide.
DATASET_PRESETS: dict[str, dict] = {
    name: {**{k: v for k, v in preset.items() if k != "ema_decay"},
           **({"guide_width": 32} if preset.get("classifier_width", 32) >= 64 else {})}
    for name, preset in OCGAN_PRESETS.items()
}
