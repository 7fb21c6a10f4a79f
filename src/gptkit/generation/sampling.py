"""Logits processors and token choice: small functions on (B, V) logits that compose.

Each processor maps logits (B, V) to logits (B, V); a token it removes gets -inf, so it is never chosen.
`logits_processors(settings)` builds the chain: the valid-UTF-8 constraint (a hard constraint, so first:
the filters then choose among allowed tokens only), then HF transformers' order: repetition penalty,
(OpenAI's presence / frequency penalties, which HF lacks), no-repeat n-gram, temperature, top-k, top-p, min-p.
The processors that only look at tensors (all but no-repeat n-gram) use fixed shapes and no host syncs, so
they can run inside a CUDA graph.

Random draws come from a counter-based hash of (seed, step, row) rather than a generator's state:
the same seed gives the same tokens whether rows are dropped along the way or the step is replayed as a
CUDA graph, and nothing needs the RNG state of a device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from gptkit.generation.settings import SamplingSettings, flag
from gptkit.generation.utf8 import Utf8Rows, Utf8Table

NEG_INF = float("-inf")


@dataclass
class History:
    """What the processors look at: the tokens of each row so far (prompt and generated), B rows.

    seen (B, V) bool marks the tokens that occur in each row (for the repetition penalty); tokens holds
    each row's ids as lists (kept only when no-repeat n-gram needs them); utf8 each row's UTF-8 decoding
    state (for the valid-UTF-8 constraint).
    """

    seen: torch.Tensor | None = None
    tokens: list[list[int]] | None = None
    utf8: Utf8Rows | None = None
    counts: torch.Tensor | None = None  # (B, V) int32: how often each token was generated (not the prompt)

    @classmethod
    def start(
        cls,
        rows: Sequence[Sequence[int]],
        vocab_size: int,
        device,
        *,
        seen: bool,
        tokens: bool,
        utf8: Utf8Table | None = None,
        counts: bool = False,
    ) -> History:
        h = cls()
        if counts:
            h.counts = torch.zeros(len(rows), vocab_size, dtype=torch.int32, device=device)
        if seen:
            h.seen = torch.zeros(len(rows), vocab_size, dtype=torch.bool, device=device)
            for i, row in enumerate(rows):
                h.seen[i, torch.tensor(list(row), dtype=torch.long, device=device)] = True
        if tokens:
            h.tokens = [list(row) for row in rows]
        if utf8 is not None:
            h.utf8 = Utf8Rows.start(utf8, rows, device)
        return h

    def append(self, next_tokens: torch.Tensor, as_list: list[int] | None = None) -> None:
        """Add one token per row (B,)."""
        if self.seen is not None:
            self.seen.scatter_(1, next_tokens.unsqueeze(1), True)
        if self.counts is not None:
            self.counts.scatter_add_(1, next_tokens.unsqueeze(1), torch.ones_like(self.counts[:, :1]))
        if self.tokens is not None:
            for row, t in zip(self.tokens, as_list if as_list is not None else next_tokens.tolist(), strict=True):
                row.append(t)
        if self.utf8 is not None:
            self.utf8.advance(next_tokens)

    def select(self, index: list[int], index_t: torch.Tensor) -> None:
        """Keep rows `index` in that order (dropped rows, beam reordering)."""
        if self.seen is not None:
            self.seen = self.seen.index_select(0, index_t)
        if self.counts is not None:
            self.counts = self.counts.index_select(0, index_t)
        if self.tokens is not None:
            self.tokens = [list(self.tokens[i]) for i in index]
        if self.utf8 is not None:
            self.utf8.select(index_t)


Processor = Callable[[torch.Tensor, History], torch.Tensor]


# ---- processors -------------------------------------------------------------------------------
def finite_scores(logits: torch.Tensor) -> torch.Tensor:
    """+inf (a score scaled past the float range) becomes the largest finite value and NaN (0 / 0) becomes
    0, so that softmax stays defined; -inf keeps meaning "never"."""
    return logits.nan_to_num(nan=0.0, posinf=torch.finfo(logits.dtype).max, neginf=NEG_INF)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits / temperature: below 1 sharpens the distribution, above 1 flattens it (temperature > 0).
    Each row is shifted by its largest logit first (softmax does not change), so that a tiny temperature
    tends to greedy instead of overflowing: the best token scores 0, the others -inf at worst."""
    best = logits.amax(dim=-1, keepdim=True).clamp(min=torch.finfo(logits.dtype).min)  # finite, even for -inf rows
    return finite_scores((logits - best) / temperature)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k highest logits of each row (and any tied with the k-th)."""
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al. 2019): keep the smallest set of most likely tokens whose total
    probability reaches p. A token stays if the tokens ranked below it hold more than 1 - p."""
    sorted_logits, order = torch.sort(logits, dim=-1)  # ascending
    mass_up_to = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # probability of this token and all below it
    drop_sorted = mass_up_to <= 1 - p
    drop_sorted[:, -1] = False  # the most likely token always stays
    drop = drop_sorted.scatter(1, order, drop_sorted)
    return logits.masked_fill(drop, NEG_INF)


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep the tokens whose probability is at least min_p times the most likely token's (Nguyen et al. 2024)."""
    probs = logits.softmax(dim=-1)
    return logits.masked_fill(probs < min_p * probs.amax(dim=-1, keepdim=True), NEG_INF)


def repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty (Keskar et al. 2019) on tokens already in the row: a positive logit is divided by
    `penalty`, a negative one multiplied, so penalty > 1 makes repeats less likely. seen: (B, V) bool."""
    penalised = finite_scores(torch.where(logits < 0, logits * penalty, logits / penalty))  # tiny penalties overflow
    return torch.where(seen, penalised, logits)


def additive_penalties(logits: torch.Tensor, counts: torch.Tensor, presence: float, frequency: float) -> torch.Tensor:
    """OpenAI's presence and frequency penalties: logit -= presence * (count > 0) + frequency * count, where
    counts (B, V) holds how often each token was generated in the row so far."""
    c = counts.to(logits.dtype)
    return logits - presence * (c > 0).to(logits.dtype) - frequency * c


def utf8_filter(logits: torch.Tensor, blocked: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """Remove the tokens after which a row's bytes could no longer be valid UTF-8. blocked: (S, V) bool, a
    Utf8Table's; states: (B,) long, each row's decoding state (see gptkit.generation.utf8)."""
    return logits.masked_fill(blocked.index_select(0, states), NEG_INF)


def banned_ngram_tokens(tokens: Sequence[int], n: int) -> list[int]:
    """Tokens that would repeat an n-gram already in `tokens`: those that followed an earlier
    occurrence of the last n - 1 tokens."""
    if len(tokens) < n:
        return []
    if n == 1:
        return sorted(set(tokens))
    prefix = tuple(tokens[len(tokens) - n + 1 :])
    return sorted({tokens[i + n - 1] for i in range(len(tokens) - n + 1) if tuple(tokens[i : i + n - 1]) == prefix})


def no_repeat_ngram_filter(logits: torch.Tensor, tokens: Sequence[Sequence[int]], n: int) -> torch.Tensor:
    """Forbid any token that would make an n-gram occur twice in its row (rows given as token lists)."""
    rows, cols = [], []
    for i, row in enumerate(tokens):
        banned = banned_ngram_tokens(row, n)
        rows += [i] * len(banned)
        cols += banned
    if not rows:
        return logits
    logits = logits.clone()
    logits[torch.tensor(rows, device=logits.device), torch.tensor(cols, device=logits.device)] = NEG_INF
    return logits


# ---- settings and the chain -------------------------------------------------------------------
def penalty_processors(s: SamplingSettings) -> list[Processor]:
    """The processors that apply to every strategy (greedy and beam search too)."""
    chain: list[Processor] = []
    if s.valid_utf8:
        chain.append(lambda x, h: utf8_filter(x, h.utf8.blocked, h.utf8.states))
    if s.repetition_penalty != 1.0:
        chain.append(lambda x, h: repetition_penalty(x, h.seen, s.repetition_penalty))
    if s.needs_counts:
        chain.append(lambda x, h: additive_penalties(x, h.counts, s.presence_penalty, s.frequency_penalty))
    if s.no_repeat_ngram_size > 0:
        chain.append(lambda x, h: no_repeat_ngram_filter(x, h.tokens, s.no_repeat_ngram_size))
    return chain


def logits_processors(s: SamplingSettings) -> list[Processor]:
    """The full chain for sampling, in HF transformers' order."""
    chain = penalty_processors(s)
    if s.greedy:
        return chain  # argmax follows; scaling and filters would not change it
    if s.effective_temperature != 1.0:
        chain.append(lambda x, h: apply_temperature(x, s.effective_temperature))
    if s.top_k is not None:
        chain.append(lambda x, h: top_k_filter(x, s.top_k))
    if s.top_p is not None and s.top_p < 1.0:
        chain.append(lambda x, h: top_p_filter(x, s.top_p))
    if s.min_p is not None and s.min_p > 0:
        chain.append(lambda x, h: min_p_filter(x, s.min_p))
    return chain


