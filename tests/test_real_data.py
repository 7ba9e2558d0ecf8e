"""The real-data tier: multilingual text in seven scripts, FLORES- and ISO 639-3-named folders and tasks,
and task items longer than the model's context, all written here (nothing is downloaded).

The text is Article 1 of the Universal Declaration of Human Rights in eight languages (public
domain), repeated with numbered sentences to fill the windows. A tokenizer trained on it (byte-level
BPE) sees each script as it is: Devanagari, Cyrillic, Han, Arabic, Greek, Thai and Latin.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import copa_items, make_tiny_model, write_copa_tasks
from test_cell import compose_cfg

from mlsweep.cell.app import run_config

pytestmark = [pytest.mark.realdata, pytest.mark.integration]

UDHR_1 = {
    "en": "All human beings are born free and equal in dignity and rights. They are endowed with reason and "
    "conscience and should act towards one another in a spirit of brotherhood.",
    "de": "Alle Menschen sind frei und gleich an Würde und Rechten geboren. Sie sind mit Vernunft und Gewissen "
    "begabt und sollen einander im Geist der Brüderlichkeit begegnen.",
    "ru": "Все люди рождаются свободными и равными в своем достоинстве и правах. Они наделены разумом и "
    "совестью и должны поступать в отношении друг друга в духе братства.",
    "zh": "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。",
    "hi": "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है। उन्हें बुद्धि और "
    "अन्तरात्मा की देन प्राप्त है और परस्पर उन्हें भाईचारे के भाव से बर्ताव करना चाहिए।",
    "ar": "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق. وهم قد وهبوا العقل والوجدان وعليهم أن يعامل "
    "بعضهم بعضًا بروح الإخاء.",
    "el": "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα. Είναι "
    "προικισμένοι με λογική και συνείδηση, και οφείλουν να συμπεριφέρονται μεταξύ τους με πνεύμα αδελφοσύνης.",
    "th": "มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักด์และสิทธิ ต่างมีเหตุผลและมโนธรรม และควรปฏิบัติต่อกันด้วยเจตนารมณ์แห่งภราดรภาพ",
}
# Folder names as a user's corpus might spell them: FLORES, ISO 639-3 and ISO 639-1 mixed.
FOLDERS = {"en": "eng_Latn", "de": "deu", "ru": "rus_Cyrl", "zh": "zho_Hans", "hi": "hin_Deva", "ar": "arb_Arab"}
FOLDERS.update({"el": "el", "th": "tha"})


def documents(lang: str, split: str) -> list[str]:
    offset = 0 if split == "calib" else 1000
    return [f"{i + offset}. {UDHR_1[lang]}" for i in range(12)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("udhr")
    for lang, folder in FOLDERS.items():
        for split in ("calib", "test"):
            path = root / folder / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = [json.dumps({"text": d}, ensure_ascii=False) for d in documents(lang, split)]
            path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    texts = [d for lang in UDHR_1 for d in documents(lang, "calib")]
    return make_tiny_model(tmp_path_factory.mktemp("udhr_model") / "llama", vocab_size=600, texts=texts)


def overrides(model: Path, corpus: Path, *extra: str) -> list[str]:
    return [
        f"model.path={model}",
        "model.name=udhr-tiny",
        "model.seqlen=32",
        "model.device=cpu",
        "calib.source.name=local",
        f"calib.source.path={corpus}",
        "calib.nsamples=8",
        "eval.source.name=local",
        f"eval.source.path={corpus}",
        "eval.max_windows=4",
        *extra,
    ]


def test_a_cell_on_seven_scripts_reports_one_canonical_key_per_language(tmp_path, model, corpus):
    typed = "eval.languages=[en,deu_Latn,rus,zho_Hans,hin,arb_Arab,ell_Grek,tha_Thai]"
    cfg = compose_cfg(overrides(model, corpus, "calib.languages=[hin_Deva,ru]", typed))
    row = run_config(cfg, tmp_path)
    assert row["status"] == "done", row["error"]
    ppl = {k.split("/")[1]: v for k, v in row.items() if k.startswith("ppl/")}
    assert set(ppl) == set(UDHR_1) and all(math.isfinite(v) and v > 1 for v in ppl.values()), ppl
    assert row["calib_count/hi"] == 4 and row["calib_count/ru"] == 4
    assert row["config"]["eval"]["languages"][1] == "deu_Latn", "the config keeps the spelling typed"


@pytest.fixture(scope="module")
def flores_tasks(tmp_path_factory) -> Path:
    """XCOPA-schema tasks named with FLORES and ISO 639-3 codes; the `long` task's premises exceed the context."""
    root = tmp_path_factory.mktemp("tasks")
    return write_copa_tasks(
        root,
        {
            "udhrcopa_hin_Deva": copa_items(6),
            "udhrcopa_rus": copa_items(6),
            "udhrcopa_zho_Hans": copa_items(6),
            "udhrlong_tha_Thai": copa_items(3) + copa_items(2, premise_words=60),
        },
    )


def test_tasks_named_with_flores_and_iso3_codes_count_for_their_language(tmp_path, model, corpus, flores_tasks):
    extra = [
        "eval.languages=[hi,ru,zh]",
        f"eval.include_paths=[{flores_tasks}]",
        "eval.tasks=[udhrcopa_hin_Deva,udhrcopa_rus,udhrcopa_zho_Hans]",
        "calib.languages=[en]",
    ]
    row = run_config(compose_cfg(overrides(model, corpus, *extra)), tmp_path)
    assert row["status"] == "done", row["error"]
    for lang, task in (("hi", "udhrcopa_hin_Deva"), ("ru", "udhrcopa_rus"), ("zh", "udhrcopa_zho_Hans")):
        assert row[f"acc_lang/{lang}"] == row[f"acc/{task}"], (lang, row[f"acc_lang/{lang}"])


def test_items_longer_than_the_context_are_refused_or_truncated_by_choice(tmp_path, model, corpus, flores_tasks):
    extra = ["eval.languages=[th]", f"eval.include_paths=[{flores_tasks}]", "eval.tasks=[udhrlong_tha_Thai]"]
    refused = run_config(compose_cfg(overrides(model, corpus, *extra, "calib.languages=[en]")), tmp_path / "a")
    assert refused["status"] == "failed" and "time/load_s" not in refused
    assert "udhrlong_tha_Thai" in refused["error"] and "eval.truncate_long" in refused["error"], refused["error"]
    cut = run_config(
        compose_cfg(overrides(model, corpus, *extra, "calib.languages=[en]", "eval.truncate_long=true")),
        tmp_path / "b",
    )
    assert cut["status"] == "done", cut["error"]
    assert cut["truncated/udhrlong_tha_Thai"] > 0 and cut["acc_lang/th"] == cut["acc/udhrlong_tha_Thai"]
