"""Tokenisations kept for the process's next cell: the same texts are tokenised once per tokenizer.

Every cell of a sweep evaluates the same texts with the same tokenizer: the
perplexity corpora (joined per language) and lm-eval's requests (context and
continuation strings, some 12,000 encodings for the testbed's two tasks in
seven languages, about 7% of a testbed cell's evaluation). A packed job
(hydra.launcher.cells_per_job) or a local sweep keeps its tokenizer between
cells (mlsweep.cell.modelcache), so the encodings are kept beside it and
reused; a different tokenizer object starts empty, and when a tokenizer is
freed its encodings go with it (weak keys). A tokenizer's `encode` is a pure
function of its arguments, so the results, and the numbers, are those of
tokenising again (tests/test_tokcache.py).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Hashable
from typing import Any

MAX_ENTRIES = 200_000  # per tokenizer; past this the cache starts afresh (a suite far larger than any paper's)

_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached(tokenizer: Any, key: Hashable, compute: Callable[[], Any]) -> Any:
    """`compute()` the first time `key` is asked of this tokenizer, the kept value after."""
    try:
        table = _caches.setdefault(tokenizer, {})
    except TypeError:  # not weakly referenceable: nothing is kept
        return compute()
    if key not in table:
        if len(table) >= MAX_ENTRIES:
            table.clear()
        table[key] = compute()
    return table[key]


def clear() -> None:
    _caches.clear()


@functools.cache
def memo_lm_class(base: type) -> type:
    """lm-eval's HFLM with `tok_encode` answered from the tokenizer's cache (a fresh list each time)."""

    class MemoHFLM(base):
        def tok_encode(self, string, add_special_tokens=None, left_truncate_len=None, **kwargs):
            key = (
                "lm-eval",
                string,
                add_special_tokens,
                left_truncate_len,
                self.add_bos_token,
                self.prefix_token_id,
                tuple(sorted(kwargs.items())),
            )

            def encode():
                return tuple(super(MemoHFLM, self).tok_encode(string, add_special_tokens, left_truncate_len, **kwargs))

            return list(cached(self.tokenizer, key, encode))

    return MemoHFLM
