"""Offline testbed: a synthetic family of seven languages for pruning studies.

The family stands in for the multilingual corpora of the calibration-language
experiments (Kurz et al. 2024) when no hub data or large model is at hand: a
tiny Llama trained on it has genuinely different lexicons, word orders,
morphologies and Unicode scripts to keep apart, while every sentence exists in
parallel in all seven languages. The languages are named after real codes only
for the table layout; none of them is the real language of that code.

What the runtime reads: `languages` (the seven definitions and their prompt
words), `data/` (held-out text, parallel sentences, tasks) and `model/`
(the trained weights and their card). Everything else is build-time, in
`generator/`: `concepts` (the language-independent inventory), `lexicon`
(word stems per language), `grammars` and `render` (meaning -> text),
`meaning`, `rules`, `relations` and `story` (the meaning generator), `tasks`
(XCOPA/XNLI/FLORES-like sets), `corpus` (writes everything:
`python3 -m mlsweep.testbed.generator.corpus --out DIR`) and `train`; `build`
runs them all (`make testbed`).
"""
