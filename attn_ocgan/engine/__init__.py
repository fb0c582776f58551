"""Core engine: the training loop, evaluation (scores -> AUC), checkpoints and devices. Names no model."""
