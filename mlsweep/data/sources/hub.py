"""Hugging Face dataset sources (`hf` and its presets): one dataset config (or file) per language.

Presets name the datasets the papers use; every field can be overridden
from the config (`source.dataset`, `source.config`, `source.text_field`,
`source.data_files`), so a mirror or a local copy needs no code. Templates
take `{code}` (ISO 639-1), `{iso3}`, `{flores}` (deu_Latn) and `{xlsum}`
(english). Loading goes through `datasets.load_dataset`, so a local JSONL
file (`dataset: json`, `data_files: /data/{code}.jsonl`) takes the same
path as the hub. With the hub offline and the data not cached, `check`
fails before any pruning, naming the dataset and how to download it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Optional

from mlsweep.data.languages import LANGS, normalize
from mlsweep.data.sources import ENGLISH_NAMES, SOURCES, SourceSpec

ALL = tuple(LANGS)


@dataclass(frozen=True)
class HubSource:
    name: str
    dataset: str
    config: Optional[str] = None  # template, e.g. "{flores}"
    text_field: str = "text"
    data_files: Optional[str] = None  # template for file-based builders (json, text, csv, parquet)
    langs: tuple[str, ...] = ALL
    splits: dict = field(default_factory=dict)  # our split name -> the dataset's
    normalizes_codes = True  # de, deu and deu_Latn all select the German config

    def languages(self) -> list[str]:
        return list(self.langs)

    def language_name(self, code: str) -> str:
        return ENGLISH_NAMES.get(code, code)

    def load_args(self, lang: str, split: str) -> dict:
        """The `datasets.load_dataset` arguments for one language and split (templates filled in)."""
        code = normalize(lang, f"{self.name} language", extra=self.langs)
        info = LANGS.get(code)
        fmt = {
            "code": code,
            "iso3": info.iso3 if info else code,
            "flores": info.flores if info else code,
            "xlsum": info.xlsum if info else code,
        }
        args = {"path": self.dataset, "split": self.splits.get(split, split)}
        if self.config:
            args["name"] = self.config.format(**fmt)
        if self.data_files:
            args["data_files"] = {args["split"]: self.data_files.format(**fmt)}
        return args

    def records(self, lang: str, split: str) -> list[dict]:
        """The dataset's rows as dicts (project scorers read fields besides the text)."""
        return [dict(r) for r in load(**self.load_args(lang, split))]

    def documents(self, lang: str, split: str) -> list[str]:
        rows = load(**self.load_args(lang, split))
        return [t for t in rows[self.text_field] if t and t.strip()]

    def check(self, langs: list[str], split: str) -> None:
        for lang in langs:
            self.documents(lang, split)


def load(path: str, split: str, name: Optional[str] = None, data_files: Optional[dict] = None):
    key = (path, name, split, tuple(sorted((data_files or {}).items())))
    try:
        return _cached(key)
    except Exception as e:
        offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
        where = f"{path}" + (f" (config {name})" if name else "") + f", split {split}"
        how = (
            (
                f" The hub is offline: download it first, on a machine with network, with "
                f"`python -m mlsweep.data.download {path}"
                + (f" --config {name}" if name else "")
                + f" --split {split}` (it fills the Hugging Face cache that HF_DATASETS_OFFLINE runs read)."
            )
            if offline and not data_files
            else ""
        )
        raise ValueError(f"dataset {where} could not be loaded: {type(e).__name__}: {e}.{how}") from None


@lru_cache(maxsize=32)
def _cached(key):
    import datasets  # noqa: PLC0415 (heavy (pyarrow): only when a hub dataset is read)

    path, name, split, files = key
    kwargs = {"data_files": dict(files)} if files else {}
    return datasets.load_dataset(path, name, split=split, **kwargs)


PRESETS: dict[str, HubSource] = {
    "hf": HubSource("hf", dataset=""),
    # FLORES-200 (Kim et al.'s parallel data; dev 997 / devtest 1012 sentences per language).
    "flores": HubSource("flores", "openlanguagedata/flores_plus", "{flores}", "text"),
    # XL-Sum validation: MBS's perplexity corpus (20 languages).
    "xlsum": HubSource(
        "xlsum", "csebuetnlp/xlsum", "{xlsum}", "text", langs=tuple(c for c, lang in LANGS.items() if lang.xlsum)
    ),
    # mC4 configs of allenai/c4: the web corpus decided for Kurz et al.'s calibration (METHODS.md section 7).
    "mc4": HubSource("mc4", "allenai/c4", "{code}", "text"),
    "culturax": HubSource("culturax", "uonlp/CulturaX", "{code}", "text"),
    "wikipedia": HubSource("wikipedia", "wikimedia/wikipedia", "20231101.{code}", "text"),
    # WikiText-2 raw test: English only, the Wanda/SparseGPT perplexity table.
    "wikitext2": HubSource("wikitext2", "Salesforce/wikitext", "wikitext-2-raw-v1", "text", langs=("en",)),
}


def hub_source(spec: SourceSpec) -> HubSource:
    """The preset `spec.name` with the fields the spec sets (dataset, config, text_field, data_files)."""
    overrides = {
        k: getattr(spec, k) for k in ("dataset", "config", "text_field", "data_files") if getattr(spec, k) is not None
    }
    source = replace(PRESETS[spec.name], **overrides)
    if not source.dataset:
        raise ValueError("source.dataset: the 'hf' source needs a dataset name (or 'json' with source.data_files)")
    return source


for _name in PRESETS:
    SOURCES.register(_name, hub_source)
