"""Text sources: where per-language documents come from (the `source.name` registry).

A source answers `languages()`, `documents(lang, split)`, `check(langs,
split)` (cheap; run before any pruning) and `language_name(code)` (what a
prompt writes before a sentence), and says whether it understands ISO
639-1/639-3/FLORES spellings of a code (`normalizes_codes`). Entries
register a factory `SourceSpec -> TextSource` in `SOURCES`: the folder
readers (`local`, `testbed`, `testbed_parallel`, `python_code`) in
`folder.py`, Hugging Face datasets (`hf` and its presets `flores`, `xlsum`,
`mc4`, `culturax`, `wikipedia`, `wikitext2`) in `hub.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional, Protocol

from mlsweep.data.languages import same_language, spellings
from mlsweep.registry import Registry, suggest

# What prompts call a language when the source has no names of its own (Kim et al. write English names).
ENGLISH_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "ru": "Russian",
    "zh": "Chinese",
    "ar": "Arabic",
    "sw": "Swahili",
    "hi": "Hindi",
    "bg": "Bulgarian",
    "el": "Greek",
    "th": "Thai",
    "tr": "Turkish",
    "ur": "Urdu",
    "vi": "Vietnamese",
}


@dataclass(frozen=True)
class SourceSpec:
    """A source as the config names it: registry name plus the fields some sources read."""

    name: str = "testbed"
    path: Optional[str] = None  # folder of the `local` source (and of python_code)
    dataset: Optional[str] = None  # hub sources: overrides of the preset; templates take {code} {iso3} ...
    config: Optional[str] = None
    text_field: Optional[str] = None
    data_files: Optional[str] = None


class TextSource(Protocol):
    name: str
    normalizes_codes: bool  # True: deu, deu_Latn and de name the same language here

    def languages(self) -> list[str]: ...

    def documents(self, lang: str, split: str) -> list[str]: ...

    def check(self, langs: list[str], split: str) -> None: ...

    def language_name(self, code: str) -> str: ...


SOURCES: Registry[Callable[[SourceSpec], TextSource]] = Registry("source.name", package=__name__)


def make_source(spec: SourceSpec) -> TextSource:
    """The source a SourceSpec describes (folders are checked to exist, nothing is read yet)."""
    return SOURCES.get(spec.name)(spec)


def check_languages(field: str, langs: list[str], source: TextSource) -> None:
    """Fail naming the field and the closest known codes for any unknown language."""

    known = source.languages()
    if not langs:
        raise ValueError(f"{field}: empty; choose from {known}")
    for lang in langs:
        same = same_language(lang, known) if source.normalizes_codes else [lang] if lang in known else []
        if len(same) > 1:
            raise ValueError(
                f"{field}: language {lang!r} is spelt {len(same)} ways in source {source.name!r} "
                f"({', '.join(same)}); keep one of them"
            )
        if not same:
            raise ValueError(
                f"{field}: language {lang!r} is unknown to source {source.name!r}.{suggest(lang, spellings(known))} "
                f"Known: {', '.join(known)}"
            )


def source_code(lang: str, source: TextSource) -> str:
    """The source's own spelling of `lang` (a folder `deu_Latn` for `de`); `lang` itself if it has none."""
    same = same_language(lang, source.languages()) if source.normalizes_codes else []
    return same[0] if len(same) == 1 else lang
