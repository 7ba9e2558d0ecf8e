"""The error of a config that is not a valid cell."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value outside what the cell can run; the message names the field."""
