"""Offline testbed: a synthetic family of seven languages for pruning studies.

The family stands in for the multilingual corpora of the calibration-language
experiments (Kurz et al. 2024) when no hub data or large model is at hand: a
tiny Llama trained on it has genuinely different lexicons, word orders,
morphologies and Unicode scripts to keep apart, while every sentence exists in
parallel in all seven languages. The languages are named after real codes only
for the table layout; none of them is the real language of that code.

The corpus generator: `languages` (the seven definitions and their prompt
words), `concepts` (the language-independent inventory), `lexicon` (word
stems per language), `grammars` and `render` (meaning -> text), `meaning`,
`rules`, `relations` and `story` (the meaning generator), `tasks`
(XCOPA/XNLI/FLORES-like sets) and `corpus` (writes everything:
`python3 -m mlsweep.testbed.corpus --out DIR`).
"""
