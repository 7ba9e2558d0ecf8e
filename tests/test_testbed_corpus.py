"""The synthetic testbed corpus: determinism, disjoint splits, task schemas,
parallelism, scripts, cognates and training shares. Standard library only."""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from mlsweep.testbed.generator import corpus
from mlsweep.testbed.generator.concepts import CATEGORY_NOUNS, NOUNS
from mlsweep.testbed.generator.lexicon import stems
from mlsweep.testbed.generator.meaning import NP, Clause, clause_key, random_adj, random_clause
from mlsweep.testbed.generator.render import clause
from mlsweep.testbed.languages import CODES, LANGUAGES, SHARES

SCALE = 0.02
TEXT_SPLITS = ("calib", "valid", "test")
SCRIPTS = {"en": "LATIN", "es": "LATIN", "de": "LATIN", "sw": "LATIN", "ru": "CYRILLIC", "ar": "ARABIC", "zh": "CJK"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("testbed")
    return out, corpus.build(out, seed=0, train_tokens_scale=SCALE)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in lines(path)]


def texts(root: Path, code: str, split: str) -> list[str]:
    if split == "train":
        return lines(root / "train" / f"{code}.txt")
    return [row["text"] for row in jsonl(root / "text" / code / f"{split}.jsonl")]


def sentences(doc: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.。?？؟])\s*", doc) if s]


def test_same_seed_same_bytes_other_seed_differs(built, tmp_path):
    root, manifest = built
    again = corpus.build(tmp_path / "again", seed=0, train_tokens_scale=SCALE)
    assert again == manifest
    assert (tmp_path / "again" / "manifest.json").read_bytes() == (root / "manifest.json").read_bytes()
    other = corpus.build(tmp_path / "other", seed=1, train_tokens_scale=SCALE, only_eval=True)
    assert "train/en.txt" not in other["sha256"]
    for rel, digest in other["sha256"].items():
        assert manifest["sha256"][rel] != digest, rel
    for rel, digest in manifest["sha256"].items():
        assert corpus.sha256((root / rel).read_bytes()) == digest


def test_only_eval_writes_the_same_eval_files(built, tmp_path):
    root, manifest = built
    only = corpus.build(tmp_path / "only", seed=0, train_tokens_scale=SCALE, only_eval=True)
    assert not (tmp_path / "only" / "train").exists()
    assert only["sha256"] == {k: v for k, v in manifest["sha256"].items() if not k.startswith("train/")}


def test_text_splits_are_disjoint(built):
    root, _ = built
    for code in CODES:
        seen: dict[str, str] = {}
        for split in ("train",) + TEXT_SPLITS:
            docs = texts(root, code, split)
            if split != "train":
                assert len(set(docs)) == len(docs), (code, split)
            for doc in set(docs):
                assert seen.setdefault(doc, split) == split, (code, split, seen[doc])


def test_eval_sentences_never_occur_in_train(built):
    root, _ = built
    for code in CODES:
        end = LANGUAGES[code].end
        train = {s for doc in texts(root, code, "train") for s in sentences(doc)}
        assert len(train) > 100
        probes = [row["premise"] for row in jsonl(root / "tasks" / "xcopa" / f"{code}.jsonl")]
        probes += [row["premise"] + end for row in jsonl(root / "tasks" / "xnli" / f"{code}.jsonl")]
        for split in ("dev", "devtest"):
            probes += lines(root / "parallel" / split / f"{code}.txt")
        assert not train.intersection(probes), code


def test_xcopa_schema_and_balance(built):
    root, _ = built
    rows = {code: jsonl(root / "tasks" / "xcopa" / f"{code}.jsonl") for code in CODES}
    for code, items in rows.items():
        assert len(items) == corpus.XCOPA_ITEMS
        for i, row in enumerate(items):
            assert set(row) == {"premise", "choice1", "choice2", "question", "label", "idx"}
            assert row["question"] in ("cause", "effect") and row["label"] in (0, 1)
            assert row["idx"] == i
            for key in ("premise", "choice1", "choice2"):
                assert row[key].endswith(LANGUAGES[code].end) and row[key].count(LANGUAGES[code].end) == 1
            assert row["choice1"] != row["choice2"]
        assert_balanced([row["label"] for row in items], 2)
        assert_balanced([row["question"] for row in items], 2)
        # Parallel: the same questions and labels in every language.
        assert [(r["question"], r["label"]) for r in items] == [(r["question"], r["label"]) for r in rows["en"]]


def test_xnli_schema_and_balance(built):
    root, _ = built
    rows = {code: jsonl(root / "tasks" / "xnli" / f"{code}.jsonl") for code in CODES}
    for items in rows.values():
        assert len(items) == corpus.XNLI_ITEMS
        for row in items:
            assert set(row) == {"premise", "hypothesis", "label"}
            assert row["label"] in (0, 1, 2) and row["premise"] != row["hypothesis"]
        assert_balanced([row["label"] for row in items], 3)
        assert [r["label"] for r in items] == [r["label"] for r in rows["en"]]


