"""Token-level generation: one prefill pass per batch, then one token per step from a preallocated KV cache.

Works on token ids only; gptkit.generation.text turns text into ids and back. Three decoders:
- eager (any device): greedy or sampling; prompts of different lengths left-padded into one batch;
  finished rows are dropped from the batch (and the cache) so they stop costing compute.
- static (CUDA by default): greedy or sampling with fixed shapes and all state on the device, so one
  step is captured once as a CUDA graph (optionally compiled with torch.compile) and replayed.
- beam search: HF transformers' semantics (length penalty, early stopping True / False / "never",
  n-best), with the cache reordered every step and finished prompts dropped from the batch.

Rows: with num_return_sequences n, prompt i owns rows i*n ... i*n + n - 1 (best first for beam search).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Union

import torch

from gptkit.checkpoint import unwrap_model
from gptkit.errors import GptkitError
from gptkit.generation.sampling import (
    History,
    SamplingSettings,
    apply_processors,
    logits_processors,
    penalty_processors,
    sample,
)
from gptkit.generation.utf8 import Utf8Rows, Utf8Table
from gptkit.model import GPT, KVCache

STRATEGIES = ("greedy", "sample", "beam")
Events = list[tuple[int, int]]  # (row, token) pairs, in the order the tokens were produced
EosIds = Union[int, Sequence[int], None]


class GenerationError(GptkitError, ValueError):
    """A generation setting or prompt is invalid; the message names it."""


@dataclass(frozen=True)
class GenerationSettings:
    """Every option of `generate`; see its docstring. `resolved()` fills in the strategy and checks all."""

    max_new_tokens: int
    strategy: str | None = None
    temperature: float | None = None  # None: not given (1.0 when sampling); any value given samples
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    num_return_sequences: int = 1
    eos_token_id: EosIds = None
    seed: int | None = None
    truncate_prompt: bool = False
    static_cache: bool | None = None
    compile: bool | str = False
    valid_utf8: Utf8Table | None = None

    @property
    def sampling(self) -> SamplingSettings:
        return SamplingSettings(
            temperature=1.0 if self.temperature is None else self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            min_p=self.min_p,
            repetition_penalty=self.repetition_penalty,
            no_repeat_ngram_size=self.no_repeat_ngram_size,
            valid_utf8=self.valid_utf8 is not None,
        )

    @property
    def eos_ids(self) -> tuple[int, ...]:
        if self.eos_token_id is None:
            return ()
        if isinstance(self.eos_token_id, int):
            return (self.eos_token_id,)
        return tuple(self.eos_token_id)

    @property
    def sampling_filters_set(self) -> bool:
        """A sampling setting was given (temperature 1.0 included): the rule that makes the default strategy
        "sample". Given nothing, generation is greedy."""
        return any(v is not None for v in (self.temperature, self.top_k, self.top_p, self.min_p))

    def resolved(self, vocab_size: int) -> GenerationSettings:
        """A checked copy with `strategy` filled in: "beam" if num_beams > 1, "sample" if any of temperature,
        top_k, top_p, min_p is set, else "greedy". A valid_utf8 table that cannot block anything (every
        token is complete characters) is dropped."""
        strategy = self.strategy
        if strategy is None:
            strategy = "beam" if self.num_beams != 1 else "sample" if self.sampling_filters_set else "greedy"
        s = replace(self, strategy=strategy)
        s._check(vocab_size)
        if s.valid_utf8 is not None and not s.valid_utf8.constrains:
            s = replace(s, valid_utf8=None)
        return s

    def _check(self, vocab_size: int) -> None:
        def is_int(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not is_int(self.max_new_tokens) or self.max_new_tokens < 1:
            raise GenerationError(f"max_new_tokens: must be an integer >= 1, got {self.max_new_tokens!r}")
        if self.strategy not in STRATEGIES:
            raise GenerationError(f"strategy: {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        self.sampling.validate(GenerationError)
        if not is_int(self.num_beams) or self.num_beams < 1:
            raise GenerationError(f"num_beams: must be an integer >= 1, got {self.num_beams!r}")
        if self.num_beams > 1 and self.strategy != "beam":
            raise GenerationError(f"num_beams={self.num_beams} needs strategy='beam', not {self.strategy!r}")
        if self.strategy != "sample" and self.sampling_filters_set:
            raise GenerationError(
                f"temperature, top_k, top_p and min_p apply to strategy='sample' only, not {self.strategy!r}"
            )
        if not (isinstance(self.length_penalty, (int, float)) and math.isfinite(self.length_penalty)):
            raise GenerationError(f"length_penalty: must be a finite number, got {self.length_penalty!r}")
        if self.early_stopping not in (True, False, "never"):
            raise GenerationError(f"early_stopping: must be True, False or 'never', got {self.early_stopping!r}")
        n = self.num_return_sequences
        if not is_int(n) or n < 1:
            raise GenerationError(f"num_return_sequences: must be an integer >= 1, got {n!r}")
        if self.strategy == "greedy" and n > 1:
            raise GenerationError(f"num_return_sequences={n}: greedy decoding has one answer; use sample or beam")
        if self.strategy == "beam" and n > self.num_beams:
            raise GenerationError(f"num_return_sequences={n} is more than num_beams={self.num_beams}")
        for e in self.eos_ids:
            if not is_int(e) or not 0 <= e < vocab_size:
                raise GenerationError(f"eos_token_id: {e!r} is not a token id of this model (0 .. {vocab_size - 1})")
        if self.seed is not None and not is_int(self.seed):
            raise GenerationError(f"seed: must be an integer or None, got {self.seed!r}")
        if self.static_cache and (self.strategy == "beam" or self.no_repeat_ngram_size > 0):
            raise GenerationError(
                "static_cache=True supports greedy and sample without no_repeat_ngram_size (those need Python "
                "work every step); use static_cache=False"
            )
        if self.compile and self.static_cache is False:
            raise GenerationError("compile=True compiles the static-cache step; it cannot go with static_cache=False")
        if not isinstance(self.compile, (bool, str)):
            raise GenerationError(f"compile: expected True, False or a torch.compile mode name, got {self.compile!r}")
        table = self.valid_utf8
        if table is not None:
            if not isinstance(table, Utf8Table):
                raise GenerationError(
                    f"valid_utf8: expected the tokenizer's tables, Utf8Table.for_tokenizer(tokenizer), or None, got "
                    f"{table!r} (token-level generation does not know the tokenizer; Generator takes True/False)"
                )
            if table.vocab_size != vocab_size:
                raise GenerationError(
                    f"valid_utf8: the table is for a vocabulary of {table.vocab_size} tokens, the model has "
                    f"{vocab_size}"
                )
            dead_end = table.dead_end()
            if dead_end is not None:
                raise GenerationError(f"valid_utf8: {dead_end}")


class TokenStream:
    """Tokens as they are produced. Iterating yields, per decoding step, a list of (row, token) pairs
    (the static decoder on CUDA yields every 8 steps, beam search once at the end with its n-best).
    `stop(row)` ends a row early: it produces nothing more. `collect()` runs to the end.
    """

    def __init__(self, run: Callable[[set[int]], Iterator[Events]], n_rows: int) -> None:
        self.n_rows = n_rows
        self._stopped: set[int] = set()
        self._steps = run(self._stopped)

    def __iter__(self) -> TokenStream:
        return self

    def __next__(self) -> Events:
        return next(self._steps)

    def stop(self, row: int) -> None:
        self._stopped.add(row)

    def close(self) -> None:
        self._steps.close()

    def collect(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(self.n_rows)]
        for events in self:
            for row, token in events:
                out[row].append(token)
        return out


def generate(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    strategy: str | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    num_beams: int = 1,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    num_return_sequences: int = 1,
    eos_token_id: EosIds = None,
    seed: int | None = None,
    truncate_prompt: bool = False,
    static_cache: bool | None = None,
    compile: bool | str = False,
    valid_utf8: Utf8Table | None = None,
) -> list[list[int]]:
    """Continue each prompt (a list of token ids); returns the new tokens of each row, ending with the EOS
    token when one was generated. With num_return_sequences n, prompt i's sequences are rows i*n .. i*n+n-1.

    strategy: "greedy", "sample" or "beam"; by default "beam" when num_beams > 1, "sample" when any of
    temperature / top_k / top_p / min_p is given (temperature=1.0 too: a setting given explicitly samples),
    else "greedy". Sampling: temperature (default 1.0; 0 = most likely token), top_k, top_p (nucleus),
    min_p; penalties for every strategy: repetition_penalty (CTRL),
    no_repeat_ngram_size. Beam search: num_beams, length_penalty (score = sum of log-probs / length **
    length_penalty), early_stopping (True: stop a prompt when num_beams hypotheses are done; False: when
    no running beam can beat them at the current length; "never": ... at the longest length), the best
    num_return_sequences hypotheses. eos_token_id: an id or ids that end a row. seed: same seed, same
    tokens (None draws one from torch's global RNG). truncate_prompt: cut prompts from the left to fit
    the context instead of failing. static_cache (default: on CUDA): fixed-shape decode replayed as a
    CUDA graph; compile: also torch.compile that step (slow to start, fastest per token); a string is
    passed as torch.compile's mode (e.g. "max-autotune-no-cudagraphs"; the graph is gptkit's own).
    valid_utf8: the tokenizer's `Utf8Table` (`Utf8Table.for_tokenizer(tok)`) to allow, at every step, only
    the tokens after which each row's bytes (prompt tail included) can still be valid UTF-8: no U+FFFD when
    decoded; special tokens only between characters. Off by default (HF transformers has no such rule).
    """
    settings = GenerationSettings(
        max_new_tokens=max_new_tokens,
        strategy=strategy,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size,
        num_beams=num_beams,
        length_penalty=length_penalty,
        early_stopping=early_stopping,
        num_return_sequences=num_return_sequences,
        eos_token_id=eos_token_id,
        seed=seed,
        truncate_prompt=truncate_prompt,
        static_cache=static_cache,
        compile=compile,
        valid_utf8=valid_utf8,
    )
    return stream_generate(model, prompts, settings).collect()


def stream_generate(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    settings: GenerationSettings | None = None,
    **options,
) -> TokenStream:
    """Like `generate`, but returns a TokenStream that yields tokens as they are produced. Give either a
    GenerationSettings or its fields as keyword options."""
    if settings is None:
        try:
            settings = GenerationSettings(**options)
        except TypeError as e:
            raise GenerationError(f"stream_generate: {e}") from None
    elif options:
        raise GenerationError("stream_generate: give either settings or keyword options, not both")
    gpt = unwrap_model(model)
    if not isinstance(gpt, GPT):
        raise TypeError(f"generate expects a gptkit GPT, got {type(gpt).__name__}")
    s = settings.resolved(gpt.config.vocab_size)
    if s.seed is None and s.strategy == "sample":
        s = replace(s, seed=int(torch.randint(0, 2**62, (1,)).item()))
    elif s.seed is not None:
        s = replace(s, seed=s.seed % 2**63)  # any Python int; the hash takes 64 bits
    prompts = check_prompts(prompts, s, gpt.config.vocab_size, gpt.config.block_size)
    n = s.num_return_sequences
    if s.strategy == "beam":
        run = _beam_search
    else:
        prompts = [p for p in prompts for _ in range(n)]  # each prompt once per sequence asked for
        use_static = s.static_cache if s.static_cache is not None else _device(gpt).type == "cuda"
        use_static = (use_static and s.no_repeat_ngram_size == 0) or s.compile
        run = _decode_static if use_static else _decode_eager

    def steps(stopped: set[int]) -> Iterator[Events]:
        was_training = gpt.training
        gpt.eval()
        try:
            yield from run(gpt, prompts, s, stopped)
        finally:
            gpt.train(was_training)

    return TokenStream(steps, len(prompts) if s.strategy != "beam" else len(prompts) * n)


def check_prompts(
    prompts: Sequence[Sequence[int]], s: GenerationSettings, vocab_size: int, block_size: int
) -> list[list[int]]:
    """Prompts as lists of ints, checked against the vocabulary and the context (cut from the left when
    s.truncate_prompt)."""
    if isinstance(prompts, torch.Tensor) and prompts.dim() == 2:
        prompts = prompts.tolist()  # (B, T): B prompts of T tokens each
    if not isinstance(prompts, Sequence) or isinstance(prompts, str):
        raise GenerationError("prompts: expected a list of prompts, each a list of token ids (or a (B, T) tensor)")
    if not prompts:
        raise GenerationError("prompts: the list is empty")
    room = block_size - s.max_new_tokens
    out = []
    for i, p in enumerate(prompts):
        if isinstance(p, (str, bytes)) or not isinstance(p, Sequence):
            raise GenerationError(f"prompts[{i}]: expected a list of token ids, got {type(p).__name__}")
        p = [int(t) for t in p]
        if not p:
            raise GenerationError(f"prompts[{i}]: is empty (start it with a start token, e.g. <|endoftext|>)")
        bad = [t for t in p if not 0 <= t < vocab_size]
        if bad:
            raise GenerationError(f"prompts[{i}]: token id {bad[0]} is outside the vocabulary (0 .. {vocab_size - 1})")
        if len(p) > room:
            if not s.truncate_prompt or room < 1:
                raise GenerationError(
                    f"prompts[{i}]: {len(p)} prompt tokens + max_new_tokens {s.max_new_tokens} = "
                    f"{len(p) + s.max_new_tokens} positions, more than the model's context of {block_size}"
                    + ("" if room < 1 else " (truncate_prompt=True cuts the prompt from the left)")
                )
            p = p[len(p) - room :]
        out.append(p)
    return out


def cpu_decode_layout(model: GPT) -> GPT:
    """Store the model's Linear weights column-major (same shapes and values, transposed strides), in place.

    Batch-1 decoding on a CPU is a string of matrix-vector products that stream every weight from memory;
    with the weight laid out (in, out) they run about 1.5x faster than with nn.Linear's (out, in) (measured:
    gpt2 124M, MKL on AMD EPYC, 80 -> 52 ms per token). Meant for a model that only generates (Generator.load
    does it on CPU): training graphs compiled for the usual strides would recompile. Saving is unaffected.
    Returns the model; does nothing off the CPU.
    """
    if _device(model).type != "cpu":
        return model
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and module.weight.is_contiguous():
                module.weight.data = module.weight.data.t().contiguous().t()
    return model


# ---- helpers ----------------------------------------------------------------------------------
def _device(model: GPT) -> torch.device:
    return model.wte.weight.device


def left_pad(rows: Sequence[Sequence[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token ids (B, P) right-aligned, and the (B, P) 1/0 mask of real tokens (None when nothing is padded)."""
    P = max(len(r) for r in rows)
    idx = torch.zeros(len(rows), P, dtype=torch.long)
    mask = torch.zeros(len(rows), P, dtype=torch.long)
    for i, r in enumerate(rows):
        idx[i, P - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, P - len(r) :] = 1
    padded = any(len(r) < P for r in rows)
    return idx.to(device), (mask.to(device) if padded else None)


