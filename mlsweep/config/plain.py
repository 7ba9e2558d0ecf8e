"""The composed config as plain Python values (dicts, lists, strings, numbers).

Enumerated fields become their names, and the Hydra node (present when the
sweeper composes a cell) is left out: a cell is described by its own keys.
"""

from __future__ import annotations

from typing import Any

from omegaconf import Container, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


def plain(cfg: DictConfig, resolve: bool) -> dict[str, Any]:
    """A plain copy of the cell config; a missing or unresolvable value raises ValueError naming its key.

    Each top-level node is converted where it stands (its interpolations resolve against the whole
    config), not through a masked copy of the config: that deep copy was most of the cost of
    turning a grid point into its cell spec.
    """
    try:
        return {key: _value(cfg, key, resolve) for key in cfg.keys() if key != "hydra"}
    except OmegaConfBaseException as e:
        raise ValueError(f"{getattr(e, 'full_key', '') or 'config'}: {e.msg if hasattr(e, 'msg') else e}") from None


def _value(cfg: DictConfig, key: str, resolve: bool) -> Any:
    node = cfg._get_node(key)
    if isinstance(node, Container):
        return OmegaConf.to_container(node, resolve=resolve, enum_to_str=True, throw_on_missing=resolve)
    one = OmegaConf.masked_copy(cfg, [key])  # a top-level leaf (name, seed): small to copy
    return OmegaConf.to_container(one, resolve=resolve, enum_to_str=True, throw_on_missing=resolve)[key]