def apply_processors(logits: torch.Tensor, chain: Sequence[Processor], history: History) -> torch.Tensor:
    for process in chain:
        logits = process(logits, history)
    return logits


# ---- random draws -----------------------------------------------------------------------------
_M32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for int64 x in [0, 2**32), multiplying by 16-bit halves of c so nothing overflows."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _M32


def hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer (the 'lowbias32' constants of C. Wellons' hash prospector); int64 in and out."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def row_keys(seed: int | torch.Tensor, step: int | torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Two independent 32-bit keys per row, (2, B) int64, from the seed, the step number and the row ids."""
    seed = torch.as_tensor(seed, dtype=torch.long, device=rows.device)
    step = torch.as_tensor(step, dtype=torch.long, device=rows.device)
    base = hash32(hash32(hash32((seed >> 32) & _M32) ^ (seed & _M32)) ^ (step & _M32))
    key = hash32(base ^ rows)
    return torch.stack([key, hash32(key ^ 0x5BD1E995)])


def uniform(seed: int | torch.Tensor, step: int | torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n) float32 uniforms in (0, 1), a pure function of (seed, step, row id, column)."""
    k1, k2 = row_keys(seed, step, rows).unsqueeze(-1)  # (B, 1) each
    cols = torch.arange(n, device=rows.device)
    h = hash32(hash32((cols + k1) & _M32) ^ k2)
    return ((h >> 8).float() + 0.5) * (1.0 / (1 << 24))  # 24 bits: exact in float32, never 0 or 1


def sample(
    logits: torch.Tensor, seed: int | torch.Tensor, step: int | torch.Tensor, rows: torch.Tensor
) -> torch.Tensor:
    """One token per row (B,) drawn from softmax(logits) by inverting its CDF at one uniform per row:
    the first token whose cumulative probability exceeds u * total. -inf logits (probability 0) are never
    drawn: the CDF does not rise at them. Fixed shapes, no host sync."""
    cdf = torch.softmax(logits.float(), dim=-1).cumsum(dim=-1)  # (B, V)
    total = cdf[:, -1:]  # 1 up to rounding
    # Keep the target strictly below the total, so that rounding never walks off the end.
    target = torch.minimum(uniform(seed, step, rows, 1) * total, total * (1 - 2**-23))
    return torch.searchsorted(cdf, target, right=True).squeeze(-1)


__all__ = [
    "History",
    "Processor",
    "SamplingSettings",
    "additive_penalties",
    "apply_processors",
    "apply_temperature",
    "banned_ngram_tokens",
    "flag",
    "logits_processors",
    "min_p_filter",
    "no_repeat_ngram_filter",
    "penalty_processors",
    "repetition_penalty",
    "sample",
    "top_k_filter",
    "top_p_filter",
    "uniform",
    "utf8_filter",
]
