"""The sections of a cell config as plain values, and their builders from the composed config's dict.

Each `*_spec(node)` takes one section of the plain (resolved) config and
returns its frozen dataclass, checking the values that need no disk and
raising ConfigError naming the field; mlsweep.config.spec assembles them
into a CellSpec. Language codes leave here canonical (`hin_Deva`, `hin` ->
`hi`; mlsweep.data.languages), so every key, pass label and table that
derives from them has one spelling per language; the config keeps the typed one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from mlsweep.config.errors import ConfigError
from mlsweep.data.calibration import CalibRequest
from mlsweep.data.formats import FORMATS
from mlsweep.data.languages import canonical
from mlsweep.data.mixes import MIXES
from mlsweep.data.sources import SourceSpec
from mlsweep.devicemap import check_device_map, parse_max_memory
from mlsweep.evaluate.scorers import SCORERS
from mlsweep.evaluate.suite import CorpusSpec, SuiteSpec
from mlsweep.modeling import DTYPES
from mlsweep.prune.api import EngineOptions
from mlsweep.prune.arch import check_exclusions
from mlsweep.registry import suggest


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: str
    dtype: str = "float32"
    device: str = "auto"
    seqlen: int = 2048
    trust_remote_code: bool = False
    revision: Optional[str] = None
    family: str = ""
    attn_implementation: Optional[str] = None
    params_b: Optional[float] = None
    dims: Mapping[str, int] = field(default_factory=dict)
    exclude: Mapping[str, str] = field(default_factory=dict)  # tensor-name pattern in a block -> reason
    device_map: Optional[str] = None  # evaluate spread over the job's devices (mlsweep.devicemap); None: one
    max_memory: Mapping[Any, Any] = field(default_factory=dict)  # per-device budget for the map


@dataclass(frozen=True)
class EngineSettings:
    """The `engine` node: the layer loop's options plus how the model is held while pruning."""

    propagation: str = "sequential"
    true_sequential: bool = False
    calib_batch_size: int = 8
    offload_blocks: bool = False
    activations_on_cpu: bool = False
    stream_from_disk: bool = False

    def options(self, device: Any = None, checkpoint_dir: Any = None, checkpoint_key: str = "") -> EngineOptions:
        return EngineOptions(
            batch_size=self.calib_batch_size,
            propagation=self.propagation,
            true_sequential=self.true_sequential,
            device=device,
            activations_on_cpu=self.activations_on_cpu,
            checkpoint_dir=checkpoint_dir,
            checkpoint_key=checkpoint_key,
        )


@dataclass(frozen=True)
class RuntimeSpec:
    threads: int = 0
    save_masks: bool = False
    checkpoint_blocks: Optional[bool] = None

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ConfigError(f"runtime.threads={self.threads}: a count of torch threads, or 0 for all the job's cores")


@dataclass(frozen=True)
class LoggerSpec:
    name: str = "none"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pass:
    """One prune-then-evaluate of a cell: a `target` mix runs one per evaluation language."""

    label: Optional[str]  # the language of a per-language pass, else None
    calib: Optional[CalibRequest]  # None: the cell uses no calibration data
    suite: SuiteSpec


def source_spec(node: Mapping[str, Any]) -> SourceSpec:
    return SourceSpec(**{k: node.get(k) for k in ("name", "path", "dataset", "config", "text_field", "data_files")})


DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")  # where a cell computes (auto: the GPU if there is one)


def model_spec(node: Mapping[str, Any]) -> ModelSpec:
    if node["dtype"] not in DTYPES:
        raise ConfigError(f"model.dtype={node['dtype']!r}: allowed values are {', '.join(DTYPES)}")
    if node["seqlen"] <= 1:
        raise ConfigError(f"model.seqlen={node['seqlen']}: must be at least 2")
    if not DEVICE.fullmatch(str(node["device"])):
        raise ConfigError(f"model.device={node['device']!r}: allowed values are auto, cpu, cuda, cuda:<index>, mps")
    return ModelSpec(
        **{
            k: node[k]
            for k in (
                "name",
                "path",
                "dtype",
                "device",
                "seqlen",
                "trust_remote_code",
                "revision",
                "family",
                "attn_implementation",
                "params_b",
            )
        },
        dims=dict(node.get("dims") or {}),
        exclude=_exclusions(node.get("exclude") or {}),
        device_map=check_device_map(node.get("device_map")),
        max_memory=parse_max_memory(node.get("max_memory") or {}),
    )


