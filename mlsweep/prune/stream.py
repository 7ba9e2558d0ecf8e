"""Pruning a checkpoint that does not fit in memory, one block at a time from disk.

    report = prune_checkpoint("path/to/model", "path/to/pruned", calibration, "sparsegpt", 0.5)

The model is built on the `meta` device (no memory), its stem (embeddings,
final norm, lm_head, rotary tables) is read from the safetensors files, and
each decoder block is read just before its turn and written to the output
folder right after it, then dropped. Peak memory is the stem, one block and
the calibration activations, whatever the model's size (a 70B model on one
80 GB GPU). The output folder is a normal checkpoint: `from_pretrained` loads
it. The pruning itself is the same code as `prune_model` (same masks).
"""

from __future__ import annotations

import copy
import ctypes
import json
import re
import shutil
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from mlsweep.prune.api import allocation_scores, prepare, report_of, run
from mlsweep.prune.arch import find_blocks
from mlsweep.prune.loop import BlockCallback
from mlsweep.prune.report import PruneReport, zero_counts

_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
)


class Checkpoint:
    """Model tensor name -> (safetensors file, name in the file), single-file or sharded.

    `renamings` are (regex, replacement) pairs from checkpoint names to the
    model's (transformers renames a few legacy names, e.g. GPT-NeoX embed_out).
    With `cast`, floating tensors are read in the dtype of the model tensor
    they replace (model.dtype), as from_pretrained does, so a bf16 cell
    streamed prunes the same bf16 weights as in memory.
    """

    def __init__(self, folder: Path, renamings: list[tuple[str, str]] = (), cast: bool = False):
        self.folder = Path(folder)
        self.cast = cast
        index = self.folder / "model.safetensors.index.json"
        if index.exists():
            stored = {k: self.folder / v for k, v in json.loads(index.read_text())["weight_map"].items()}
        elif (self.folder / "model.safetensors").exists():
            with safe_open(self.folder / "model.safetensors", framework="pt") as f:
                stored = {k: self.folder / "model.safetensors" for k in f.keys()}
        else:
            raise ValueError(f"model.path={str(folder)!r}: no model.safetensors(.index.json) to stream from")
        self.files: dict[str, tuple[Path, str]] = {}
        for key, path in stored.items():
            name = key
            for pattern, repl in renamings:
                name = re.sub(pattern, repl, name)
            self.files[name] = (path, key)

    def load(self, names: list[str], device: torch.device, like: Optional[dict] = None) -> dict[str, torch.Tensor]:
        """The named tensors; `like`: name -> the model tensor each replaces (for `cast`)."""
        by_file: dict[Path, list[str]] = {}
        for n in names:
            by_file.setdefault(self.files[n][0], []).append(n)
        out = {}
        for path, keys in by_file.items():
            with safe_open(path, framework="pt", device=str(device)) as f:
                out.update({k: f.get_tensor(self.files[k][1]) for k in keys})
        if self.cast and like:
            for k, t in out.items():
                if t.is_floating_point() and k in like and like[k].dtype != t.dtype:
                    out[k] = t.to(like[k].dtype)
        return out


def renamings(model: nn.Module) -> list[tuple[str, str]]:
    """The pure renamings transformers applies when loading this model; other conversions are refused.

    MoE checkpoints (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE) store one tensor per
    expert, which transformers stacks into the fused 3-D parameters at load;
    streaming reads a block's tensors as stored and does not, so it refuses.
    """
    from transformers.conversion_mapping import get_model_conversion_mapping  # noqa: PLC0415 (heavy)
    from transformers.core_model_loading import WeightRenaming  # noqa: PLC0415 (heavy: only when a model is built)

    pairs = []
    for t in get_model_conversion_mapping(model, add_legacy=False):
        if not isinstance(t, WeightRenaming):
            raise ValueError(
                f"engine.stream_from_disk: {type(model).__name__} checkpoints store tensors that transformers "
                f"converts on load ({', '.join(t.source_patterns)} -> {', '.join(t.target_patterns)}), which "
                "streaming does not do; prune this model in memory: engine.stream_from_disk=false "
                "(engine.offload_blocks=true keeps it on the CPU, one block at a time on the device)"
            )
        pairs += list(zip(t.source_patterns, t.target_patterns))
    return pairs


def _materialize(module: nn.Module, prefix: str, ckpt: Checkpoint, device: torch.device) -> None:
    """Replace the module's meta tensors (recursively) by the checkpoint's."""
    own = {f"{prefix}{n}": t for n, t in [*module.named_parameters(), *module.named_buffers()]}
    tensors = ckpt.load([n for n in own if n in ckpt.files], device, own)
    module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items()}, strict=False, assign=True)


def _build_stem(model: nn.Module, blocks: nn.ModuleList, ckpt: Checkpoint, config, device: torch.device) -> None:
    in_blocks = {id(m) for m in blocks.modules()}
    for name, module in model.named_modules():
        if id(module) in in_blocks:
            continue
        prefix = f"{name}." if name else ""
        for pname, p in list(module.named_parameters(recurse=False)):
            if p.is_meta and f"{prefix}{pname}" in ckpt.files:
                module._parameters[pname] = nn.Parameter(
                    ckpt.load([prefix + pname], device, {prefix + pname: p})[prefix + pname], requires_grad=False
                )
    _fill_buffers(model, in_blocks, config, device)
    model.tie_weights()
    prefix = blocks_prefix(model, blocks)
    left = [n for n, p in model.named_parameters() if p.is_meta and not n.startswith(prefix)]
    if left:
        raise ValueError(f"model.path: the checkpoint lacks {left[:3]}")


