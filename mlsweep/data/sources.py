"""Text-source registry: where per-language documents come from.

A source answers `languages()`, `documents(lang, split)` and `check(langs,
split)` (cheap; run before any pruning). `local` reads a folder laid out as
`<root>/<lang>/<split>.jsonl` (one {"text": ...} per line) or
`<root>/<lang>/<split>.txt` (one document per line); `testbed` is the same
reader on the corpus shipped with the package. `hf` and its presets (`flores`,
`xlsum`, `mc4`, `culturax`, `wikipedia`, `wikitext2`) load Hugging Face
datasets with `datasets.load_dataset` (mlsweep/data/hub.py).
"""
from __future__ import annotations

import difflib
import json
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional, Protocol

from mlsweep import PACKAGE_DIR

TESTBED_TEXT = PACKAGE_DIR / "testbed" / "data" / "text"


class TextSource(Protocol):
    name: str

    def languages(self) -> list[str]: ...

    def documents(self, lang: str, split: str) -> list[str]: ...


class FolderSource:
    """Documents from `<root>/<lang>/<split>.{jsonl,txt}`."""

    def __init__(self, root: Path, name: str = "local"):
        self.root = Path(root)
        self.name = name
        if not self.root.is_dir():
            raise ValueError(f"source.path={str(self.root)!r}: folder does not exist")

    def languages(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def documents(self, lang: str, split: str) -> list[str]:
        return list(_read_docs(self.root, lang, split))

    def check(self, langs: list[str], split: str) -> None:
        for lang in langs:
            _read_docs(self.root, lang, split)


@lru_cache(maxsize=64)
def _read_docs(root: Path, lang: str, split: str) -> tuple[str, ...]:
    folder = root / lang
    for suffix in (".jsonl", ".txt"):
        path = folder / f"{split}{suffix}"
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            if suffix == ".jsonl":
                return tuple(json.loads(line)["text"] for line in lines if line.strip())
            return tuple(line for line in lines if line.strip())
    have = sorted(p.stem for p in folder.glob("*")) if folder.is_dir() else []
    raise ValueError(f"split={split!r} not found for language {lang!r} under {folder}; available: {have}")


def _testbed(_path: Optional[str]) -> TextSource:
    return FolderSource(TESTBED_TEXT, name="testbed")


class ParallelFolder(FolderSource):
    """FLORES-style parallel text: `<root>/<split>/<lang>.txt`, line i parallel in every language."""

    def languages(self) -> list[str]:
        return sorted({p.stem for p in self.root.glob("*/*.txt")})

    def documents(self, lang: str, split: str) -> list[str]:
        path = self.root / split / f"{lang}.txt"
        if not path.exists():
            raise ValueError(f"split={split!r} not found for language {lang!r} under {self.root}")
        return path.read_text(encoding="utf-8").splitlines()

    def check(self, langs: list[str], split: str) -> None:
        for lang in langs:
            self.documents(lang, split)


class PythonCode:
    """Python files as one-document-each 'code' text (Kim et al. used github-python).

    Offline default: the mlsweep package's own sources; `path` points elsewhere.
    Every split returns the same files: code is a calibration contrast, never evaluated.
    """

    name = "python_code"

    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"source.path={str(root)!r}: folder does not exist")

    def languages(self) -> list[str]:
        return ["code"]

    def documents(self, lang: str, split: str) -> list[str]:
        return [p.read_text(encoding="utf-8") for p in sorted(self.root.rglob("*.py"))]

    def check(self, langs: list[str], split: str) -> None:
        if not self.documents("code", split):
            raise ValueError(f"source.path={str(self.root)!r}: no .py files")


def _python_code(path: Optional[str]) -> TextSource:
    return PythonCode(Path(path) if path else PACKAGE_DIR)


def _testbed_parallel(_path: Optional[str]) -> TextSource:
    return ParallelFolder(TESTBED_TEXT.parent / "parallel", name="testbed_parallel")


def _local(path: Optional[str]) -> TextSource:
    if not path:
        raise ValueError("source.path: the 'local' source needs a folder path")
    return FolderSource(Path(path).expanduser(), name="local")


def _hub(name: str) -> Callable[..., TextSource]:
    def make(path: Optional[str], **overrides) -> TextSource:
        from mlsweep.data.hub import hub_source

        return hub_source(name, path, **overrides)
    return make


SOURCES: dict[str, Callable[..., TextSource]] = {"testbed": _testbed, "local": _local,
                                                 "testbed_parallel": _testbed_parallel, "python_code": _python_code}
SOURCES.update({name: _hub(name) for name in ("hf", "flores", "xlsum", "mc4", "culturax", "wikipedia", "wikitext2")})


def get_source(name: str, path: Optional[str] = None, **overrides) -> TextSource:
    """A source by registry name; `overrides` (dataset, config, text_field, data_files) tune hub presets."""
    if name not in SOURCES:
        close = difflib.get_close_matches(name, list(SOURCES), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"source.name={name!r} is unknown.{hint} Available: {', '.join(sorted(SOURCES))}")
    if name in ("testbed", "local", "testbed_parallel", "python_code"):
        return SOURCES[name](path)
    return SOURCES[name](path, **{k: v for k, v in overrides.items() if v is not None})


def source_from(cfg) -> TextSource:
    """The source described by a SourceConfig node."""
    return get_source(cfg.name, cfg.path, dataset=cfg.get("dataset"), config=cfg.get("config"),
                      text_field=cfg.get("text_field"), data_files=cfg.get("data_files"))


def check_languages(field: str, langs: list[str], source: TextSource) -> None:
    """Fail naming the field and the closest known codes for any unknown language."""
    from mlsweep.data.languages import normalize

    known = source.languages()
    if not langs:
        raise ValueError(f"{field}: empty; choose from {known}")
    for lang in langs:
        if lang not in known and source.name not in ("testbed", "local", "testbed_parallel"):
            lang = normalize(lang, field, extra=tuple(known))
        if lang not in known:
            close = difflib.get_close_matches(lang, known, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(f"{field}: language {lang!r} is unknown to source {source.name!r}.{hint} "
                             f"Known: {', '.join(known)}")
