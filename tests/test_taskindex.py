"""lm-eval's task index kept on disk: the same index lm-eval builds, read back by a fresh process without
parsing the YAML files again, rebuilt when a task file changes; groups expanded from it without data."""

import pytest
from helpers import copa_items, write_copa_tasks
from lm_eval.tasks import TaskManager

from mlsweep.evaluate import taskindex
from mlsweep.evaluate.tasklist import PROJECT_TASKS

pytestmark = pytest.mark.integration


def entries(manager) -> dict:
    return {k: (e.kind, e.yaml_path, e.cfg, e.tags) for k, e in manager.task_index.items()}


@pytest.fixture
def tasks_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSWEEP_CACHE", str(tmp_path / "cache"))  # an empty cache for this test
    taskindex._task_manager.cache_clear()
    yield write_copa_tasks(
        tmp_path / "tasks", {"toy_copa_aa": copa_items(4), "toy_copa_bb": copa_items(4)}, {"toy_copa": ["toy_copa_aa"]}
    )
    taskindex._task_manager.cache_clear()


def test_the_cached_index_is_lm_evals_own_and_a_new_process_reads_it_without_parsing(tasks_dir, monkeypatch):
    folders = [str(PROJECT_TASKS), str(tasks_dir)]
    theirs = TaskManager(include_path=folders, include_defaults=False)
    cold = taskindex.task_manager(folders, include_defaults=False)
    assert entries(cold) == entries(theirs) and cold.all_groups == theirs.all_groups
    assert len(list((taskindex.cache_dir()).glob("*.pkl"))) == 2  # one per folder

    taskindex._task_manager.cache_clear()  # what a fresh process sees

    def no_parsing(*args, **kwargs):
        raise AssertionError("the YAML files were parsed again")

    with monkeypatch.context() as m:
        m.setattr("lm_eval.tasks._index.TaskIndex.process_cfg", staticmethod(no_parsing))
        warm = taskindex.task_manager(folders, include_defaults=False)
    assert entries(warm) == entries(theirs)
    assert warm.load(["toy_copa_aa"])["tasks"]["toy_copa_aa"].config.task == "toy_copa_aa"  # loads from it


def test_an_edited_task_file_rebuilds_its_folders_index(tasks_dir):
    folders = [str(tasks_dir)]
    before = taskindex.task_manager(folders, include_defaults=False)
    assert "toy_copa_cc" not in before.all_tasks
    write_copa_tasks(tasks_dir, {"toy_copa_cc": copa_items(4)})
    taskindex._task_manager.cache_clear()
    after = taskindex.task_manager(folders, include_defaults=False)
    assert "toy_copa_cc" in after.all_tasks and len(list(taskindex.cache_dir().glob("*.pkl"))) == 2


def test_groups_expand_from_the_index_as_lm_eval_loads_them():
    manager = taskindex.task_manager([PROJECT_TASKS], include_defaults=False)
    for group in ("testbed_xcopa", "testbed_xnli"):
        assert taskindex.leaves(manager, group) == manager.load([group])["group_map"][group]
        assert taskindex.kind(manager, group) == "group"
    assert taskindex.leaves(manager, "testbed_xcopa_en") == ["testbed_xcopa_en"]


def test_lm_evals_multilingual_groups_expand_to_their_published_tasks():
    manager = taskindex.task_manager([PROJECT_TASKS])  # lm-eval's own tasks too (RESEARCH A4)
    belebele = taskindex.leaves(manager, "belebele")
    assert len(belebele) == 122 and "belebele_zho_Hans" in belebele and "belebele_swh_Latn" in belebele
    assert len(taskindex.leaves(manager, "xcopa")) == 11 and "xcopa_en" not in taskindex.leaves(manager, "xcopa")
    paws = sorted(taskindex.leaves(manager, "pawsx"))
    assert paws == [f"paws_{c}" for c in ("de", "en", "es", "fr", "ja", "ko", "zh")]
    assert taskindex.kind(manager, "m_mmlu") == "tag" and len(taskindex.leaves(manager, "m_mmlu")) == 34
