"""Sources read from folders: `local`, the shipped `testbed` corpora, and Python code.

`local` reads `<root>/<lang>/<split>.jsonl` (one {"text": ...} per line) or
`<root>/<lang>/<split>.txt` (one document per line), where a folder named
in any spelling of mlsweep.data.languages serves the others (`de/` serves
`deu` and `deu_Latn`; `deu_Latn/` serves `de`); `testbed` is the same
reader on the corpus shipped with the package, whose languages name
themselves in prompts; `testbed_parallel` reads FLORES-style parallel text
`<root>/<split>/<lang>.txt`; `python_code` serves .py files as `code`
documents (Kim et al.'s github-python contrast; offline default: this
package's own sources).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Optional

from mlsweep import PACKAGE_DIR
from mlsweep.data.languages import canonical
from mlsweep.data.sources import ENGLISH_NAMES, SOURCES, SourceSpec, TextSource, source_code
from mlsweep.testbed.languages import LANGUAGES

TESTBED_TEXT = PACKAGE_DIR / "testbed" / "data" / "text"


class FolderSource:
    """Documents from `<root>/<lang>/<split>.{jsonl,txt}`."""

    normalizes_codes = True  # a folder `de` serves deu and deu_Latn (mlsweep.data.languages)

    def __init__(self, root: Path, name: str = "local", names: Optional[Mapping[str, str]] = None):
        self.root = Path(root)
        self.name = name
        self.names = dict(names or ENGLISH_NAMES)
        if not self.root.is_dir():
            raise ValueError(f"source.path={str(self.root)!r}: folder does not exist")

    def languages(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def documents(self, lang: str, split: str) -> list[str]:
        return list(_read_docs(self.root, source_code(lang, self), split))

    def check(self, langs: list[str], split: str) -> None:
        for lang in langs:
            _read_docs(self.root, source_code(lang, self), split)

    def language_name(self, code: str) -> str:
        return self.names.get(code) or self.names.get(canonical(code), code)


@lru_cache(maxsize=64)
def _read_docs(root: Path, lang: str, split: str) -> tuple[str, ...]:
    """The documents of one split file; a file with no text in it is an error naming the file."""
    folder = root / lang
    for suffix in (".jsonl", ".txt"):
        path = folder / f"{split}{suffix}"
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            docs = _jsonl_texts(path, lines) if suffix == ".jsonl" else tuple(line for line in lines if line.strip())
            if not any(d.strip() for d in docs):
                raise ValueError(
                    f"split={split!r} of language {lang!r}: {path} holds no text (empty, or blank lines only)"
                )
            return docs
    have = sorted(p.stem for p in folder.glob("*")) if folder.is_dir() else []
    raise ValueError(f"split={split!r} not found for language {lang!r} under {folder}; available: {have}")


def _jsonl_texts(path: Path, lines: list[str]) -> tuple[str, ...]:
    """The `text` of every record; a line that is not a record with a `text` string is named by its number."""
    texts = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path} line {number}: not JSON ({e.msg}); each line is {{"text": ...}}') from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            have = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise ValueError(f'{path} line {number}: no "text" string (found {have}); each line is {{"text": ...}}')
        texts.append(record["text"])
    return tuple(texts)


class ParallelFolder(FolderSource):
    """FLORES-style parallel text: `<root>/<split>/<lang>.txt`, line i parallel in every language."""

    def languages(self) -> list[str]:
        return sorted({p.stem for p in self.root.glob("*/*.txt")})

    def documents(self, lang: str, split: str) -> list[str]:
        path = self.root / split / f"{source_code(lang, self)}.txt"
        if not path.exists():
            raise ValueError(f"split={split!r} not found for language {lang!r} under {self.root}")
        return path.read_text(encoding="utf-8").splitlines()

    def check(self, langs: list[str], split: str) -> None:
        for lang in langs:
            self.documents(lang, split)


class PythonCode:
    """Python files as one-document-each 'code' text (Kim et al. used github-python).

    Every split returns the same files: code is a calibration contrast, never evaluated.
    """

    name = "python_code"
    normalizes_codes = False

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

    def language_name(self, code: str) -> str:
        return code


def _testbed_names() -> dict[str, str]:
    """The testbed languages' names for themselves (what their prompts write)."""

    return {code: lang.name for code, lang in LANGUAGES.items()}


def _local(spec: SourceSpec) -> TextSource:
    if not spec.path:
        raise ValueError("source.path: the 'local' source needs a folder path")
    return FolderSource(Path(spec.path).expanduser(), name="local")


SOURCES.register("local", _local)
SOURCES.register("testbed", lambda spec: FolderSource(TESTBED_TEXT, "testbed", _testbed_names()))
SOURCES.register(
    "testbed_parallel",
    lambda spec: ParallelFolder(TESTBED_TEXT.parent / "parallel", "testbed_parallel", _testbed_names()),
)
SOURCES.register("python_code", lambda spec: PythonCode(Path(spec.path) if spec.path else PACKAGE_DIR))
