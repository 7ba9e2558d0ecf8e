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


def stable_sort_mask(score, sparsity):
    """The reference's rule: the first int(d_in * s) indices of a stable ascending sort of each row."""
    k = int(score.shape[1] * sparsity)
    mask = torch.zeros_like(score, dtype=torch.bool)
    return mask.scatter_(1, torch.sort(score, dim=-1, stable=True)[1][:, :k], True) if k else mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_per_row_selection_equals_the_stable_sort_with_many_ties(dtype):
    g = torch.Generator().manual_seed(4)
    for trial in range(60):
        d_out, d_in = int(torch.randint(1, 24, (1,), generator=g)), int(torch.randint(1, 40, (1,), generator=g))
        score = torch.randint(0, 4, (d_out, d_in), generator=g).to(dtype)  # a few values: ties everywhere
        score[0] = 2  # a row of equal values
        for s in (0.0, 1 / d_in, 0.3, 0.5, 0.77, (d_in - 1) / d_in, 0.999):
            assert torch.equal(masks.mask_per_row(score, s), stable_sort_mask(score, s)), (trial, s)


def test_per_row_selection_orders_nan_and_inf_as_the_stable_sort_does():
    """NaN sorts after +inf, and NaNs among themselves by column, in torch.sort; -0.0 ties with 0.0."""
    g = torch.Generator().manual_seed(5)
    score = torch.randint(0, 3, (40, 12), generator=g).float()
    score[torch.rand(40, 12, generator=g) < 0.3] = float("nan")
    score[torch.rand(40, 12, generator=g) < 0.2] = float("inf")
    score[torch.rand(40, 12, generator=g) < 0.2] = -0.0
    score[1] = float("nan")
    for s in (0.25, 0.5, 0.75, 11 / 12):
        assert torch.equal(masks.mask_per_row(score, s), stable_sort_mask(score, s)), s


def test_per_row_selection_equals_the_stable_sort_on_continuous_scores():
    torch.manual_seed(6)
    score = torch.rand(64, 300) * torch.rand(1, 300)
    score[:, ::7] = score[:, 3:4]  # exact ties across columns of every row
    for s in (0.1, 0.5, 0.9):
        assert torch.equal(masks.mask_per_row(score, s), stable_sort_mask(score, s))


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
