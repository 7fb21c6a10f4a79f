"""Text in, text out, over the token-level engine: `Generator.load(ckpt).complete(text)` / `.stream(text)`.

Prompts are encoded with the checkpoint's tokenizer and, by default, start with <|endoftext|> as BOS (every
document gptkit trains on starts with it; GPT-2 saw it between documents too). Generation ends at
<|endoftext|>, which is not returned. Streaming goes through the tokenizer's incremental decoder, so a
character split across tokens is never emitted half. Stop strings are found in the decoded text, also
when one spans several tokens, and are not returned: text that might be the start of a stop string is
held back until it is clear.

The text is valid UTF-8, with no U+FFFD: by default (valid_utf8=True) every step allows only the tokens
after which the bytes so far can still be valid UTF-8 (gptkit.generation.utf8), and when generation ends
(max_new_tokens, a stop string) in the middle of a character, the bytes of that unfinished character are
dropped rather than decoded as U+FFFD (also with valid_utf8=False, which lets the model emit invalid bytes
mid-text, decoded as U+FFFD).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace

import torch

from gptkit.checkpoint import load_model
from gptkit.generation.engine import cpu_decode_layout, stream_generate
from gptkit.generation.settings import GenerationError, GenerationSettings
from gptkit.generation.utf8 import Utf8Table
from gptkit.model import GPT

DEFAULT_MAX_NEW_TOKENS = 128


class StopStrings:
    """Cuts streamed text at the first stop string to complete. push(text) -> (text safe to emit, stopped)."""

    def __init__(self, stops: Sequence[str]) -> None:
        if isinstance(stops, str):
            stops = [stops]
        for s in stops:
            if not isinstance(s, str) or not s:
                raise GenerationError(f"stop: {s!r} is not a non-empty string")
        self.stops = list(stops)
        self.pending = ""  # decoded text not emitted yet: it may begin a stop string

    def push(self, text: str) -> tuple[str, bool]:
        self.pending += text
        # The stop string that completes first, as if the text came one character at a time (of two that
        # end on the same character, the longer): the result does not depend on how text is split up.
        hits = [(i + len(s), i) for s, i in ((s, self.pending.find(s)) for s in self.stops) if i >= 0]
        if hits:
            out, self.pending = self.pending[: min(hits)[1]], ""
            return out, True
        hold = self._longest_partial_stop()
        out, self.pending = self.pending[: len(self.pending) - hold], self.pending[len(self.pending) - hold :]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out

    def _longest_partial_stop(self) -> int:
        """Length of the longest end of `pending` that is the beginning of some stop string."""
        best = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.pending)), best, -1):
                if self.pending.endswith(s[:n]):
                    best = n
                    break
        return best


class TextRow:
    """One row's text as its tokens arrive: the tokenizer's incremental decoder, then the stop strings.
    push(token) -> the text safe to show now; `ended` turns True at an EOS id or a stop string (whose
    text is not returned), and `stopped_by` tells which ("eos" or "stop"). finish() -> the held-back rest.
    An unfinished character (max_new_tokens, or EOS with valid_utf8=False) is dropped, never U+FFFD."""

    def __init__(self, tokenizer, stop: str | Sequence[str], eos_ids: Sequence[int]) -> None:
        self.decoder = tokenizer.stream_decoder()
        self.stops = StopStrings(stop)
        self.eos = set(eos_ids)
        self.ended = False
        self.stopped_by: str | None = None

    def push(self, token: int) -> str:
        if token in self.eos:
            self.stopped_by = "eos"
            return self.finish()
        text, stopped = self.stops.push(self.decoder.push(token))
        if stopped:
            self.ended, self.stopped_by = True, "stop"
        return text

    def finish(self) -> str:
        self.ended = True
        text, stopped = self.stops.push(self.decoder.flush(drop_incomplete=True))
        if stopped:
            self.stopped_by = "stop"
            return text
        return text + self.stops.flush()


def encode_prompt(tokenizer, text: str, *, add_bos: bool = True) -> list[int]:
    """A text prompt's token ids, after the tokenizer's BOS (see the module docstring) when add_bos."""
    if not isinstance(text, str):
        raise GenerationError(f"prompt: expected a string, got {type(text).__name__}")
    ids = tokenizer.encode(text)
    return [tokenizer.bos_id, *ids] if add_bos else ids


class Generator:
    """A model and its tokenizer: text completion with the engine's options (see `gptkit.generate`).

    Options for complete / complete_batch / stream: every keyword of `gptkit.generate` (max_new_tokens
    defaults to 128 capped by the room left in the context, see `default_max_new_tokens`; eos_token_id
    to the tokenizer's <|endoftext|>; None turns EOS off), plus `stop`: a
    string or list of strings that end a completion (beam search: applied to the finished hypotheses),
    and `valid_utf8` (default True): allow only tokens that keep the text valid UTF-8 (see the module
    docstring); False lets the model emit any token, and bytes that are not UTF-8 come out as U+FFFD.
    A character left unfinished when generation ends is dropped, never returned as U+FFFD.
    """

    def __init__(self, model: GPT, tokenizer, *, add_bos: bool = True) -> None:
        if tokenizer.vocab_size != model.config.vocab_size:
            raise GenerationError(
                f"the tokenizer has {tokenizer.vocab_size} tokens but the model's vocab_size is "
                f"{model.config.vocab_size}; they do not belong together"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.add_bos = add_bos

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        add_bos: bool = True,
    ) -> Generator:
        """A checkpoint directory: config.json + model.safetensors + the tokenizer files. On CPU the weights
        are laid out for fast decoding (`cpu_decode_layout`)."""
        from gptkit.tokenizer import Tokenizer

        model = cpu_decode_layout(load_model(path, device=device, dtype=dtype))
        return cls(model, Tokenizer.load(path), add_bos=add_bos)

    def default_max_new_tokens(self, prompt_lengths: Sequence[int]) -> int:
        """max_new_tokens when none is given: DEFAULT_MAX_NEW_TOKENS, capped by the room the longest prompt
        (in tokens, BOS included) leaves in the model's context, so that the default works on every model.
        At least 1: a prompt that fills the context gets the engine's error naming both numbers."""
        room = self.model.config.block_size - max(prompt_lengths)
        return max(1, min(DEFAULT_MAX_NEW_TOKENS, room))

    def encode_prompt(self, text: str) -> list[int]:
        return encode_prompt(self.tokenizer, text, add_bos=self.add_bos)

    def complete(self, prompt: str, *, stop: str | Sequence[str] = (), valid_utf8: bool = True, **options) -> str:
        """The completion of `prompt` (without the prompt, the EOS token or the stop string)."""
        if options.get("num_return_sequences", 1) != 1:
            raise GenerationError("complete returns one text; use complete_batch for num_return_sequences > 1")
        return self.complete_batch([prompt], stop=stop, valid_utf8=valid_utf8, **options)[0]

    def complete_batch(
        self, prompts: Sequence[str], *, stop: str | Sequence[str] = (), valid_utf8: bool = True, **options
    ) -> list[str]:
        """Completions of several prompts, generated as one batch; with num_return_sequences n, prompt i's
        completions are items i*n ... i*n + n - 1."""
        texts: dict[int, list[str]] = {}
        for row, piece in self.pieces(prompts, stop, options, valid_utf8=valid_utf8):
            texts.setdefault(row, []).append(piece)
        n_rows = len(prompts) * options.get("num_return_sequences", 1)
        return ["".join(texts.get(row, [])) for row in range(n_rows)]

    def stream(
        self, prompt: str | Sequence[int], *, stop: str | Sequence[str] = (), valid_utf8: bool = True, **options
    ) -> Iterator[str]:
        """Pieces of the completion as they are generated (whole characters only); `prompt` is text or ids."""
        if options.get("num_return_sequences", 1) != 1:
            raise GenerationError("stream yields one completion; num_return_sequences must be 1")
        for _, piece in self.pieces([prompt], stop, options, valid_utf8=valid_utf8):
            yield piece

    def pieces(
        self, prompts: Sequence[str], stop: str | Sequence[str], options: dict, *, valid_utf8: bool = True
    ) -> Iterator[tuple[int, str]]:
        """(row, text) pieces as generated, rows as in `gptkit.generate`."""
        if isinstance(prompts, str):
            raise GenerationError("prompts: expected a list of strings (use complete() for one prompt)")
        if not isinstance(valid_utf8, bool):
            raise GenerationError(f"valid_utf8: expected True or False, got {valid_utf8!r}")
        # A prompt is text, or token ids used as they are (e.g. a chat prompt from chat_prompt_ids).
        ids = [self.encode_prompt(p) if isinstance(p, str) else list(p) for p in prompts]
        table = Utf8Table.for_tokenizer(self.tokenizer) if valid_utf8 else None
        settings = GenerationSettings.build(**{"eos_token_id": self.tokenizer.eot_id, **options, "valid_utf8": table})
        if settings.max_new_tokens is None:
            settings = replace(settings, max_new_tokens=self.default_max_new_tokens([len(i) for i in ids]))
        stream = stream_generate(self.model, ids, settings)  # checks the settings
        rows = [TextRow(self.tokenizer, stop, settings.eos_ids) for _ in range(stream.n_rows)]
        try:
            for events in stream:
                for row, token in events:
                    if rows[row].ended:
                        continue  # beam search hands over whole hypotheses: the rest of a stopped one
                    text = rows[row].push(token)
                    if rows[row].ended:
                        stream.stop(row)
                    if text:
                        yield row, text
            for row, text_row in enumerate(rows):
                if not text_row.ended:
                    text = text_row.finish()
                    if text:
                        yield row, text
        finally:
            stream.close()


__all__ = ["DEFAULT_MAX_NEW_TOKENS", "Generator", "StopStrings", "TextRow", "encode_prompt"]
