"""Attention OCGAN hyper-parameters: every OCGAN field plus the attention branch.

``attention=False`` leaves exactly vanilla OCGAN (same modules, same random stream).
"""
from __future__ import annotations

from dataclasses import dataclass

from ...data.pseudo_anomalies import PSEUDO_ANOMALIES
from ...errors import UserError
from ..components import check_range
from ..ocgan.config import DATASET_PRESETS as OCGAN_PRESETS
from ..ocgan.config import OCGANConfig

GUIDE_TASKS = ("pseudo_anomaly", "rotation")
SCORE_WEIGHTS = ("fixed", "equal", "validation") + tuple(f"pseudo-{kind}" for kind in PSEUDO_ANOMALIES)
AREA_CONSTRAINTS = ("quadratic", "barrier")


@dataclass
class AttnOCGANConfig(OCGANConfig):
    attention: bool = True  # False: vanilla OCGAN, nothing else is built or trained
    temperature: float = 0.5  # M = sigmoid(logits / T); lower T gives more decisive masks
    cbam_reduction: int = 8  # CBAM channel-gate reduction (hidden channels = max(1, C // r))
    guide_width: int = 16  # guiding classifier base channels (it sees 4 batches a step: kept narrow for speed)
    guide_weight: float = 1.0  # 0 switches the guiding classifier off (ablation)
    # What the guide learns: "rotation" (which quarter turn was applied to a normal image; loss.py)
    # or "pseudo_anomaly" (normal vs pseudo-anomalies or real negatives: the first recipe)
    guide_task: str = "rotation"
    mask_area_target: float = 0.3  # mean mask value the area prior pulls towards (the barrier's upper bound)
    mask_area_weight: float = 1.0  # 0 switches the area prior off (ablation)
    mask_area_constraint: str = "barrier"  # "barrier": an upper bound only, or "quadratic" pull to the target
    mask_area_barrier_t: float = 25.0  # slope of the extended log-barrier
    mask_tv_weight: float = 0.0  # weight of the masks' total variation (smooth, connected masks)
    mask_binary_weight: float = 0.0  # weight of mean(M (1 - M)): pushes masks away from a uniform 0.5 (not yet measured)
    # weight of the complement (erase) game: the guide classifies x * (1 - M) too, the attention
    # generator is trained to leave it no evidence (loss.py); 0 switches it off
    mask_complement_weight: float = 1.0
    # weight of the known-location pseudo-anomaly term (issue 27, 2d): each step, CutPaste copies of the
    # normal images (a square pasted elsewhere in the same image); their masks are trained to mark the
    # pasted square (pasted_region_loss), under the same area constraint; 0 switches it off
    mask_region_weight: float = 0.0
    # guide_task=pseudo_anomaly only: the pseudo-anomalies
    corruption_fraction: float = 0.5  # share of pseudo-anomalies that are corrupted normals (rest: decodes)
    corruption: str = "shuffle"  # how: "shuffle" (tiles permuted) or "cutpaste" (a patch pasted elsewhere)
    shuffle_patch: int = 8  # patch side of the patch-shuffle corruption
    # share of the decoded pseudo-anomalies whose uniform latents are first moved by OCGAN's
    # informative-negative mining (the first GAN's classifier, mining_steps steps; none when mining_steps=0
    # or with real negatives); 0: random latents only (not yet measured)
    mined_negative_fraction: float = 0.0
    # score_weights=fixed only: novelty = (1 - w) * z(first GAN) + w * z(masked GAN)
    masked_score_weight: float = 0.5
    # rotation guide only: its evidence joins the score's components: the rotation negative
    # log-likelihood of x and of x * M (mean over the four quarter turns), z-normalised on normal
    # training images like the GANs' errors
    guide_evidence_score: bool = True
    # how the z-normalised components are weighted: "fixed" (the GANs by masked_score_weight, the
    # guide's evidence 0), "equal" (1/K each: nothing chosen, no split needed) or "validation" (the
    # weights on a 0.1 grid of the simplex with the best AUC on the validation split of training
    # images, chosen after every epoch; never test images), "pseudo-cutpaste" / "pseudo-shuffle" (the
    # same grid search on normal images vs pseudo-anomalies made from them: strict one-class, no split
    # needed; engine/score_weights.choose_pseudo_anomaly_weights)
    score_weights: str = "equal"
    pretrain_attention_epochs: int = 0  # epochs where only the attention generator and guide learn
    mask_warmup_epochs: int = 2  # then epochs where the first GAN, attention and guide learn; masked GAN waits
    reset_masked_gan_at: int = 0  # re-initialise the masked GAN at the start of this (1-based) epoch; 0: never

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "temperature", 1e-6, None)
        check_range(self, "mask_area_barrier_t", 1e-3, None)
        for name, choices in (("guide_task", GUIDE_TASKS), ("mask_area_constraint", AREA_CONSTRAINTS),
                              ("corruption", PSEUDO_ANOMALIES), ("score_weights", SCORE_WEIGHTS)):
            if getattr(self, name) not in choices:
                raise UserError(f"model option {name}={getattr(self, name)!r} must be one of {', '.join(choices)}; "
                                f"change --model-arg {name}")
        if self.guide_evidence_score and self.guide_task != "rotation":
            raise UserError("model option guide_evidence_score needs guide_task=rotation (the rotation guide's evidence); "
                            "change --model-arg guide_task or guide_evidence_score")
        if self.guide_evidence_score and self.guide_weight == 0:
            raise UserError("model option guide_evidence_score puts the guide's evidence in the score, but guide_weight=0 "
                            "leaves the guide untrained; add --model-arg guide_evidence_score=false")
        for name in ("mask_area_target", "corruption_fraction", "masked_score_weight", "mined_negative_fraction"):
            check_range(self, name, 0.0, 1.0)
        for name in ("cbam_reduction", "guide_width", "shuffle_patch"):
            check_range(self, name, 1, None)
        for name in ("guide_weight", "mask_area_weight", "mask_binary_weight", "mask_complement_weight", "mask_tv_weight",
                     "mask_region_weight",
                     "pretrain_attention_epochs",
                     "mask_warmup_epochs", "reset_masked_gan_at"):
            check_range(self, name, 0, None)


# The first recipe's values of the options whose default changed on 2026-12-04 (the rotation guide's
# keep-and-erase game, area barrier at 0.3, its evidence in the score with equal weights): runs saved
# before an option existed trained with these (registry.saved_model_args). The same values as
# configs/attention/first-recipe.yaml.
FIRST_RECIPE = {"guide_task": "pseudo_anomaly", "mask_area_target": 0.5, "mask_area_constraint": "quadratic",
                "mask_complement_weight": 0.0, "guide_evidence_score": False, "score_weights": "fixed"}


# OCGAN's presets without the scoring EMA (measured for vanilla OCGAN only), plus a wider
# guide where the networks are wide.
DATASET_PRESETS: dict[str, dict] = {
    name: {**{k: v for k, v in preset.items() if k != "ema_decay"},
           **({"guide_width": 32} if preset.get("classifier_width", 32) >= 64 else {})}
    for name, preset in OCGAN_PRESETS.items()
}
