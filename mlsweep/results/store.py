"""The results store: every cell's row in one tidy DataFrame, from disk or from W&B.

One row per cell: the axes (model, pruner, calib, sparsity, ...), the flat
metrics (`ppl/<lang>`, `acc_lang/<lang>`, ...) and the provenance (cell_id,
git sha, versions, where the row came from: `path`). The nested `config` is
dropped; list values (per-block sparsities) are kept as JSON text so that the
frame writes to Parquet and CSV unchanged. The experiments' table specs (the
`report` block of each cell's config) travel in `df.attrs["report_specs"]`.

Two sources give the same frame:
- `load_rows(folders)`: every result.json under one or more sweep folders;
- `from_wandb("entity/project", group)`: the summaries of a W&B group's runs
  (the W&B logger puts the full result row in the run summary and the cell's
  axes in the run config).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from mlsweep.results.cellfolder import RESULT_FILE, read_row

# W&B's run states -> the row's status, for runs whose summary has none (crashed before the row was logged).
_WANDB_STATES = {"finished": "done", "failed": "failed", "crashed": "failed", "killed": "failed"}


# Config parts that say where, how fast or under which seed a cell computes, not what (the cell id's
# exclusions in mlsweep.config.identity, plus the seeds; a W&B run config also holds the axes, calib_seed
# among them): two cells equal in everything else are seeds of one table cell.
NOT_DEFINING = ("seed", "calib_seed", "logger", "runtime", "report", "hydra")
NOT_DEFINING_IN = {
    "calib": ("seed",),
    "model": ("device_map", "max_memory"),
    "engine": ("offload_blocks", "stream_from_disk", "activations_on_cpu"),
    "sparsity": ("tolerance",),
}


def definition_columns(config: dict[str, Any]) -> dict[str, Any]:
    """`model_path` and `definition` (a hash of the config without seeds and where-not-what settings).

    Tables average over seeds only the cells whose definitions are equal, so two
    cells that differ in model.path (or any setting no axis shows) under one
    model name are never pooled as if they were seeds. None without a config.
    """
    if not config:
        return {"model_path": None, "definition": None}
    kept = {
        k: {kk: vv for kk, vv in v.items() if kk not in NOT_DEFINING_IN.get(k, ())} if isinstance(v, dict) else v
        for k, v in config.items()
        if k not in NOT_DEFINING
    }
    digest = hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]
    model = config.get("model")
    return {"model_path": model.get("path") if isinstance(model, dict) else None, "definition": digest}


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """Drop the nested config; lists and dicts become JSON text (one scalar per column).

    `nonfinite` lists the keys whose value is NaN or infinite: in the frame a
    NaN the cell computed looks like a key it never had, and the tables must
    show the first as failed, not leave its metric out.
    """
    out = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items() if k != "config"}
    bad = sorted(k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v))
    if bad:
        out["nonfinite"] = json.dumps(bad)
    return out


def _frame(rows: list[dict[str, Any]], specs: dict[str, dict], where: str) -> pd.DataFrame:
    if not rows:
        raise SystemExit(f"no result rows found in {where}")
    df = pd.DataFrame(rows)
    if "cell_id" in df.columns and df["cell_id"].duplicated().any():
        # The same cell found twice (two sweeps of one experiment, or a rerun after a failure):
        # its numbers would count twice in a mean, so only the newest row is kept.
        before = len(df)
        order = df["finished_at"].fillna("") if "finished_at" in df.columns else pd.Series("", index=df.index)
        df = df.loc[order.sort_values(kind="stable").index].drop_duplicates("cell_id", keep="last")
        df = df.sort_index().reset_index(drop=True)
        print(f"[store] {before - len(df)} duplicate rows of the same cell_id dropped (newest kept)")
    df.attrs["report_specs"] = specs
    return df


def _readable_row(path: Path) -> Optional[dict[str, Any]]:
    """The row in `path`, or None (said on stderr, by path) for a file that is not a JSON object.

    A truncated write, a hand edit or a file of another tool must not stop a
    report of hundreds of cells; the cell then counts as not done (`missing`).
    """
    try:
        row = read_row(path)
    except (ValueError, OSError) as e:
        reason = str(e).replace(f"{path}: ", "")
    else:
        if isinstance(row, dict):
            return row
        reason = f"not a JSON object (found {type(row).__name__})"
    print(f"[store] unreadable row {path}: {reason}; treated as not done", file=sys.stderr)
    return None


def load_rows(folders: Iterable[Path]) -> pd.DataFrame:
    """Every result.json under `folders` (searched recursively), one row per cell; unreadable ones skipped."""
    folders = [Path(f) for f in folders]
    rows, specs = [], {}
    for folder in folders:
        for path in sorted(folder.rglob(RESULT_FILE)):
            row = _readable_row(path)
            if row is None:
                continue
            config = row.get("config") if isinstance(row.get("config"), dict) else {}
            spec = config.get("report")
            if spec and row.get("experiment"):
                specs.setdefault(row["experiment"], spec)
            rows.append({**_flat(row), **definition_columns(config), "path": str(path.parent)})
    return _frame(rows, specs, ", ".join(map(str, folders)))


def _unwrap(value: Any) -> Any:
    """W&B's stored config values may come as {"value": v, "desc": ...}."""
    return value["value"] if isinstance(value, dict) and set(value) <= {"value", "desc"} and "value" in value else value


