"""The testbed model card (mlsweep/testbed/model/README.md), written from testbed.json."""

from __future__ import annotations

from pathlib import Path

from mlsweep.testbed.languages import LANGUAGES


def outlier_section(stats: dict | None) -> str:
    """Outlier features per block (mlsweep.analysis.outliers), on 8 calibration windows per language."""
    if not stats:
        return ""
    rows = "\n".join(
        f"| {i} | {ratio:.1f} | {share:.2f}% |"
        for i, (ratio, share) in enumerate(zip(stats["feature_ratio"], stats["owl_share"]))
    )
    return f"""
## Outlier features (`python -m mlsweep.analysis outliers`)

Per block: the largest over the median per-feature L2 norm of the block's input (the
residual stream), and OWL's share of Wanda scores |W| * ||X|| above 5x their mean, on 8
calibration windows per language. The recipes tried to get them, with the first testbed
model's figures, are in the repository's experiments/testbed.md.

| block | max / median feature norm | Wanda scores > 5x mean |
|---|---|---|
{rows}
"""


def write_card(model_dir: Path, record: dict) -> None:
    r = record["recipe"]
    rows = "\n".join(
        f"| `{lang}` | {LANGUAGES[lang].script} | {record['shares'][lang] * 100:.0f}% | {d['ppl']:.2f} | "
        f"{d['unigram_ppl']:.1f} | {d['chars_per_token']:.2f} |"
        for lang, d in record["dense"].items()
    )
    tasks = record.get("tasks")
    task_rows = ""
    if tasks:
        names = sorted(next(iter(tasks.values())))
        task_rows = (
            "\n## Downstream accuracy of the dense model (lm-eval, zero-shot)\n\n| language | "
            + " | ".join(names)
            + " |\n"
            + "|---" * (len(names) + 1)
            + "|\n"
            + "\n".join(f"| `{lang}` | " + " | ".join(f"{tasks[lang][n]:.3f}" for n in names) + " |" for lang in tasks)
            + "\n\nChance: 0.500 (XCOPA-like), 0.333 (XNLI-like).\n"
        )
    threads = f", {record['threads']} thread{'s' * (record['threads'] != 1)}" if "threads" in record else ""
    decay = "on every parameter" if r.get("decay_norms", True) else "on the matrices only (not the norm gains)"
    text = f"""# The mlsweep testbed model

A {record["parameters"] / 1e6:.2f}M-parameter Llama-architecture causal LM trained on CPU on a
generated family of seven synthetic languages (mlsweep.testbed). The languages are
named after the calibration languages of Kurz et al. 2024 for the table layout only:
`ru` is a synthetic language written in Cyrillic, not Russian, and so on.
Regenerate everything with `make testbed` (seeded; writes this folder).

## Recipe

- Architecture: LlamaForCausalLM, hidden {r["hidden_size"]}, {r["num_hidden_layers"]} blocks,
  {r["num_attention_heads"]} heads, MLP {r["intermediate_size"]}, context {r["seqlen"]},
  untied embeddings, eager attention.
- Tokenizer: byte-level BPE, {r["vocab_size"]} tokens, trained with `tokenizers` on the training split.
- Training: {r["steps"]} steps x {r["batch_size"]} windows x {r["seqlen"]} tokens, AdamW (0.9, {r["beta2"]}),
  lr {r["lr"]} with {r["warmup"]} warm-up steps and cosine decay to 10%, weight decay {r["weight_decay"]}
  {decay}, RMSNorm gains at {r["norm_lr_mult"]:g}x the learning rate,
  gradient clip 1.0, seed {r["seed"]}; {record["train_seconds"]:.0f} s on the build machine
  (torch {record["torch"]}{threads}).
- Held-out loss at the end: {record["valid_loss"]:.3f} nats/token (validation split, all languages).
- Weights stored in fp16 (safetensors); mlsweep loads them in the dtype the config asks for.

## Training-language shares and dense perplexity (test split)

| language | script | share of training data | perplexity | unigram baseline | characters per token |
|---|---|---|---|---|---|
{rows}
{outlier_section(record.get("outliers"))}{task_rows}"""
    (model_dir / "README.md").write_text(text, encoding="utf-8")
