"""Runs a pipeline's stages: markers and resuming, the output lock, progress bars, and the executor that runs the
tasks. It knows nothing of text: a stage is a name, a task function, the items it maps over and the settings
every task receives, and all of that is hashed into the stage's marker.

A task is a plain top-level function `fn(out, item, *settings, progress=None) -> stats` (a JSON-able dict). It
writes its files as NAME.<attempt>.tmp and renames them when complete; `stats["outputs"]` may list
{relative path: size} of what it wrote, checked before a finished stage is skipped. The runner then writes the
task's marker (work/state/STAGE/NNNNN.json) and, once every task is done, the stage's (work/state/STAGE.json).
A stage's hash covers its settings, its items and the hash of the stage before it: re-running with the same
arguments skips finished stages and finished tasks, and a changed setting re-runs that stage and everything
after it, after removing the stale outputs.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from gptkit.data.files import TMP_GLOB, read_json, write_json
from gptkit.errors import GptkitError

LOCK_NAME = "prepare.lock"  # in OUT/work: held by the run writing OUT
# a task call as the executors see it: (task number, function, positional arguments)
Call = tuple[int, Callable[..., dict], tuple]


class OutputLockedError(GptkitError):
    """Another run is writing the output directory."""


@dataclass(frozen=True)
class Stage:
    """One stage: `fn(out, item, *settings, progress=...)` for every item."""

    name: str
    fn: Callable[..., dict]
    items: Sequence[Any]  # JSON-able, one per task (a split, a partition number, ...)
    settings: tuple = ()  # config dataclasses / JSON-able values every task receives, whole: all hashed
    outputs: Sequence[str] = ()  # glob patterns (relative to out) of what the stage writes: wiped when stale
    weights: Sequence[int] | None = None  # bytes per item for the progress bar (None: it counts tasks)
    # False: the local executor runs the tasks one by one in this process (tasks that use every core themselves,
    # or a global task that needs the memory); other executors may still run them anywhere
    parallel: bool = True
    # estimated cost per item: the tasks are handed to the executor costliest first (None: in item order), so
    # that a costly task does not start last and keep one worker busy while the others wait. Not hashed: the
    # order changes no output
    costs: Sequence[float] | None = None


@dataclass
class StageOutcome:
    name: str
    stats: list[dict]
    seconds: float
    skipped: bool
    tasks_run: int = 0
    tasks_skipped: int = 0
    bytes: int = 0


def settings_json(value: object) -> object:
    """A setting as it is hashed: a dataclass by its type name and every field (so the hash follows the
    dataclass, not a hand-picked list of keys)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **asdict(value)}
    return value


def digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# --- executors ------------------------------------------------------------------------------------------


class Executor(Protocol):
    """Runs a stage's task calls; `finish(i, stats)` for each as it completes (in the driver process), and
    `advance(nbytes)` as progress comes in (None: nobody is watching). Each call runs as
    timed_call(fn, args), which adds the task's CPU seconds to its stats."""

    def run_tasks(
        self,
        calls: list[Call],
        *,
        parallel: bool,
        weights: Sequence[int] | None,
        finish: Callable[[int, dict], None],
        advance: Callable[[int], None] | None,
    ) -> None: ...

    def close(self) -> None:
        """Release what the executor holds between stages (worker processes); it may be used again after."""
        ...


_PROGRESS_QUEUE: Any = None  # in a local worker process: where its tasks' progress goes


class Ticker:
    """Reports processed bytes to the progress bar in batches (a queue put per document is slow): to a
    callback in the driver, to the driver's queue in a local worker process, nowhere otherwise."""

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self.callback = callback
        self.pending = 0
        self.last = time.monotonic()

    def __call__(self, n: int) -> None:
        self.pending += n
        now = time.monotonic()
        if self.pending >= 1 << 20 or now - self.last > 0.25:
            self.flush()
            self.last = now

    def flush(self) -> None:
        if self.pending:
            if self.callback is not None:
                self.callback(self.pending)
            elif _PROGRESS_QUEUE is not None:
                _PROGRESS_QUEUE.put(self.pending)
            self.pending = 0


