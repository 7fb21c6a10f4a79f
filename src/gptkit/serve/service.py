"""The model behind the HTTP server: a checkpoint, its tokenizer, and a BatchScheduler stepping on its own thread.

`Service.open(prompt_ids, settings, n, stop, logprobs)` submits one Job and returns a `Completion`: an async
iterator of `Piece`s (a choice's new text, its tokens, and its finish reason at the end), fed from the
scheduler's thread through the event loop. Stop strings and the incremental UTF-8 decoding are the text
layer's (`TextRow`, as in `gptkit generate`); a stop string found ends that choice's row at the next step.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gptkit.generation.batched import BatchScheduler, Job, TokenEvent, resolve_for_batching
from gptkit.generation.engine import check_prompts
from gptkit.generation.packed_linear import pack_linears
from gptkit.generation.settings import GenerationSettings
from gptkit.generation.text import Generator, TextRow
from gptkit.generation.utf8 import Utf8Table


@dataclass
class Piece:
    """New text of one choice. tokens: (token id, logprob, top [(id, logprob)]) of the tokens behind it (when
    logprobs were asked for, else logprob None). finish: None, "stop" or "length" (the choice's last piece)."""

    choice: int
    text: str
    tokens: list[tuple[int, float | None, list[tuple[int, float]] | None]] = field(default_factory=list)
    finish: str | None = None


class Completion:
    """One job's pieces as they are produced; `cancel()` ends it (a client that went away)."""

    def __init__(self, service: Service, job: Job, rows: list[TextRow], loop: asyncio.AbstractEventLoop) -> None:
        self.service, self.job, self.rows = service, job, rows
        self.queue: asyncio.Queue = asyncio.Queue()
        self.loop = loop
        self.generated = [0] * len(rows)  # tokens produced per choice (EOS included)
        self.first_token_at: float | None = None

    def emit(self, event: TokenEvent | BaseException) -> None:  # the scheduler's thread
        self.service.outbox.put(self, event)

    def cancel(self) -> None:
        self.job.cancel()

    async def pieces(self) -> AsyncIterator[Piece]:
        open_choices = set(range(len(self.rows)))
        while open_choices:
            event = await self.queue.get()
            if isinstance(event, BaseException):
                raise event
            c = event.choice
            if c not in open_choices:
                continue  # a token of a choice a stop string already ended
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            row = self.rows[c]
            self.generated[c] += 1
            text = row.push(event.token)
            finish = None
            if row.ended:
                finish = "stop"
                if row.stopped_by == "stop":
                    self.job.stop(c)  # the scheduler drops the row at its next step
            elif event.finish == "length":
                text += row.finish()
                finish = "stop" if row.stopped_by == "stop" else "length"
            elif event.finish == "stop":  # an EOS id the text row does not know (cannot happen)
                text += row.finish()
                finish = "stop"
            if finish is not None:
                open_choices.discard(c)
            yield Piece(c, text, [(event.token, event.logprob, event.top)], finish)


class Outbox:
    """Events on their way from the scheduler's thread to the event loop(s) of their Completions, handed over
    once per step (`flush`, the scheduler's after_step): one call_soon_threadsafe, so one wake-up of the loop
    and one write to its self-pipe, per step instead of one per token of every row. Used by the scheduler's
    thread only."""

    def __init__(self) -> None:
        self.pending: dict[asyncio.AbstractEventLoop, list[tuple[Completion, TokenEvent | BaseException]]] = {}

    def put(self, completion: Completion, event: TokenEvent | BaseException) -> None:
        self.pending.setdefault(completion.loop, []).append((completion, event))

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for loop, items in pending.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # the loop was closed: no request of it is left to answer
                continue


def _deliver(items: list[tuple[Completion, TokenEvent | BaseException]]) -> None:  # the event loop's thread
    for completion, event in items:
        completion.queue.put_nowait(event)


def row_major_weights(model: torch.nn.Module) -> None:
    """Undo `cpu_decode_layout` (which Generator.load applies on CPU): the batched decoder multiplies (B, C)
    activations by each weight, and nn.Linear's own (out, in) layout is faster for that (the `small` preset,
    one thread: 38.5 against 46.6 ms per step at batch 16; 14.0 against 14.0 ms at batch 1). In place."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and not module.weight.is_contiguous():
                module.weight.data = module.weight.data.contiguous()


class Service:
    """A loaded checkpoint served through one BatchScheduler (its own thread)."""

    def __init__(self, generator: Generator, *, name: str, max_batch: int = 16, max_queue: int = 64) -> None:
        self.generator = generator
        self.tokenizer = generator.tokenizer
        self.model = generator.model
        self.name = name
        self.created = int(time.time())
        self.block_size = self.model.config.block_size
        table = Utf8Table.for_tokenizer(self.tokenizer)
        self.utf8 = table if table.constrains else None
        self.outbox = Outbox()
        self.scheduler = BatchScheduler(
            self.model, max_batch=max_batch, max_queue=max_queue, utf8=self.utf8, after_step=self.outbox.flush
        )
        self.packed_linears = 0  # Linear layers in oneDNN's packed layout (Service.load: CPU float32)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", name: str | None = None, **options) -> Service:
        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
        generator = Generator.load(path, device=device, dtype=dtype)
        row_major_weights(generator.model)
        service = cls(generator, name=name or Path(path).resolve().name, **options)
        service.packed_linears = pack_linears(generator.model, batch_hint=service.scheduler.max_batch)
        return service

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.scheduler.run_forever, args=(self._stop,), name="gptkit-scheduler", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def check(self, prompt_ids: list[int], settings: GenerationSettings) -> GenerationSettings:
        """The settings the scheduler runs (checked; a seed drawn if none); raises GenerationError naming the
        setting, or the prompt length + max_new_tokens over the context."""
        s = resolve_for_batching(settings, self.model.config.vocab_size)
        check_prompts([prompt_ids], s, self.model.config.vocab_size, self.block_size)
        return s

    def open(
        self,
        prompt_ids: list[int],
        settings: GenerationSettings,
        *,
        n: int = 1,
        stop: Sequence[str] = (),
        logprobs: int | None = None,
        first_row: int = 0,
    ) -> Completion:
        """Submit a checked job (see `check`); raises QueueFull when the queue is full."""
        rows = [TextRow(self.tokenizer, stop, settings.eos_ids) for _ in range(n)]
        loop = asyncio.get_running_loop()
        completion = Completion(self, None, rows, loop)  # type: ignore[arg-type]
        completion.job = Job(prompt_ids, settings, completion.emit, n=n, logprobs=logprobs, first_row=first_row)
        self.scheduler.submit(completion.job)
        return completion

    def token_text(self, token: int) -> str:
        return self.tokenizer.token_bytes(token).decode("utf-8", errors="replace")


__all__ = ["Completion", "Piece", "Service", "row_major_weights"]
