"""attn-ocgan: one-class novelty detection with OCGAN and an attention-augmented extension."""

__version__ = "0.1.0"