_RELEASES: list[Callable[[], None]] = []  # what a process lets go of when it turns to another stage's tasks
_last_fn: Callable[..., dict] | None = None  # the task function this process ran last


def release_between_stages(release: Callable[[], None]) -> None:
    """Register `release` (a cache's clear): a process calls it before a task of another function than the one
    it ran last. A stage's state (the clean tasks' caches) then goes when the process turns to the next stage's
    tasks, so one pool of workers can serve every stage without carrying that state along."""
    _RELEASES.append(release)


def timed_call(fn: Callable[..., dict], args: tuple, progress: Callable[[int], None] | None = None) -> dict:
    """fn(*args, progress=progress), its stats with "cpu_seconds" added: the CPU time of the process running it
    (all its threads), which unlike wall time does not grow when other jobs share the machine."""
    global _last_fn
    if fn is not _last_fn:
        if _last_fn is not None:
            for release in _RELEASES:
                release()
        _last_fn = fn
    c0 = time.process_time()
    stats = fn(*args, progress=progress)
    return {**stats, "cpu_seconds": time.process_time() - c0}


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end when `parent_pid` does, however it ends (kill -9, the OOM killer): on
    Linux the kernel sends SIGKILL (PR_SET_PDEATHSIG), elsewhere a thread polls the parent's pid. Without
    this, a killed driver's pool workers wait forever on a pipe their siblings keep open."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)


def _init_local_worker(queue: Any, parent_pid: int) -> None:
    global _PROGRESS_QUEUE
    _PROGRESS_QUEUE = queue
    die_with_parent(parent_pid)


class LocalExecutor:
    """This machine: a process pool of `workers` (fork where available), or this process for one worker, one
    task, or a stage that is not parallel. One pool serves consecutive stages until close() (a fresh pool per
    stage cost ~30 ms a stage: forking the workers, shutting them down, the progress reader's last timeout; what
    a stage's tasks leave in a worker goes when it turns to the next stage: release_between_stages); a failed
    stage closes it."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._advance: Callable[[int], None] | None = None  # the running stage's progress callback

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
            queue = ctx.Queue()
            self._stop = threading.Event()
            self._reader = threading.Thread(target=self._drain, args=(queue, self._stop), daemon=True)
            self._reader.start()
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=ctx, initializer=_init_local_worker, initargs=(queue, os.getpid())
            )
        return self._pool

    def _drain(self, queue: Any, stop: threading.Event) -> None:
        while not stop.is_set() or not queue.empty():
            try:  # a short timeout: close() waits for this thread to notice `stop`
                n = queue.get(timeout=0.01)
            except Exception:
                continue
            advance = self._advance
            if advance is not None:
                advance(n)

    def run_tasks(self, calls, *, parallel, weights, finish, advance) -> None:
        if not (parallel and self.workers > 1 and len(calls) > 1):
            for i, fn, args in calls:
                finish(i, timed_call(fn, args, advance))
            return
        pool = self._started()
        self._advance = advance
        try:
            pending: dict[Future, int] = {pool.submit(timed_call, fn, args): i for i, fn, args in calls}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    finish(pending.pop(fut), fut.result())
        except BaseException:
            self.close()  # waits for the tasks still running, as leaving the pool's `with` block did
            raise
        finally:
            self._advance = None

    def close(self) -> None:
        """Shut the pool down (its workers exit); the next parallel stage starts a new one."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                pool.shutdown()
            finally:
                self._stop.set()
                if self._reader is not None:
                    self._reader.join()
                    self._reader = None


# --- the output lock ------------------------------------------------------------------------------------

_HELD_LOCKS: list[IO[bytes]] = []  # lock files this process holds, closed in forked children (see below)


