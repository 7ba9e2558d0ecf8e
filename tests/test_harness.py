"""lm-eval on the in-memory model: built-in templates on local files, the traps, the row."""

import json
from dataclasses import replace
from pathlib import Path

import lm_eval
import pytest
import torch
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401
from mlsweep import CONF_DIR, PACKAGE_DIR
from mlsweep.cell.app import run_config
from mlsweep.evaluate.harness import HarnessOptions, run_tasks
from mlsweep.modeling import load_model
from mlsweep.prune import prune_model
from mlsweep.results.items import load_items

pytestmark = pytest.mark.integration
TASKS_DIR = Path(lm_eval.__file__).parent / "tasks"
TESTBED = PACKAGE_DIR / "testbed" / "model"


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def local_tasks(tmp_path_factory) -> Path:
    """lm-eval's own xcopa and xnli YAMLs (via include:) pointed at small local files in the HF schemas."""
    root = tmp_path_factory.mktemp("tasks")
    copa = [
        {
            "premise": f"The man lost item {i}.",
            "choice1": "He searched for it.",
            "choice2": "He sang a song.",
            "question": "effect" if i % 2 else "cause",
            "label": i % 2,
            "idx": i,
        }
        for i in range(12)
    ]
    nli = [
        {"premise": f"The dog {i} runs in the park", "hypothesis": "An animal moves", "label": i % 3} for i in range(12)
    ]
    for split in ("validation", "test"):
        write_jsonl(root / "data" / f"xcopa_{split}.jsonl", copa)
    for split in ("train", "validation"):
        write_jsonl(root / "data" / f"xnli_{split}.jsonl", nli)
    (root / "local_xcopa_it.yaml").write_text(f"""include: {TASKS_DIR / "xcopa" / "default_it.yaml"}
task: local_xcopa_it
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    validation: {root / "data" / "xcopa_validation.jsonl"}
    test: {root / "data" / "xcopa_test.jsonl"}
""")
    (root / "local_xnli_de.yaml").write_text(f"""include: {TASKS_DIR / "xnli" / "xnli_de.yaml"}
task: local_xnli_de
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    train: {root / "data" / "xnli_train.jsonl"}
    validation: {root / "data" / "xnli_validation.jsonl"}
""")
    return root


def test_builtin_xcopa_and_xnli_templates_run_on_local_files_and_land_in_the_row(tmp_path, tiny_overrides, local_tasks):
    cfg = compose_cfg(
        tiny_overrides
        + [
            "pruner=wanda",
            f"eval.include_paths=[{local_tasks}]",
            "eval.tasks=[local_xcopa_it,local_xnli_de]",
            "eval.batch_size=4",
        ]
    )
    row = run_config(cfg, tmp_path)
    assert row["status"] == "done", row["error"]
    assert row["n/local_xcopa_it"] == 12 and row["n/local_xnli_de"] == 12
    for task in ("local_xcopa_it", "local_xnli_de"):
        assert 0.0 <= row[f"acc/{task}"] <= 1.0 and f"acc_stderr/{task}" in row
    assert row["acc_lang/de"] == row["acc/local_xnli_de"] and "acc_lang/it" in row
    items = load_items(tmp_path)  # lm-eval's per-sample correctness (log_samples), kept beside the row
    for task in ("local_xcopa_it", "local_xnli_de"):
        got = items[f"acc/{task}"]
        assert got["doc_id"].tolist() == list(range(12))
        assert got["correct"].mean() == pytest.approx(row[f"acc/{task}"])


def test_two_models_in_one_process_get_their_own_results():
    """No response cache and no carried batch size: dense, pruned, dense again."""

    def acc(model, tokenizer):
        options = HarnessOptions(batch_size=16, max_length=128, limit=100)
        return run_tasks(model, tokenizer, ["testbed_xcopa_en"], options)["acc/testbed_xcopa_en"]

    model, tok = load_model(str(TESTBED), "float32", torch.device("cpu"), attn_implementation="eager")
    dense = acc(model, tok)
    pruned_model, _ = load_model(str(TESTBED), "float32", torch.device("cpu"), attn_implementation="eager")
    prune_model(pruned_model, None, "magnitude", 0.9)
    pruned = acc(pruned_model, tok)
    again = acc(model, tok)
    assert dense == again
    assert dense > pruned + 0.2, (dense, pruned)


