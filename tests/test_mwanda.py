"""M-Wanda: language-tagged statistics, Wanda as its special case, CWL allocation."""

import pytest
import torch
from helpers import dense_matrix_inputs, owl_mapping, tiny_config
from transformers import AutoModelForCausalLM

from mlsweep.prune import prune_model
from mlsweep.prune.allocation import cross_language_correlation
from mlsweep.prune.arch import find_blocks, find_matrices
from mlsweep.prune.pruners import mwanda
from mlsweep.prune.stats import LanguageStats


def tiny():
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config("llama", 300)).eval()


def calib(n=8, seed=1):
    return torch.randint(4, 300, (n, 16), generator=torch.Generator().manual_seed(seed))


LANGS = ["de"] * 3 + ["sw"] * 5  # an unequal mix


def stats_from(xs_by_lang):
    st = LanguageStats(6)
    for lang, xs in xs_by_lang.items():
        for x in xs:
            st.add(x, n_seq=1, lang=lang)
    return st


def test_language_statistics_against_hand_computation():
    g = torch.Generator().manual_seed(0)
    xs = {"de": [torch.randn(5, 6, generator=g) for _ in range(2)], "sw": [torch.randn(4, 6, generator=g)]}
    st = stats_from(xs)
    n_de = sum((x**2).sum(0) for x in xs["de"]) / 2
    assert torch.allclose(st.n()[0], n_de) and torch.allclose(st.n()[1], (xs["sw"][0] ** 2).sum(0))
    assert torch.allclose(st.p()[0], sum((x > 0).float().sum(0) for x in xs["de"]) / 10)
    pooled = (sum((x**2).sum(0) for x in xs["de"]) + (xs["sw"][0] ** 2).sum(0)) / 3
    assert torch.allclose(st.pooled(), pooled)
    params = mwanda.Params(lambda_var=0.7, gamma=0.5)
    a = st.n().sqrt()
    want = (pooled.sqrt() + 0.7 * a.std(0, unbiased=False)) * st.p().mean(0) ** 0.5
    W = torch.randn(3, 6, generator=g)
    assert torch.allclose(mwanda.score(W, st, params), W.abs() * want[None, :])


def masks_of(model):
    return [p == 0 for p in model.parameters()]


def pruned(method, langs, **kwargs):
    model = tiny()
    prune_model(model, calib(), method, 0.6, languages=langs, **kwargs)
    return masks_of(model)


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_one_language_or_lambda_and_gamma_zero_gives_wandas_exact_mask():
    """METHODS.md 10.2: with one language (s_j = 0) or lambda_var = 0, A is Wanda's norm. The probability
    term is separate (10.3, default gamma = 0.5, on): gamma = 0 switches it off, lambda_var keeps its default."""
    assert (mwanda.Params().lambda_var, mwanda.Params().gamma) == (1.0, 0.5)  # the defaults this test relies on
    one = ["de"] * 8
    assert same(pruned("mwanda", one, params={"gamma": 0.0}), pruned("wanda", one))
    assert same(pruned("mwanda", LANGS, params={"lambda_var": 0.0, "gamma": 0.0}), pruned("wanda", LANGS))


def test_with_one_language_the_defaults_are_wanda_times_the_probability_term():
    """All defaults, one language: the spread term vanishes (equal to lambda_var = 0) and P ** 0.5 still
    reweights the columns, so the mask is not Wanda's."""
    one = ["de"] * 8
    defaults = pruned("mwanda", one)  # no params: the pruner's own defaults
    assert same(defaults, pruned("mwanda", one, params={"lambda_var": 0.0}))
    assert not same(defaults, pruned("wanda", one))


def test_mean_aggregate_is_the_literal_formula():
    st = stats_from({"de": [torch.ones(2, 6)], "sw": [4 * torch.ones(2, 6)]})
    A = mwanda.feature_norm(st, mwanda.Params(lambda_var=0.0, aggregate="mean"))
    assert torch.allclose(A, torch.full((6,), (2**0.5 + 32**0.5) / 2))


def test_language_aware_terms_change_the_mask():
    a, b = tiny(), tiny()
    prune_model(a, calib(), "wanda", 0.6, languages=LANGS)
    prune_model(b, calib(), "mwanda", 0.6, languages=LANGS)
    assert not torch.equal(a.model.layers[0].mlp.up_proj.weight == 0, b.model.layers[0].mlp.up_proj.weight == 0)
    assert ((b.model.layers[0].mlp.up_proj.weight == 0).sum(1) == int(32 * 0.6)).all()


def test_cwl_correlation_and_allocation():
    x = torch.arange(6.0)
    assert cross_language_correlation([torch.stack([x, 2 * x + 1])]) == pytest.approx(1.0)
    assert cross_language_correlation([torch.stack([x, -x])]) == pytest.approx(-1.0)
    report = prune_model(
        tiny(), calib(), "mwanda", 0.5, allocation="cwl", allocation_params=dict(cwl_lambda=0.05), languages=LANGS
    )
    assert sum(report.allocated) / 2 == pytest.approx(0.5) and sorted(report.allocated) == pytest.approx([0.45, 0.55])


def test_cwl_through_the_engine_gives_this_models_correlations_and_targets():
    """r_b written out (METHODS.md 10.4): per language n = mean over its sequences of the sum of x_j^2, a = sqrt(n),
    the Pearson correlation of a[de] and a[sw] averaged over the block's linears; D_b = 1 - r_b, then OWL's mapping."""
    torch.manual_seed(0)
    cfg = tiny_config("llama", 300)
    cfg.num_hidden_layers = 4
    model = AutoModelForCausalLM.from_config(cfg).eval()
    rows, lam = calib(), 0.05
    inputs = dense_matrix_inputs(model, rows)
    scores = []
    for i, block in enumerate(find_blocks(model)):
        corr = []
        for name in find_matrices(block):
            a = [
                torch.stack([(x**2).sum(0) for x, tag in zip(inputs[(i, name)], LANGS) if tag == lang]).mean(0).sqrt()
                for lang in ("de", "sw")
            ]
            corr.append(float(torch.corrcoef(torch.stack(a).double())[0, 1]))
        scores.append(1 - sum(corr) / len(corr))
    assert len(set(scores)) == 4, scores

    report = prune_model(
        model, rows, "mwanda", 0.5, allocation="cwl", allocation_params=dict(cwl_lambda=lam), languages=LANGS
    )
    assert report.allocated == pytest.approx(owl_mapping(scores, 0.5, lam), abs=1e-6)
    assert report.allocated.index(min(report.allocated)) == scores.index(max(scores))  # least shared: densest


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(allocation="cwl", languages=["de"] * 8), "at least 2 languages"),
        (dict(params=dict(gamma=-1.0), languages=LANGS), "pruner.gamma"),
        (dict(params=dict(aggregate="median"), languages=LANGS), "pruner.aggregate"),
        (dict(params=dict(prob_source="output"), languages=LANGS), "pruner.prob_source"),
        (dict(allocation="cwl", allocation_params=dict(cwl_direction="up"), languages=LANGS), "sparsity.cwl_direction"),
    ],
)
def test_bad_mwanda_input_names_the_field(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        prune_model(tiny(), calib(), "mwanda", 0.5, **kwargs)
