"""The batched decoder in a process of its own, so that the HTTP process and the decode loop never wait for
each other's GIL (`gptkit serve` runs this way; `Service.in_thread` keeps the decoder on a thread).

The HTTP process (`ModelProcess`) parses, tokenizes, detokenizes and streams; the model process
(`run_model_process` in a fresh interpreter, `python -m gptkit.serve.model_process FD SPEC`) loads the
checkpoint and runs the `BatchScheduler`. They talk over one socket pair, in small tuples:

    HTTP -> model:  ("submit", job id, prompt ids, settings, n, logprobs, first_row, valid_utf8)
                    ("cancel", job id)   ("stop", job id, choice)   ("close",)
    model -> HTTP:  ("ready", packed linear layers)  or  ("failed", message)   once, at start
                    ("step", [(job id, choice, token, finish, logprob, top), ...], queue depth, batch size,
                     tokens generated)                                          once per decode step
                    ("error", [job id, ...], message)                             a step failed

so a step's tokens cross in one message. The settings travel without their UTF-8 table (the model process
builds its own from the tokenizer; `valid_utf8` says whether the job uses it). A reader thread in the HTTP
process hands each step's events to the jobs (`Job.emit`) and then calls `after_step` once (the server's
Outbox: one event-loop wake-up per step), as the scheduler's thread does in-process. The socket pair is private to
these two processes (pickle over it is between the same program's two halves, never from a file).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection

from gptkit.errors import GptkitError
from gptkit.generation.batched import Job, QueueFull, TokenEvent


class ModelProcessError(GptkitError):
    """The model process could not start, or failed / exited while serving."""


@dataclass(frozen=True)
class ModelSpec:
    """What the model process loads: a checkpoint for the batched decoder (see `serve.decoder`)."""

    path: str
    device: str = "cpu"
    dtype: str | None = None  # a torch dtype's name ("float32", "bfloat16"); None: the device's default
    max_batch: int = 16
    threads: int | None = None  # torch intra-op threads in the model process; None: torch's default
    pack: bool = True  # pack the linear layers for oneDNN where available (see `serve.decoder`)
    cpus: tuple[int, ...] | None = None  # the CPUs the model process runs on (the HTTP process: the others)


def run_model_process(conn: Connection, spec: ModelSpec) -> None:  # the model process's main
    import torch

    from gptkit.generation.batched import BatchScheduler
    from gptkit.serve.decoder import load_decoder

    try:
        if spec.cpus is not None:
            os.sched_setaffinity(0, spec.cpus)
        if spec.threads is not None:
            torch.set_num_threads(spec.threads)
        decoder = load_decoder(
            spec.path, device=spec.device, dtype=spec.dtype, max_batch=spec.max_batch, pack=spec.pack
        )
    except Exception as e:  # reported to the HTTP process, which refuses to start with this message
        conn.send(("failed", f"{type(e).__name__}: {e}" if not isinstance(e, GptkitError) else str(e)))
        return
    scheduler = BatchScheduler(decoder.model, max_batch=spec.max_batch, max_queue=2**62, utf8=decoder.utf8)
    conn.send(("ready", decoder.packed_linears))
    jobs: dict[int, tuple[Job, set[int]]] = {}  # the jobs not ended: each with its choices ended so far
    events: list[tuple] = []
    failed: list[int] = []

    def emitter(job_id: int) -> Callable[[TokenEvent | BaseException], None]:
        def emit(event: TokenEvent | BaseException) -> None:
            if isinstance(event, BaseException):
                failed.append(job_id)
            else:
                events.append((job_id, event.choice, event.token, event.finish, event.logprob, event.top))

        return emit

    def ended(job_id: int, choice: int) -> None:
        job, done = jobs[job_id]
        done.add(choice)
        if len(done) >= job.n:
            del jobs[job_id]

    while True:
        busy = bool(scheduler.rows or scheduler.waiting)
        try:
            ready = conn.poll(0 if busy else None)  # idle: block until the HTTP process sends something
            while ready:
                message = conn.recv()
                kind = message[0]
                if kind == "submit":
                    job_id, prompt, settings, n, logprobs, first_row, valid_utf8 = message[1:]
                    settings = replace(settings, valid_utf8=decoder.utf8 if valid_utf8 else None)
                    job = Job(prompt, settings, emitter(job_id), n=n, logprobs=logprobs, first_row=first_row)
                    jobs[job_id] = (job, set())
                    scheduler.submit(job)
                elif kind == "cancel" and message[1] in jobs:
                    jobs.pop(message[1])[0].cancel()
                elif kind == "stop" and message[1] in jobs:
                    jobs[message[1]][0].stop(message[2])
                    ended(message[1], message[2])
                elif kind == "close":
                    return
                ready = conn.poll(0)
        except (EOFError, OSError):  # the HTTP process went away
            return
        if not (scheduler.rows or scheduler.waiting):
            continue
        try:
            scheduler.step()
        except Exception as e:  # every job fails with it (as the in-thread scheduler does); serving goes on
            scheduler._fail_all(e)
            for job_id in failed:
                jobs.pop(job_id, None)
            message, failed, events = ("error", failed, f"the decoder failed: {type(e).__name__}: {e}"), [], []
        else:
            for job_id, choice, _, finish, _, _ in events:
                if finish is not None and job_id in jobs:
                    ended(job_id, choice)
            message = ("step", events, scheduler.queue_depth, scheduler.batch_size, scheduler.tokens_generated)
            events = []
        try:
            conn.send(message)
        except OSError:  # the HTTP process went away
            return


class ModelProcess:
    """The HTTP process's side: starts the model process, submits jobs to it and hands their events back.
    The scheduler's interface as the server uses it (`submit`, `cancel`, `stop`, `queue_depth`, `batch_size`,
    `tokens_generated`, `max_batch`), thread-safe. `after_step()` runs on the reader thread after each step's
    events were handed out. `max_queue` is enforced here: jobs sent that have not had a token yet."""

    def __init__(
        self, spec: ModelSpec, *, max_queue: int = 64, after_step: Callable[[], None] | None = None,
        start_timeout: float = 600,
    ) -> None:  # fmt: skip
        if spec.max_batch < 1 or max_queue < 0:
            raise GptkitError(f"max_batch must be >= 1 and max_queue >= 0, got {spec.max_batch} and {max_queue}")
        self.spec, self.max_batch, self.max_queue = spec, spec.max_batch, max_queue
        self.after_step = after_step
        self.jobs: dict[int, Job] = {}  # sent and not ended, by id
        self.ids: dict[Job, int] = {}  # the same jobs' ids
        self.ended: dict[int, set[int]] = {}  # their choices ended so far (a finish event or stopped)
        self.waiting: set[int] = set()  # of those, the ones without a token yet
        self.lock = threading.Lock()  # jobs, waiting, next id and the pipe's sending end
        self.next_id = 0
        self.batch_size = 0  # as the model process last reported
        self.tokens_generated = 0
        self.exit_message: str | None = None  # set once the model process is gone
        # A fresh interpreter (no torch / OpenMP state forked, and no re-import of whatever script is __main__,
        # as multiprocessing's spawn would do) on one end of a socket pair.
        ours, theirs = socket.socketpair()
        argv = [sys.executable, "-m", "gptkit.serve.model_process", str(theirs.fileno()), json.dumps(asdict(spec))]
        self.process = subprocess.Popen(argv, pass_fds=(theirs.fileno(),))
        if spec.cpus is not None:  # this process (HTTP, tokenizing, streaming) keeps off the model's CPUs
            others = os.sched_getaffinity(0) - set(spec.cpus)
            if others:
                os.sched_setaffinity(0, others)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.packed_linears = self._wait_ready(start_timeout)
        self.reader = threading.Thread(target=self._read, name="gptkit-model-reader", daemon=True)
        self.reader.start()

    def _wait_ready(self, timeout: float) -> int:
        if not self.conn.poll(timeout):
            self.process.kill()
            self.process.wait()
            raise ModelProcessError(f"the model process did not load {self.spec.path} in {timeout:.0f} s")
        try:
            kind, value = self.conn.recv()
        except EOFError:
            raise ModelProcessError(
                f"the model process exited while loading {self.spec.path} (exit code {self._wait_exit()})"
            ) from None
        if kind != "ready":
            self._wait_exit()
            raise ModelProcessError(value)
        return value

    # ---- the scheduler's interface -----------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        return len(self.waiting)

    @property
    def alive(self) -> bool:
        return self.exit_message is None

    def submit(self, job: Job) -> None:
        with self.lock:
            if self.exit_message is not None:
                raise ModelProcessError(self.exit_message)
            if len(self.waiting) >= self.max_queue:
                raise QueueFull(f"the queue is full ({self.max_queue} requests waiting)")
            job_id, self.next_id = self.next_id, self.next_id + 1
            self.jobs[job_id], self.ids[job], self.ended[job_id] = job, job_id, set()
            self.waiting.add(job_id)
            s = job.settings
            self._send(("submit", job_id, job.prompt, replace(s, valid_utf8=None), job.n, job.logprobs,
                        job.first_row, s.valid_utf8 is not None))  # fmt: skip

    def cancel(self, job: Job) -> None:
        job.cancel()
        with self.lock:
            job_id = self.ids.get(job)
            if job_id is not None:
                self._forget(job_id)
                self._send(("cancel", job_id))

    def stop(self, job: Job, choice: int) -> None:
        job.stop(choice)
        with self.lock:
            job_id = self.ids.get(job)
            if job_id is not None:
                self._send(("stop", job_id, choice))
                self._choice_ended(job_id, choice)

    def close(self) -> None:
        with self.lock:
            self._send(("close",))
        self._wait_exit(10)
        self.reader.join(5)
        self.conn.close()

    def _wait_exit(self, timeout: float = 5) -> int:
        """The model process's exit code, killing it if it has not exited after `timeout` seconds."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    # ---- internals ----------------------------------------------------------------------------------
    def _send(self, message: tuple) -> None:  # holding self.lock
        if self.exit_message is None:
            with contextlib.suppress(OSError):  # the model process is gone: the reader thread fails the jobs
                self.conn.send(message)

    def _forget(self, job_id: int) -> Job | None:  # holding self.lock
        job = self.jobs.pop(job_id, None)
        if job is not None:
            del self.ids[job], self.ended[job_id]
            self.waiting.discard(job_id)
        return job

    def _choice_ended(self, job_id: int, choice: int) -> None:  # holding self.lock
        ended = self.ended.get(job_id)
        if ended is not None:
            ended.add(choice)
            if len(ended) >= self.jobs[job_id].n:
                self._forget(job_id)

    def _read(self) -> None:  # the reader thread
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "step":
                _, events, _, self.batch_size, self.tokens_generated = message
                with self.lock:
                    delivered = []
                    for job_id, choice, token, finish, logprob, top in events:
                        job = self.jobs.get(job_id)
                        if job is None:  # cancelled meanwhile
                            continue
                        self.waiting.discard(job_id)
                        delivered.append((job, TokenEvent(choice, token, finish, logprob, top)))
                        if finish is not None:
                            self._choice_ended(job_id, choice)
                for job, event in delivered:
                    job.emit(event)
            elif message[0] == "error":
                _, job_ids, text = message
                with self.lock:
                    failed = [job for job in map(self._forget, job_ids) if job is not None]
                for job in failed:
                    job.emit(ModelProcessError(text))
            if self.after_step is not None:
                self.after_step()
        code = self._wait_exit()
        with self.lock:
            self.exit_message = f"the model process exited (exit code {code})"
            failed = [self._forget(job_id) for job_id in list(self.jobs)]
        for job in failed:
            job.emit(ModelProcessError(self.exit_message))
        if self.after_step is not None:
            self.after_step()


__all__ = ["ModelProcess", "ModelProcessError", "ModelSpec", "run_model_process"]

if __name__ == "__main__":  # the model process: python -m gptkit.serve.model_process FD SPEC_JSON
    run_model_process(Connection(int(sys.argv[1])), ModelSpec(**json.loads(sys.argv[2])))
