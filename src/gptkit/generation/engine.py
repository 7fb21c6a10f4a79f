"""Token-level generation: one prefill pass per batch, then one token per step from a preallocated KV cache.

Works on token ids only; gptkit.generation.text turns text into ids and back. `generate` / `stream_generate`
check the settings and the prompts and hand them to one of the decoders, each in its own module:
- eager (gptkit.generation.eager, any device): greedy or sampling, finished rows dropped from the batch;
- static (gptkit.generation.static, CUDA by default): fixed shapes, one step replayed as a CUDA graph;
- beam search (gptkit.generation.beam): HF transformers' semantics.
The continuous-batching scheduler of the HTTP server (gptkit.generation.batched) is the fourth.

Rows: with num_return_sequences n, prompt i owns rows i*n ... i*n + n - 1 (best first for beam search).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import torch

from gptkit.checkpoint import unwrap_model
from gptkit.generation.beam import beam_search
from gptkit.generation.decoding import Events, device_of, left_pad
from gptkit.generation.eager import decode_eager
from gptkit.generation.settings import STRATEGIES, GenerationError, GenerationSettings
from gptkit.generation.static import _STATIC, StaticDecoder, decode_static, static_decoder
from gptkit.model import GPT


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
    settings: GenerationSettings | None = None,
    **options,
) -> list[list[int]]:
    """Continue each prompt (a list of token ids); returns the new tokens of each row, ending with the EOS
    token when one was generated. With num_return_sequences n, prompt i's sequences are rows i*n .. i*n+n-1.

    strategy: "greedy", "sample" or "beam"; by default "beam" when num_beams > 1, "sample" when any of
    temperature / top_k / top_p / min_p is given (temperature=1.0 too: a setting given explicitly samples), else
    "greedy". Sampling: temperature (default 1.0; 0 = most likely token), top_k, top_p (nucleus), min_p;
    penalties for every strategy: repetition_penalty (CTRL), presence_penalty / frequency_penalty (OpenAI's, on
    generated tokens), no_repeat_ngram_size. Beam search: num_beams, length_penalty (score = sum of log-probs /
    length ** length_penalty), early_stopping (True: stop a prompt when num_beams hypotheses are done; False:
    when no running beam can beat them at the current length; "never": ... at the longest length), the best
    num_return_sequences hypotheses. eos_token_id: an id or ids that end a row. seed: same seed, same tokens
    (None draws one from torch's global RNG). truncate_prompt: cut prompts from the left to fit the context
    instead of failing. static_cache (default: on CUDA): fixed-shape decode replayed as a CUDA graph; compile:
    also torch.compile that step (slow to start, fastest per token); a string is passed as torch.compile's mode
    (e.g. "max-autotune-no-cudagraphs"; the graph is gptkit's own). valid_utf8: the tokenizer's `Utf8Table`
    (`Utf8Table.for_tokenizer(tok)`) to allow, at every step, only the tokens after which each row's bytes
    (prompt tail included) can still be valid UTF-8: no U+FFFD when decoded; special tokens only between
    characters. Off by default (HF transformers has no such rule).
    The options are the fields of `GenerationSettings` and `SamplingSettings`; or give `settings`, a
    GenerationSettings, instead.
    """
    return stream_generate(model, prompts, settings, **options).collect()


def _settings(settings: GenerationSettings | None, options: dict) -> GenerationSettings:
    if settings is None:
        return GenerationSettings.build(**options)
    if options:
        raise GenerationError("give either settings or keyword options, not both")
    if not isinstance(settings, GenerationSettings):
        raise GenerationError(f"settings: expected a GenerationSettings, got {type(settings).__name__}")
    return settings


def stream_generate(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    settings: GenerationSettings | None = None,
    **options,
) -> TokenStream:
    """Like `generate`, but returns a TokenStream that yields tokens as they are produced. Give either a
    GenerationSettings or its fields as keyword options."""
    settings = _settings(settings, options)
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
        run = beam_search
    else:
        prompts = [p for p in prompts for _ in range(n)]  # each prompt once per sequence asked for
        use_static = s.static_cache if s.static_cache is not None else device_of(gpt).type == "cuda"
        use_static = (use_static and s.sampling.no_repeat_ngram_size == 0) or s.compile
        run = decode_static if use_static else decode_eager

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
    if device_of(model).type != "cpu":
        return model
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and module.weight.is_contiguous():
                module.weight.data = module.weight.data.t().contiguous().t()
    return model


__all__ = [
    "STRATEGIES",
    "_STATIC",
    "GenerationError",
    "GenerationSettings",
    "StaticDecoder",
    "TokenStream",
    "check_prompts",
    "cpu_decode_layout",
    "generate",
    "left_pad",
    "static_decoder",
    "stream_generate",
]
