"""Benchmark: a cell's evaluation, first in its process vs after another cell of the same model.

Why: on the testbed, evaluation is most of a cell (perplexity in seven languages plus lm-eval's two
tasks in seven languages: 9,100 log-likelihood requests). A profile of one warm cell (`eval=testbed`,
Wanda 50%) put 67% of it in the model's forward passes and about 15% in work that is the same for every
cell of a sweep: tokenising lm-eval's requests (7%), building them from the task templates (5%),
loading the tasks (2%) and tokenising the perplexity text (1-2%). mlsweep keeps the tokenisations with
the tokenizer for the process's next cell (mlsweep/evaluate/tokcache.py); a packed job or a local sweep
also keeps the tokenizer (mlsweep/cell/modelcache.py). The requests are still built per cell:
lm-eval stores each cell's answers in them.

This script loads the testbed, prunes it (Wanda 50%, English calibration, as a demo cell) and runs the
`eval=testbed` suite three times in one process: a warm-up (imports, lm-eval's task index), then with
the tokenisation cache emptied (what every cell paid before, and what a cell first in its process pays)
and then with it kept (each later cell), twice each, interleaved (the faster of each pair counts). It
prints the seconds and their ratio, and exits 1 unless all four give identical metrics.

    .venv/bin/python bench/bench_eval.py
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time

import torch
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401  (registers the schemas and resolvers)
from mlsweep import CONF_DIR
from mlsweep.config.spec import CellSpec
from mlsweep.data.formats import calibrate
from mlsweep.evaluate import tokcache
from mlsweep.evaluate.suite import evaluate
from mlsweep.modeling import load_model
from mlsweep.prune import prune_model

OVERRIDES = ["eval=testbed", "pruner=wanda", "calib=en", "sparsity.target=0.5"]


class TokenizerClock:
    """Seconds spent inside the tokenizer's own `__call__` and `encode` (the work a kept tokenisation skips)."""

    def __init__(self, tokenizer) -> None:
        self.seconds = 0.0
        cls = type(tokenizer)
        for name in ("__call__", "encode"):
            setattr(cls, name, self._timed(getattr(cls, name)))

    def _timed(self, method):
        def timed(*args, **kwargs):
            tic = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - tic

        return timed


def timed_eval(model, tokenizer, suite, cold: bool, clock: TokenizerClock) -> tuple[float, float, dict]:
    """(evaluation seconds, of which in the tokenizer, the metrics)."""
    if cold:
        tokcache.clear()
    clock.seconds = 0.0
    tic = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # lm-eval's progress bars
        out = evaluate(model, tokenizer, suite, set())
    return time.perf_counter() - tic, clock.seconds, out


def main() -> int:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        spec = CellSpec.from_config(compose("config", overrides=OVERRIDES))
    m, p = spec.model, spec.passes[0]
    model, tokenizer = load_model(m.path, m.dtype, torch.device("cpu"), attn_implementation=m.attn_implementation)
    calib, _ = calibrate(p.calib, tokenizer)
    prune_model(model, calib.input_ids, spec.pruner.name, spec.target.sparsity)
    clock = TokenizerClock(tokenizer)
    timed_eval(model, tokenizer, p.suite, True, clock)  # warm-up: imports, lm-eval's task index
    runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    results = []
    for cold in (True, False, True, False):  # interleaved; the faster of each pair of runs counts
        seconds, in_tokenizer, out = timed_eval(model, tokenizer, p.suite, cold, clock)
        runs[cold].append((seconds, in_tokenizer))
        results.append(out)
    (cold_s, cold_tok), (warm_s, warm_tok) = min(runs[True]), min(runs[False])
    same = all(r == results[0] for r in results)
    print(f"{'evaluation (eval=testbed)':<40} {'seconds':>8} {'in the tokenizer':>17}")
    print(f"{'tokenisations computed (first cell)':<40} {cold_s:8.2f} {cold_tok:17.2f}")
    print(f"{'tokenisations kept (later cells)':<40} {warm_s:8.2f} {warm_tok:17.2f}")
    print(
        f"tokenizer time saved per later cell: {cold_tok - warm_tok:.2f} s ({(cold_tok - warm_tok) / cold_s:.1%} of "
        f"the first cell's evaluation); whole evaluation first/later: {cold_s / warm_s:.3f}"
    )
    print(f"metrics identical: {same} ({len(results[0])} values, 4 runs)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
