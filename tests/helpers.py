"""Builders for the tests: tiny random causal LMs and per-language text folders, on disk.

Nothing is downloaded: configs come from `transformers`, tokenizers are
trained with `tokenizers` on the text written here.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import torch

LANGS = {"aa": "abcdefgh", "bb": "ijklmnop", "cc": "абвгдежз"}  # three toy "languages", own alphabets


def toy_documents(lang: str, n: int, seed: int) -> list[str]:
    rng = random.Random(f"{lang}/{seed}")
    letters = LANGS[lang]
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 5))) for _ in range(40)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(20, 40))) + "." for _ in range(n)]


def write_text_folder(root: Path, splits=("calib", "test"), n_docs: int = 30) -> Path:
    """<root>/<lang>/<split>.jsonl with disjoint documents per split."""
    for lang in LANGS:
        for i, split in enumerate(splits):
            path = root / lang / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            docs = toy_documents(lang, n_docs, seed=i)
            path.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return root


def train_tokenizer(texts: list[str], vocab_size: int = 300):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def make_tiny_model(
    root: Path, arch: str = "llama", vocab_size: int = 300, seed: int = 0, texts: list[str] | None = None
) -> Path:
    """Save a tiny random causal LM of `arch` and a tokenizer to `root`; returns root."""
    from transformers import AutoModelForCausalLM

    texts = texts or [d for lang in LANGS for d in toy_documents(lang, 20, seed=9)]
    tokenizer = train_tokenizer(texts, vocab_size)
    config = tiny_config(arch, len(tokenizer))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    root.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


# Tiny configs: 2 blocks, hidden 32 (4 heads), MLP 64, so each architecture test runs in well under a second.
LLAMA_LIKE = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
)
# Mixture-of-experts: 4 experts, top-2, expert width 48 (RESEARCH.md B1)
MOE = dict(LLAMA_LIKE, intermediate_size=48, num_experts_per_tok=2)
ARCHITECTURES = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3",
    "cohere",
    "phi3",
    "falcon",
    "olmo2",
    "gpt2",
    "bloom",
    "opt",
    "xglm",
    "gpt_neox",
    "mixtral",
    "qwen2_moe",
    "qwen3_moe",
    "olmoe",
)
MOE_ARCHITECTURES = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe")


def tiny_config(arch: str, vocab_size: int):
    import transformers as T

    common = dict(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    simple = {
        "llama": T.LlamaConfig,
        "mistral": T.MistralConfig,
        "qwen2": T.Qwen2Config,
        "cohere": T.CohereConfig,
        "phi3": T.Phi3Config,
        "olmo2": T.Olmo2Config,
    }
    if arch in simple:
        return simple[arch](**LLAMA_LIKE, **common)
    with_head_dim = {"gemma": T.GemmaConfig, "gemma2": T.Gemma2Config, "qwen3": T.Qwen3Config}
    if arch in with_head_dim:
        return with_head_dim[arch](**LLAMA_LIKE, head_dim=8, **common)
    if arch == "gemma3":
        return T.Gemma3TextConfig(**LLAMA_LIKE, head_dim=8, sliding_window=16, **common)
    if arch == "mixtral":
        return T.MixtralConfig(**MOE, num_local_experts=4, **common)
    if arch == "qwen2_moe":
        return T.Qwen2MoeConfig(
            **dict(MOE, intermediate_size=64),
            moe_intermediate_size=48,
            shared_expert_intermediate_size=40,
            num_experts=4,
            norm_topk_prob=False,
            decoder_sparse_step=1,
            **common,
        )
    if arch == "qwen3_moe":
        return T.Qwen3MoeConfig(
            **dict(MOE, intermediate_size=64),
            head_dim=8,
            moe_intermediate_size=48,
            num_experts=4,
            norm_topk_prob=True,
            decoder_sparse_step=1,
            **common,
        )
    if arch == "olmoe":
        return T.OlmoeConfig(**MOE, num_experts=4, norm_topk_prob=False, **common)
    if arch == "falcon":
        return T.FalconConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, **common)
    if arch == "gpt2":
        return T.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, **common)
    if arch == "bloom":
        return T.BloomConfig(hidden_size=32, n_layer=2, n_head=4, **common)
    if arch == "gpt_neox":
        return T.GPTNeoXConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=64,
            **common,
        )
    if arch == "opt":
        return T.OPTConfig(
            hidden_size=32,
            ffn_dim=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=64,
            word_embed_proj_dim=32,
            **common,
        )
    if arch == "xglm":
        return T.XGLMConfig(
            d_model=32, ffn_dim=64, num_layers=2, attention_heads=4, max_position_embeddings=64, **common
        )
    raise ValueError(f"unknown test architecture {arch!r}")


def copa_items(n: int, premise_words: int = 4, choice_words: int = 3) -> list[dict]:
    """XCOPA-schema items with premises and choices of the given lengths in words."""
    words = "the man lost his key near the old red door".split()
    say = lambda k, off: " ".join(words[(off + j) % len(words)] for j in range(k))  # noqa: E731
    return [
        {
            "premise": say(premise_words, i).capitalize() + ".",
            "choice1": say(choice_words, i + 1).capitalize() + ".",
            "choice2": say(choice_words, i + 2).capitalize() + ".",
            "question": "effect" if i % 2 else "cause",
            "label": i % 2,
            "idx": i,
        }
        for i in range(n)
    ]


def write_copa_tasks(root: Path, tasks: dict[str, list[dict]], groups: dict[str, list[str]] | None = None) -> Path:
    """An lm-eval task folder: lm-eval's own XCOPA template (include:) over local JSON files, one task per
    name; `groups` are groups of those tasks."""
    import lm_eval

    template = Path(lm_eval.__file__).parent / "tasks" / "xcopa" / "default_it.yaml"
    for name, items in tasks.items():
        data = root / "data" / f"{name}.jsonl"
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_text("".join(json.dumps(r) + "\n" for r in items))
        (root / f"{name}.yaml").write_text(
            f"include: {template}\ntask: {name}\ndataset_path: json\ndataset_name: null\n"
            f"dataset_kwargs:\n  data_files:\n    validation: {data}\n    test: {data}\n"
        )
    for group, members in (groups or {}).items():
        (root / f"_{group}.yaml").write_text(f"group: {group}\ntask: [{', '.join(members)}]\n")
    return root


class Pause:
    """Hold a cell at a named stage through its test hook (mlsweep.cell.progress.pause_point).

    `env` goes into the cell's environment (a subprocess, a SLURM job); `wait()`
    returns the paused process's pid once it is held there; `release()` lets it go on.
    Only the first process to reach the stage pauses, so a relaunch runs through.
    """

    def __init__(self, folder: Path, stage: str):
        self.flag = Path(folder) / f"paused-at-{stage.replace(':', '-').replace('#', '-')}"
        self.env = {"MLSWEEP_TEST_PAUSE_AT": stage, "MLSWEEP_TEST_PAUSE_FILE": str(self.flag)}

    def wait(self, proc=None, timeout: float = 300.0) -> int:
        """The paused cell's pid; fails if `proc` (the launching process) ends first or time runs out."""
        end = time.time() + timeout
        while time.time() < end:
            text = self.flag.read_text() if self.flag.exists() else ""
            if text.startswith("paused ") and text.endswith("\n"):
                return int(text.split()[1])
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the run ended (exit {proc.returncode}) before pausing at {self.flag.name}")
            time.sleep(0.05)
        raise AssertionError(f"no cell paused at {self.flag.name} within {timeout:.0f} s")

    def release(self) -> None:
        self.flag.write_text("release\n")


