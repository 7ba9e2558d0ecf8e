"""Paper tables: a table spec (`spec`), tables built from the results store (`build`),
written as text, Markdown, LaTeX and CSV (`render`) and as heatmaps (`heatmap`)."""

from mlsweep.results.tables.build import Table, build_tables
from mlsweep.results.tables.spec import DEFAULT, TableSpec, parse_spec, spec_for

__all__ = ["DEFAULT", "Table", "TableSpec", "build_tables", "parse_spec", "spec_for"]
