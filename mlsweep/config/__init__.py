"""The config layer: typed schemas (`schema`), the one reader of the composed config (`spec.CellSpec`)
and the checks that need the disk (`validate`). Nothing outside this package and the Hydra-facing
shells reads a DictConfig."""

from mlsweep.config.spec import CellSpec, ConfigError

__all__ = ["CellSpec", "ConfigError"]