def _choose(logits: torch.Tensor, s: GenerationSettings, step, rows: torch.Tensor) -> torch.Tensor:
    """Next token per row (B,) from processed logits."""
    if s.strategy == "greedy" or s.sampling.greedy:
        return logits.argmax(dim=-1)
    return sample(logits, s.seed, step, rows)


# ---- eager decoding (greedy, sampling) -------------------------------------------------------
def _decode_eager(model: GPT, rows: list[list[int]], s: GenerationSettings, stopped: set[int]) -> Iterator[Events]:
    device, V = _device(model), model.config.vocab_size
    chain = logits_processors(s.sampling) if s.strategy == "sample" else penalty_processors(s.sampling)
    eos = set(s.eos_ids)
    alive = list(range(len(rows)))  # row id of each batch row still generating
    with torch.inference_mode():
        alive_t = torch.arange(len(rows), device=device)
        history = History.start(
            rows, V, device, seen=s.sampling.needs_seen, tokens=s.sampling.needs_tokens, utf8=s.valid_utf8
        )
        idx, mask = left_pad(rows, device)
        P = idx.shape[1]
        cache = KVCache(model.config, len(rows), P + s.max_new_tokens - 1, device=device, dtype=model.wte.weight.dtype)
        logits = model(idx, attention_mask=mask, kv_cache=cache, last_logits_only=True)[:, -1]
    for step in range(s.max_new_tokens):
        with torch.inference_mode():
            nxt = _choose(apply_processors(logits.float(), chain, history), s, step, alive_t)
        tokens = nxt.tolist()
        yield list(zip(alive, tokens, strict=True))
        keep = [i for i, (row, t) in enumerate(zip(alive, tokens, strict=True)) if t not in eos and row not in stopped]
        if not keep or step == s.max_new_tokens - 1:
            return
        with torch.inference_mode():
            history.append(nxt, tokens)
            if len(keep) < len(alive):  # drop finished rows from the batch and the cache
                keep_t = torch.tensor(keep, device=device)
                cache.reorder(keep_t)
                history.select(keep, keep_t)
                nxt, alive_t = nxt[keep_t], alive_t[keep_t]
                mask = mask[keep_t] if mask is not None else None
                alive = [alive[i] for i in keep]
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(len(alive), 1)], dim=1)
            logits = model(nxt.unsqueeze(1), attention_mask=mask, kv_cache=cache)[:, -1]