def _exclusions(node: Mapping[str, Any]) -> dict[str, str]:
    try:
        return check_exclusions(dict(node))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def suite_spec(node: Mapping[str, Any], model: ModelSpec) -> SuiteSpec:
    if node["batch_size"] <= 0:
        raise ConfigError(f"eval.batch_size={node['batch_size']}: must be a positive integer")
    if node["seqlen"] is not None and node["seqlen"] <= 1:
        raise ConfigError(f"eval.seqlen={node['seqlen']}: must be at least 2")
    _check_eval_counts(node)
    corpora = [
        CorpusSpec(
            "ppl",
            source_spec(node["source"]),
            node["split"],
            canonical_languages("eval.languages", node["languages"]),
            node["max_windows"],
        )
    ]
    for i, c in enumerate(node["corpora"]):
        if not c["key"].startswith("ppl_"):
            raise ConfigError(f"eval.corpora[{i}].key={c['key']!r}: must start with 'ppl_' (e.g. ppl_xlsum)")
        langs = canonical_languages(f"eval.corpora[{i}].languages", c["languages"])
        corpora.append(CorpusSpec(c["key"], source_spec(c["source"]), c["split"], langs, c["max_windows"]))
    return SuiteSpec(
        name=node["name"],
        corpora=tuple(corpora),
        seqlen=node["seqlen"] or model.seqlen,
        batch_size=node["batch_size"],
        tasks=tuple(node["tasks"]),
        limit=node["limit"],
        num_fewshot=node["num_fewshot"],
        include_paths=tuple(node["include_paths"]),
        scorer_sources=scorer_sources(node.get("scorers") or {}),
        max_length=node["max_length"],
        apply_chat_template=node["apply_chat_template"],
        system_instruction=node["system_instruction"],
        fewshot_as_multiturn=node["fewshot_as_multiturn"],
        truncate_long=node["truncate_long"],
    )


def _check_eval_counts(node: Mapping[str, Any]) -> None:
    """Counts that lm-eval or the perplexity loop would take silently (limit 0 runs everything)."""
    for where, value in [("eval.max_windows", node["max_windows"])] + [
        (f"eval.corpora[{i}].max_windows", c["max_windows"]) for i, c in enumerate(node["corpora"])
    ]:
        if value is not None and value <= 0:
            raise ConfigError(f"{where}={value}: must be a positive number of windows (or null: the whole split)")
    limit = node["limit"]
    if limit is not None and (limit <= 0 or (limit > 1 and limit != int(limit))):
        raise ConfigError(
            f"eval.limit={limit}: a fraction of each task's items in (0, 1] or a whole number of items (or null: all)"
        )
    if node["num_fewshot"] < 0:
        raise ConfigError(f"eval.num_fewshot={node['num_fewshot']}: must be >= 0")
    if node["max_length"] is not None and node["max_length"] <= 1:
        raise ConfigError(f"eval.max_length={node['max_length']}: must be at least 2 tokens (or null: the model's)")


def scorer_sources(node: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """eval.scorers: per project scorer, the source fields that replace its default data's."""
    allowed = [f.name for f in fields(SourceSpec)]
    for name, values in node.items():
        SCORERS.get(name)
        for key in values:
            if key not in allowed:
                raise ConfigError(
                    f"eval.scorers.{name}.{key}: not a source field.{suggest(key, allowed)} "
                    f"Allowed: {', '.join(allowed)}"
                )
    return {name: dict(values) for name, values in node.items()}


def calib_request(node: Mapping[str, Any], model: ModelSpec) -> CalibRequest:
    MIXES.get(node["mix"])
    FORMATS.get(node["format"])
    if node["seqlen"] is not None and node["seqlen"] <= 1:
        raise ConfigError(f"calib.seqlen={node['seqlen']}: must be at least 2")
    _check_calib_counts(node)
    return CalibRequest(
        name=node["name"],
        mix=node["mix"],
        languages=canonical_languages("calib.languages", node["languages"]),
        source=source_spec(node["source"]),
        split=node["split"],
        nsamples=node["nsamples"],
        seqlen=node["seqlen"] or model.seqlen,
        seed=node["seed"],
        family=model.family,
        weights=canonical_weights(node["weights"] or {}),
        format=node["format"],
        shots=node["shots"],
        pivot=canonical(node["pivot"]),
        direction=node["direction"],
        mask_pad_in_stats=node["mask_pad_in_stats"],
        code_source=source_spec(node["code_source"]),
        code_nsamples=node["code_nsamples"],
    )


def canonical_languages(field: str, codes: Any) -> tuple[str, ...]:
    """The canonical codes of a language list; two spellings of one language (`[hi, hin_Deva]`) are refused."""
    out: dict[str, str] = {}
    for code in codes:
        code = str(code)
        if canonical(code) in out:
            raise ConfigError(
                f"{field}: {out[canonical(code)]!r} and {code!r} name the same language "
                f"({canonical(code)}); list it once"
            )
        out[canonical(code)] = code
    return tuple(out)


def canonical_weights(weights: Mapping[str, Any]) -> dict[str, float]:
    """calib.weights keyed by canonical code, like calib.languages (`{swh: 0.5}` weighs `sw`)."""
    out: dict[str, float] = {}
    for code, weight in weights.items():
        if canonical(code) in out:
            raise ConfigError(f"calib.weights: two keys name the language {canonical(code)}; give it one weight")
        out[canonical(code)] = weight
    return out


def _check_calib_counts(node: Mapping[str, Any]) -> None:
    """Counts a mix or a prompt format would take silently: a listed language with no window, no shots."""
    if node["shots"] < 1:
        raise ConfigError(
            f"calib.shots={node['shots']}: must be a positive number of in-context examples per prompt (default 4)"
        )
    languages = list(node["languages"])
    if not MIXES.get(node["mix"]).per_eval_language and 0 < node["nsamples"] < len(languages):
        raise ConfigError(
            f"calib.nsamples={node['nsamples']}: fewer windows than calib.languages ({len(languages)}: "
            f"{', '.join(languages)}), so some languages would get none; raise calib.nsamples or list fewer languages"
        )
