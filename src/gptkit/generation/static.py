"""The static decoder (CUDA by default): greedy or sampling with fixed shapes and all state on the device,
so one step is captured once as a CUDA graph (optionally compiled with torch.compile) and replayed."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import replace

import torch

from gptkit.generation.decoding import Events, device_of, left_pad
from gptkit.generation.sampling import History, apply_processors, logits_processors, sample
from gptkit.generation.settings import GenerationSettings
from gptkit.generation.utf8 import Utf8Rows
from gptkit.model import GPT, KVCache


class StaticDecoder:
    """Greedy or sampling decode with fixed shapes: B rows, a static KV cache of max_len slots, all state
    on the device. One `step(model)` chooses the next token from `logits`, records it in `next`, and runs
    the model on it to refill `logits`; no host sync, so on CUDA it is captured once as a graph and replayed.
    Rows that finish keep running (fixed shapes) but repeat the first EOS id. It holds no reference to the
    model, so that a model can be freed with its cached decoder.
    """

    def __init__(
        self, model: GPT, batch_size: int, max_len: int, s: GenerationSettings, *, capture: bool, compile: bool | str
    ) -> None:
        device, cfg = device_of(model), model.config
        B, V = batch_size, cfg.vocab_size
        self.settings = s
        self.chain = logits_processors(s.sampling)
        self.cache = KVCache(cfg, B, max_len, device=device, dtype=model.wte.weight.dtype, static=True)
        self.mask = torch.zeros(B, max_len, dtype=torch.bool, device=device)
        self.logits = torch.zeros(B, V, device=device)  # float32
        self.seen = torch.zeros(B, V, dtype=torch.bool, device=device) if s.sampling.needs_seen else None
        self.counts = torch.zeros(B, V, dtype=torch.int32, device=device) if s.sampling.needs_counts else None
        self.utf8 = None
        if s.valid_utf8 is not None:
            self.utf8 = Utf8Rows(s.valid_utf8, torch.zeros(B, dtype=torch.long, device=device))
        self.finished = torch.zeros(B, dtype=torch.bool, device=device)
        self.next = torch.zeros(B, dtype=torch.long, device=device)
        self.step_count = torch.zeros((), dtype=torch.long, device=device)
        self.seed = torch.zeros((), dtype=torch.long, device=device)
        self.rows = torch.arange(B, device=device)
        self.eos = torch.zeros(max(1, len(s.eos_ids)), dtype=torch.long, device=device)
        self.has_eos = bool(s.eos_ids)
        self._fn = self._step
        if compile:
            mode = compile if isinstance(compile, str) else None
            self._fn = torch.compile(self._step, dynamic=False, mode=mode)
        self.graph: torch.cuda.CUDAGraph | None = None
        if capture:
            self._capture(model)

    def _step(self, model: GPT) -> None:
        s = self.settings
        scores = apply_processors(self.logits, self.chain, History(seen=self.seen, utf8=self.utf8, counts=self.counts))
        if s.strategy == "greedy" or s.sampling.greedy:
            nxt = scores.argmax(dim=-1)
        else:
            nxt = sample(scores, self.seed, self.step_count, self.rows)
        nxt = torch.where(self.finished, self.eos[0], nxt)
        self.next.copy_(nxt)
        if self.has_eos:
            self.finished |= torch.isin(nxt, self.eos)
        if self.seen is not None:
            self.seen.scatter_(1, nxt.unsqueeze(1), True)
        if self.counts is not None:
            self.counts.scatter_add_(1, nxt.unsqueeze(1), torch.ones_like(self.counts[:, :1]))
        if self.utf8 is not None:
            self.utf8.advance(nxt)
        self.step_count.add_(1)
        self.mask.index_fill_(1, self.cache.position, True)  # the slot this token is written to
        logits = model(nxt.unsqueeze(1), attention_mask=self.mask, kv_cache=self.cache)
        self.logits.copy_(logits[:, -1])

    def _capture(self, model: GPT) -> None:
        # Warm up on a side stream (this is where torch.compile compiles), then record one step.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(3):
                self._fn(model)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph):
            self._fn(model)

    def start(self, model: GPT, rows: list[list[int]], seed: int | None) -> None:
        """Reset the state in place (the graph keeps pointing at these tensors) and prefill `rows`."""
        s = self.settings
        B, P = len(rows), max(len(r) for r in rows)
        with torch.inference_mode():
            idx, mask = left_pad(rows, self.mask.device)
            self.mask.zero_()
            self.mask[:, :P] = True if mask is None else mask.bool()
            self.cache.position.zero_()
            self.finished.zero_()
            self.step_count.zero_()
            self.seed.fill_(seed or 0)
            if s.eos_ids:
                self.eos.copy_(torch.tensor(s.eos_ids))
            if self.counts is not None:
                self.counts.zero_()
            if self.seen is not None:
                self.seen.copy_(History.start(rows, self.seen.shape[1], self.seen.device, seen=True, tokens=False).seen)
            if self.utf8 is not None:
                self.utf8.states.copy_(Utf8Rows.start(s.valid_utf8, rows, self.utf8.states.device).states)
            logits = model(idx, attention_mask=self.mask, kv_cache=self.cache, last_logits_only=True)
            self.logits.copy_(logits[:, -1])
        assert B == self.rows.numel()

    def step(self, model: GPT) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            with torch.inference_mode():
                self._fn(model)


# One static decoder kept per model (its graph and buffers), reused while the shapes and settings match.
_STATIC: weakref.WeakKeyDictionary[GPT, tuple[tuple, StaticDecoder]] = weakref.WeakKeyDictionary()


def static_decoder(model: GPT, batch_size: int, needed_len: int, s: GenerationSettings) -> StaticDecoder:
    """The cached StaticDecoder for these shapes and settings, or a new one. The cache length is rounded up
    to a multiple of 256 (within the context) so that nearby prompt lengths share one graph."""
    max_len = min(model.config.block_size, -(-needed_len // 256) * 256)
    on_cuda = device_of(model).type == "cuda"
    shape_settings = replace(s, seed=None, truncate_prompt=False, eos_token_id=(0,) * len(s.eos_ids))
    key = (batch_size, max_len, model.wte.weight.dtype, shape_settings, on_cuda)
    cached = _STATIC.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    _STATIC.pop(model, None)  # free the old graph and cache first
    decoder = StaticDecoder(model, batch_size, max_len, s, capture=on_cuda, compile=s.compile)
    _STATIC[model] = (key, decoder)
    return decoder


def decode_static(model: GPT, rows: list[list[int]], s: GenerationSettings, stopped: set[int]) -> Iterator[Events]:
    B = len(rows)
    decoder = static_decoder(model, B, max(len(r) for r in rows) + s.max_new_tokens, s)
    decoder.start(model, rows, s.seed)
    eos = set(s.eos_ids)
    done: set[int] = set()
    chunk = 8 if decoder.graph is not None else 1  # steps between host syncs
    produced = 0
    while produced < s.max_new_tokens and len(done) < B:
        n = min(chunk, s.max_new_tokens - produced)
        outs = []
        for _ in range(n):
            decoder.step(model)
            outs.append(decoder.next.clone())
        tokens = torch.stack(outs, dim=1).tolist()  # (B, n): the one host sync of the chunk
        produced += n
        events: Events = []
        for j in range(n):
            for row in range(B):
                if row not in done:
                    events.append((row, tokens[row][j]))
                    if tokens[row][j] in eos:
                        done.add(row)
        yield events
        newly_stopped = sorted(stopped - done)
        if newly_stopped:
            done.update(newly_stopped)
            decoder.finished[torch.tensor(newly_stopped, device=decoder.finished.device)] = True


__all__ = ["StaticDecoder", "decode_static", "static_decoder"]