def from_wandb(project_path: str, group: str, api: Any = None) -> pd.DataFrame:
    """The same frame from the runs of one W&B group: `project_path` is "entity/project".

    Each run's summary is its result row; axes the summary lacks are taken
    from the run config's top-level scalars; W&B's own keys (`_step`,
    `_runtime`, ...) and media values (tables) are dropped.
    A run whose summary has no status gets one from its state (finished ->
    done, failed/crashed/killed -> failed, anything else -> its state, which
    the tables show as missing). `api` is a `wandb.Api()` or any object with
    the same `runs(path, filters=...)` method (the tests pass a fake one).
    """
    if api is None:
        import wandb  # noqa: PLC0415 (heavy: only when logging to W&B)

        api = wandb.Api()
    rows, specs = [], {}
    for run in api.runs(project_path, filters={"group": group}):
        summary = getattr(run, "summary_metrics", None)
        if summary is None:
            summary = dict(run.summary.items())
        config = {k: _unwrap(v) for k, v in dict(run.config or {}).items() if not k.startswith("_")}
        # W&B's own keys (_step, _runtime, ...) and media such as the results_by_language table are not the row.
        row = {k: v for k, v in summary.items() if not k.startswith("_") and not (isinstance(v, dict) and "_type" in v)}
        for key, value in config.items():  # the axes, where the summary lacks them
            if key not in row and not isinstance(value, (dict, list)):
                row[key] = value
        state = str(getattr(run, "state", "") or "").lower()
        if "status" not in row:
            row["status"] = _WANDB_STATES.get(state, state or "missing")
            if row["status"] == "failed":
                row.setdefault("error", f"W&B run {state} before logging its result row")
        row.setdefault("experiment", group)
        spec = config.get("report")
        if isinstance(spec, dict) and spec:
            specs.setdefault(row["experiment"], spec)
        rows.append(
            {
                **_flat(row),
                **definition_columns(config),
                "wandb_run": getattr(run, "id", None),
                "path": getattr(run, "url", None) or f"{project_path}/{getattr(run, 'id', '?')}",
            }
        )
    return _frame(rows, specs, f"W&B {project_path} group {group}")


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding several Python types (e.g. a number in some rows, text in others) as text."""
    out = df.copy()
    for col in out.select_dtypes(include="object").columns:
        kinds = {type(v) for v in out[col] if v is not None and not (isinstance(v, float) and math.isnan(v))}
        if len(kinds) > 1:
            out[col] = out[col].map(lambda v: v if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return out


def write_store(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """results.parquet and results.csv in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    safe = _parquet_safe(df)
    safe.attrs = {}  # the specs are not data; Parquet metadata would keep them as opaque JSON
    paths = [out_dir / "results.parquet", out_dir / "results.csv"]
    safe.to_parquet(paths[0], index=False)
    safe.to_csv(paths[1], index=False)
    return paths
