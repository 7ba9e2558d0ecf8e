"""Training the testbed's tokenizer and tiny Llama on the generated corpus (CPU, seeded).

The recipe follows what was measured to make calibration-language effects
show up cleanly at this scale (METHODS.md section 15): a ~1.4M-parameter
Llama (hidden 128, 4 blocks, 4 heads, 2,048-token byte-level BPE), trained
to a low held-out loss (lr 3e-3, eager attention, which is 3-4x faster than
sdpa on CPU at this size).

Three levers that real LLM training has give the model outlier features, so
that activation-aware pruning beats magnitude pruning as it does on real
LLMs (experiments/testbed.md has every recipe tried, with its figures):
weight decay on the matrices only, and strong (3.0), so that the network
keeps its scale in the undecayed RMSNorm gains; the gains at 10x the learning
rate, so that in 2,100 steps they travel as far as in a long run; and three
times the steps of the first recipe (2,100 of 32 x 128 tokens: the outlier
statistics and Wanda's margin over magnitude grow with training length).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Recipe:
    vocab_size: int = 2048
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    seqlen: int = 128
    batch_size: int = 32
    steps: int = 2100
    lr: float = 3e-3
    warmup: int = 50
    weight_decay: float = 3.0
    decay_norms: bool = False  # False: weight decay on matrices only (embeddings, projections, head)
    beta2: float = 0.95
    norm_lr_mult: float = 10.0  # learning rate of the RMSNorm gains, as a multiple of lr
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def train_tokenizer(train_files: list[Path], vocab_size: int):
    """Byte-level BPE over every language's training text, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: PLC0415 (build-time only)
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415 (heavy: only when a model is built)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([str(f) for f in train_files], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", model_max_length=10**9
    )  # whole eval texts are tokenised once, then windowed


def pack(docs: list[str], tokenizer, seqlen: int, seed: int) -> torch.Tensor:
    """Shuffle documents, join them with EOS and cut (n, seqlen) training windows."""
    rng = random.Random(seed)
    docs = list(docs)
    rng.shuffle(docs)
    ids: list[int] = []
    for enc in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        ids.extend(enc + [tokenizer.eos_token_id])
    n = len(ids) // seqlen
    return torch.tensor(ids[: n * seqlen]).reshape(n, seqlen)


def build_model(recipe: Recipe, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM  # noqa: PLC0415 (heavy: only when a model is built)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_hidden_layers,
        num_attention_heads=recipe.num_attention_heads,
        num_key_value_heads=recipe.num_attention_heads,
        max_position_embeddings=recipe.seqlen,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        attn_implementation="eager",
    )
    torch.manual_seed(recipe.seed)
    return LlamaForCausalLM(config)


def lr_at(step: int, recipe: Recipe) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return recipe.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def param_groups(model, recipe: Recipe) -> list[dict]:
    """Matrices (2-D: embeddings, projections, head) and norm gains (1-D), each with its decay and lr."""
    matrices = [p for p in model.parameters() if p.ndim >= 2]
    gains = [p for p in model.parameters() if p.ndim < 2]
    return [
        {"params": matrices, "weight_decay": recipe.weight_decay, "lr_mult": 1.0},
        {
            "params": gains,
            "weight_decay": recipe.weight_decay if recipe.decay_norms else 0.0,
            "lr_mult": recipe.norm_lr_mult,
        },
    ]


def train(model, windows: torch.Tensor, valid: torch.Tensor, recipe: Recipe, log=print) -> list[dict]:
    """AdamW over random batches of windows; returns the loss curve (train and held-out)."""
    gen = torch.Generator().manual_seed(recipe.seed)
    opt = torch.optim.AdamW(param_groups(model, recipe), betas=(0.9, recipe.beta2))
    curve, tic = [], time.perf_counter()
    model.train()
    for step in range(recipe.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, recipe) * group["lr_mult"]
        batch = windows[torch.randint(0, windows.shape[0], (recipe.batch_size,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == recipe.steps - 1:
            held = held_out_loss(model, valid)
            curve.append({"step": step, "train_loss": loss.item(), "valid_loss": held})
            log(f"step {step:4d}  train {loss.item():.3f}  valid {held:.3f}  {time.perf_counter() - tic:.0f}s")
    model.eval()
    return curve


@torch.no_grad()
def held_out_loss(model, valid: torch.Tensor, batch_size: int = 32) -> float:
    was = model.training
    model.eval()
    total, n = 0.0, 0
    for s in range(0, valid.shape[0], batch_size):
        b = valid[s : s + batch_size]
        total += float(model(input_ids=b, labels=b).loss) * b.shape[0]
        n += b.shape[0]
    model.train(was)
    return total / max(n, 1)
