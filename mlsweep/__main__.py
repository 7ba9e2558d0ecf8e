"""`python -m mlsweep [overrides] [-m]`: one cell, or a sweep with -m.

    mlsweep plan <overrides>      the sweep's cells, their status and estimated cost; runs nothing
                                  (also: `mlsweep <overrides> -m --dry-run`)
    mlsweep status <sweep folder> progress, and the failed or killed cells with their error lines

Before Hydra runs, config-group choices on the command line are checked
against conf/ so that a typo fails with a did-you-mean and the options, and
an override carrying a credential is refused (mlsweep.credentials).
"""

from __future__ import annotations

import sys

from mlsweep import CONF_DIR
from mlsweep.credentials import credential_override
from mlsweep.registry import unknown

GROUPS = ("model", "pruner", "calib", "sparsity", "eval", "logger", "experiment")


def check_group_choices(argv: list[str]) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser  # noqa: PLC0415 (Hydra: when composing)

    args = [a for a in argv if not a.startswith("-") and "=" in a]
    if any(a.startswith("hydra.searchpath") for a in args):
        return  # extra config folders: Hydra itself reports unknown options
    for ov in OverridesParser.create().parse_overrides(args):
        key = ov.get_key_element().lstrip("+~")
        if key not in GROUPS or ov.value() is None:
            continue
        values = list(ov.sweep_string_iterator()) if ov.is_sweep_override() else [ov.get_value_element_as_str()]
        options = sorted(p.stem for p in (CONF_DIR / key).glob("*.yaml"))
        for v in values:
            if v not in options:
                sys.exit(f"error: {unknown(key, v, options, f'is not an option of config group {key!r}')}")


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["status"]:
        from mlsweep.sweep.lifecycle import main as status_main  # noqa: PLC0415 (status: no Hydra, no torch)

        sys.exit(status_main(args[1:]))
    if args[:1] == ["plan"] or "--dry-run" in args:
        args = [a for a in args[1 if args[:1] == ["plan"] else 0 :] if a not in ("--dry-run", "-m", "--multirun")]
        sys.argv = [sys.argv[0], *args, "hydra.sweeper.plan_only=true", "-m"]
    check_group_choices(sys.argv[1:])
    why = credential_override(a for a in sys.argv[1:] if not a.startswith("-") and "=" in a)
    if why:
        sys.exit(f"error: {why}")
    from mlsweep.cell.app import main as hydra_main  # noqa: PLC0415 (Hydra app: imported after the command-line check)

    hydra_main()


if __name__ == "__main__":
    main()
