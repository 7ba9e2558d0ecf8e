"""SparseGPT against a dense, non-lazy OBS written out here, and against Wanda's mask."""

import pytest
import torch

from mlsweep.prune import masks, stats
from mlsweep.prune.pruners import sparsegpt, wanda


def reference_obs(W, H, sparsity=0.0, n=0, m=0, percdamp=0.01, blocksize=128):
    """Textbook OBS: no lazy batching; each column updates every later column at once.

    The mask is chosen at the same points as SparseGPT's (per block of columns for
    unstructured, every M columns for N:M) from the weights as updated so far.
    """
    W, H = W.clone().double(), H.clone().double()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += percdamp * torch.diag(H).mean() * torch.eye(H.shape[0], dtype=H.dtype)
    U = torch.linalg.cholesky(torch.linalg.inv(H), upper=True)
    d_in = W.shape[1]
    mask = torch.zeros_like(W, dtype=torch.bool)
    for c in range(d_in):
        if m == 0 and c % blocksize == 0:
            blk = slice(c, min(c + blocksize, d_in))
            score = W[:, blk] ** 2 / torch.diag(U)[blk] ** 2
            thresh = torch.sort(score.flatten())[0][int(score.numel() * sparsity)]
            mask[:, blk] = score <= thresh
        if m and c % m == 0:
            score = W[:, c : c + m] ** 2 / torch.diag(U)[c : c + m] ** 2
            idx = torch.topk(score, n, dim=1, largest=False)[1]
            mask[:, c : c + m] = torch.zeros_like(score, dtype=torch.bool).scatter_(1, idx, True)
        q = torch.where(mask[:, c], torch.zeros_like(W[:, c]), W[:, c])
        err = (W[:, c] - q) / U[c, c]
        W[:, c:] -= err[:, None] * U[c, c:][None, :]
        W[:, c] = q
    return W.float(), mask


def layer(d_out=24, d_in=96, tokens=400, seed=0, dead=()):
    """Correlated inputs with uneven scales, as real activations have (OBS exploits the correlation)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d_out, d_in, generator=g)
    mixing = torch.randn(d_in // 3, d_in, generator=g)
    X = torch.randn(tokens, d_in // 3, generator=g) @ mixing + 0.3 * torch.randn(tokens, d_in, generator=g)
    X = X * torch.linspace(0.2, 3.0, d_in)
    for d in dead:
        X[:, d] = 0
    hess = sparsegpt.Hessian(d_in)
    for chunk in X.split(50):
        hess.add(chunk, n_seq=1)
    return W, X, hess


def test_hessian_is_two_xxt_over_sequences():
    W, X, hess = layer()
    ref = 2 * X.t() @ X / 8
    assert torch.allclose(hess.H, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


@pytest.mark.parametrize(
    "target,blocksize",
    [
        (masks.make_target(0.5), 32),
        (masks.make_target(0.7), 128),
        (masks.make_target(0.5, "2:4"), 32),
        (masks.make_target(0.5, "4:8"), 64),
    ],
)
def test_lazy_blocked_sweep_equals_dense_obs(target, blocksize):
    W, X, hess = layer(dead=(5, 17))
    ours = sparsegpt.obs_prune(W, hess.H, target, percdamp=0.01, blocksize=blocksize)
    ref, ref_mask = reference_obs(W, hess.H, target.sparsity, target.n, target.m, 0.01, blocksize)
    assert torch.equal(ours == 0, ref_mask | (ref == 0))
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4)
    assert (ours[:, [5, 17]] == 0).all(), "dead inputs are zeroed"
    if target.is_nm:
        assert ((ours == 0).reshape(W.shape[0], -1, target.m).sum(-1) >= target.n).all()


def test_sparsegpt_reconstructs_better_than_wanda_at_the_same_sparsity():
    W, X, hess = layer(d_out=64, d_in=128, tokens=2000)
    target = masks.make_target(0.6)
    acc = stats.SquaredNorm(128)
    acc.add(X, n_seq=40)
    w_wanda = wanda.prune(W, acc, target, None)
    w_sgpt = sparsegpt.obs_prune(W, hess.H, target)
    err = lambda Wh: torch.linalg.norm(X @ W.t() - X @ Wh.t())
    assert abs(float((w_sgpt == 0).float().mean()) - 0.6) < 0.01
    assert err(w_sgpt) < 0.8 * err(w_wanda)


def reference_sweep(W, H, sparsity, percdamp=0.01, blocksize=128):
    """The reference's lazy-batch sweep step for step, in fp32 (IST-DASLab `fasterprune`, unstructured)."""
    W, H = W.clone(), H.clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H[range(len(H)), range(len(H))] += percdamp * torch.mean(torch.diag(H))
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    for i1 in range(0, W.shape[1], blocksize):
        i2 = min(i1 + blocksize, W.shape[1])
        W1, Hinv1 = W[:, i1:i2].clone(), Hinv[i1:i2, i1:i2]
        Q1, Err1 = torch.zeros_like(W1), torch.zeros_like(W1)
        tmp = W1**2 / torch.diag(Hinv1).reshape(1, -1) ** 2
        mask1 = tmp <= torch.sort(tmp.flatten())[0][int(tmp.numel() * sparsity)]
        for i in range(i2 - i1):
            w, d = W1[:, i], Hinv1[i, i]
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W


@pytest.mark.parametrize("sparsity,blocksize", [(0.5, 32), (0.6, 128), (0.5, 40)])
def test_sweep_equals_the_reference_bit_for_bit(sparsity, blocksize):
    """Same masks and same weights to the last bit: in-place factor, kthvalue quantile, transposed sweep."""
    W, X, hess = layer(d_out=48, d_in=160, tokens=600, dead=(3,))
    ours = sparsegpt.obs_prune(W, hess.H, masks.make_target(sparsity), 0.01, blocksize)
    assert torch.equal(ours, reference_sweep(W, hess.H, sparsity, 0.01, blocksize))


def test_readers_of_one_input_share_one_factor_and_get_what_each_would_alone():
    """q/k/v read one input: the factor is computed once and each solve equals a solve of its own."""
    W, X, hess = layer(d_out=32, d_in=96, dead=(7,))
    H = hess.H
    hess.readers = 3
    params, target = sparsegpt.Params(blocksize=32), masks.make_target(0.5)
    weights = [W, W.flip(0), 2 * W]
    results = [sparsegpt.prune(w, hess, target, params) for w in weights]
    assert hess.sum is None and hess._factor is None, "the last reader frees the factor"
    for w, got in zip(weights, results):
        assert torch.equal(got, sparsegpt.obs_prune(w, H, target, blocksize=32))


def test_a_collector_with_no_rows_of_its_own_holds_no_matrix():
    hess = sparsegpt.Hessian(64)
    assert hess.sum is None
    hess.add(torch.randn(10, 64), n_seq=1)
    assert hess.sum.shape == (64, 64)
