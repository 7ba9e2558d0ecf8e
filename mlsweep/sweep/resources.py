"""Per-cell SLURM resources: a rule table, so an 8B cell asks for more than a 560M one in the same sweep.

hydra-submitit-launcher gives every job of a sweep the same resources
(hydra issue #2874). The mlsweep launchers instead resolve, for each cell,
the first rule whose `max_params_b` is at least the model's parameter count
(billions; mlsweep.sweep.costs.model_shape), and submit cells with equal resources
together. A rule's other keys are launcher parameters (gpus_per_node, mem_gb,
cpus_per_task, timeout_min, partition, ...) that replace the launcher's own.

timeout_min is raised to `timeout_factor` x the estimated run time (the
rule's value is a floor), so a cell is not killed by a limit sized for a
smaller one. gpus_per_node is raised to the GPUs the cost plan says the cell
needs (mlsweep.sweep.costs: more than one only for a model evaluated over
several GPUs with `model.device_map`); `mlsweep plan` flags a cell without a
device map whose peak exceeds one GPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlsweep.sweep.costs import Cost

RULE_KEYS = ("max_params_b",)
# Launcher parameters that are counts or sizes: a rule giving one of them as text fails before submission.
NUMERIC_KEYS = ("max_params_b", "gpus_per_node", "mem_gb", "cpus_per_task", "timeout_min", "nodes", "tasks_per_node")
# Launcher keys mlsweep adds; they are not submitit parameters (mlsweep.sweep.launch splits them off).
OWN_KEYS = ("resources", "timeout_factor", "wait", "parallelism", "gpu_mem_gb", "lost_after_s", "cells_per_job")
# Keys of the launcher node that are not launcher parameters a rule may set.
NOT_RULE_PARAMS = ("submitit_folder", "_target_", *OWN_KEYS)


def check_launcher(launcher: Mapping[str, Any]) -> None:
    """The launcher node's resource rules, checked as check_rules does (`mlsweep plan` and every launch)."""
    rules = launcher.get("resources") or []
    if not isinstance(rules, Sequence) or isinstance(rules, str):
        raise ValueError(f"hydra.launcher.resources: a list of rules, got {rules!r}")
    check_rules(list(rules), [k for k in launcher if k not in NOT_RULE_PARAMS])
    check_cells_per_job(launcher.get("cells_per_job", 1))


def check_cells_per_job(value: Any) -> int:
    """hydra.launcher.cells_per_job as an int >= 1; ValueError naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"hydra.launcher.cells_per_job={value!r}: a whole number of cells per job, at least 1")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}={value!r}: must be a number")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{where}={value!r}: must be a number") from None


def check_rules(rules: Sequence[Mapping[str, Any]], allowed: Sequence[str]) -> None:
    """Fail before submitting when a rule is malformed, naming the rule and the allowed keys."""
    last = -math.inf
    for i, rule in enumerate(rules):
        where = f"hydra.launcher.resources[{i}]"
        if not isinstance(rule, Mapping):
            raise ValueError(f"{where}={rule!r}: a rule is a mapping such as {{max_params_b: 10, gpus_per_node: 1}}")
        if "max_params_b" not in rule:
            raise ValueError(f"{where}: needs max_params_b (the largest model, in billions of parameters, it covers)")
        for key in NUMERIC_KEYS:
            if key in rule:
                _number(rule[key], f"{where}.{key}")
        bound = float(rule["max_params_b"])
        if bound <= last:
            raise ValueError(f"{where}.max_params_b={bound}: rules must be in increasing max_params_b order")
        last = bound
        unknown = sorted(set(rule) - set(RULE_KEYS) - set(allowed))
        if unknown:
            raise ValueError(
                f"{where}.{unknown[0]}: not a launcher parameter; allowed: "
                f"{', '.join(sorted(set(allowed) | set(RULE_KEYS)))}"
            )


def resources_for(cost: Cost, rules: Sequence[Mapping[str, Any]], timeout_factor: float = 2.0) -> dict[str, Any]:
    """Launcher parameters for one cell: its rule's, with the GPUs and the time limit raised to fit the estimate."""
    chosen: dict[str, Any] = {}
    for rule in rules:
        if cost.params_b <= float(rule["max_params_b"]):
            chosen = {k: v for k, v in rule.items() if k not in RULE_KEYS}
            break
    else:
        if rules:
            raise ValueError(
                f"hydra.launcher.resources: no rule covers a {cost.params_b:.2f}B-parameter model; "
                f"the largest max_params_b is {rules[-1]['max_params_b']}"
            )
    if cost.gpus > 1:
        chosen["gpus_per_node"] = max(int(chosen.get("gpus_per_node") or 0), cost.gpus)
    return with_time_limit(chosen, cost.hours, timeout_factor)


def with_time_limit(resources: dict[str, Any], hours: float, timeout_factor: float) -> dict[str, Any]:
    """`resources` with timeout_min raised to `timeout_factor` x `hours` (the rule's value a floor)."""
    if timeout_factor > 0:
        need = int(math.ceil(timeout_factor * hours * 60))
        resources["timeout_min"] = max(int(resources.get("timeout_min", 0)), need)
    return resources
