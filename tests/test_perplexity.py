"""Perplexity against hand computations on a model whose logits are fixed."""

import math

import pytest
import torch
from torch import nn

from mlsweep.evaluate.perplexity import covered_text, perplexity, text_perplexity


class FixedLogits(nn.Module):
    """p(next token) is fixed: token 1 with probability 0.5, tokens 0, 2, 3 share the rest."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.logits = torch.log(torch.tensor([0.5 / 3, 0.5, 0.5 / 3, 0.5 / 3]))

    def forward(self, input_ids, use_cache=False):
        b, t = input_ids.shape
        return type("Out", (), {"logits": self.logits.expand(b, t, 4).clone()})()


def test_perplexity_equals_hand_computed_value():
    ids = torch.tensor([1, 1, 0, 2, 1, 3, 1, 1, 0, 1, 1])  # 11 tokens -> 2 windows of 5; last token dropped
    res = perplexity(FixedLogits(), ids, seqlen=5, batch_size=1)
    scored = [1, 0, 2, 1, 1, 0, 1, 1]  # positions 1..4 of each window
    nll = sum(-math.log(0.5) if t == 1 else -math.log(0.5 / 3) for t in scored)
    assert res.tokens == 8 and res.windows == 2
    assert res.nll_sum == pytest.approx(nll)
    assert res.ppl == pytest.approx(math.exp(nll / 8))


def test_batching_does_not_change_the_result():
    ids = torch.randint(0, 4, (203,), generator=torch.Generator().manual_seed(0))
    a = perplexity(FixedLogits(), ids, 10, batch_size=1)
    b = perplexity(FixedLogits(), ids, 10, batch_size=7)
    assert a.nll_sum == pytest.approx(b.nll_sum) and a.tokens == b.tokens == 20 * 9


def test_bits_per_byte_is_nll_times_tokens_over_bytes_ln2(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = "abc defg abcd ефж абв. " * 40
    res = text_perplexity(model, tok, text, seqlen=16)
    mean_nll = res.nll_sum / res.tokens
    assert res.bits_per_byte == pytest.approx(mean_nll * res.tokens / (res.bytes * math.log(2)))
    assert res.chars < res.bytes  # Cyrillic letters take two bytes
    assert res.bits_per_char == pytest.approx(res.nll_sum / (res.chars * math.log(2)))


def test_covered_text_skips_the_first_token_of_each_window():
    text = "aa bb cc dd ee ff"
    offsets = [(0, 2), (2, 5), (5, 8), (8, 11), (11, 14), (14, 17)]
    assert covered_text(text, offsets, n_windows=2, seqlen=3) == (len(" bb cc") + len(" ee ff"), 12)
