"""Unknown keys: a key that no schema declares is a typo, and a typo must not run silently.

Hydra rejects an unknown key on the command line (`sparsity.targt=0.7`) but
adds it when forced (`++sparsity.targt=0.7`), and YAML files can carry any
key. So every node typed by a schema dataclass is compared with its fields;
free-form mappings (`calib.weights`, `model.dims`, `report`) are not, but
schema-typed values inside them are.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mlsweep.registry import suggest


def unknown_keys(cfg: DictConfig) -> list[str]:
    """Messages naming each unknown key (with close matches), the cell config's `hydra` node excluded."""
    found: list[str] = []
    _walk(cfg, "", found, root=True)
    return found


def _walk(node: Any, path: str, found: list[str], root: bool = False) -> None:
    if isinstance(node, ListConfig):
        for i in range(len(node)):
            _walk(node._get_node(i), f"{path}[{i}]", found)
        return
    if not isinstance(node, DictConfig) or node._is_missing() or node._is_none():
        return
    typ = OmegaConf.get_type(node)
    known = {f.name for f in dataclasses.fields(typ)} if dataclasses.is_dataclass(typ) else None
    for key in node.keys():
        if root and key == "hydra":
            continue
        name = f"{path}.{key}" if path else str(key)
        if known is not None and key not in known:
            found.append(
                f"{name}: not a config key{(' of ' + path) if path else ''}.{suggest(str(key), known)} "
                f"Known: {', '.join(sorted(known))}"
            )
            continue
        _walk(node._get_node(key), name, found)