def assert_balanced(values: list, k: int) -> None:
    counts = Counter(values)
    assert len(counts) == k
    for n in counts.values():
        assert abs(n - len(values) / k) <= 0.1 * len(values) / k, counts


def test_every_language_has_the_same_number_of_lines(built):
    root, manifest = built
    groups = [f"text/{{}}/{split}.jsonl" for split in TEXT_SPLITS]
    groups += [f"parallel/{split}/{{}}.txt" for split in ("dev", "devtest")]
    groups += ["tasks/xcopa/{}.jsonl", "tasks/xnli/{}.jsonl"]
    for pattern in groups:
        counts = {code: len(lines(root / pattern.format(code))) for code in CODES}
        assert len(set(counts.values())) == 1, (pattern, counts)
    assert manifest["counts"]["calib"]["sw"] == 400 and manifest["counts"]["dev"]["ar"] == 500
    for split in TEXT_SPLITS:
        ids = [[row["id"] for row in jsonl(root / "text" / code / f"{split}.jsonl")] for code in CODES]
        assert all(i == ids[0] for i in ids) and ids[0][0] == f"{split}-0"


def test_each_language_writes_its_own_script(built):
    root, _ = built
    for code in CODES:
        text = "".join(texts(root, code, "valid")) + "".join(lines(root / "parallel" / "dev" / f"{code}.txt"))
        letters = [ch for ch in text if ch.isalpha()]
        own = sum(unicodedata.name(ch, "").startswith(SCRIPTS[code]) for ch in letters)
        assert own / len(letters) > 0.99, code
    es = "".join(texts(root, "es", "valid"))
    assert set("áéíóúñ") & set(es) and all(ord(ch) < 128 for ch in "".join(texts(root, "en", "valid")))
    assert " " not in "".join(texts(root, "zh", "valid")) and "。" in texts(root, "zh", "valid")[0]


def norm(stem: str) -> str:
    """The regular es/de correspondence: diacritics dropped, c spelled k."""
    bare = "".join(ch for ch in unicodedata.normalize("NFD", stem) if not unicodedata.combining(ch))
    return bare.replace("c", "k")


def test_es_and_de_share_stems_en_and_ru_do_not():
    es, de, en, ru = stems("es"), stems("de"), stems("en"), stems("ru")
    shared = sum(norm(es[c]) == norm(de[c]) for c in es)
    assert shared / len(es) >= 0.5
    assert not set(en.values()) & set(ru.values())
    assert sum(norm(en[c]) == norm(ru[c]) for c in en) == 0
    for code in CODES:
        assert len(set(stems(code).values())) == len(stems(code)), code


def test_shares_and_train_counts(built):
    root, manifest = built
    assert abs(sum(SHARES.values()) - 1.0) < 1e-9 and list(SHARES) == list(CODES)
    assert list(SHARES.values()) == sorted(SHARES.values(), reverse=True)
    for code, share in SHARES.items():
        n = len(lines(root / "train" / f"{code}.txt"))
        assert n == manifest["counts"]["train"][code]
        assert abs(n - corpus.TRAIN_DOCS * SCALE * share) <= 1, code
    full = corpus.train_counts(1.0)
    assert sum(full.values()) == corpus.TRAIN_DOCS and full["en"] == 21000 and full["sw"] == 1200


def test_prompt_words_are_the_corpus_words(built):
    """The template words of `languages` occur in the corpus in the same frames."""
    root, _ = built
    for code, lang in LANGUAGES.items():
        text = " ".join(texts(root, code, "train") + texts(root, code, "calib"))
        for answer in (lang.yes, lang.no, lang.also):
            assert f"{lang.comma}{lang.right}{lang.qmark}{lang.space}{answer}{lang.comma}" in text, code
        assert f"{lang.comma}{lang.so}{lang.space}" in text, code
        assert f"{lang.because_sep}{lang.because}{lang.space}" in text, code


def test_rendering_is_injective():
    """Different clause meanings never render to the same text (in any mode)."""
    rng = random.Random(0)
    subjects = [n for n in NOUNS if n not in CATEGORY_NOUNS]
    clauses = set()
    for _ in range(3000):
        noun = rng.choice(subjects)
        c = random_clause(rng, NP(noun, random_adj(rng, noun)))
        clauses.add(Clause(c.pred, c.subj, c.obj, c.loc, rng.random() < 0.3))
    for code in CODES:
        for mode in ("main", "so", "because"):
            rendered = {}
            for c in sorted(clauses, key=clause_key):
                assert rendered.setdefault(clause(code, c, mode), c) == c, (code, mode)
