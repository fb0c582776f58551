"""rotnet: the attention model's rotation guide alone learns the orientation of normal images."""
import torch

from attn_ocgan.config import TrainConfig
from attn_ocgan.models.components.rotations import quarter_turn, rotation_nll
from attn_ocgan.registry import create_algorithm, create_model, resolve_model_config


def _oriented_images(n: int, seed: int) -> torch.Tensor:
    """Noise with a bright band along the top edge: the orientation is the only thing to learn."""
    images = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed)) * 0.6 - 0.8
    images[:, :, :6] += 1.2
    return images


def test_rotnet_learns_the_orientation_of_normal_images_and_scores_other_orientations_higher():
    torch.manual_seed(0)
    config = resolve_model_config("rotnet", "mnist5k", {"width": 8}, 1, 32)
    model = create_model("rotnet", config)
    algorithm = create_algorithm("rotnet", model, config, TrainConfig(lr=2e-3))
    train = _oriented_images(256, seed=1)
    for step in range(60):
        logs = algorithm.train_step(train[(step * 32) % 256:][:32], epoch=0)
    assert logs["rotation/accuracy"] > 0.9
    model.eval()
    normal = _oriented_images(64, seed=2)
    with torch.no_grad():
        upright, sideways = model.score(normal), model.score(quarter_turn(normal, 1))
    assert upright.mean() < sideways.mean() and (upright < sideways).float().mean() > 0.9
    # the score is the attention guide's rotation evidence, computed the same way
    torch.testing.assert_close(upright, rotation_nll(model.classifier, normal))
