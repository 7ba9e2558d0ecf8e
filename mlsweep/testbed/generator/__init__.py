"""The testbed generator: the synthetic languages' corpus, tasks and the model's training.

Build-time only (`python -m mlsweep.testbed.build`, `make testbed`); the
runtime (cells, sources, tasks) reads what it wrote into mlsweep/testbed/data
and mlsweep/testbed/model and never imports this package.
"""
