"""The model behind the HTTP server: a checkpoint, its tokenizer, and a BatchScheduler stepping on a thread of
this process or in a model process of its own (`serve.model_process`, what `gptkit serve` runs).

`Service.open(prompt_ids, settings, n, stop, logprobs)` submits one Job and returns a `Completion`: an async
iterator of `Piece`s (a choice's new text, its tokens, and its finish reason at the end), fed from the
scheduler's thread (or the model process's reader thread) through the event loop. Stop strings and the
incremental UTF-8 decoding are the text layer's (`TextRow`, as in `gptkit generate`) in this process; a stop
string found ends that choice's row at the next step.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from gptkit.checkpoint import load_model_config
from gptkit.errors import GptkitError
from gptkit.generation.batched import BatchScheduler, Job, TokenEvent, resolve_for_batching
from gptkit.generation.engine import check_prompts
from gptkit.generation.settings import GenerationSettings
from gptkit.generation.text import Generator, TextRow, encode_prompt
from gptkit.serve.decoder import load_decoder, utf8_table
from gptkit.serve.model_process import ModelProcess, ModelSpec


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
        self.service.scheduler.cancel(self.job)

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
                    self.service.scheduler.stop(self.job, c)  # the scheduler drops the row at its next step
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


class Service:
    """The model as the HTTP app sees it: its tokenizer, its context length, and the scheduler that decodes.

    Service(generator, ...): the scheduler runs on a thread of this process, over the generator's model
    (tests, notebooks). Service(ModelSpec(path, ...), ...): it runs in a model process of its own
    (`gptkit serve`: see `serve.model_process`), started here; this process loads only the tokenizer and the
    config. `start()` / `close()` run it while the app does."""

    def __init__(self, source: Generator | ModelSpec, *, name: str, max_batch: int = 16, max_queue: int = 64) -> None:
        self.name = name
        self.created = int(time.time())
        self.outbox = Outbox()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if isinstance(source, ModelSpec):
            from gptkit.tokenizer import Tokenizer

            self.config = load_model_config(source.path)  # first: the checkpoint's errors before the tokenizer's
            self.tokenizer = Tokenizer.load(source.path)
            self.add_bos = True
            self.utf8 = utf8_table(self.tokenizer)
            self.scheduler: BatchScheduler | ModelProcess = ModelProcess(
                replace(source, max_batch=max_batch), max_queue=max_queue, after_step=self.outbox.flush
            )
            self.packed_linears = self.scheduler.packed_linears
        else:
            self.tokenizer, self.config, self.add_bos = source.tokenizer, source.model.config, source.add_bos
            self.utf8 = utf8_table(self.tokenizer)
            self.scheduler = BatchScheduler(
                source.model, max_batch=max_batch, max_queue=max_queue, utf8=self.utf8, after_step=self.outbox.flush
            )
            self.packed_linears = 0  # Linear layers in oneDNN's packed layout (see `serve.decoder`)
        self.block_size = self.config.block_size

    @classmethod
    def load(
        cls, path: str | Path, *, device: str = "cpu", dtype: str | None = None, name: str | None = None,
        in_process: bool = False, threads: int | None = None, cpus: tuple[int, ...] | None = None, **options,
    ) -> Service:  # fmt: skip
        """A checkpoint served by a model process (in_process=False) or by a thread here, either way as the
        batched decoder loads it (`serve.decoder.load_decoder`). threads: torch's intra-op threads for the
        decoder (None: torch's default); cpus: the CPUs of the model process (this process keeps off them)."""
        name = name or Path(path).resolve().name
        if not in_process:
            spec = ModelSpec(str(path), device=device, dtype=dtype, threads=threads, cpus=cpus)
            return cls(spec, name=name, **options)
        if cpus is not None:
            raise GptkitError("the decoder's CPUs can only be chosen for a model process, not in_process")
        if threads is not None:
            torch.set_num_threads(threads)
        decoder = load_decoder(path, device=device, dtype=dtype, max_batch=options.get("max_batch", 16))
        service = cls(decoder.generator, name=name, **options)
        service.packed_linears = decoder.packed_linears
        return service

    @property
    def alive(self) -> bool:
        """False once a model process has exited (requests then fail; /health says so)."""
        return not isinstance(self.scheduler, ModelProcess) or self.scheduler.alive

    def start(self) -> None:
        if isinstance(self.scheduler, ModelProcess):
            return  # running since __init__
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.scheduler.run_forever, args=(self._stop,), name="gptkit-scheduler", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        if isinstance(self.scheduler, ModelProcess):
            self.scheduler.close()
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def encode_prompt(self, text: str) -> list[int]:
        return encode_prompt(self.tokenizer, text, add_bos=self.add_bos)

    def check(self, prompt_ids: list[int], settings: GenerationSettings) -> GenerationSettings:
        """The settings the scheduler runs (checked; a seed drawn if none); raises GenerationError naming the
        setting, or the prompt length + max_new_tokens over the context."""
        s = resolve_for_batching(settings, self.config.vocab_size)
        check_prompts([prompt_ids], s, self.config.vocab_size, self.block_size)
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


__all__ = ["Completion", "Piece", "Service"]
