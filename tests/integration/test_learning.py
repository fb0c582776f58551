"""A model must learn something: a short OCGAN training separates digit 1 from the rest."""
from attn_ocgan.data import load_one_class
from attn_ocgan.engine.evaluation import auc, compute_scores
from attn_ocgan.engine.trainer import train
import dataclasses


def test_short_training_on_mnist5k_digit_1_reaches_auc_0_9(tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=8, batch_size=32, eval_every=0))
    data = load_one_class(config.data)
    result = train(config, tmp_path / "run", data=data, progress=False)
    from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint

    _, model = model_from_checkpoint(read_checkpoint(result["checkpoint"]))
    value = auc(data.test_is_novel.numpy(), compute_scores(model, data.test))
    assert value >= 0.9, f"test AUC {value:.3f} after a short training"
