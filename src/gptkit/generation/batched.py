"""Continuous batching: concurrent requests share one batched decode step (the HTTP server's decoder).

A `Job` is one prompt with its own settings (a resolved GenerationSettings: strategy greedy or sample, seed,
max_new_tokens, EOS ids, valid-UTF-8 table) and n choices; each choice is one row of the batch. Every
`BatchScheduler.step()`:
1. drops the rows of cancelled jobs and of choices the caller stopped (a stop string was seen), freeing
   their KV rows;
2. admits waiting jobs while the batch has room (max_batch rows): their prompts are prefilled together,
   left-padded into one forward pass (in groups of similar lengths, `prefill_groups`), and each job's n rows
   join the batch;
3. chooses one token per row: rows are grouped by sampling settings, each group runs its processor chain;
   greedy rows take the argmax, sampling rows draw from the hash of (their seed, their step, their row id:
   Job.first_row + choice), the draw the other decoders make, so a seeded request gets the tokens
   `gptkit.generate` gives the same prompts;
4. hands each row's token to its job (`Job.emit`), with its log-probability when asked for; rows that end
   (an EOS id: finish "stop", max_new_tokens: "length") leave the batch;
5. runs the model once on the batch's new tokens.

The KV cache holds the rows right-aligned: row r's tokens fill columns start[r] .. length-1 and the columns
before are masked. Rows joining or leaving rebuild the cache at the smallest width that holds every row
(a block copy per source cache, rounded up to 64 columns), so padding never piles up. On a CPU the cache is
full-width (`KVCache`): a step's attention is one batched product per layer over the whole buffers.
A model whose linear layers are bfloat16 PackedLinear (`packed_linear.mixed_dtype`) runs its forward passes
(the prefill) under CPU autocast, which the decode step equals. Positions come from the mask (GPT.forward), so a
row's logits are those it would get alone, up to float rounding of batched matrix products (none at all for the
linear layers when they are packed for oneDNN, `packed_linear`, as the server's CPU decoder is). A batch with
no padded row (one row, or rows of one length) runs without a mask, as a lone decode does.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch

from gptkit.errors import GptkitError
from gptkit.generation.decode_step import DecodeStep
from gptkit.generation.decoding import device_of, left_pad
from gptkit.generation.packed_linear import mixed_dtype
from gptkit.generation.sampling import History, apply_processors, logits_processors, penalty_processors, sample
from gptkit.generation.settings import GenerationError, GenerationSettings
from gptkit.generation.utf8 import Utf8Rows, Utf8Table
from gptkit.model import GPT, KVCache


class QueueFull(GptkitError):
    """More jobs are waiting than the scheduler's max_queue."""


@dataclass
class TokenEvent:
    """One token of one choice. finish: None, "stop" (the token is an EOS id) or "length" (the last one
    max_new_tokens allows). logprob / top: the token's log-probability under the model (before any
    processor) and the `top` most likely tokens as (token, logprob), when the job asked for them."""

    choice: int
    token: int
    finish: str | None = None
    logprob: float | None = None
    top: list[tuple[int, float]] | None = None


@dataclass(eq=False)
class Job:
    """A prompt (token ids) and its settings; `emit(event)` is called from the scheduler's thread for every
    TokenEvent, and `emit(exception)` if the scheduler fails. cancel() (any thread) ends every choice;
    stop(choice) ends one (the text layer saw a stop string)."""

    prompt: list[int]
    settings: GenerationSettings  # resolved: strategy greedy or sample, seed set, max_new_tokens set
    emit: Callable[[TokenEvent | BaseException], None]
    n: int = 1
    logprobs: int | None = None  # None: none; k >= 0: the chosen token's and the k most likely
    first_row: int = 0  # choice c draws as row first_row + c: prompt i of a list, with n each, is i * n
    cancelled: bool = False
    stopped: set[int] = field(default_factory=set)

    def cancel(self) -> None:
        self.cancelled = True

    def stop(self, choice: int) -> None:
        self.stopped.add(choice)


@dataclass
class _Row:
    job: Job
    choice: int
    generated: int = 0


