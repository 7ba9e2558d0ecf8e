"""Per-item results of a cell: what lets a table recompute a cell's number on resampled items.

`<cell>/items.npz` (numpy, compressed; 8.7 KB for the testbed's seven languages) is written with
the row, one array per (row key, field), named `<row key>|<field>`:
- `ppl/<lang>|nll`, `ppl/<lang>|tokens` (and `ppl_<corpus>/<lang>|...`): each
  perplexity window's summed NLL in nats (float64) and its scored tokens,
  in window order; ppl = exp(sum nll / sum tokens), as in the row;
- `acc/<task>|doc_id`, `acc/<task>|correct` (and `acc_norm/<task>|...` where
  lm-eval reports it): each item's doc_id (lm-eval's index into the task's
  documents, or a project scorer's item index) and 0/1 correctness, sorted by
  doc_id; acc = mean correct, as in the row.
Items of the same task line up across cells by doc_id, windows by position.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import numpy as np

from mlsweep.results.cellfolder import umask_mode

ITEMS_FILE = "items.npz"
SEP = "|"  # between the row key and the field in an array's name

# row key -> {field: 1-D array}
Items = dict[str, dict[str, np.ndarray]]


def window_items(nll: list[float], tokens: list[int]) -> dict[str, np.ndarray]:
    return {"nll": np.asarray(nll, dtype=np.float64), "tokens": np.asarray(tokens, dtype=np.int64)}


def choice_items(doc_ids: list[int], correct: list[float]) -> dict[str, np.ndarray]:
    order = np.argsort(np.asarray(doc_ids, dtype=np.int64), kind="stable")
    return {
        "doc_id": np.asarray(doc_ids, dtype=np.int64)[order],
        "correct": np.asarray(correct, dtype=np.uint8)[order],
    }


def save_items(path: Path, items: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Write items.npz atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{key}{SEP}{field}": np.asarray(a) for key, fields in items.items() for field, a in fields.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, umask_mode())  # readable by whoever the umask lets read the row beside it
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_items(folder: Optional[str | Path]) -> Optional[Items]:
    """The items of the cell in `folder`, or None where it kept none (older rows, rows from W&B)."""
    if not folder:
        return None
    path = Path(folder) / ITEMS_FILE
    if not path.is_file():
        return None
    out: Items = {}
    with np.load(path, allow_pickle=False) as z:
        for name in z.files:
            key, field = name.rsplit(SEP, 1)
            out.setdefault(key, {})[field] = z[name]
    return out
