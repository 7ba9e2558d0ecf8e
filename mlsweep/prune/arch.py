"""Finding a causal LM's decoder blocks and their linears by module structure.

The block list is the ModuleList of identical modules that holds the model's
linears (Llama/Qwen2/Gemma `model.layers`, BLOOM `transformer.h`, GPT-NeoX
`gpt_neox.layers`, OPT `model.decoder.layers`, XGLM `model.layers`). Model
names are never consulted. Embeddings and lm_head live outside the blocks and
are therefore never pruned.
"""

from __future__ import annotations

from torch import nn

SUPPORTED = "Llama, Mistral, Qwen2, Gemma, Gemma2, BLOOM, XGLM, GPT-NeoX (Pythia), OPT"


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The largest ModuleList of same-class modules that contain nn.Linear layers."""
    best = None
    for module in model.modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        kinds = {type(child) for child in module}
        if len(kinds) != 1 or not find_linears(module[0]):
            continue
        if best is None or len(module) > len(best):
            best = module
    if best is None:
        raise ValueError(
            f"model {type(model).__name__}: no stack of decoder blocks with nn.Linear layers "
            f"found; supported architectures: {SUPPORTED}"
        )
    return best


def find_linears(block: nn.Module) -> dict[str, nn.Linear]:
    """Every nn.Linear inside a block, by its qualified name within the block."""
    return {name: mod for name, mod in block.named_modules() if isinstance(mod, nn.Linear)}