def test_unknown_task_fails_before_weights_with_did_you_mean(tmp_path, tiny_overrides):
    row = run_config(compose_cfg(tiny_overrides + ["eval.tasks=[testbed_xcopa_enn]"]), tmp_path)
    assert row["status"] == "failed" and "time/load_s" not in row
    assert "eval.tasks" in row["error"] and "testbed_xcopa_en" in row["error"]


def test_hub_task_offline_fails_before_pruning_naming_the_dataset(tmp_path, tiny_overrides, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    row = run_config(compose_cfg(tiny_overrides + ["eval.tasks=[xnli_sw]"]), tmp_path)
    assert row["status"] == "failed" and "time/load_s" not in row
    assert "facebook/xnli" in row["error"] and "python -m mlsweep.data.download" in row["error"]


def test_testbed_accuracy_is_above_chance_dense_and_drops_when_pruned(tmp_path):
    dense = run_config(compose_cfg(["pruner=dense", "eval=quick"]), tmp_path / "dense")
    pruned = run_config(
        compose_cfg(["pruner=wanda", "calib=uniform", "sparsity.target=0.7", "eval=quick"]), tmp_path / "pruned"
    )
    assert dense["status"] == pruned["status"] == "done"
    langs = ["en", "zh", "es", "ar", "ru", "de", "sw"]
    mean = lambda row: sum(row[f"acc/testbed_xcopa_{lang}"] for lang in langs) / len(langs)
    assert mean(dense) > 0.7 and dense["acc/testbed_xcopa_en"] > 0.9
    assert mean(pruned) < mean(dense)
    assert all(pruned[f"ppl/{lang}"] > dense[f"ppl/{lang}"] for lang in langs)


CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.mark.parametrize("chat", [False, True])
def test_run_harness_gives_simple_evaluates_results(chat):
    """Without simple_evaluate's fixed costs (its own task index, torch's environment report, git, the hub)
    the results are the same, also with a chat template, a system instruction and multi-turn few-shot."""
    from mlsweep.evaluate.harness import make_lm, run_harness
    from mlsweep.evaluate.taskindex import task_manager
    from mlsweep.evaluate.tasklist import PROJECT_TASKS

    model, tok = load_model(str(TESTBED), "float32", torch.device("cpu"), attn_implementation="eager")
    if chat:
        tok.chat_template = CHAT
    options = HarnessOptions(
        batch_size=16,
        max_length=128,
        limit=40,
        num_fewshot=1,
        apply_chat_template=chat,
        system_instruction="Choose.\n\n" if chat else None,
        fewshot_as_multiturn=chat,
    )
    manager = task_manager([PROJECT_TASKS])
    tasks = ["testbed_xcopa_en", "testbed_xnli_de"]
    ours = run_harness(make_lm(model, tok, options), tasks, options, manager)
    theirs = lm_eval.simple_evaluate(
        model=make_lm(model, tok, options),
        tasks=tasks,
        num_fewshot=1,
        limit=40,
        use_cache=None,
        cache_requests=False,
        log_samples=False,
        task_manager=manager,
        bootstrap_iters=1000,
        random_seed=1234,
        numpy_random_seed=1234,
        torch_random_seed=1234,
        fewshot_random_seed=1234,
        system_instruction=options.system_instruction,
        apply_chat_template=chat,
        fewshot_as_multiturn=chat,
    )
    assert ours["results"] == theirs["results"] and ours["n-samples"] == theirs["n-samples"]
    assert 0 < ours["results"]["testbed_xcopa_en"]["acc,none"] < 1
    if chat:  # the settings reached the prompts: plain prompts score differently
        plain = replace(options, apply_chat_template=False, system_instruction=None)
        assert run_harness(make_lm(model, tok, plain), tasks, plain, manager)["results"] != ours["results"]
