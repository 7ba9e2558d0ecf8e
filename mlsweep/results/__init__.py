"""Results: the row schema and provenance (`row`), a cell folder on disk (`cellfolder`), every row in one
DataFrame (`store`), the paper tables (`tables`) and `python -m mlsweep.report` (`report`)."""
