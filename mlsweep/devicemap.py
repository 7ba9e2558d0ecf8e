"""Spreading a pruned model over the job's devices for evaluation (accelerate device maps).

Pruning never needs more than one device: the layer loop holds one block at a
time there, with the model on the CPU (or streamed from disk). Evaluation runs
the whole model, so a model larger than one GPU is spread over the job's GPUs,
then the CPU, then the disk, with `model.device_map` (`auto` = `balanced`:
equal shares per GPU; `balanced_low_0`: less on GPU 0; `sequential`: fill GPU
0 first) and `model.max_memory` ({0: 70GiB, 1: 70GiB, cpu: 200GiB}; absent:
what each device has free). The map is inferred for the pruned model and the
pruned values are what gets placed:
- in memory: `dispatch_model` writes the disk share of the current (pruned)
  weights to an offload folder, which must be fresh and empty: accelerate
  silently reuses a folder that already has an index.json (RESEARCH C2);
- streamed (`engine.stream_from_disk`): the map is inferred on a meta-device
  copy, and `from_pretrained(device_map=...)` reads the pruned checkpoint,
  its disk share straight from its safetensors files.
The input embeddings are never put on disk: lm-eval and the perplexity loop
send inputs to the embeddings' device (RESEARCH C3). A dispatched model cannot
be moved with `.to()`; nothing here moves it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional, Union

# name -> GPU 0's share: None: fill devices in order; False: equal shares; True: GPU 0 kept light.
DEVICE_MAPS: dict[str, Optional[bool]] = {"auto": False, "balanced": False, "balanced_low_0": True, "sequential": None}
_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
Device = Union[int, str]


def check_device_map(name: Optional[str]) -> Optional[str]:
    if name is not None and name not in DEVICE_MAPS:
        raise ValueError(f"model.device_map={name!r}: allowed values are {', '.join(DEVICE_MAPS)} (or null)")
    return name


def parse_max_memory(node: Mapping[Any, Any]) -> dict[Device, Union[int, str]]:
    """{0: '70GiB', 'cpu': '200GiB', 'disk': ...}: GPU indices as ints; sizes as bytes or '<n><unit>'."""
    if not isinstance(node, Mapping):
        raise ValueError(f"model.max_memory={node!r}: a mapping of devices to sizes, e.g. {{0: 70GiB, cpu: 200GiB}}")
    out: dict[Device, Union[int, str]] = {}
    for key, value in node.items():
        device: Device = int(key) if str(key).isdigit() else str(key)
        if not isinstance(device, int) and device not in ("cpu", "disk"):
            raise ValueError(f"model.max_memory.{key}: not a device; keys are GPU indices (0, 1, ...), cpu and disk")
        if not (isinstance(value, int) and value > 0) and not (isinstance(value, str) and _SIZE.match(value)):
            raise ValueError(f"model.max_memory.{key}={value!r}: a size such as 70GiB, 500MB or a number of bytes")
        out[device] = value
    return out


def infer_map(model, name: str, max_memory: Mapping[Device, Any], dtype) -> dict[str, Device]:
    """The device map of `model` (real or meta) under the budget, the input embeddings kept off disk."""
    from accelerate import infer_auto_device_map  # noqa: PLC0415 (only with model.device_map)
    from accelerate.utils import get_balanced_memory, get_max_memory  # noqa: PLC0415 (only with model.device_map)

    budget = get_max_memory(dict(max_memory) if max_memory else None)
    no_split = sorted(getattr(model, "_no_split_modules", None) or [])
    low_zero = DEVICE_MAPS[name]
    if low_zero is not None:
        budget = get_balanced_memory(
            model, max_memory=budget, no_split_module_classes=no_split, dtype=dtype, low_zero=low_zero
        )
    device_map = dict(infer_auto_device_map(model, max_memory=budget, no_split_module_classes=no_split, dtype=dtype))
    return _embeddings_resident(model, device_map)


def _embeddings_resident(model, device_map: dict[str, Device]) -> dict[str, Device]:
    embeddings = model.get_input_embeddings()
    name = next(n for n, m in model.named_modules() if m is embeddings)
    owner = max((k for k in device_map if k == "" or name == k or name.startswith(k + ".")), key=len)
    if device_map[owner] != "disk":
        return device_map
    if owner != name:
        raise ValueError(
            f"model.max_memory: the input embeddings ({name}) would be offloaded to disk with {owner or 'the model'}; "
            "give the first device more memory"
        )
    main = next((d for d in device_map.values() if d not in ("cpu", "disk")), "cpu")
    return {**device_map, name: main}


def dispatch(model, device_map: Mapping[str, Device], offload_dir: Path):
    """The in-memory model placed by `device_map`; its disk share written to the (empty) offload folder."""
    from accelerate import dispatch_model  # noqa: PLC0415 (only with model.device_map)

    if any(Path(offload_dir).iterdir()):
        raise RuntimeError(f"offload folder {offload_dir} is not empty: accelerate would reuse stale weights")
    return dispatch_model(model, device_map=dict(device_map), offload_dir=str(offload_dir))


def meta_model(config, dtype):
    """The model's modules on the meta device (no memory), for inferring a device map before loading."""
    from accelerate import init_empty_weights  # noqa: PLC0415 (only with model.device_map)
    from transformers import AutoModelForCausalLM  # noqa: PLC0415 (heavy: only when a model is built)

    with init_empty_weights():
        return AutoModelForCausalLM.from_config(config, dtype=dtype)


def load_spread(path: str, dtype, name: str, max_memory: Mapping[Device, Any], offload_dir: Path, **kwargs):
    """A checkpoint loaded straight onto the devices of its map (streamed cells: <cell>/pruned_model)."""
    from transformers import AutoConfig, AutoModelForCausalLM  # noqa: PLC0415 (heavy: only when a model is built)

    config = AutoConfig.from_pretrained(path, trust_remote_code=kwargs.get("trust_remote_code", False))
    device_map = infer_map(meta_model(config, dtype), name, max_memory, dtype)
    return AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, device_map=device_map, offload_folder=str(offload_dir), **kwargs
    ).eval()


@contextmanager
def offload_folder(cell_dir: Path) -> Iterator[Path]:
    """A fresh, empty offload folder inside the cell folder, removed afterwards."""
    Path(cell_dir).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="offload-", dir=cell_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def input_device(model):
    """Where the model's input ids must be: the input embeddings' compute device."""
    import torch  # noqa: PLC0415 (torch: only with a model)

    if not hasattr(model, "get_input_embeddings"):
        return torch.device("cpu")
    emb = model.get_input_embeddings()
    hook = getattr(emb, "_hf_hook", None)  # accelerate's hook on a dispatched module
    device = getattr(hook, "execution_device", None)
    if device is None and emb.weight.device.type == "meta":  # offloaded as part of a larger module of the map
        device = next((d for d in model.hf_device_map.values() if d not in ("cpu", "disk")), "cpu")
    if device is not None:
        return torch.device(f"cuda:{device}" if isinstance(device, int) else device)
    return emb.weight.device


def devices_of(model) -> str:
    """The devices holding the model's weights, comma-separated in map order (e.g. '0,1' or 'cpu,disk')."""
    device_map = getattr(model, "hf_device_map", None)
    if device_map:
        return ",".join(dict.fromkeys(str(d) for d in device_map.values()))
    return ",".join(dict.fromkeys(str(p.device) for p in model.parameters()))
