"""`python -m mlsweep.report` (also `mlsweep-report`): the results store and the paper tables.

The implementation is mlsweep.results.report; this module keeps the command and the
import path the README, the Makefile and the experiment files name.
"""

from mlsweep.results.report import build_report, delta_vs_dense, load_rows, main, matrix

__all__ = ["build_report", "delta_vs_dense", "load_rows", "main", "matrix"]

if __name__ == "__main__":
    main()
