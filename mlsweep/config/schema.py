"""Typed schemas of the config tree, registered in Hydra's ConfigStore.

Types are checked by OmegaConf when a config is composed (a string where a
float belongs fails there, and so does a value outside an enumerated
field's options); value ranges and cross-field rules are checked when the
config becomes a CellSpec (mlsweep.config.spec), which the sweeper does for
every cell before any is launched.

Enumerated fields are Enums generated from the registries that give their
values meaning (`sparsity.allocation` from ALLOCATIONS, `calib.mix` from
MIXES, ...), and each pruner's schema is generated from its registry entry
(`name` plus the fields of the pruner's own `Params` dataclass), so adding
an entry never means editing this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, make_dataclass
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from mlsweep import PACKAGE_DIR
from mlsweep.data.formats import DIRECTIONS, FORMATS
from mlsweep.data.mixes import MIXES
from mlsweep.data.sources import SOURCES
from mlsweep.devicemap import DEVICE_MAPS
from mlsweep.modeling import DTYPES
from mlsweep.prune.allocation import ALLOCATIONS
from mlsweep.prune.api import PROPAGATIONS
from mlsweep.prune.registry import all_pruners
from mlsweep.results.cellfolder import safe_folder


def options(name: str, values) -> type:
    """A str-valued Enum of the allowed values, so OmegaConf rejects any other at compose time."""
    return Enum(name, {v: v for v in values}, type=str)


Dtype = options("Dtype", DTYPES)
SourceName = options("SourceName", SOURCES.names())
Mix = options("Mix", MIXES.names())
Format = options("Format", FORMATS.names())
Direction = options("Direction", DIRECTIONS)
Allocation = options("Allocation", ALLOCATIONS.names())
Propagation = options("Propagation", PROPAGATIONS)
DeviceMap = options("DeviceMap", DEVICE_MAPS)


@dataclass
class ModelConfig:
    name: str = MISSING  # short name used in folders, tables and W&B
    path: str = MISSING  # hub id or local folder for from_pretrained
    dtype: Dtype = Dtype.float32  # float32 | float16 | bfloat16
    device: str = "auto"  # auto (cuda when present) | cpu | cuda | cuda:N
    seqlen: int = 2048  # tokens per calibration / perplexity window
    trust_remote_code: bool = False
    revision: Optional[str] = None
    family: str = ""  # key of the training-language shares (proportional mixes)
    attn_implementation: Optional[str] = None  # e.g. eager (3-4x faster than sdpa for tiny CPU models)
    # Size for cost estimates and per-cell resources when config.json is not on the submitting machine
    # (mlsweep.costs): parameters in billions, and dims {layers, hidden, intermediate, vocab}.
    params_b: Optional[float] = None
    dims: Dict[str, int] = field(default_factory=dict)
    # Block tensors of 2+ dimensions the engine does not prune, left dense and out of sparsity_measured:
    # {<shell pattern over the tensor's name in a block>: <reason>}; routers are excluded by structure.
    exclude: Dict[str, str] = field(default_factory=dict)
    # Evaluate a model larger than one GPU spread over the job's devices (mlsweep/devicemap.py; pruning stays on
    # one device, one block at a time): auto | balanced | balanced_low_0 | sequential; null: one device.
    device_map: Optional[DeviceMap] = None
    # per-device budget of the map: {0: 70GiB, 1: 70GiB, cpu: 200GiB} (checked in mlsweep/devicemap.py); null: what
    # each device has free
    max_memory: Any = None


@dataclass
class SourceConfig:
    name: SourceName = SourceName.testbed  # text-source registry key (mlsweep.data.sources)
    path: Optional[str] = None  # folder for the `local` source
    # hub sources (hf and its presets): overrides of the preset; templates take {code} {iso3} {flores} {xlsum}
    dataset: Optional[str] = None
    config: Optional[str] = None
    text_field: Optional[str] = None
    data_files: Optional[str] = None


@dataclass
class CorpusConfig:
    """A further perplexity corpus of an eval suite; metrics `<key>/<lang>`, `<key>_bpb/<lang>`."""

    key: str = MISSING
    source: SourceConfig = field(default_factory=SourceConfig)
    split: str = "test"
    languages: List[str] = field(default_factory=list)
    max_windows: Optional[int] = None


@dataclass
class CalibConfig:
    name: str = MISSING  # label of the mix in folders and tables ("de", "uniform")
    mix: Mix = Mix.uniform  # uniform | proportional | weights | target: how nsamples is split over `languages`
    languages: List[str] = field(default_factory=list)
    weights: Dict[str, float] = field(default_factory=dict)  # mix=weights: {en: 0.5, sw: 0.5}
    source: SourceConfig = field(default_factory=SourceConfig)
    split: str = "calib"
    nsamples: int = 64
    seqlen: Optional[int] = None  # None: the model's seqlen
    seed: int = 0
    # Kim et al. 2024: windows (default) | translation (k-shot pairs with `pivot`) | monolingual (k-shot)
    # | translation_code (translation prompts plus code windows, for pruner=wanda_ratio)
    format: Format = Format.windows
    shots: int = 4
    pivot: str = "en"
    direction: Direction = Direction["xx-pivot"]  # xx-pivot | pivot-xx
    mask_pad_in_stats: bool = True  # false reproduces Kim et al.'s code (padding in the statistics)
    # format translation_code: translation prompts tagged `mt` plus code windows tagged `code`
    code_source: SourceConfig = field(default_factory=lambda: SourceConfig(name=SourceName.python_code))
    code_nsamples: int = 0  # 0: as many as nsamples


@dataclass
class SparsityConfig:
    target: float = 0.5  # fraction of weights zeroed in every pruned linear
    pattern: str = "unstructured"  # unstructured | N:M (e.g. 2:4)
    tolerance: float = 0.01  # allowed |measured - target| before eval starts
    allocation: Allocation = Allocation.uniform  # uniform | owl | cwl (layerwise; METHODS.md sections 5, 10)
    owl_lambda: float = 0.08  # OWL: block sparsities within target +- lambda
    owl_m: float = 5.0  # OWL: outlier = Wanda score above M x the block mean
    cwl_lambda: float = 0.08  # CWL (M-Wanda): block sparsities within target +- lambda
    cwl_direction: str = "keep_specific"  # CWL: keep_specific | keep_shared (which blocks keep more weights)


@dataclass
class EvalConfig:
    name: str = MISSING  # suite name in folders and tables
    source: SourceConfig = field(default_factory=SourceConfig)
    split: str = "test"
    languages: List[str] = field(default_factory=list)
    seqlen: Optional[int] = None  # None: the model's seqlen
    batch_size: int = 8  # windows / lm-eval requests per forward (explicit: never "auto")
    max_windows: Optional[int] = None  # cap per language; None: whole split
    corpora: List[CorpusConfig] = field(default_factory=list)  # further perplexity corpora
    tasks: List[str] = field(default_factory=list)  # lm-eval task or group names, or project scorers
    limit: Optional[float] = None  # lm-eval: items per task (int) or fraction
    num_fewshot: int = 0
    include_paths: List[str] = field(default_factory=list)  # extra lm-eval task folders
    # a project scorer's data (tasks `<scorer>_<lang>`, mlsweep.evaluate.scorers): source fields replacing its
    # default's, e.g. +eval.scorers.kim_xnli={dataset: json, config: null, data_files: /data/xnli/{code}.jsonl}
    scorers: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    # lm-eval: tokens per request (context + continuation); null: the model's context (config.json; no fixed
    # context, e.g. BLOOM's ALiBi: the suite's seqlen). Longer requests: see truncate_long.
    max_length: Optional[int] = None
    # false: a request longer than max_length fails the cell at validation, naming the tasks; true: lm-eval cuts
    # its context from the left (counted per task in the row: truncated/<task>)
    truncate_long: bool = False
    apply_chat_template: bool = False  # lm-eval's default: prompts as plain text, no chat template
    system_instruction: Optional[str] = None  # without a chat template it is glued onto the prompt: end it with "\n\n"
    fewshot_as_multiturn: bool = True  # with a chat template: each few-shot example its own user/assistant turn


@dataclass
class LoggerConfig:
    """Experiment tracker (mlsweep.tracking); the fields after `name` are read by `wandb`."""

    name: str = "none"  # tracker registry key: none | wandb
    mode: str = "online"  # online | offline (written to disk, `wandb sync` later) | disabled
    project: str = "mlsweep"
    entity: Optional[str] = None  # W&B user or team; None: the API key's default entity
    group: Optional[str] = None  # runs grouped together; conf/logger/wandb.yaml: the experiment name
    job_type: str = "cell"
    tags: List[str] = field(default_factory=list)  # extra tags besides the cell's axes (key=value)
    dir: Optional[str] = None  # where the tracker writes; None: the cell's output folder
    init_timeout: float = 30.0  # seconds to reach the server before falling back to offline
    finish_timeout: float = 120.0  # seconds to wait for uploads when the run ends


@dataclass
class RuntimeConfig:
    threads: int = 0  # torch threads for this cell; 0: all cores of the job
    save_masks: bool = False  # write bit-packed masks (masks.npz) for `python -m mlsweep.analysis masks`
    # Save each pruned block under <cell>/checkpoint/ so a preempted cell resumes at the next block;
    # null: the pruner's default (on for sparsegpt). Removed once the cell is done.
    checkpoint_blocks: Optional[bool] = None


@dataclass
class EngineConfig:
    """Layer-loop options; they change the numbers, so they are part of the cell's identity."""

    propagation: Propagation = Propagation.sequential  # sequential (pruned outputs feed the next block) | dense
    true_sequential: bool = False  # prune linears group by group, re-running the block between
    calib_batch_size: int = 8  # calibration windows per forward
    offload_blocks: bool = False  # keep the model on CPU while pruning; one block at a time on the device
    activations_on_cpu: bool = False  # captured activations on CPU between blocks
    stream_from_disk: bool = False  # read blocks from safetensors while pruning; writes <cell>/pruned_model