class BatchScheduler:
    """The rows of the running jobs, their KV cache and the state their processors need; see the module
    docstring. `submit` is thread-safe; `step` runs on one thread (the one that owns the model):
    `run_forever(stop_event)` steps while there is work and sleeps otherwise, calling `after_step()` (when
    given) after each step."""

    def __init__(
        self,
        model: GPT,
        *,
        max_batch: int = 16,
        max_queue: int = 64,
        utf8: Utf8Table | None = None,
        after_step: Callable[[], None] | None = None,
    ):
        if max_batch < 1 or max_queue < 0:
            raise GptkitError(f"max_batch must be >= 1 and max_queue >= 0, got {max_batch} and {max_queue}")
        self.model = model
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.utf8 = utf8
        self.device = device_of(model)
        self.full_width = self.device.type == "cpu"  # see KVCache: one batched attention product per layer
        # bfloat16 packed linears in a float32 model: forward passes under CPU autocast (float32 attention).
        self.autocast_dtype = mixed_dtype(model)
        self.vocab_size = model.config.vocab_size
        self.waiting: collections.deque[Job] = collections.deque()
        self.wake = threading.Condition()
        self.rows: list[_Row] = []
        self.cache: KVCache | None = None
        self.start = torch.zeros(0, dtype=torch.long)  # (B,) first real column of each row (on the device)
        self.logits = torch.zeros(0, self.vocab_size)  # (B, V) float32: the next token's logits
        self.seen = torch.zeros(0, self.vocab_size, dtype=torch.bool)  # prompt + generated tokens of each row
        self.counts = torch.zeros(0, self.vocab_size, dtype=torch.int32)  # generated tokens of each row
        self.states = torch.zeros(0, dtype=torch.long)  # each row's UTF-8 decoding state
        self.after_step = after_step  # run_forever calls it after every step (the server hands events over)
        # The decode step written out for T = 1 (same values as GPT.forward, less overhead per step).
        self.decode = DecodeStep(model) if DecodeStep.supports(model) else None
        self.steps_run = 0
        self.tokens_generated = 0

    # ---- the caller's side --------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self.wake:
            if len(self.waiting) >= self.max_queue:
                raise QueueFull(f"the queue is full ({self.max_queue} requests waiting)")
            self.waiting.append(job)
            self.wake.notify()

    def cancel(self, job: Job) -> None:
        """End every choice of a job (any thread); its rows leave at the next step."""
        job.cancel()

    def stop(self, job: Job, choice: int) -> None:
        """End one choice of a job (any thread): the text layer saw a stop string."""
        job.stop(choice)

    @property
    def queue_depth(self) -> int:
        return len(self.waiting)

    @property
    def batch_size(self) -> int:
        return len(self.rows)

    def run_forever(self, stop_event: threading.Event, idle_wait: float = 0.05) -> None:
        while not stop_event.is_set():
            with self.wake:
                if not self.rows and not self.waiting:
                    self.wake.wait(idle_wait)
                    continue
            try:
                self.step()
            except Exception as e:  # handed to every job: each request fails with it, the server goes on
                self._fail_all(e)
            if self.after_step is not None:
                self.after_step()

    # ---- one step ---------------------------------------------------------------------------------
    def step(self) -> None:
        with torch.inference_mode():
            self._drop([i for i, r in enumerate(self.rows) if r.job.cancelled or r.choice in r.job.stopped])
            self._admit()
            if not self.rows:
                return
            tokens = self._choose()
            ended = self._hand_out(tokens)
            self._advance_state(tokens)
            self._drop(ended)
            if self.rows:
                gone = set(ended)
                keep = torch.tensor([i for i in range(len(tokens)) if i not in gone], device=self.device)
                self._forward(tokens[keep] if ended else tokens)

    def _admit(self) -> None:
        joining: list[Job] = []
        with self.wake:
            while self.waiting and len(self.rows) + sum(j.n for j in joining) + self.waiting[0].n <= self.max_batch:
                job = self.waiting.popleft()
                if not job.cancelled:
                    joining.append(job)
            if not joining and self.waiting and not self.rows and self.waiting[0].n > self.max_batch:
                joining.append(self.waiting.popleft())  # more choices than max_batch: it runs alone
        if not joining:
            return
        parts: list[tuple[KVCache, torch.Tensor, torch.Tensor]] = []  # (cache, row index, first real column)
        new_rows, logits, seen, states = [], [], [], []
        for group in prefill_groups(joining):
            cache, out, starts = self._prefill([job.prompt for job in group])  # out (J, V), starts (J,)
            n = torch.tensor([job.n for job in group], device=self.device)
            rows = torch.repeat_interleave(torch.arange(len(group), device=self.device), n)  # a row per choice
            parts.append((cache, rows, starts[rows]))
            logits.append(out[rows])
            for job in group:
                new_rows += [_Row(job, c) for c in range(job.n)]
                row_seen = torch.zeros(self.vocab_size, dtype=torch.bool, device=self.device)
                row_seen[torch.tensor(job.prompt, dtype=torch.long, device=self.device)] = True
                seen.append(row_seen.expand(job.n, -1))
                state = self.utf8.prompt_state(job.prompt) if self.utf8 is not None else 0
                states.append(torch.full((job.n,), state, dtype=torch.long, device=self.device))
        if self.cache is not None:
            parts.insert(0, (self.cache, torch.arange(len(self.rows), device=self.device), self.start))
        self._rebuild(parts)
        self.rows += new_rows
        self.logits = torch.cat([self.logits.to(self.device), *logits])
        self.seen = torch.cat([self.seen.to(self.device), *seen])
        counts = self.counts.to(self.device)
        self.counts = torch.cat([counts, counts.new_zeros(len(new_rows), self.vocab_size)])
        self.states = torch.cat([self.states.to(self.device), *states])

    def _prefill(self, prompts: list[list[int]]) -> tuple[KVCache, torch.Tensor, torch.Tensor]:
        """One forward pass over the prompts, left-padded into a (J, P) batch: their cache (J rows,
        right-aligned), the next token's logits (J, V) float32 and each row's first real column (J,)."""
        idx, mask = left_pad(prompts, self.device)
        J, P = idx.shape
        cache = KVCache(self.model.config, J, P, device=self.device, dtype=self.model.wte.weight.dtype)
        with self._autocast():
            out = self.model(idx, attention_mask=mask, kv_cache=cache, last_logits_only=True)[:, -1].float()
        starts = torch.tensor([P - len(p) for p in prompts], dtype=torch.long, device=self.device)
        return cache, out, starts

    def _rebuild(self, parts: list[tuple[KVCache, torch.Tensor, torch.Tensor]], extra: int = 0) -> None:
        """One cache holding the given rows (the running batch first, then the newcomers), right-aligned at
        the smallest width that holds every row's tokens; `extra` more columns of room. A part is (cache,
        the rows it gives (R,), their first real columns (R,)); every row of a cache ends at its length, so
        a part moves as one block: its columns from its earliest start on."""
        blocks = []
        for cache, index, starts in parts:
            first = int(starts.min())
            blocks.append((cache, index, first, starts - first, cache.length - first))
        length = max(span for *_, span in blocks)
        cfg = self.model.config
        width = min(cfg.block_size, max(length + 1 + extra, -(-(length + 16) // 64) * 64))
        B = sum(index.numel() for _, index, *_ in blocks)
        new = KVCache(cfg, B, width, device=self.device, dtype=self.model.wte.weight.dtype, full_width=self.full_width)
        new.length = length
        row, new_start = 0, []
        for cache, index, first, offsets, span in blocks:
            rows = slice(row, row + index.numel())
            new.k[:, rows, :, length - span : length] = cache.k[:, index, :, first : cache.length]
            new.v[:, rows, :, length - span : length] = cache.v[:, index, :, first : cache.length]
            if new.smear_prev is not None:  # each row's last embedding, for a model with smear
                new.smear_prev[rows] = cache.smear_prev[index]
            new_start.append(offsets + (length - span))
            row += index.numel()
        self.cache = new
        self.start = torch.cat(new_start)

    def _choose(self) -> torch.Tensor:
        """(B,) the next token of every row."""
        B = len(self.rows)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(self.rows):
            s = r.job.settings
            groups.setdefault((s.strategy, s.sampling, s.valid_utf8 is not None), []).append(i)
        if len(groups) == 1:  # every row alike (the common case): no gather of the rows, no scatter back
            ((strategy, sampling, utf8),) = groups
            return self._choose_group(strategy, sampling, utf8, None, list(range(B)))
        tokens = torch.empty(B, dtype=torch.long, device=self.device)
        for (strategy, sampling, utf8), members in groups.items():
            idx = torch.tensor(members, device=self.device)
            tokens[idx] = self._choose_group(strategy, sampling, utf8, idx, members)
        return tokens

    def _choose_group(self, strategy: str, sampling, utf8: bool, idx: torch.Tensor | None, members: list[int]):
        """The tokens (len(members),) of rows of one kind of settings; idx: their rows (None: all rows)."""

        def rows_of(t: torch.Tensor) -> torch.Tensor:
            return t if idx is None else t[idx]

        history = History(
            seen=rows_of(self.seen) if sampling.needs_seen else None,
            counts=rows_of(self.counts) if sampling.needs_counts else None,
            utf8=Utf8Rows(self.utf8, rows_of(self.states)) if utf8 else None,
        )
        chain = logits_processors(sampling) if strategy == "sample" else penalty_processors(sampling)
        scores = apply_processors(rows_of(self.logits), chain, history)
        if strategy == "greedy" or sampling.greedy:
            return scores.argmax(dim=-1)
        rows = [self.rows[i] for i in members]
        seeds = torch.tensor([r.job.settings.seed for r in rows], dtype=torch.long, device=self.device)
        steps = torch.tensor([r.generated for r in rows], dtype=torch.long, device=self.device)
        choices = torch.tensor([r.job.first_row + r.choice for r in rows], device=self.device)
        return sample(scores, seeds, steps, choices)

    def _hand_out(self, tokens: torch.Tensor) -> list[int]:
        """Emit every row's token; the rows that end."""
        token_list = tokens.tolist()
        want = [i for i, r in enumerate(self.rows) if r.job.logprobs is not None]
        logprob_of: dict[int, tuple[float, list[tuple[int, float]]]] = {}
        if want:
            idx = torch.tensor(want, device=self.device)
            lp = torch.log_softmax(self.logits[idx], dim=-1)
            k = max(self.rows[i].job.logprobs for i in want)
            top_lp, top_ids = lp.topk(max(k, 1), dim=-1)
            chosen = lp.gather(1, tokens[idx].unsqueeze(1)).squeeze(1).tolist()
            for j, i in enumerate(want):
                n_top = self.rows[i].job.logprobs
                top = list(zip(top_ids[j, :n_top].tolist(), top_lp[j, :n_top].tolist(), strict=True))
                logprob_of[i] = (chosen[j], top)
        ended = []
        for i, (r, t) in enumerate(zip(self.rows, token_list, strict=True)):
            r.generated += 1
            s = r.job.settings
            finish = "stop" if t in s.eos_ids else "length" if r.generated >= s.max_new_tokens else None
            lp, top = logprob_of.get(i, (None, None))
            r.job.emit(TokenEvent(r.choice, t, finish, lp, top))
            if finish is not None:
                ended.append(i)
        self.tokens_generated += len(token_list)
        return ended

    def _advance_state(self, tokens: torch.Tensor) -> None:
        # A row's seen / counts are read by its own settings' processors only, so while no row's settings
        # read them they are not kept up to date (a row that needs them keeps them itself from its admission).
        sampling = [r.job.settings.sampling for r in self.rows]
        if any(s.needs_seen for s in sampling):
            self.seen.scatter_(1, tokens.unsqueeze(1), True)
        if any(s.needs_counts for s in sampling):
            self.counts.scatter_add_(1, tokens.unsqueeze(1), torch.ones_like(self.counts[:, :1]))
        if self.utf8 is not None:
            rows = Utf8Rows(self.utf8, self.states)
            rows.advance(tokens)
            self.states = rows.states

    def _drop(self, drop: Sequence[int]) -> None:
        """Remove rows (their KV rows are freed with the old cache)."""
        if not drop:
            return
        gone = set(drop)
        keep = [i for i in range(len(self.rows)) if i not in gone]
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self.cache = None
            self.start = self.start[:0]
            self.logits, self.seen, self.counts = self.logits[:0], self.seen[:0], self.counts[:0]
            self.states = self.states[:0]
            return
        index = torch.tensor(keep, device=self.device)
        self.logits, self.seen, self.counts = self.logits[index], self.seen[index], self.counts[index]
        self.states = self.states[index]
        assert self.cache is not None
        if int(self.start[index].min()) > 0:  # the longest row left: trim the padding no row needs
            self._rebuild([(self.cache, index, self.start[index])])
        else:
            self.cache.reorder(index)
            self.start = self.start[index]

    def _forward(self, tokens: torch.Tensor) -> None:
        cache = self.cache
        assert cache is not None
        if cache.length + 1 > cache.max_len:
            self._rebuild([(cache, torch.arange(len(self.rows), device=self.device), self.start)], extra=63)
            cache = self.cache
        if self.decode is not None and not self.model.training:
            self.logits = self.decode(tokens, cache, self.start).float()
        else:
            mask = None  # no row padded (a batch of one, rows of one length): what a lone decode runs
            if bool(self.start.any()):
                columns = torch.arange(cache.length + 1, device=self.device)
                mask = columns.unsqueeze(0) >= self.start.unsqueeze(1)  # (B, length + 1): the row's real tokens
            with self._autocast():
                self.logits = self.model(tokens.unsqueeze(1), attention_mask=mask, kv_cache=cache)[:, -1].float()
        self.steps_run += 1

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _fail_all(self, error: BaseException) -> None:
        jobs = {id(r.job): r.job for r in self.rows}
        with self.wake:
            jobs.update({id(j): j for j in self.waiting})
            self.waiting.clear()
        for job in jobs.values():
            job.emit(error)
        self.rows, self.cache = [], None
        self.start = self.start[:0]
        self.logits, self.seen, self.counts, self.states = (
            self.logits[:0],
            self.seen[:0],
            self.counts[:0],
            self.states[:0],
        )


def prefill_groups(jobs: list[Job], waste: float = 0.5) -> list[list[Job]]:
    """The joining jobs in groups prefilled together (one forward pass each, prompts left-padded), shortest
    prompts first: a group grows while its padding stays under `waste` of its real tokens, so one long
    prompt does not make fifteen short ones pay for its length."""
    groups: list[list[Job]] = []
    for job in sorted(jobs, key=lambda j: len(j.prompt)):
        if groups:
            group = groups[-1]
            real = sum(len(j.prompt) for j in group) + len(job.prompt)
            if (len(group) + 1) * len(job.prompt) - real <= waste * real:
                group.append(job)
                continue
        groups.append([job])
    return groups


def resolve_for_batching(settings: GenerationSettings, vocab_size: int) -> GenerationSettings:
    """A checked copy the scheduler can run: strategy greedy or sample (beam search and no-repeat n-gram
    need per-step Python work the batch does not do), a seed drawn when none is given (as
    `stream_generate` does). The number of choices is the Job's n, not num_return_sequences."""
    s = settings.resolved(vocab_size)
    if s.strategy == "beam":
        raise GenerationError("num_beams: beam search is not available in the batched decoder")
    if s.sampling.no_repeat_ngram_size:
        raise GenerationError("no_repeat_ngram_size is not available in the batched decoder")
    if s.num_return_sequences != 1:
        raise GenerationError("num_return_sequences: give the batched decoder's Job n choices instead")
    seed = s.seed if s.seed is not None else int(torch.randint(0, 2**62, (1,)).item())
    return replace(s, seed=seed % 2**63)


__all__ = ["BatchScheduler", "Job", "QueueFull", "TokenEvent", "resolve_for_batching"]
