"""lm-eval requests longer than the model's context are found before any weight loads (a dry tokenisation
pass), and either refused naming the task, or truncated by choice and counted in the row; lm-eval runs
with an explicit max_length and recorded chat settings."""

import logging

import pytest
from helpers import copa_items, write_copa_tasks
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config

pytestmark = pytest.mark.integration
LONG_WORDS = 120  # a premise of 120 words: well over the tiny model's 64 positions


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="module")
def long_tasks(tmp_path_factory):
    """toy_long_aa: 8 items, the 3 with i % 3 == 0 (0, 3, 6) have long premises; toy_answer_aa: long choices."""
    items = copa_items(8)
    for item in items[::3]:
        item["premise"] = " ".join(["word"] * LONG_WORDS) + "."
    return write_copa_tasks(
        tmp_path_factory.mktemp("long_tasks"),
        {"toy_long_aa": items, "toy_short_aa": copa_items(8), "toy_answer_aa": copa_items(4, choice_words=LONG_WORDS)},
    )


def cell(tiny_overrides, tasks_dir, *extra):
    return compose_cfg(
        tiny_overrides + ["pruner=wanda", f"eval.include_paths=[{tasks_dir}]", "eval.batch_size=4", *extra]
    )


def test_requests_longer_than_the_context_fail_before_loading_naming_task_and_items(
    tmp_path, tiny_overrides, long_tasks
):
    row = run_config(cell(tiny_overrides, long_tasks, "eval.tasks=[toy_short_aa,toy_long_aa]"), tmp_path)
    assert row["status"] == "failed" and "time/load_s" not in row
    error = row["error"]
    assert "toy_long_aa: 6 of 16 requests (3 items)" in error, error  # 3 items x 2 choices
    assert "toy_short_aa" not in error and "eval.truncate_long=true" in error and "max_length resolved to 64" in error


def test_truncation_by_choice_is_counted_in_the_row(tmp_path, tiny_overrides, long_tasks, caplog):
    with caplog.at_level(logging.WARNING, logger="lm_eval.models.huggingface"):
        row = run_config(
            cell(tiny_overrides, long_tasks, "eval.tasks=[toy_short_aa,toy_long_aa]", "eval.truncate_long=true"),
            tmp_path,
        )
    assert row["status"] == "done", row["error"]
    assert row["truncated/toy_long_aa"] == 6 and row["truncated/toy_short_aa"] == 0
    cut = [r for r in caplog.records if "Truncating" in r.getMessage()]
    assert len(cut) == 6  # what HFLM itself cut while scoring: the dry pass counted the same requests
    assert row["n/toy_long_aa"] == 8 and row["eval_truncate_long"] is True
    assert row["eval_max_length"] == 64  # the tiny model's max_position_embeddings (tests/helpers.py)


def test_answers_longer_than_the_context_cannot_be_truncated(tmp_path, tiny_overrides, long_tasks):
    row = run_config(
        cell(tiny_overrides, long_tasks, "eval.tasks=[toy_answer_aa]", "eval.truncate_long=true"), tmp_path
    )
    assert row["status"] == "failed" and "time/load_s" not in row
    assert "cannot be scored" in row["error"] and "toy_answer_aa: 8 of 8 requests (4 items)" in row["error"]


def test_max_length_is_capped_by_the_suite_and_held_to_the_model(tmp_path, tiny_overrides, long_tasks):
    short = run_config(
        cell(tiny_overrides, long_tasks, "eval.tasks=[toy_short_aa]", "eval.max_length=48"), tmp_path / "a"
    )
    assert short["status"] == "done", short["error"]
    assert short["eval_max_length"] == 48
    assert short["eval_chat_template"] is False and short["eval_system_instruction"] is None
    assert short["eval_fewshot_as_multiturn"] is True
    over = run_config(
        cell(tiny_overrides, long_tasks, "eval.tasks=[toy_short_aa]", "eval.max_length=100"), tmp_path / "b"
    )
    assert over["status"] == "failed" and "eval.max_length=100: must be in [2, 64]" in over["error"]