@dataclass
class PrunerConfig:
    name: str = MISSING


@dataclass
class MlsweepConfig:
    name: str = "default"  # experiment name: first folder under outputs/
    seed: int = 0
    model: ModelConfig = MISSING
    pruner: Any = MISSING  # one of the generated pruner schemas
    calib: CalibConfig = MISSING
    sparsity: SparsityConfig = MISSING
    eval: EvalConfig = MISSING
    logger: LoggerConfig = MISSING
    engine: EngineConfig = field(default_factory=EngineConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    report: Dict[str, Any] = field(default_factory=dict)  # table spec of the experiment


def pruner_schema(name: str, params_cls: Optional[type]) -> type:
    """A dataclass with `name` plus the pruner's own parameter fields."""
    extra = []
    if params_cls is not None:
        for f in fields(params_cls):
            extra.append((f.name, f.type, field(default=f.default)))
    return make_dataclass(
        f"{name.title()}PrunerConfig", [("name", str, field(default=name))] + extra, bases=(PrunerConfig,)
    )


def register_configs() -> None:
    """Store the schemas; YAML files extend them via `/schema/<group>/<name>`."""
    OmegaConf.register_new_resolver("mlsweep_path", lambda rel: str(PACKAGE_DIR / rel), replace=True)
    OmegaConf.register_new_resolver("mlsweep_folder", safe_folder, replace=True)  # folders named from overrides
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=MlsweepConfig)
    for group, node in [
        ("model", ModelConfig),
        ("calib", CalibConfig),
        ("sparsity", SparsityConfig),
        ("eval", EvalConfig),
        ("logger", LoggerConfig),
    ]:
        cs.store(group=f"schema/{group}", name="base", node=node)
    for spec in all_pruners():
        cs.store(group="schema/pruner", name=spec.name, node=pruner_schema(spec.name, spec.params))
