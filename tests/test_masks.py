"""The pure mask functions against formulas written out here."""

import pytest
import torch

from mlsweep.prune import masks, stats
from mlsweep.prune.pruners import wanda


def test_per_row_prunes_exactly_int_din_s_per_row():
    torch.manual_seed(0)
    score = torch.rand(16, 50)
    for s in (0.1, 0.5, 0.7, 0.93):
        mask = masks.mask_per_row(score, s)
        assert (mask.sum(dim=1) == int(50 * s)).all()
        # the pruned entries are the lowest of their row
        for r in range(16):
            kept_min = score[r][~mask[r]].min()
            assert (score[r][mask[r]] <= kept_min).all()


def test_per_row_ties_broken_by_column_index():
    score = torch.ones(2, 8)
    mask = masks.mask_per_row(score, 0.5)
    assert mask[:, :4].all() and not mask[:, 4:].any()


def test_per_matrix_follows_reference_threshold_including_ties():
    score = torch.tensor([[1.0, 2.0, 2.0, 2.0], [3.0, 4.0, 5.0, 6.0]])
    # threshold = sort(flat)[int(8 * 0.25)] = sort[2] = 2.0; all entries <= 2.0 are pruned (4 of 8)
    mask = masks.mask_per_matrix(score, 0.25)
    assert mask.tolist() == [[True, True, True, True], [False, False, False, False]]
    torch.manual_seed(1)
    rnd = torch.rand(64, 64)
    assert masks.mask_per_matrix(rnd, 0.5).sum() == int(64 * 64 * 0.5) + 1  # k+1: reference indexing


def test_nm_keeps_m_minus_n_in_every_group():
    torch.manual_seed(2)
    score = torch.rand(8, 32)
    mask = masks.mask_nm(score, 2, 4)
    groups = mask.reshape(8, 8, 4)
    assert (groups.sum(-1) == 2).all()
    expected = torch.zeros_like(mask)
    for r in range(8):
        for g in range(0, 32, 4):
            idx = torch.argsort(score[r, g : g + 4])[:2]
            expected[r, g + idx] = True
    assert torch.equal(mask, expected)


def test_wanda_score_is_abs_w_times_root_mean_sumsq_from_hand_accumulated_stats():
    torch.manual_seed(3)
    w = torch.randn(6, 10)
    xs = [torch.randn(2, 5, 10) for _ in range(3)]  # three batches of 2 sequences x 5 tokens
    acc = stats.SquaredNorm(10)
    for x in xs:
        acc.add(x.reshape(-1, 10), n_seq=2)
    by_hand = sum((x**2).sum(dim=(0, 1)) for x in xs) / 6  # mean over 6 sequences of sum over tokens
    assert torch.allclose(acc.scaler_row, by_hand)
    score = wanda.score(w, acc.scaler_row)
    assert torch.allclose(score, w.abs() * by_hand.sqrt())
    pruned = wanda.prune(w, acc, masks.make_target(0.5), None)
    assert ((pruned == 0).sum(dim=1) == 5).all()
    order = torch.sort(score, dim=1, stable=True)[1][:, :5]
    assert torch.equal(pruned == 0, torch.zeros_like(w, dtype=torch.bool).scatter_(1, order, True))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_masks_work_on_every_dtype(dtype):
    score = torch.rand(4, 16).to(dtype)
    assert masks.mask_per_row(score, 0.5).sum() == 32
    assert masks.mask_per_matrix(score, 0.25).sum() >= 16
    assert masks.mask_nm(score, 2, 4).sum() == 32


@pytest.mark.parametrize(
    "sparsity,pattern,field",
    [
        (1.0, "unstructured", "sparsity.target"),
        (-0.1, "unstructured", "sparsity.target"),
        (0.5, "4:2", "sparsity.pattern"),
        (0.5, "2-4", "sparsity.pattern"),
        (0.6, "2:4", "sparsity.target"),
    ],
)
def test_make_target_rejects_bad_input_naming_the_field(sparsity, pattern, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        masks.make_target(sparsity, pattern)
