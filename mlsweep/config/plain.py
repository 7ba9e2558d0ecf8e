"""The composed config as plain Python values (dicts, lists, strings, numbers).

Enumerated fields become their names, and the Hydra node (present when the
sweeper composes a cell) is left out: a cell is described by its own keys.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


def plain(cfg: DictConfig, resolve: bool) -> dict[str, Any]:
    """A plain copy of the cell config; a missing or unresolvable value raises ValueError naming its key."""
    keys = [k for k in cfg.keys() if k != "hydra"]
    try:
        return OmegaConf.to_container(
            OmegaConf.masked_copy(cfg, keys), resolve=resolve, enum_to_str=True, throw_on_missing=resolve
        )
    except OmegaConfBaseException as e:
        raise ValueError(f"{getattr(e, 'full_key', '') or 'config'}: {e.msg if hasattr(e, 'msg') else e}") from None
