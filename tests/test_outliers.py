"""The outlier statistics (mlsweep.analysis.outliers) against their definitions, written out here."""

import pytest
import torch
from helpers import dense_matrix_inputs, tiny_config
from transformers import AutoModelForCausalLM

from mlsweep.analysis.outliers import feature_ratios, outlier_stats
from mlsweep.prune.arch import find_blocks, find_matrices


def tiny_llama(blow_up: int | None = None):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", 300)).eval()
    if blow_up is not None:  # one embedding feature 50x larger: an outlier feature in block 0's input
        with torch.no_grad():
            model.get_input_embeddings().weight[:, blow_up] *= 50
    return model


def rows():
    return torch.randint(4, 300, (6, 16), generator=torch.Generator().manual_seed(1))


def test_feature_ratio_at_block_0_is_max_over_median_of_the_embedding_norms():
    model, ids = tiny_llama(), rows()
    x = model.get_input_embeddings().weight[ids].detach().flatten(0, 1)  # block 0's input: the embeddings
    norms = x.pow(2).sum(0).sqrt()
    ratios = feature_ratios(model, ids, batch_size=4)
    assert len(ratios) == len(find_blocks(model))
    torch.testing.assert_close(torch.tensor(ratios[0]), norms.max() / norms.median())


def test_an_outlier_feature_raises_the_ratio():
    assert feature_ratios(tiny_llama(blow_up=3), rows())[0] > 10 * feature_ratios(tiny_llama(), rows())[0]


def test_owl_share_is_the_share_of_wanda_scores_above_five_times_their_mean():
    model, ids = tiny_llama(blow_up=3), rows()
    seen = dense_matrix_inputs(model, ids)
    expected = []
    for i, block in enumerate(find_blocks(model)):
        scores = []
        for name, matrix in find_matrices(block).items():
            x = torch.cat(seen[(i, name)])
            norm = (x.pow(2).sum(0) / len(ids)).sqrt()  # Wanda's ||X_j||, per calibration sequence
            scores.append((matrix.tensor().abs() * norm).flatten())
        flat = torch.cat(scores)
        expected.append(float(100 * (flat > 5 * flat.mean()).sum() / flat.numel()))
    stats = outlier_stats(model, ids)
    assert stats.owl_share == pytest.approx(expected, abs=0.05)  # one score on the threshold may flip
    assert max(expected) > 0  # the blown-up feature makes some scores outliers
    assert stats.summary()["feature_ratio_max"] == round(max(stats.feature_ratio), 2)


def test_testbed_recipe_decays_matrices_only_and_speeds_up_the_norm_gains():
    """The testbed recipe's outlier levers: decay on 2-D weights only, norm gains at a multiple of lr."""
    from mlsweep.testbed.generator.train import Recipe, param_groups

    model = tiny_llama()
    matrices, gains = param_groups(model, Recipe(weight_decay=3.0, decay_norms=False, norm_lr_mult=10.0))
    assert {id(p) for p in matrices["params"]} | {id(p) for p in gains["params"]} == {id(p) for p in model.parameters()}
    assert all(p.ndim == 2 for p in matrices["params"]) and all(p.ndim == 1 for p in gains["params"])
    assert (matrices["weight_decay"], matrices["lr_mult"]) == (3.0, 1.0)
    assert (gains["weight_decay"], gains["lr_mult"]) == (0.0, 10.0)
    assert param_groups(model, Recipe(weight_decay=0.1, decay_norms=True))[1]["weight_decay"] == 0.1
