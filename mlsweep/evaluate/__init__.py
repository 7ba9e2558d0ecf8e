"""Evaluation of a (pruned) model: per-language perplexity here; downstream tasks join."""
