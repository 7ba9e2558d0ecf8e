"""One registry type for every extension axis: short name -> entry, with did-you-mean errors.

Pruners, allocations, calibration mixes and formats, text sources, project
scorers and trackers each keep a `Registry`. An entry joins by one
`REGISTRY.register(name, entry)` call in its own module; a registry built
with `package=` imports every module of that package the first time it is
asked, so adding an entry is one module (plus one YAML where the axis has a
config group), never an edit of a central list.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from typing import Generic, Optional, TypeVar

T = TypeVar("T")


def suggest(value: str, known: Iterable[str], n: int = 3, cutoff: float = 0.6) -> str:
    """' Did you mean 'a', 'b'?' for the names closest to `value`, or '' when none is close."""
    close = difflib.get_close_matches(str(value), list(known), n=n, cutoff=cutoff)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


def unknown(field: str, value: str, known: Iterable[str], what: str = "is unknown") -> str:
    """The error message for a value outside `known`: the field, a did-you-mean and what exists."""
    known = sorted(known)
    return f"{field}={value!r} {what}.{suggest(value, known)} Available: {', '.join(known)}"


class UnknownName(ValueError):
    """A name that no entry of a registry has."""


class Registry(Generic[T]):
    """Named entries of one extension axis.

    `field` is the config field that selects an entry (it names the error);
    `package`, if given, is imported module by module on first use so that
    entries register themselves.
    """

    def __init__(self, field: str, package: Optional[str] = None):
        self.field = field
        self.package = package
        self._items: dict[str, T] = {}
        self._loaded = package is None

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.field}: {name!r} registered twice")
        self._items[name] = item
        return item

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{self.package}.{mod.name}")

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            raise UnknownName(unknown(self.field, name, self._items))
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def values(self) -> list[T]:
        self._load()
        return [self._items[n] for n in sorted(self._items)]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
