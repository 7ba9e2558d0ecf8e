"""Per-linear calibration statistics, fed by the layer loop's forward hooks.

A collector sees each matrix's input as (tokens, d_in) fp32 rows, the
sequences of one batch one after another, and accumulates what its pruner
scores with. Matrices that read the same input tensor (q/k/v, gate/up) share
one collector; `PassStats` records how many read it in `readers`, so a
collector that hands out a large matrix (SparseGPT's Hessian) can give the
last reader its own copy without cloning.

Routed experts (mlsweep.prune.experts) see only the rows of the tokens
routed to them, with `lengths` giving each sequence's share of the rows. A
"sequence" is still a calibration sequence: every expert counts every
sequence of the calibration set (N_seq is the same for all matrices of a
block), and each sequence contributes the sum over its tokens routed to the
expert, possibly none, through the same running-mean update as the dense
collectors. That is the dense rule applied to the expert's input with the
rows of tokens not routed to it set to zero, so an expert that every token
reaches gets exactly the dense statistics.

`Workspace` holds scratch tensors reused inside one statistics pass and freed
at its end (mlsweep.prune.passes.collect), so they neither sit beside the
solver's matrices nor outlive the pruning of a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional, Protocol

import torch


class Collector(Protocol):
    """Statistics of one linear's (or one shared input's) calibration activations."""

    readers: int  # linears that consume these statistics (q/k/v share one); set by the layer loop

    def add(self, x: torch.Tensor, n_seq: int, lang: Optional[str], lengths: Optional[list[int]] = None) -> None:
        """x: the matrix's input, (tokens, d_in) in fp32; n_seq: sequences in the batch;
        lengths: rows per sequence when they differ (routed experts), else None."""


class Workspace:
    """Scratch buffers keyed by (shape, device), reused within one statistics pass.

    A fresh d x d temporary per calibration sequence fragments the heap (a
    streamed SparseGPT run grew 1.5x), so collectors borrow one buffer per
    size here; `clear` drops them all when the pass ends.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple, torch.Tensor] = {}

    def buffer(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        key = (tuple(shape), str(device))
        if key not in self._buffers:  # a model has few distinct widths (hidden, MLP)
            self._buffers[key] = torch.empty(shape, dtype=torch.float32, device=device)
        return self._buffers[key]

    def clear(self) -> None:
        self._buffers.clear()


# d_in, workspace -> a fresh collector
CollectorFactory = Callable[[int, Workspace], Collector]


def per_sequence(x: torch.Tensor, n_seq: int, lengths: Optional[list[int]] = None) -> list[torch.Tensor]:
    """Split a batch's rows back into its sequences (padding-masked rows: one chunk per batch)."""
    if lengths is not None:
        return list(torch.split(x, lengths))
    if n_seq > 1 and x.shape[0] % n_seq == 0:
        return list(x.reshape(n_seq, -1, x.shape[-1]))
    return [x] if n_seq == 1 else [x] + [x[:0]] * (n_seq - 1)


class SquaredNorm:
    """Wanda's scaler_row_j = (1/N_seq) * sum over all tokens of x_j^2 (fp32).

    Updated one sequence at a time with the reference's running mean
    (scaler *= n/(n+1); scaler += ||x_j||^2 / (n+1), the norm taken over the
    sequence's tokens), so that the floating-point result, and hence every
    near-tie in the masks, is the reference's, whatever the batch size.
    """

    def __init__(self, d_in: int, workspace: Optional[Workspace] = None):
        self.scaler_row = torch.zeros(d_in, dtype=torch.float32)
        self.n_seq = 0
        self.readers = 1

    def add(self, x: torch.Tensor, n_seq: int, lang: Optional[str] = None, lengths: Optional[list[int]] = None) -> None:
        # x: (tokens, d_in) fp32, the batch's sequences one after the other
        if self.scaler_row.device != x.device:
            self.scaler_row = self.scaler_row.to(x.device)
        for seq in per_sequence(x, n_seq, lengths):
            self.scaler_row *= self.n_seq / (self.n_seq + 1)
            self.n_seq += 1
            if seq.shape[0]:  # a sequence with no rows (routed elsewhere) adds exactly zero
                self.scaler_row += torch.norm(seq.t(), p=2, dim=1) ** 2 / self.n_seq


class LanguageStats:
    """Per-language Wanda statistics, counts of x_j > 0, sequences and tokens (fp32).

    Rows are tagged with their calibration language (or any tag: Kim et al.'s
    `mt` and `code`). Each language's n[l, j] is accumulated with Wanda's own
    running mean (a SquaredNorm per language), so with one language it is the
    pooled statistic bit for bit; `all` is Wanda's pooled statistic over
    every sequence.

    A collector that also declares `reads_ffn_activation` (NeuronLanguageStats)
    is handed, on the linear that reads an MLP's neurons (down_proj, fc2), the
    output of the MLP's activation (act_fn(gate_proj(x)), act(fc1(x))) by the
    layer loop, and counts per language how often each neuron fires (> 0).
    """

    reads_ffn_activation = False

    def __init__(self, d_in: int, workspace: Optional[Workspace] = None):
        self.d_in = d_in
        self.norms: dict[Optional[str], SquaredNorm] = {}
        self.positive: dict[Optional[str], torch.Tensor] = {}
        self.n_tok: dict[Optional[str], int] = {}
        self.fired: dict[Optional[str], torch.Tensor] = {}  # neuron firing counts (FFN activation readers)
        self.fired_tok: dict[Optional[str], int] = {}
        self.all = SquaredNorm(d_in)
        self.readers = 1

    def add(self, x: torch.Tensor, n_seq: int, lang: Optional[str] = None, lengths: Optional[list[int]] = None) -> None:
        if lang not in self.norms:
            self.norms[lang] = SquaredNorm(self.d_in)
            self.positive[lang] = torch.zeros(self.d_in, device=x.device)
            self.n_tok[lang] = 0
        self.norms[lang].add(x, n_seq, lang, lengths)
        self.positive[lang] += (x > 0).float().sum(0)
        self.n_tok[lang] += x.shape[0]
        self.all.add(x, n_seq, lang, lengths)

    def add_ffn(self, h: torch.Tensor, lang: Optional[str] = None) -> None:
        """h: the MLP activation's output feeding this linear, (tokens, d_in) fp32."""
        if lang not in self.fired:
            self.fired[lang] = torch.zeros(h.shape[-1], device=h.device)
            self.fired_tok[lang] = 0
        self.fired[lang] += (h > 0).float().sum(0)
        self.fired_tok[lang] += h.shape[0]

    @property
    def languages(self) -> list:
        return list(self.norms)

    def n(self) -> torch.Tensor:
        """(languages, d_in): mean over a language's sequences of the per-sequence sum of x^2."""
        return torch.stack([self.norms[lang].scaler_row for lang in self.languages])

    def p(self) -> torch.Tensor:
        """(languages, d_in): share of a language's tokens with x_j > 0 (0 where an expert got none of them)."""
        return torch.stack([self.positive[lang] / max(self.n_tok[lang], 1) for lang in self.languages])

    def neuron_p(self) -> Optional[torch.Tensor]:
        """(languages, d_in): share of a language's tokens on which neuron j fires, if this linear reads neurons."""
        if not self.fired:
            return None
        return torch.stack([self.fired[lang] / max(self.fired_tok[lang], 1) for lang in self.languages])

    def pooled(self) -> torch.Tensor:
        """Wanda's scaler_row over every calibration sequence."""
        return self.all.scaler_row


class NeuronLanguageStats(LanguageStats):
    """LanguageStats that also reads the FFN activation (the layer loop hooks it): LAPE firing rates."""

    reads_ffn_activation = True


class PassStats:
    """The collectors of one statistics pass over a block, by matrix name.

    Matrices that read one input share its collector (`add` with several names;
    `finish` points the followers at it and sets `readers`). `rows` counts
    what entered each collector, so a routed expert that no calibration token
    reached is known (`unrouted`). `routed` names the routed-expert matrices:
    at each batch end, `end_batch` advances those that saw no row in it by the
    batch's sequences, so every expert counts every calibration sequence.
    """

    def __init__(self, widths: dict[str, int], routed: set[str], make: CollectorFactory, workspace: Workspace):
        self.widths = widths
        self.collectors: dict[str, Collector] = {n: make(d, workspace) for n, d in widths.items()}
        self.leader: dict[str, str] = {}
        self.routed = routed & set(widths)
        self.rows: dict[str, int] = dict.fromkeys(widths, 0)
        self._fed: set[str] = set()

    def head(self, name: str) -> str:
        return self.leader.get(name, name)

    def add(self, names: tuple[str, ...], x: torch.Tensor, n_seq: int, lang: Optional[str], lengths=None) -> None:
        names = tuple(n for n in names if n in self.collectors)
        if not names:
            return
        head = self.head(names[0])
        for n in names[1:]:
            if n != head:
                self.leader[n] = head
        self.collectors[head].add(x, n_seq, lang, lengths)
        self.rows[head] += x.shape[0]
        self._fed.add(head)

    def end_batch(self, n_seq: int, lang: Optional[str], device: torch.device) -> None:
        for name in self.routed:
            head = self.head(name)
            if head not in self._fed:
                empty = torch.zeros(0, self.widths[head], device=device)
                self.collectors[head].add(empty, n_seq, lang, [0] * n_seq)
                self._fed.add(head)
        self._fed.clear()

    def unrouted(self, name: str) -> bool:
        return name in self.routed and self.rows[self.head(name)] == 0

    def finish(self) -> dict[str, Collector]:
        for follower, head in self.leader.items():
            self.collectors[follower] = self.collectors[head]
        for head in set(self.leader.values()):
            self.collectors[head].readers = 1 + sum(1 for h in self.leader.values() if h == head)
        return self.collectors