# ---- static decoding (CUDA graphs) -----------------------------------------------------------
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
        device, cfg = _device(model), model.config
        B, V = batch_size, cfg.vocab_size
        self.settings = s
        self.chain = logits_processors(s.sampling)
        self.cache = KVCache(cfg, B, max_len, device=device, dtype=model.wte.weight.dtype, static=True)
        self.mask = torch.zeros(B, max_len, dtype=torch.bool, device=device)
        self.logits = torch.zeros(B, V, device=device)  # float32
        self.seen = torch.zeros(B, V, dtype=torch.bool, device=device) if s.sampling.needs_seen else None
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
        scores = apply_processors(self.logits, self.chain, History(seen=self.seen, utf8=self.utf8))
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
    on_cuda = _device(model).type == "cuda"
    shape_settings = replace(s, seed=None, truncate_prompt=False, eos_token_id=(0,) * len(s.eos_ids))
    key = (batch_size, max_len, model.wte.weight.dtype, shape_settings, on_cuda)
    cached = _STATIC.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    _STATIC.pop(model, None)  # free the old graph and cache first
    decoder = StaticDecoder(model, batch_size, max_len, s, capture=on_cuda, compile=s.compile)
    _STATIC[model] = (key, decoder)
    return decoder


def _decode_static(model: GPT, rows: list[list[int]], s: GenerationSettings, stopped: set[int]) -> Iterator[Events]:
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


