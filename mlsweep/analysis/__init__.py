"""Analyses of finished sweeps and of calibration data, as pandas tables (and CSV).

    python -m mlsweep.analysis masks <sweep folder>            # Kurz et al.'s mask comparison
    python -m mlsweep.analysis similarity [--model PATH] [...]  # MBS's language similarity
    python -m mlsweep.analysis outliers [--model PATH] [...]    # outlier features per block

`masks` (mlsweep.analysis.masks) reads cells run with `runtime.save_masks=true`
and compares every pair that differs only in the calibration language;
`similarity` (mlsweep.analysis.similarity) computes MBS's cosine between
languages' Wanda statistics of the block-0 input; `outliers`
(mlsweep.analysis.outliers) measures a model's outlier features per block;
`diagonal` summarises a perplexity matrix (own-language calibration vs the others).
"""

from mlsweep.analysis.masks import diagonal, jaccard, mask_overlap

__all__ = ["diagonal", "jaccard", "mask_overlap"]
