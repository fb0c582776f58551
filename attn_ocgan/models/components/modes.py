"""Train/eval mode helpers."""
from __future__ import annotations

import contextlib

from torch import nn


@contextlib.contextmanager
def evaluating(module: nn.Module):
    """Run ``module`` in eval mode (BatchNorm uses and keeps its running statistics), then restore."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
