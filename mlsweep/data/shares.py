"""Training-language shares per model family, for proportional (MBS) calibration mixes.

Fractions need not sum to one: a mix renormalises over its own languages.
Only published numbers are recorded, each with its source. Families whose
per-language breakdown is not published are listed in UNPUBLISHED, so that
`calib.mix=proportional` fails at validation with the reason instead of
falling back on guessed shares.
"""

from __future__ import annotations

from mlsweep.testbed.languages import SHARES as TESTBED_SHARES

# BLOOM (ROOTS corpus), the 20 languages of MBS, as the shares implied by MBS's own calibration
# counts for 256 segments (Zeng et al. 2024, bloom-7b1_MBS.sh; METHODS.md section 9): the exact
# ROOTS percentages they used are not verified. Languages at 1/256 are those MBS raised to its minimum.
_MBS_COUNTS = {
    "en": 87,
    "zh": 47,
    "fr": 37,
    "es": 31,
    "pt": 14,
    "ar": 13,
    "vi": 7,
    "hi": 4,
    "id": 3,
    "bn": 3,
    "ta": 1,
    "te": 1,
    "ur": 1,
    "ne": 1,
    "mr": 1,
    "gu": 1,
    "zh-Hant": 1,
    "sw": 1,
    "yo": 1,
    "ig": 1,
}

# XGLM (Lin et al. 2022, "Few-shot Learning with Multilingual Language Models", arXiv:2112.10668):
# all 30 languages of its CC100-XL training data, copied from the "Training Data Statistics" table
# of the Hugging Face model cards of facebook/xglm-564M, -1.7B, -2.9B and -7.5B (the same table in
# each; https://huggingface.co/facebook/xglm-2.9B, README.md). Per language: (ratio, ratio w/ lowRes
# upsampling), i.e. the share of the corpus's tokens (sums to 1) and the share after the upsampling of
# low-resource languages the models were trained with (4 decimals, sums to 0.9999). XGLM-4.5B was
# trained on 134 languages and is not covered by this table. Values as printed, though the upsampled
# column puts ko (0.0811) and fi (0.0681) above ru (0.0602); the paper's own figure was not checked.
_XGLM_RATIOS = {
    "en": (0.489906, 0.3259),
    "ru": (0.0901079, 0.0602),
    "zh": (0.0809494, 0.0483),
    "de": (0.0543992, 0.0363),
    "es": (0.0532282, 0.0353),
    "fr": (0.0472023, 0.0313),
    "ja": (0.040273, 0.0269),
    "it": (0.0255648, 0.0171),
    "pt": (0.0223063, 0.0297),
    "el": (0.0175361, 0.0233),
    "ko": (0.0121953, 0.0811),
    "fi": (0.0102455, 0.0681),
    "id": (0.00940365, 0.0125),
    "tr": (0.00756824, 0.0101),
    "ar": (0.00746791, 0.0099),
    "vi": (0.00682804, 0.0091),
    "th": (0.00661041, 0.044),
    "bg": (0.00591635, 0.0393),
    "ca": (0.0043141, 0.0287),
    "hi": (0.00210246, 0.014),
    "et": (0.00200399, 0.0133),
    "bn": (0.000992245, 0.0066),
    "ta": (0.000900502, 0.006),
    "ur": (0.000824241, 0.0055),
    "sw": (0.000553307, 0.0037),
    "te": (0.000420272, 0.0028),
    "eu": (6.42035e-05, 0.0043),
    "my": (6.17976e-05, 0.003),
    "ht": (5.27902e-05, 0.0035),
    "qu": (1.97304e-06, 0.0001),
}

SHARES: dict[str, dict[str, float]] = {
    # The testbed model's own training mix (mlsweep/testbed/model/README.md).
    "testbed": dict(TESTBED_SHARES),
    "bloom": {lang: n / 256 for lang, n in _MBS_COUNTS.items()},
    # What the model saw: the upsampled column (MBS calibrates in proportion to the training mix).
    "xglm": {lang: upsampled for lang, (_, upsampled) in _XGLM_RATIOS.items()},
}

# Families (model.family) whose per-language pretraining shares are not published, with what is:
# a source with the numbers would move a family into SHARES (mgpt: conf/model/mgpt.yaml).
UNPUBLISHED: dict[str, str] = {
    "llama3": "Meta's Llama 3 release (https://ai.meta.com/blog/meta-llama-3/) says only that over 5% of "
    "the pretraining data is non-English, covering over 30 languages; the Llama 3 Herd paper "
    "(arXiv:2407.21783, Llama 3.1) gives 8% multilingual tokens, without a per-language split",
    "aya23": "the Aya 23 report (Aryabumi et al. 2024, arXiv:2405.15032) names the 23 languages of the "
    "Command pre-training mixture but not their shares",
    # The three below: as far as read here (not verified against the full reports), the reports give total
    # tokens and language counts, not per-language shares.
    "qwen2.5": "the Qwen2.5 technical report (arXiv:2412.15115) gives 18T pretraining tokens covering "
    "about 30 languages, without a per-language split",
    "qwen3": "the Qwen3 technical report (arXiv:2505.09388) gives 36T pretraining tokens in 119 languages "
    "and dialects, without a per-language split",
    "gemma3": "the Gemma 3 technical report (arXiv:2503.19786) describes a larger multilingual share of "
    "its pretraining mix, without a per-language split",
    "mgpt": "the mGPT paper (Shliazhko et al. 2024, arXiv:2204.07580) and model card "
    "(https://huggingface.co/ai-forever/mGPT) show per-language token counts only as a "
    "log-scale bar chart, without the numbers",
}
