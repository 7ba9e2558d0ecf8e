"""Credentials stay in the environment: never in an override, a folder name, a row or a printed line.

A value typed as an override ends up in the cell's folder name, plan.json,
the tracker's run name and every progress line, so a credential-looking key
(`+report.api_token=...`) or a value equal to a credential held in the
environment is refused before anything runs; the same values are masked in
whatever mlsweep prints about a tracker.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

# Config keys that look like credentials: refused as overrides, dropped from anything sent to a tracker.
SECRET_KEY = re.compile(r"(^|[_.-])(api_?key|token|password|passwd|secret)($|[_.-])", re.IGNORECASE)
# Environment variables holding credentials a tracker may read; their values are masked in messages.
SECRET_ENV = ("WANDB_API_KEY",)
MASK = "<redacted>"


def secret_values() -> list[str]:
    return [v for v in (os.environ.get(var) for var in SECRET_ENV) if v]


def redact_text(text: str) -> str:
    for secret in secret_values():
        text = text.replace(secret, MASK)
    return text


def credential_override(overrides: Iterable[str]) -> str:
    """Why an override list may not run (a credential in it), or "" when it may; the value is never echoed."""
    secrets = secret_values()
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if SECRET_KEY.search(key):
            return (
                f"{key}: looks like a credential and would be written into folder names, plan.json and the "
                f"tracker's run name; set it in the environment instead ({', '.join(SECRET_ENV)})"
            )
        if any(s in value for s in secrets):
            return f"{key}: its value is the credential held in the environment ({'/'.join(SECRET_ENV)}); not run"
    return ""
