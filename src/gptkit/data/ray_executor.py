"""`--executor ray`: the runner's task calls as Ray Core tasks (`ray.remote` functions, collected with `ray.wait`).

The driver (the `gptkit prepare` process) keeps the plan, the markers and the lock, and writes each task's
marker as its result comes back; the workers run the same task functions as the local executor, reading and
writing OUT on storage every node sees (docs/scale.md). A worker that dies in the middle of a task (killed,
out of memory, its node lost) is retried by Ray up to `max_retries` times: a task writes only through
per-attempt temporary names renamed into place, so a retry gives the same files and an abandoned attempt
leaves only a `.tmp` the runner removes. An exception raised by a task is not retried: it is a bad input or a
bug, and it stops the run with the task's own error. A killed driver is resumed by running the command again
(finished tasks are skipped by their markers).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

import ray

from gptkit.data.runner import Call, timed_call

MAX_RETRIES = 3  # attempts after a worker died (Ray's default for tasks, stated here so docs/scale.md can cite it)


class RayExecutor:
    def __init__(self, address: str | None = None, *, num_cpus: int | None = None) -> None:
        """Connect to the cluster at `address` ("auto": the one `ray start` began on this node; HOST:PORT), or
        start one on this machine with `num_cpus` when address is None. A Ray already initialised in this
        process (a test session, a notebook) is used as it is."""
        if not ray.is_initialized():
            _check_reachable(address)
            ray.init(  # "local": a new instance, never a cluster some other `ray start` left on this machine
                address=address or "local", num_cpus=num_cpus if address is None else None, include_dashboard=False,
                log_to_driver=False, configure_logging=False,
            )  # fmt: skip
        # every task runs as timed_call(fn, args): one remote function, the task function its argument
        self._call = ray.remote(timed_call).options(max_retries=MAX_RETRIES, retry_exceptions=False)

    def run_tasks(
        self,
        calls: list[Call],
        *,
        parallel: bool,
        weights: Sequence[int] | None,
        finish: Callable[[int, dict], None],
        advance: Callable[[int], None] | None,
    ) -> None:
        """Every call at once (Ray schedules them on free CPUs; `parallel` is for the local executor), results
        handled in completion order. Progress comes per finished task (its weight), not from inside it."""
        pending = {self._call.remote(fn, args): i for i, fn, args in calls}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    i = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:
                        # the task's own exception (a GptkitError keeps its clear message and exit code 2)
                        raise (e.cause if isinstance(e.cause, BaseException) else e) from None
                    finish(i, result)
                    if advance is not None and weights:
                        advance(weights[i])
        finally:
            for ref in pending:  # a failed task or an interrupt: the others stop too
                ray.cancel(ref, force=True)

    def close(self) -> None:
        """Nothing to release between stages: the cluster (and a Ray started here) outlives the run."""


def _check_reachable(address: str | None) -> None:
    """ConnectionError at once when nothing listens at HOST:PORT (ray.init would retry for minutes)."""
    if address is None or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as e:
        raise ConnectionError(f"nothing answers at {address}: {e}") from None
