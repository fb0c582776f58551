"""Training loop, evaluation, checkpoints and the protocol runner."""
