"""Peak resident memory of one pruning run, measured in a fresh process.

    python peak_memory.py {stream,memory} MODEL_DIR OUT_DIR METHOD

Prints one JSON line: the peak of the resident set during the run minus the
resident set just before it (MB), sampled every 2 ms from /proc/self/statm
(ru_maxrss would report the import-time peak instead).
"""

import json
import os
import sys
import threading
import time

import torch
from transformers import AutoModelForCausalLM

from mlsweep.prune import prune_model
from mlsweep.prune.stream import prune_checkpoint

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_MB


class PeakSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.running = rss_mb(), True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.002)


def prune(mode: str, src: str, dst: str, method: str, calibration: torch.Tensor) -> None:
    if mode == "stream":
        prune_checkpoint(src, dst, calibration, method, 0.5, engine=dict(batch_size=4))
    else:
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
        for p in model.parameters():  # own the weights in RAM (from_pretrained may leave them file-mapped)
            p.data = p.data.clone()
        prune_model(model, calibration, method, 0.5, engine=dict(batch_size=4))


def warm_up(mode: str, src: str, dst: str, method: str) -> None:
    """The same run on a one-block, narrow copy: lazy imports and thread pools are paid here, not measured."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(src)
    config.num_hidden_layers, config.hidden_size = 1, 8 * config.num_attention_heads
    config.intermediate_size = 2 * config.hidden_size
    small = f"{dst}-warmup-src"
    AutoModelForCausalLM.from_config(config).save_pretrained(small)
    calibration = torch.randint(4, 500, (2, 16), generator=torch.Generator().manual_seed(0))
    prune(mode, small, f"{dst}-warmup", method, calibration)


def main() -> None:
    mode, src, dst, method = sys.argv[1:5]
    torch.set_num_threads(1)
    warm_up(mode, src, dst, method)
    calibration = torch.randint(4, 500, (8, 64), generator=torch.Generator().manual_seed(0))
    base = rss_mb()
    sampler = PeakSampler()
    sampler.start()
    prune(mode, src, dst, method, calibration)
    sampler.running = False
    sampler.join()
    print(json.dumps({"mode": mode, "method": method, "peak_growth_mb": round(sampler.peak - base, 1)}))


if __name__ == "__main__":
    main()
