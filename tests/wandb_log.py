"""A reader for W&B's offline transaction log (`run-<id>.wandb`), for tests.

wandb 0.31 writes no wandb-summary.json offline: the `.wandb` file is the
only record of an offline run (`wandb sync` replays it). Its layout, from
wandb's Go core (the Python `datastore.py` that documented it is gone):

- a 7-byte file header: b":W&B", magic 0xBEE1 (uint16 little-endian), version 0;
- then LevelDB-log framing: 32 KiB blocks (the file header counts in block 0),
  each record chunk behind a 7-byte header: checksum (uint32 LE), data length
  (uint16 LE), type (1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST); a block tail shorter
  than 7 bytes is zero padding. The checksum is the plain IEEE CRC-32 (zlib's)
  of the type byte and the data, unmasked: not LevelDB's masked CRC-32C
  (checked against files written by wandb 0.31.0);
- each reassembled record is a `wandb_internal_pb2.Record` protobuf.

Only wandb's protobuf classes are imported; the framing is read here, so a
change of format in a future wandb fails these tests loudly instead of being
hidden by wandb's own reader.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
CHUNK_HEADER = 7  # crc32 (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[bytes]:
    """The raw records of a transaction log, CRC-checked and reassembled."""
    data = Path(path).read_bytes()
    if data[: len(HEADER)] != HEADER:
        raise ValueError(f"{path}: not a W&B transaction log (header {data[:7]!r})")
    pos, pending = len(HEADER), None
    while pos + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < CHUNK_HEADER:  # zero padding at the end of a block
            pos += left_in_block
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        if crc == 0 and length == 0 and kind == 0:  # zeroed tail (preallocated or padded)
            pos += left_in_block
            continue
        body = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        if len(body) < length:
            raise ValueError(f"{path}: truncated record at byte {pos}")
        if zlib.crc32(bytes([kind]) + body) != crc:
            raise ValueError(f"{path}: CRC mismatch at byte {pos}")
        pos += CHUNK_HEADER + length
        if kind == FULL:
            yield body
        elif kind == FIRST:
            pending = body
        elif kind in (MIDDLE, LAST):
            if pending is None:
                raise ValueError(f"{path}: chunk of type {kind} without a FIRST at byte {pos}")
            pending += body
            if kind == LAST:
                yield pending
                pending = None
        else:
            raise ValueError(f"{path}: unknown chunk type {kind} at byte {pos}")


@dataclass
class OfflineRun:
    """What an offline run recorded: its config, history rows, summary and exit code."""

    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    project: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    kinds: list[str] = field(default_factory=list)  # record types in order


def _nested(key: str, nested_key, value_json: str) -> tuple[str, Any]:
    name = key or "/".join(nested_key)
    return name, json.loads(value_json)


def read_run(path: Path, wait: float = 30.0) -> OfflineRun:
    """Decode a finished run's `.wandb` file, waiting up to `wait` seconds for its exit record.

    `run.finish()` returns before wandb's core has written the log out (right
    after it, the file can hold just its header), so a reader polls.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            run = _decode(path)
        except ValueError:  # caught mid-write
            run = None
        if run is not None and run.exit_code is not None:
            return run
        if time.monotonic() > deadline:
            return run if run is not None else _decode(path)
        time.sleep(0.1)


def _decode(path: Path) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2 as pb

    out = OfflineRun()
    for raw in records(path):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        out.kinds.append(kind)
        if kind == "run":
            r = rec.run
            out.run_id, out.name, out.group, out.job_type, out.project = (
                r.run_id,
                r.display_name,
                r.run_group,
                r.job_type,
                r.project,
            )
            out.tags = list(r.tags)
            for item in r.config.update:
                k, v = _nested(item.key, item.nested_key, item.value_json)
                out.config[k] = v
        elif kind == "config":
            for item in rec.config.update:
                k, v = _nested(item.key, item.nested_key, item.value_json)
                out.config[k] = v
        elif kind == "history":
            out.history.append(dict(_nested(i.key, i.nested_key, i.value_json) for i in rec.history.item))
        elif kind == "summary":
            for item in rec.summary.update:
                k, v = _nested(item.key, item.nested_key, item.value_json)
                out.summary[k] = v
            for item in rec.summary.remove:
                out.summary.pop(item.key or "/".join(item.nested_key), None)
        elif kind == "exit":
            out.exit_code = rec.exit.exit_code
    return out


def find_runs(root: Path) -> list[Path]:
    """Every run's transaction log under `root` (its offline-run-* folders)."""
    return sorted(Path(root).rglob("run-*.wandb"))
