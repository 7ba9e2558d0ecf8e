"""Tokenisations kept between cells: lm-eval and perplexity give the numbers of tokenising again."""

import torch
from lm_eval.models.huggingface import HFLM

from mlsweep import PACKAGE_DIR
from mlsweep.evaluate import tokcache
from mlsweep.evaluate.harness import HarnessOptions, make_lm, run_harness
from mlsweep.evaluate.perplexity import text_perplexity
from mlsweep.evaluate.taskindex import task_manager
from mlsweep.evaluate.tasklist import PROJECT_TASKS
from mlsweep.modeling import load_model

TESTBED = PACKAGE_DIR / "testbed" / "model"
TASKS = ["testbed_xcopa_en", "testbed_xnli_de"]


def _answers(out: dict) -> dict:
    """Each task's per-request log-likelihoods (lm-eval's samples), the numbers behind its accuracy."""
    return {task: [s["resps"] for s in rows] for task, rows in out["samples"].items()}


def test_lm_eval_with_kept_tokenisations_gives_its_own_results():
    model, tok = load_model(str(TESTBED), "float32", torch.device("cpu"), attn_implementation="eager")
    options = HarnessOptions(batch_size=16, max_length=128, limit=30, num_fewshot=1)
    manager = task_manager([PROJECT_TASKS])
    calls = []
    encode = tok.encode
    tok.encode = lambda *a, **k: calls.append(1) or encode(*a, **k)  # counts the tokenizer's real work

    def run(lm_class=None):
        calls.clear()
        out = run_harness(make_lm(model, tok, options, lm_class), TASKS, options, manager, log_samples=True)
        return out, len(calls)

    plain, plain_calls = run(HFLM)  # lm-eval's own class: every request tokenised
    tokcache.clear()
    cold, cold_calls = run()
    warm, warm_calls = run()  # the next cell in the process: the same requests, the same tokenizer
    assert plain["results"] == cold["results"] == warm["results"]
    assert _answers(plain) == _answers(cold) == _answers(warm)
    assert plain_calls > 100 and cold_calls <= plain_calls and warm_calls == 0  # cold: a context repeats per choice


def test_perplexity_with_a_kept_tokenisation_gives_the_same_numbers():
    model, tok = load_model(str(TESTBED), "float32", torch.device("cpu"), attn_implementation="eager")
    text = " ".join(f"the {i} cat sat on the mat ." for i in range(300))
    tokcache.clear()
    first = text_perplexity(model, tok, text, 64, max_windows=4)
    assert ("ppl", text) in tokcache._caches[tok]
    again = text_perplexity(model, tok, text, 64, max_windows=4)
    assert (again.ppl, again.bytes, again.chars, again.window_nll) == (
        first.ppl,
        first.bytes,
        first.chars,
        first.window_nll,
    )
    assert again.windows == first.windows == 4


def test_a_tokenizer_that_is_freed_takes_its_tokenisations_with_it():
    class Tok:
        pass

    tok = Tok()
    assert tokcache.cached(tok, "k", lambda: (1, 2)) == (1, 2)
    assert tokcache.cached(tok, "k", lambda: (3,)) == (1, 2)  # kept
    del tok
    import gc

    gc.collect()
    assert not any(isinstance(t, Tok) for t in tokcache._caches.keys())
