"""lm-eval hooks for the testbed's XCOPA-like and XNLI-like tasks.

Prompts are built with the testbed languages' own joining rules (the same
functions that wrote the training corpus), so a prompt reads like training
text in every language: `A, so B` / `B because A` for XCOPA, and
`P, right? Yes|Also|No, H` for XNLI (the lm-eval XNLI format).
Data are loaded through Hugging Face `datasets` (json builder) from the
JSONL files shipped in mlsweep/testbed/data/tasks/.
"""

from __future__ import annotations

from functools import partial

from mlsweep import PACKAGE_DIR
from mlsweep.testbed.languages import LANGUAGES

TASK_DATA = PACKAGE_DIR / "testbed" / "data" / "tasks"
XNLI_ANSWERS = ("yes", "also", "no")  # label 0 entailment, 1 neutral, 2 contradiction


def _load(task: str, lang: str, **_ignored):
    import datasets  # noqa: PLC0415 (heavy (pyarrow): only when a hub dataset is read)

    return datasets.load_dataset("json", data_files={"test": str(TASK_DATA / task / f"{lang}.jsonl")})


load_xcopa = partial(_load, "xcopa")
load_xnli = partial(_load, "xnli")


def _strip_end(sentence: str, lang: str) -> str:
    end = LANGUAGES[lang].end
    return sentence[: -len(end)] if sentence.endswith(end) else sentence


def xcopa_text(doc: dict, lang: str) -> str:
    """The premise and the connector; the choice follows (trailing space kept for lm-eval)."""
    L = LANGUAGES[lang]
    premise = _strip_end(doc["premise"].strip(), lang)
    if doc["question"] == "effect":
        return f"{premise}{L.comma}{L.so}{L.space}"
    return f"{premise}{L.because_sep}{L.because}{L.space}"


def xcopa_choices(doc: dict, lang: str) -> list[str]:
    return [_strip_end(doc["choice1"].strip(), lang), _strip_end(doc["choice2"].strip(), lang)]


def xnli_choices(doc: dict, lang: str) -> list[str]:
    L = LANGUAGES[lang]
    return [L.check(doc["premise"], L.answer(a), doc["hypothesis"], end=True) for a in XNLI_ANSWERS]


for _code in LANGUAGES:
    globals()[f"xcopa_text_{_code}"] = partial(xcopa_text, lang=_code)
    globals()[f"xcopa_choices_{_code}"] = partial(xcopa_choices, lang=_code)
    globals()[f"xnli_choices_{_code}"] = partial(xnli_choices, lang=_code)
