"""The committed testbed: data regenerate byte-identically, the model reproduces its record, lm-eval runs."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from mlsweep.evaluate.perplexity import join_documents, perplexity
from mlsweep.modeling import load_model
from mlsweep.testbed.generator import corpus
from mlsweep.testbed.languages import LANGUAGES

TESTBED = Path(__file__).resolve().parents[1] / "mlsweep" / "testbed"
DATA, MODEL = TESTBED / "data", TESTBED / "model"
RECORD = json.loads((MODEL / "testbed.json").read_text())


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return load_model(str(MODEL), "float32", torch.device("cpu"), attn_implementation="eager")


def heldout_perplexity(model, tokenizer, lang: str) -> float:
    """Dense perplexity on the language's test split, as the build measured it (windows of the recipe's seqlen)."""
    docs = [json.loads(line)["text"] for line in (DATA / "text" / lang / "test.jsonl").read_text().splitlines()]
    ids = torch.tensor(tokenizer(join_documents(docs), add_special_tokens=False)["input_ids"])
    return perplexity(model, ids, RECORD["recipe"]["seqlen"]).ppl


def test_committed_heldout_data_is_what_the_generator_writes(tmp_path):
    manifest = corpus.build(tmp_path, seed=RECORD["recipe"]["seed"], only_eval=True)
    committed = json.loads((DATA / "manifest.json").read_text())
    assert {k: v for k, v in manifest["sha256"].items() if not k.startswith("train/")} == {
        k: v for k, v in committed["sha256"].items() if not k.startswith("train/")
    }
    for rel, digest in committed["sha256"].items():
        if not rel.startswith("train/") and rel != "manifest.json":
            assert hashlib.sha256((DATA / rel).read_bytes()).hexdigest() == digest, rel


def test_committed_splits_are_disjoint_and_parallel():
    for lang in LANGUAGES:
        seen = {}
        for split in ("calib", "valid", "test"):
            path = DATA / "text" / lang / f"{split}.jsonl"
            docs = [json.loads(line)["text"] for line in path.read_text().splitlines()]
            for d in docs:
                assert seen.setdefault(d, split) == split, f"{lang}: a document is in {seen[d]} and {split}"
    sizes = {lang: len((DATA / "text" / lang / "test.jsonl").read_text().splitlines()) for lang in LANGUAGES}
    assert len(set(sizes.values())) == 1


def test_committed_task_files_follow_the_hf_schemas():
    for lang in LANGUAGES:
        for line in (DATA / "tasks" / "xcopa" / f"{lang}.jsonl").read_text().splitlines():
            item = json.loads(line)
            assert set(item) == {"premise", "choice1", "choice2", "question", "label", "idx"}
            assert item["question"] in ("cause", "effect") and item["label"] in (0, 1)
        for line in (DATA / "tasks" / "xnli" / f"{lang}.jsonl").read_text().splitlines():
            item = json.loads(line)
            assert set(item) == {"premise", "hypothesis", "label"} and item["label"] in (0, 1, 2)


def card_table() -> dict[str, dict[str, float]]:
    """The card's (model/README.md) dense perplexity table: language -> perplexity, unigram baseline."""
    rows = {}
    for line in (MODEL / "README.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if len(cells) == 6 and cells[0] in LANGUAGES:
            rows[cells[0]] = {"ppl": float(cells[3]), "unigram_ppl": float(cells[4])}
    return rows


def test_model_is_small_and_its_card_states_what_it_measures(model_and_tokenizer):
    weights = sum(p.stat().st_size for p in MODEL.iterdir())
    assert weights < 10 * 2**20
    card = card_table()
    assert sorted(card) == sorted(LANGUAGES)
    model, tokenizer = model_and_tokenizer
    for lang in ("en", "sw"):  # the largest and the smallest training share
        ppl = heldout_perplexity(model, tokenizer, lang)
        # the card rounds to 2 decimals of a perplexity measured in fp32 before the fp16 export of the
        # weights; that rounding moves it by well under 1% (the record's own tolerance, below)
        assert ppl == pytest.approx(card[lang]["ppl"], rel=0.01), lang
        assert ppl < card[lang]["unigram_ppl"] / 3, lang  # trained: far below the unigram baseline


def test_committed_model_reproduces_its_recorded_dense_perplexity(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    for lang in LANGUAGES:
        ppl = heldout_perplexity(model, tokenizer, lang)
        # recorded from the fp32 model before its fp16 export: a small tolerance covers the rounding
        assert ppl == pytest.approx(RECORD["dense"][lang]["ppl"], rel=0.01), lang


@pytest.mark.integration
def test_lm_eval_runs_a_local_testbed_task_on_the_in_memory_model(model_and_tokenizer):
    from mlsweep.evaluate.harness import run_tasks

    model, tokenizer = model_and_tokenizer
    flat = run_tasks(model, tokenizer, ["testbed_xcopa_en", "testbed_xnli_sw"], batch_size=16, limit=40)
    assert flat["n/testbed_xcopa_en"] == 40 and flat["n/testbed_xnli_sw"] == 40
    assert 0.0 <= flat["acc/testbed_xcopa_en"] <= 1.0 and "acc_stderr/testbed_xnli_sw" in flat
    assert flat["acc/testbed_xcopa_en"] == pytest.approx(RECORD["tasks"]["en"]["xcopa"], abs=0.2)