def blocks_prefix(model: nn.Module, blocks: nn.ModuleList) -> str:
    """State-dict prefix of the decoder blocks, e.g. 'model.layers.'."""
    return next(n for n, m in model.named_modules() if m is blocks) + "."


def _fill_buffers(model: nn.Module, in_blocks: set[int], config, device: torch.device) -> None:
    """Non-persistent stem buffers (rotary inv_freq, embedding scales, sinusoids) are not in
    checkpoints: take them from a one-block copy of the model built for real."""
    missing = [
        (name, m)
        for name, m in model.named_modules()
        if id(m) not in in_blocks and any(b is not None and b.is_meta for b in m.buffers(recurse=False))
    ]
    if not missing:
        return
    from transformers import AutoModelForCausalLM  # noqa: PLC0415 (heavy: only when a model is built)

    small = copy.deepcopy(config)
    small.num_hidden_layers = 1
    with torch.device(device):
        shadow = AutoModelForCausalLM.from_config(small)
    for name, module in missing:
        twin = shadow.get_submodule(name) if name else shadow
        for bname, buf in list(module._buffers.items()):
            if buf is not None and buf.is_meta:
                module._buffers[bname] = twin._buffers[bname].to(buf.dtype)
    del shadow


def prune_checkpoint(
    src: str | Path,
    dst: str | Path,
    calibration: Any,
    method: str,
    sparsity: float,
    pattern: str = "unstructured",
    allocation: str = "uniform",
    *,
    dtype: Optional[str] = None,
    attn_implementation: Optional[str] = None,
    on_block: Optional[BlockCallback] = None,
    **options: Any,
) -> PruneReport:
    """Stream-prune the checkpoint in `src` into `dst`; keyword options as for `prune_model`.

    `dtype` and `attn_implementation` are the model's (model.dtype, model.attn_implementation): the
    blocks compute as they would in memory, so the masks are the same (eager and sdpa attention
    round differently in half precision).
    """
    from transformers import AutoConfig, AutoModelForCausalLM  # noqa: PLC0415 (heavy: only when a model is built)

    job = prepare(calibration, method, sparsity, pattern, allocation, **options)
    _pin_mmap_threshold()
    src, dst = Path(src), Path(dst)
    config = AutoConfig.from_pretrained(src)
    with torch.device("meta"):
        extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype) if dtype else None, **extra)
    ckpt = Checkpoint(src, renamings(model), cast=dtype is not None)
    blocks = find_blocks(model)
    prefix = blocks_prefix(model, blocks)
    home = torch.device("cpu")
    _build_stem(model, blocks, ckpt, config, home)
    dst.mkdir(parents=True, exist_ok=True)
    counts: dict[int, dict] = {}
    saving = {"on": False}  # OWL's statistics pass reads blocks without writing them

    def load(i: int, block: nn.Module) -> None:
        _materialize(block, f"{prefix}{i}.", ckpt, home)

    def release(i: int, block: nn.Module) -> None:
        if saving["on"]:
            counts[i] = zero_counts(block, job.opts.exclude)
            state = {f"{prefix}{i}.{k}": v.contiguous() for k, v in block.state_dict().items()}
            save_file(state, str(dst / f"block-{i:05d}.safetensors"), metadata={"format": "pt"})
        block.to("meta")
        _trim()

    job.opts.load_block, job.opts.release_block = load, release
    job.opts.device = job.opts.device or home
    scores = None
    if job.allocation.needs_calibration and job.spec.prunes:  # its pass reads the blocks before pruning
        scores = allocation_scores(model, job)
    saving["on"] = True
    targets, result = run(model, job, on_block, scores)
    _write_stem(model, prefix, dst, config, src)
    return report_of(job, method, targets, result, [counts[i] for i in range(len(blocks))])


def _trim() -> None:
    """Hand freed heap memory back to the OS after each block (glibc keeps it otherwise,
    and a streamed run would creep towards the size of the model)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial value


def _pin_mmap_threshold() -> None:
    """Keep every allocation of 128 KiB or more in its own mapping, returned to the OS when freed.

    glibc raises its mmap threshold to the size of each large block freed (a d x d Hessian
    buffer, up to 32 MB), and from then on serves smaller temporaries (activations, the
    solver's column blocks) from a heap that it only shrinks at its top: on the 24-block
    benchmark model that kept about 1.5 blocks' worth of freed memory resident at the peak. Pinning
    the threshold (for the rest of the process: glibc cannot return to its adaptive mode)
    costs a page fault per fresh page of those temporaries instead.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        pass


def _write_stem(model: nn.Module, prefix: str, dst: Path, config, src: Path) -> None:
    """The non-block tensors, an index over all files, the config and the tokenizer files."""
    stem, seen = {}, set()
    for name, t in model.state_dict().items():  # parameters and persistent buffers
        if not name.startswith(prefix) and t.data_ptr() not in seen:  # tied weights are written once
            seen.add(t.data_ptr())
            stem[name] = t.contiguous()
    save_file(stem, str(dst / "stem.safetensors"), metadata={"format": "pt"})
    weight_map = {k: "stem.safetensors" for k in stem}
    for f in sorted(dst.glob("block-*.safetensors")):
        with safe_open(f, framework="pt") as h:
            weight_map.update({k: f.name for k in h.keys()})
    (dst / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1))
    config.save_pretrained(dst)
    for name in _TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
