"""The table spec of a study: the `report:` block of conf/experiment/<name>.yaml.

    report:
      rows: calib                     # axis, or list of axes, whose values are the rows
      columns: eval_language          # <metric>/<x> columns: languages (ppl, acc_lang) or tasks (acc);
                                      #   or an explicit list of x, which also fixes their order
      metric: [ppl, acc_lang]         # one table per metric; a metric the rows lack is skipped
      tables_by: [model, pruner, sparsity_target]   # one table per combination
      baselines: [dense]              # reference rows on top: pruner names, or {axis: value} filters
      average: all                    # extra columns: all | non_en | {label: ..., exclude: [...]}, or a list
      delta: [dense, calib=en]        # percent-change tables: vs a baseline row, vs the row with axis=value
      order: {calib: [en, zh]}        # row order per axis (default: languages in column order, then sorted)
      labels: {pruner: {wanda: Wanda}}   # display names of axis values
      attach: [reading]               # row axes shown in parentheses after the label ("M-Wanda (reading: ...)")
      better: {acc_lang: higher}      # which end is best, per metric (default: acc* higher, else lower)

Which spec a report uses: the experiment file in this checkout (tables are
rebuilt from old rows without rerunning), else the `report` block the cells
recorded, else DEFAULT (the Kurz et al. matrix).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from mlsweep import CONF_DIR
from mlsweep.registry import suggest

DEFAULT: dict[str, Any] = {
    "rows": "calib",
    "columns": "eval_language",
    "metric": ["ppl", "acc_lang"],
    "tables_by": ["model", "pruner", "sparsity_target"],
    "baselines": ["dense"],
    "delta": ["dense"],
}


@dataclass(frozen=True)
class Average:
    label: str
    exclude: tuple[str, ...] = ()


@dataclass
class TableSpec:
    rows: list[str]
    columns: str | list[str] = "eval_language"
    metrics: list[str] = field(default_factory=lambda: ["ppl"])
    tables_by: list[str] = field(default_factory=list)
    baselines: list[dict[str, str]] = field(default_factory=list)
    average: list[Average] = field(default_factory=list)
    delta: list[str] = field(default_factory=list)
    order: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    better: dict[str, str] = field(default_factory=dict)
    attach: list[str] = field(default_factory=list)

    def higher_is_better(self, metric: str) -> bool:
        return self.better.get(metric, "higher" if metric.startswith("acc") else "lower") == "higher"

    def label(self, axis: str, value: str) -> str:
        """The display name of an axis value; '-' (the axis does not apply, e.g. no calibration) reads (none)."""
        return str(self.labels.get(axis, {}).get(value, "(none)" if value == "-" else value))

    def baseline_label(self, flt: dict[str, str]) -> str:
        return self.row_label(list(flt), list(flt.values()))

    def row_label(self, axes: list[str], values: list[str]) -> str:
        """Labels joined by ', '; `attach` axes in parentheses after them, left out where '-' (not applicable)."""
        main = [self.label(a, v) for a, v in zip(axes, values) if a not in self.attach]
        extra = [f"{a}: {self.label(a, v)}" for a, v in zip(axes, values) if a in self.attach and v != "-"]
        return ", ".join(main) + (f" ({'; '.join(extra)})" if extra else "")


KEYS = (
    "rows",
    "columns",
    "metric",
    "metrics",
    "tables_by",
    "baselines",
    "average",
    "delta",
    "order",
    "labels",
    "better",
    "attach",
)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _average(item: Any) -> Average:
    if item in ("all", True):
        return Average("avg")
    if item == "non_en":
        return Average("avg non-en", ("en",))
    if isinstance(item, dict) and set(item) <= {"label", "exclude"}:
        exclude = tuple(str(x) for x in _as_list(item.get("exclude")))
        return Average(str(item.get("label") or "avg" + "".join(f" -{x}" for x in exclude)), exclude)
    raise ValueError(f"report.average: {item!r} is not one of all, non_en, {{label: ..., exclude: [...]}}")


def parse_spec(block: dict[str, Any] | None) -> TableSpec:
    """A TableSpec from a `report:` block; unknown keys and bad values fail naming the field."""
    block = dict(DEFAULT if not block else block)
    for key in block:
        if key not in KEYS:
            raise ValueError(f"report.{key} is not a table-spec key.{suggest(key, KEYS, n=1)} Keys: {', '.join(KEYS)}")
    if "rows" not in block:
        raise ValueError("report.rows is required (the axis, or axes, whose values are the rows)")
    columns = block.get("columns", "eval_language")
    if not isinstance(columns, (list, tuple)) and columns != "eval_language":
        raise ValueError(f"report.columns: {columns!r}; use eval_language or a list of <metric>/<x> suffixes")
    baselines = []
    for b in _as_list(block.get("baselines")):
        baselines.append({"pruner": str(b)} if not isinstance(b, dict) else {str(k): str(v) for k, v in b.items()})
    for d in _as_list(block.get("delta")):
        if "=" not in str(d) and not any(str(d) == spec_label(b) for b in baselines):
            raise ValueError(
                f"report.delta: {d!r} is neither a baseline ({[spec_label(b) for b in baselines]}) nor axis=value"
            )
    better = {str(k): str(v) for k, v in (block.get("better") or {}).items()}
    for metric, way in better.items():
        if way not in ("lower", "higher"):
            raise ValueError(f"report.better.{metric}: {way!r}; use lower or higher")
    return TableSpec(
        rows=[str(r) for r in _as_list(block["rows"])],
        columns=[str(c) for c in columns] if isinstance(columns, (list, tuple)) else columns,
        metrics=[str(m) for m in _as_list(block.get("metrics", block.get("metric", "ppl")))],
        tables_by=[str(t) for t in _as_list(block.get("tables_by"))],
        baselines=baselines,
        average=[_average(a) for a in _as_list(block.get("average"))],
        delta=[str(d) for d in _as_list(block.get("delta"))],
        order={str(k): [str(v) for v in _as_list(vs)] for k, vs in (block.get("order") or {}).items()},
        labels={
            str(k): {str(a): str(b) for a, b in (vs or {}).items()} for k, vs in (block.get("labels") or {}).items()
        },
        better=better,
        attach=[str(a) for a in _as_list(block.get("attach"))],
    )


def spec_label(flt: dict[str, str]) -> str:
    """The raw (unlabelled) name of a baseline: its filter values, e.g. 'dense'."""
    return ", ".join(flt.values())


def experiment_block(name: str) -> dict[str, Any] | None:
    """The `report:` block of conf/experiment/<name>.yaml in this checkout, if that file exists."""
    path = CONF_DIR / "experiment" / f"{name}.yaml"
    if not path.is_file():
        return None
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("report")


def spec_for(experiment: str, recorded: dict[str, Any] | None = None) -> TableSpec:
    """The spec of an experiment: its file here, else what its cells recorded, else DEFAULT."""
    return parse_spec(experiment_block(experiment) or recorded or None)
