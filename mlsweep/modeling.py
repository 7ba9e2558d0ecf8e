"""Loading a causal LM and its tokenizer with transformers, and what we need to know before.

`load_config` and `context_length` read only the model's config (no weights),
and `check_weight_files` only the safetensors headers, so that bad input fails
before anything expensive: a missing local folder, a seqlen longer than the
model's context, a truncated weight file (mlsweep.config.validate).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length")


def _looks_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~")) or os.sep in path and Path(path).exists()


def load_config(path: str, trust_remote_code: bool = False, revision: Optional[str] = None):
    from transformers import AutoConfig  # noqa: PLC0415 (heavy: only when a model is built)

    if _looks_local(path) and not Path(path).expanduser().is_dir():
        raise ValueError(f"model.path={path!r}: local folder does not exist")
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, revision=revision)
    except OSError as e:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        how = (
            (
                " The hub is offline (HF_HUB_OFFLINE=1): download it first with "
                f"`huggingface-cli download {path}` on a machine with network."
            )
            if offline
            else ""
        )
        raise ValueError(f"model.path={path!r}: cannot load its config ({e.__class__.__name__}).{how}") from e


def files_here(path: str, revision: Optional[str] = None) -> bool:
    """Whether the model's config can be read here: a local path (a missing one is an error to report), or a
    hub id in the HF cache."""
    if _looks_local(path) or Path(path).expanduser().is_dir():
        return True
    from huggingface_hub import try_to_load_from_cache  # noqa: PLC0415 (only for hub models)

    return isinstance(try_to_load_from_cache(path, "config.json", revision=revision), str)


def check_weight_files(path: str, revision: Optional[str] = None) -> None:
    """Every `*.safetensors` file of a model on this machine is whole; ValueError naming the file if not.

    Only the 8-byte header length and the JSON header are read, never the
    weights: a truncated download would otherwise fail as a bare
    SafetensorError when the weights load. A hub model not fully in the
    cache is left to the loader, which says how to get it.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        try:
            folder = Path(local_folder(path, revision))
        except ValueError:
            return
    for file in sorted(folder.glob("*.safetensors")):
        problem = _safetensors_problem(file)
        if problem:
            raise ValueError(f"model.path={path}: weight file {file} {problem}; copy or download it again")


def _safetensors_problem(file: Path) -> Optional[str]:
    """What is wrong with a safetensors file's framing (header length, JSON header, declared sizes), or None."""
    size = file.stat().st_size
    with open(file, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"is truncated: {size} bytes, fewer than the 8 of its header length"
        n = int.from_bytes(head, "little")
        if 8 + n > size:
            return f"is truncated: its header declares {8 + n} bytes of header, the file holds {size}"
        try:
            header = json.loads(fh.read(n))
        except (ValueError, UnicodeDecodeError):
            return "has no JSON header: not a safetensors file"
    if not isinstance(header, dict):
        return "has no JSON header: not a safetensors file"
    ends = [v.get("data_offsets", [0, 0])[-1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    if 8 + n + max(ends, default=0) > size:
        return f"is truncated: its header declares {8 + n + max(ends)} bytes, the file holds {size}"
    return None


def context_length(config) -> Optional[int]:
    """Positions the model can attend over (a multimodal config's text model's: Gemma-3 4B/12B)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in _CONTEXT_KEYS:
        value = getattr(text, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None  # ALiBi models (BLOOM) have no fixed context


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def load_model(
    path: str,
    dtype: str,
    device: torch.device,
    trust_remote_code: bool = False,
    revision: Optional[str] = None,
    attn_implementation: Optional[str] = None,
):
    """(model in eval mode on `device`, tokenizer)."""
    from transformers import AutoModelForCausalLM  # noqa: PLC0415 (heavy: only when a model is built)
    from transformers.utils import logging as hf_logging  # noqa: PLC0415 (heavy: only when a model is built)

    hf_logging.disable_progress_bar()  # one progress line per stage is ours to print

    kwargs = {"dtype": DTYPES[dtype], "trust_remote_code": trust_remote_code, "revision": revision}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs).to(device).eval()
    return model, load_tokenizer(path, trust_remote_code, revision)


def load_tokenizer(path: str, trust_remote_code: bool = False, revision: Optional[str] = None):
    from transformers import AutoTokenizer  # noqa: PLC0415 (heavy: only when a model is built)

    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, revision=revision)


def local_folder(path: str, revision: Optional[str] = None) -> str:
    """A local folder for the model: itself, or its snapshot in the Hugging Face cache."""
    if Path(path).expanduser().is_dir():
        return str(Path(path).expanduser())
    from huggingface_hub import snapshot_download  # noqa: PLC0415 (only for hub models)

    try:
        return snapshot_download(path, revision=revision, local_files_only=True)
    except Exception as e:  # not downloaded: say how to get it
        raise ValueError(
            f"model.path={path!r}: streaming needs the checkpoint on disk; download it first "
            f"with `huggingface-cli download {path}`"
        ) from e
