"""Which tasks a suite runs and where each counts: languages from task names in any code, groups
expanded to the suite's languages, calib=target passes that lose no task, per-language accuracy."""

import pytest
from helpers import copa_items, write_copa_tasks
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config
from mlsweep.config.spec import CellSpec
from mlsweep.evaluate.suite import language_means
from mlsweep.evaluate.tasklist import harness_tasks, task_language


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize(
    "task,languages,expected",
    [
        ("belebele_zho_Hans", ("zh", "sw"), "zh"),
        ("belebele_zho_Hant", ("zh",), "zh-Hant"),  # traditional Chinese is another language
        ("belebele_swh_Latn", (), "sw"),
        ("belebele_deu_Latn", ("deu_Latn",), "deu_Latn"),  # the suite's own spelling
        ("multiblimp_deu", ("de",), "de"),  # ISO 639-3
        ("m_mmlu_de", ("de",), "de"),
        ("xwinograd_jp", (), "ja"),  # lm-eval's spelling of Japanese
        ("xcopa_it", ("aa",), "it"),
        ("toy_copa_aa", ("aa", "bb"), "aa"),  # a source's own codes
        ("boolq", ("en",), None),
        ("arc_challenge", ("en",), None),
    ],
)
def test_a_task_counts_for_the_language_its_name_ends_in(task, languages, expected):
    assert task_language(task, languages) == expected


def test_acc_lang_counts_tasks_named_with_flores_and_iso3_codes():
    flat = {
        "acc/m_mmlu_zh": 0.7,
        "acc/belebele_zho_Hans": 0.5,
        "acc/belebele_swh_Latn": 0.4,
        "acc/multiblimp_swh": 0.6,
        "acc/boolq": 0.9,
    }
    means = language_means(flat, ("zh", "sw"))
    assert means == {"acc_lang/zh": pytest.approx(0.6), "acc_lang/sw": pytest.approx(0.5)}


@pytest.mark.integration
@pytest.mark.parametrize("suite,n_tasks", [("kurz2024", 13), ("mwanda2025", 51)])
def test_calib_target_runs_every_task_of_the_shipped_suites_once(suite, n_tasks):
    """Each language's pass runs that language's tasks, FLORES-named Belebele included; none is lost."""
    spec = CellSpec.from_config(compose_cfg(["model=llama3_8b_instruct", f"eval={suite}", "calib=target"]))
    assert len(spec.passes) == len(spec.suite.languages)
    per_pass = {p.label: harness_tasks(p.suite) for p in spec.passes}
    ran = [t for tasks in per_pass.values() for t in tasks]
    assert len(ran) == len(set(ran)) == n_tasks == len(spec.suite.tasks)
    for lang, tasks in per_pass.items():
        assert tasks and all(task_language(t, spec.suite.languages) == lang for t in tasks), (lang, tasks)
    if suite == "kurz2024":
        assert per_pass["zh"] == ["m_mmlu_zh", "belebele_zho_Hans"] and per_pass["sw"] == ["belebele_swh_Latn"]


@pytest.mark.integration
def test_a_group_runs_only_the_suites_languages(tmp_path):
    """belebele in a 7-language suite is 7 tasks of lm-eval's 122; an explicitly named task always runs."""
    cfg = compose_cfg(["model=llama3_8b_instruct", "eval=kurz2024", "eval.tasks=[belebele,xcopa_it]"])
    tasks = harness_tasks(CellSpec.from_config(cfg).suite)
    flores = ["arb_Arab", "deu_Latn", "eng_Latn", "spa_Latn", "rus_Cyrl", "swh_Latn", "zho_Hans"]
    assert sorted(tasks) == sorted([f"belebele_{c}" for c in flores] + ["xcopa_it"])
    assert len(tasks) == 8 and "xcopa_it" in tasks and "belebele_zho_Hant" not in tasks


@pytest.fixture(scope="module")
def toy_tasks(tmp_path_factory):
    """Local tasks in the toy languages and in FLORES spellings of the testbed's, and a group of them."""
    names = ["toy_copa_aa", "toy_copa_bb", "toy_copa_cc", "toy_copa_zho_Hans", "toy_copa_swh_Latn", "toy_copa_it"]
    root = write_copa_tasks(
        tmp_path_factory.mktemp("toy_tasks"),
        {n: copa_items(6) for n in names},
        groups={"toy_copa": ["toy_copa_aa", "toy_copa_bb", "toy_copa_cc"]},
    )
    return root


@pytest.mark.integration
def test_target_cell_assigns_group_tasks_to_their_passes(tmp_path, tiny_overrides, toy_tasks):
    cfg = compose_cfg(
        tiny_overrides
        + ["calib=target", "eval.languages=[aa,bb]", f"eval.include_paths=[{toy_tasks}]", "eval.tasks=[toy_copa]"]
    )
    row = run_config(cfg, tmp_path)
    assert row["status"] == "done", row["error"]
    assert row["n/toy_copa_aa"] == row["n/toy_copa_bb"] == 6 and "n/toy_copa_cc" not in row  # cc: not evaluated
    assert row["acc_lang/aa"] == row["acc/toy_copa_aa"] and row["acc_lang/bb"] == row["acc/toy_copa_bb"]


@pytest.mark.integration
def test_target_cell_counts_flores_named_tasks_in_their_language(tmp_path, toy_tasks):
    cfg = compose_cfg(
        [
            "calib=target",
            "calib.nsamples=4",
            "eval.languages=[zh,sw]",
            "eval.max_windows=2",
            f"eval.include_paths=[{toy_tasks}]",
            "eval.tasks=[toy_copa_zho_Hans,toy_copa_swh_Latn]",
        ]
    )
    row = run_config(cfg, tmp_path)
    assert row["status"] == "done", row["error"]
    assert row["acc_lang/zh"] == row["acc/toy_copa_zho_Hans"] and row["acc_lang/sw"] == row["acc/toy_copa_swh_Latn"]


@pytest.mark.integration
def test_target_cell_refuses_tasks_of_no_evaluation_language_before_loading(tmp_path, tiny_overrides, toy_tasks):
    cfg = compose_cfg(
        tiny_overrides
        + [
            "calib=target",
            f"eval.include_paths=[{toy_tasks}]",
            "eval.tasks=[toy_copa_aa,toy_copa_it,toy_copa_zho_Hans]",
        ]
    )
    row = run_config(cfg, tmp_path)
    assert row["status"] == "failed" and "time/load_s" not in row
    assert "calib.mix=target" in row["error"] and "toy_copa_it (it)" in row["error"]
    assert "toy_copa_zho_Hans (zh)" in row["error"] and "toy_copa_aa" not in row["error"].split("none of them:")[1]