REQUIRE_SLURM_ENV = "MLSWEEP_REQUIRE_SLURM"  # 1 (CI): a SLURM cluster that cannot start fails the tests


def start_minislurm(root: Path, **options):
    """A running MiniSlurm (tests/scripts/minislurm.py) at `root`.

    Where SLURM cannot be installed or started (no root, no apt-get, no
    network) the test is skipped with the reason, so `make test` passes for
    any user; with MLSWEEP_REQUIRE_SLURM=1, as CI sets it, it fails instead,
    so the SLURM tests can never silently stop running there.
    """
    import sys

    import pytest

    sys.path.insert(0, str(Path(__file__).parent / "scripts"))
    from minislurm import MiniSlurm, SlurmUnavailable

    try:
        return MiniSlurm(root, **options).up()
    except SlurmUnavailable as e:
        error = str(e)  # skipped or failed below, outside the handler: no chained traceback
    if os.environ.get(REQUIRE_SLURM_ENV) == "1":
        pytest.fail(f"{REQUIRE_SLURM_ENV}=1 but SLURM is unavailable: {error}", pytrace=False)
    pytest.skip(f"SLURM unavailable: {error.splitlines()[0]} (set {REQUIRE_SLURM_ENV}=1 to make this a failure)")


def dense_matrix_inputs(model, rows: torch.Tensor) -> dict[tuple[int, str], list[torch.Tensor]]:
    """(block, matrix name) -> the matrix's inputs on the dense model, one (tokens, d_in) per row of `rows`.

    Plain forward hooks, one sequence at a time: what a statistics pass with dense propagation must see.
    """
    from mlsweep.prune.arch import find_blocks, find_matrices

    seen: dict[tuple[int, str], list[torch.Tensor]] = {}
    hooks = [
        matrix.owner.register_forward_hook(
            lambda _m, inp, _o, key=(i, name): seen.setdefault(key, []).append(inp[0].detach().flatten(0, -2))
        )
        for i, block in enumerate(find_blocks(model))
        for name, matrix in find_matrices(block).items()
    ]
    with torch.no_grad():
        for row in rows:
            model(row[None])
    for h in hooks:
        h.remove()
    return seen


def owl_mapping(scores: list[float], sparsity: float, lam: float) -> list[float]:
    """The OWL mapping written out (METHODS.md section 5, reference code): min-max to [0, 2 lambda], centred."""
    lo, hi = min(scores), max(scores)
    scaled = [(d - lo) / (hi - lo) * 2 * lam for d in scores]
    return [sparsity - (d - sum(scaled) / len(scaled)) for d in scaled]