# ---- beam search ------------------------------------------------------------------------------
_NEG = -1.0e9  # HF's "impossible" score: finite so that sums and sorts stay well defined


def _beam_search(model: GPT, prompts: list[list[int]], s: GenerationSettings, stopped: set[int]) -> Iterator[Events]:
    """Beam search with HF transformers' semantics (GenerationMixin._beam_search, v4.50+/v5):
    every step keeps the 2 * num_beams best continuations (more with several EOS ids) of all beams; among
    those ranked in the top num_beams, the ones that end (EOS, or the last step) become hypotheses scored
    sum(log p) / new_length ** length_penalty, and the best num_beams non-ending ones run on. A prompt is
    done when early_stopping is True and it has num_beams hypotheses, or when its best running beam cannot
    beat its worst hypothesis (at the current length; "never" with length_penalty > 0: at the longest)."""
    device, V = _device(model), model.config.vocab_size
    nb, T, lp = s.num_beams, s.max_new_tokens, float(s.length_penalty)
    B = len(prompts)
    K = max(2, 1 + len(s.eos_ids)) * nb
    chain = penalty_processors(s.sampling)
    with torch.inference_mode():
        eos = torch.tensor(s.eos_ids, dtype=torch.long, device=device)
        idx, mask = left_pad(prompts, device)
        P = idx.shape[1]
        cache = KVCache(model.config, B, P + T - 1, device=device, dtype=model.wte.weight.dtype)
        logits = model(idx, attention_mask=mask, kv_cache=cache, last_logits_only=True)[:, -1]
        expand = torch.arange(B, device=device).repeat_interleave(nb)  # each prompt's cache row, once per beam
        cache.reorder(expand)
        logits, mask = logits[expand], (mask[expand] if mask is not None else None)
        beam_rows = [p for p in prompts for _ in range(nb)]
        history = History.start(
            beam_rows, V, device, seen=s.sampling.needs_seen, tokens=s.sampling.needs_tokens, utf8=s.valid_utf8
        )

        run_scores = torch.full((B, nb), _NEG, device=device)
        run_scores[:, 0] = 0.0  # only the first beam's continuations count at the first step
        run_tokens = torch.zeros(B, nb, T, dtype=torch.long, device=device)
        hyp_tokens = torch.zeros(B, nb, T, dtype=torch.long, device=device)
        hyp_scores = torch.full((B, nb), _NEG, device=device)
        hyp_len = torch.zeros(B, nb, dtype=torch.long, device=device)
        hyp_done = torch.zeros(B, nb, dtype=torch.bool, device=device)
        can_improve = torch.ones(B, dtype=torch.bool, device=device)
        top_nb = torch.arange(K, device=device) < nb  # (K,) candidates allowed to become hypotheses
        items = torch.arange(B, device=device)  # prompts still searching (rows of the state tensors)
        finals: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # prompt -> (tokens (nb, T), lengths (nb,))

        for t in range(T):
            n = items.numel()
            logp = apply_processors(torch.log_softmax(logits.float(), dim=-1), chain, history)
            total = (logp.view(n, nb, V) + run_scores[items].unsqueeze(-1)).view(n, nb * V)
            top_scores, top_idx = torch.topk(total, K, dim=-1)  # (n, K), best first
            src, tok = top_idx // V, top_idx % V  # beam each candidate extends, and its token
            cand_tokens = run_tokens[items].gather(1, src.unsqueeze(-1).expand(n, K, T)).clone()
            cand_tokens[:, :, t] = tok
            ends = torch.isin(tok, eos) if t < T - 1 else torch.ones_like(tok, dtype=torch.bool)

            # Running beams for the next step: the best nb candidates that do not end.
            running = top_scores + ends.float() * _NEG
            pick = torch.topk(running, nb, dim=-1).indices  # (n, nb)
            run_scores[items] = running.gather(1, pick)
            run_tokens[items] = cand_tokens.gather(1, pick.unsqueeze(-1).expand(n, nb, T))
            run_src = src.gather(1, pick)

            # Hypotheses: merge the ending candidates in the top nb into the best nb so far.
            cand = top_scores / ((t + 1) ** lp)
            if s.early_stopping is True:
                cand = cand + hyp_done[items].all(-1, keepdim=True).float() * _NEG
            cand = cand + (~can_improve[items]).unsqueeze(-1).float() * _NEG
            finishing = ends & top_nb
            cand = cand + (~finishing).float() * _NEG
            merged = torch.cat([hyp_scores[items], cand], dim=1)  # (n, nb + K)
            keep = torch.topk(merged, nb, dim=-1).indices
            hyp_scores[items] = merged.gather(1, keep)
            hyp_tokens[items] = torch.cat([hyp_tokens[items], cand_tokens], 1).gather(
                1, keep.unsqueeze(-1).expand(n, nb, T)
            )
            hyp_len[items] = torch.cat([hyp_len[items], torch.full((n, K), t + 1, device=device)], 1).gather(1, keep)
            hyp_done[items] = torch.cat([hyp_done[items], finishing], 1).gather(1, keep)

            # Can a running beam still beat the worst hypothesis?
            best_len = T if (s.early_stopping == "never" and lp > 0.0) else t + 1
            best_running = run_scores[items, :1] / (best_len**lp)
            worst = torch.where(hyp_done[items], hyp_scores[items].min(-1, keepdim=True).values, _NEG)
            can_improve[items] &= (best_running > worst).any(-1)
            finished = ~can_improve[items]
            if s.early_stopping is True:
                finished |= hyp_done[items].all(-1)
            if t == T - 1:
                finished[:] = True
            finished_list = finished.tolist()
            for j, f in enumerate(finished_list):
                if f:
                    finals[int(items[j])] = (hyp_tokens[items[j]], hyp_len[items[j]])
            if all(finished_list):
                break

            # Next step: reorder the cache and histories to the running beams; drop finished prompts.
            alive = [j for j, f in enumerate(finished_list) if not f]
            alive_t = torch.tensor(alive, device=device)
            beam_index = (alive_t.unsqueeze(1) * nb + run_src[alive_t]).view(-1)  # rows of the current batch
            beam_list = beam_index.tolist()
            cache.reorder(beam_index)
            history.select(beam_list, beam_index)
            mask = mask[beam_index] if mask is not None else None
            items = items[alive_t]
            nxt = run_tokens[items, :, t].reshape(-1)
            history.append(nxt)
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            logits = model(nxt.unsqueeze(1), attention_mask=mask, kv_cache=cache)[:, -1]

        events: Events = []
        n_ret = s.num_return_sequences
        for i in range(B):
            tokens, lengths = finals[i]
            for j in range(n_ret):
                events += [(i * n_ret + j, tk) for tk in tokens[j, : int(lengths[j])].tolist()]
    yield events


__all__ = [
    "STRATEGIES",
    "GenerationError",
    "GenerationSettings",
    "StaticDecoder",
    "TokenStream",
    "check_prompts",
    "cpu_decode_layout",
    "generate",
    "left_pad",
    "stream_generate",
]
