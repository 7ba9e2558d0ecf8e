"""Hugging Face dataset sources on local files (the real datasets code path), offline errors, Kim's scorer."""

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import toy_documents
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config
from mlsweep.data.sources import SourceSpec, make_source
from mlsweep.evaluate.scorers import kim_xnli as kim


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="module")
def hf_files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hf")
    for code, toy in (("de", "aa"), ("sw", "bb")):
        for split, seed in (("train", 5), ("test", 6)):
            path = root / code / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps({"body": d}) + "\n" for d in toy_documents(toy, 30, seed)))
        items = [{"premise": f"satz {i} hier", "hypothesis": "ein satz", "label": i % 3} for i in range(9)]
        (root / "xnli" / f"{code}.jsonl").parent.mkdir(exist_ok=True)
        (root / "xnli" / f"{code}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return root


def test_hf_source_reads_local_jsonl_through_datasets(hf_files):
    src = make_source(SourceSpec("hf", dataset="json", data_files=f"{hf_files}/{{code}}/test.jsonl", text_field="body"))
    docs = src.documents("deu_Latn", "test")  # FLORES code normalised to de
    assert len(docs) == 30 and docs == src.documents("de", "test")


def test_a_cell_calibrates_and_evaluates_from_hf_sources(tmp_path, tiny_overrides, hf_files):
    hf = "{name: hf, dataset: json, text_field: body, data_files: '%s/{code}/%s.jsonl'}"
    cfg = compose_cfg(
        tiny_overrides
        + [
            f"calib.source={hf % (hf_files, 'train')}",
            "calib.split=train",
            "calib.languages=[de,sw]",
            f"+eval.corpora=[{{key: ppl_hf, source: {hf % (hf_files, 'test')}, split: test, "
            "languages: [de, swh_Latn]}]",
        ]
    )
    row = run_config(cfg, tmp_path)
    assert row["status"] == "done", row["error"]
    assert row["calib_count/de"] == 2 and row["calib_count/sw"] == 2
    assert math.isfinite(row["ppl_hf/de"]) and math.isfinite(row["ppl_hf_bpb/sw"])  # swh_Latn: canonical sw
    assert not any(k.endswith("/swh_Latn") for k in row)
    assert row["ppl_hf_tokens/de"] > 0


def test_hub_corpus_offline_fails_before_pruning_with_the_download_command(tmp_path, tiny_overrides, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    cfg = compose_cfg(
        tiny_overrides + ["+eval.corpora=[{key: ppl_flores, source: {name: flores}, split: devtest, languages: [de]}]"]
    )
    row = run_config(cfg, tmp_path)
    assert row["status"] == "failed" and "time/load_s" not in row
    assert "openlanguagedata/flores_plus" in row["error"] and "deu_Latn" in row["error"]
    assert "python -m mlsweep.data.download openlanguagedata/flores_plus --config deu_Latn" in row["error"]


def test_unknown_language_code_names_the_closest(tmp_path, tiny_overrides):
    cfg = compose_cfg(
        tiny_overrides
        + ["+eval.corpora=[{key: ppl_flores, source: {name: flores}, split: devtest, languages: [deu_Latm]}]"]
    )
    row = run_config(cfg, tmp_path)
    assert row["status"] == "failed" and "deu_latn" in row["error"].lower() and "eval.corpora[0]" in row["error"]


def test_kim_scorer_matches_a_hand_computed_mean_logprob(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    items = [
        {"premise": "abc de", "hypothesis": "fgh", "label": 2},
        {"premise": "ijk", "hypothesis": "lmno p", "label": 0},
    ]
    texts = [
        kim.TEMPLATE.format(premise=it["premise"], answer=a, hypothesis=it["hypothesis"])
        for it in items
        for a in kim.ANSWERS
    ]
    batched = kim.mean_logprobs(model, tok, texts, batch_size=4)
    for text, got in zip(texts, batched):
        ids = torch.tensor([tok(text)["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
        want = logp.gather(1, ids[0, 1:, None]).mean()
        assert float(got) == pytest.approx(float(want), abs=1e-4)
    res = kim.score(model, tok, items, batch_size=2)
    pred = batched.reshape(2, 3).argmax(1)
    assert res["acc"] == float((pred == torch.tensor([2, 0])).float().mean()) and res["n"] == 2
    assert (
        len(kim.subset(list(range(3000)))) == 1000
        and kim.subset(list(range(50)))[:3] == kim.subset(list(range(50)))[:3]
    )


def test_kim_task_runs_in_a_cell(tmp_path, tiny_overrides, hf_files):
    cfg = compose_cfg(
        tiny_overrides
        + [
            "eval.tasks=[kim_xnli_de,kim_xnli_sw]",
            f"+eval.scorers.kim_xnli={{dataset: json, config: null, data_files: '{hf_files}/xnli/{{code}}.jsonl'}}",
        ]
    )
    row = run_config(cfg, tmp_path)
    assert row["status"] == "done", row["error"]
    assert row["n/kim_xnli_de"] == 9 and 0 <= row["acc/kim_xnli_sw"] <= 1 and "acc_lang/de" in row