def _drop_inherited_locks() -> None:
    """In a forked child: close its copies of the parent's lock files. flock belongs to the open file, which a
    fork shares, so a child that outlived its parent would otherwise keep the directory locked. Closing a copy
    does not release the parent's lock (LOCK_UN would)."""
    for f in _HELD_LOCKS:
        f.close()
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_locks)


def _lock_file(f: IO[bytes]) -> None:
    """An exclusive lock on an open file, without waiting: OSError when another process holds it."""
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextmanager
def output_lock(
    out: Path, *, lock: Path | None = None, what: str = "`gptkit prepare`", error: type[GptkitError] = OutputLockedError
) -> Iterator[None]:
    """Hold OUT/work/prepare.lock while a run writes OUT: a second run on the same directory stops with a clear
    error instead of interleaving its files and its wiping of stale outputs with the first run's. The operating
    system drops the lock when the process ends, however it ends, and worker processes neither inherit it nor
    outlive the run (die_with_parent), so a killed run leaves no stale lock. `lock`: the lock file (default
    OUT/work/prepare.lock); `error`: the exception raised when another process holds it."""
    path = lock or out / "work" / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:  # closing it releases the lock
        try:
            _lock_file(f)
        except OSError:
            raise error(
                f"--out {out}: another {what} is writing this directory (it holds {path}); "
                "wait for it to finish or choose another --out"
            ) from None
        _HELD_LOCKS.append(f)
        try:
            yield
        finally:
            _HELD_LOCKS.remove(f)


# --- the runner -----------------------------------------------------------------------------------------


# The collector's first-generation threshold during a stage (Python's default: 700 allocations). The clean tasks
# allocate many short-lived containers (line verdicts, lists, tuples) that reference counting frees; collecting
# every 700 allocations cost 3.5% more instructions than no collection in the clean stage (valgrind, one process,
# benchmarks/prepare.py's input), every 20,000 0.3%. Only cyclic garbage waits longer: at most that many objects.
STAGE_GC_THRESHOLD = 20_000


