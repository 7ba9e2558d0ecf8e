"""Dense downstream accuracy of the testbed model, recorded in testbed.json and the card.

    python -m mlsweep.testbed.score_tasks

Runs the testbed's XCOPA-like and XNLI-like tasks through lm-eval on the
committed model (also called by `make testbed` after training).
"""

from __future__ import annotations

import json
from pathlib import Path

from mlsweep.evaluate.harness import run_tasks
from mlsweep.modeling import load_model
from mlsweep.testbed.generator.card import write_card
from mlsweep.testbed.languages import LANGUAGES

MODEL_DIR = Path(__file__).resolve().parent / "model"
TASKS = ("testbed_xcopa", "testbed_xnli")


def score(model_dir: Path = MODEL_DIR, batch_size: int = 32) -> dict[str, dict[str, float]]:
    import torch  # noqa: PLC0415 (heavy: only when scoring)

    model, tokenizer = load_model(str(model_dir), "float32", torch.device("cpu"), attn_implementation="eager")
    flat = run_tasks(model, tokenizer, list(TASKS), batch_size=batch_size)
    return {lang: {t.removeprefix("testbed_"): round(flat[f"acc/{t}_{lang}"], 4) for t in TASKS} for lang in LANGUAGES}


def main(model_dir: Path = MODEL_DIR) -> None:
    record_path = model_dir / "testbed.json"
    record = json.loads(record_path.read_text())
    record["tasks"] = score(model_dir)
    record_path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    write_card(model_dir, record)
    print(json.dumps(record["tasks"], indent=1))


if __name__ == "__main__":
    main()