@contextmanager
def _frozen_gc() -> Iterator[None]:
    """Run a stage with the objects that exist now (every imported module's: ~50k, ~200k once torch is loaded)
    moved out of the garbage collector's sight: its full collections would otherwise traverse them again and
    again during the tasks, and in forked workers also write to every page holding them, copying the parent's
    memory page by page (the gc module's documentation recommends freezing before fork for this reason).
    They stay reachable and return to the collector after the stage. The stage also runs with a higher
    first-generation threshold (STAGE_GC_THRESHOLD), which forked workers inherit."""
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], STAGE_GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@dataclass
class Runner:
    out: Path
    executor: Executor
    show_progress: bool
    salt: dict = field(default_factory=dict)  # versions of the formats and rules: part of every stage's hash
    outcomes: dict[str, StageOutcome] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.out / "work" / "state"

    def stage_hash(self, stage: Stage, prev: str) -> str:
        return digest(
            {"salt": self.salt, "stage": stage.name, "prev": prev, "items": list(stage.items),
             "settings": [settings_json(s) for s in stage.settings]}
        )  # fmt: skip

    def run(self, stage: Stage, prev: str) -> tuple[StageOutcome, str]:
        """Run a stage's tasks unless its marker says it is done with this hash; skip finished tasks. Returns
        the outcome and the stage's hash (the next stage's `prev`)."""
        h = self.stage_hash(stage, prev)
        name, n = stage.name, len(stage.items)
        total_bytes = sum(stage.weights) if stage.weights else 0
        marker, tdir = self.state / f"{name}.json", self.state / name
        done = read_json(marker)
        if done and done.get("hash") == h:
            damaged = self._damaged_tasks(done["stats"])
            if not damaged:
                outcome = StageOutcome(name, done["stats"], done["seconds"], True, 0, n, done.get("bytes", 0))
                self.outcomes[name] = outcome
                return outcome, h
            marker.unlink()  # an output was deleted or changed since: redo the tasks that wrote it
            for i in damaged:
                (tdir / f"{i:05d}.json").unlink(missing_ok=True)
        tdir.mkdir(parents=True, exist_ok=True)
        task_done = {p.stem: read_json(p) for p in tdir.glob("*.json")}
        if marker.exists() or any(not m or m.get("hash") != h for m in task_done.values()):
            self._wipe(stage.outputs, tdir)  # stale results of other settings
            marker.unlink(missing_ok=True)
            task_done = {}
        self._remove_attempts(stage.outputs)  # half-written files of an interrupted run
        stats: list[dict | None] = [None] * n
        calls: list[Call] = []
        for i, item in enumerate(stage.items):
            m = task_done.get(f"{i:05d}")
            if m and m.get("hash") == h:
                stats[i] = m["stats"]
            else:
                calls.append((i, stage.fn, (str(self.out), item, *stage.settings)))
        if stage.costs is not None:
            costs = stage.costs
            calls.sort(key=lambda c: -costs[c[0]])  # stable: equal costs keep the item order
        t0 = time.perf_counter()
        with self._progress(name, total_bytes, n) as bar, _frozen_gc():

            def finish(i: int, result: dict) -> None:
                stats[i] = result
                write_json(tdir / f"{i:05d}.json", {"hash": h, "stats": result})
                bar(0, 1)

            advance = (lambda nbytes: bar(nbytes, 0)) if self.show_progress else None
            self.executor.run_tasks(
                calls, parallel=stage.parallel, weights=stage.weights, finish=finish, advance=advance
            )
        self._remove_attempts(stage.outputs)  # files of attempts that were killed and retried elsewhere
        seconds = time.perf_counter() - t0
        result = [s for s in stats if s is not None]
        write_json(marker, {"hash": h, "stats": result, "seconds": seconds, "bytes": total_bytes})
        outcome = StageOutcome(name, result, seconds, False, len(calls), n - len(calls), total_bytes)
        self.outcomes[name] = outcome
        return outcome, h

    def _damaged_tasks(self, stats: list[dict]) -> list[int]:
        """Tasks whose recorded outputs ({relative path: size}) are missing or have another size."""
        damaged = []
        for i, st in enumerate(stats):
            for rel, size in st.get("outputs", {}).items():
                p = self.out / rel
                if not p.is_file() or p.stat().st_size != size:
                    damaged.append(i)
                    break
        return damaged

    def _remove(self, p: Path) -> None:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)

    def _remove_attempts(self, outputs: Sequence[str]) -> None:
        for pattern in outputs:
            for p in self.out.glob(pattern + TMP_GLOB):
                self._remove(p)

    def _wipe(self, outputs: Sequence[str], tdir: Path) -> None:
        for pattern in outputs:
            for p in self.out.glob(pattern):
                self._remove(p)
        for p in tdir.glob("*.json"):
            p.unlink()

    @contextmanager
    def _progress(self, name: str, total_bytes: int, n_tasks: int) -> Iterator[Callable[[int, int], None]]:
        """advance(nbytes, ntasks): a bar by bytes when the stage has weights, else by tasks."""
        if not self.show_progress:
            yield lambda nbytes, ntasks: None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        by_bytes = total_bytes > 0
        columns = [TextColumn(f"{name:<10}"), BarColumn()]
        columns += [TransferSpeedColumn()] if by_bytes else [MofNCompleteColumn()]
        columns += [TimeElapsedColumn(), TimeRemainingColumn()]
        lock = threading.Lock()
        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            task = bar.add_task(name, total=total_bytes if by_bytes else n_tasks)

            def advance(nbytes: int, ntasks: int) -> None:
                with lock:
                    bar.advance(task, nbytes if by_bytes else ntasks)

            yield advance
            bar.update(task, completed=total_bytes if by_bytes else n_tasks)
