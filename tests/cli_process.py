"""Run `python -m gptkit ARGV` as a separate process, cheaply: a fork server.

A fresh interpreter spends seconds importing torch on a loaded 2-core machine, which would make a table of
dozens of CLI cases take minutes. So one server process (started with `sys.executable`) imports torch and
gptkit once, and forks a child per command. The child is a real process: its own cwd, stdin from /dev/null,
stdout and stderr on files, the exit code from `sys.exit(main())` as the interpreter computes it, and a
traceback printed exactly as Python prints an uncaught exception. The server never runs torch code itself,
so no thread pool exists at fork time.

Set GPTKIT_TEST_FRESH_PROCESS=1 to start a fresh `python -m gptkit` for every command instead.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Runs in the server. One JSON request per stdin line: {"argv", "cwd", "stdout", "stderr"}; one JSON answer
# per line on stdout: {"code"}. PRELOAD: modules most commands import lazily, imported once in the server
# (an optimization only).
PRELOAD = ("gptkit.train.trainer", "gptkit.interop.hf", "gptkit.generation.text", "gptkit.tokenizer")
_SERVER = (
    f"PRELOAD = {PRELOAD!r}\n"
    + r"""
import importlib, json, os, sys, traceback
import torch  # noqa: F401  (the expensive import, done once)
import gptkit.cli
gptkit.cli.build_parser()
for name in PRELOAD:
    try:
        importlib.import_module(name)
    except ImportError:  # a module that moved: its child just imports it itself
        pass
answers = os.fdopen(os.dup(1), "w")
for line in sys.stdin:
    req = json.loads(line)
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(req["cwd"])
            write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, req["stdout"], write), (2, req["stderr"], write)):
                new = os.open(path, flags, 0o644)
                os.dup2(new, fd)
                os.close(new)
            sys.stdin = open(0, closefd=False)
            sys.argv = ["gptkit", *req["argv"]]
            try:
                code = gptkit.cli.main(req["argv"])
                code = 0 if code is None else code
            except SystemExit as e:
                if e.code is None or isinstance(e.code, int):
                    code = e.code or 0
                else:
                    print(e.code, file=sys.stderr)
                    code = 1
            except BaseException:
                traceback.print_exc()
                code = 1
        finally:
            try:
                sys.stdout.flush(); sys.stderr.flush()
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    answers.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
    answers.flush()
"""
)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class CliProcesses:
    """`run(argv, cwd)` -> Result of `python -m gptkit *argv` in a separate process."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.fresh = os.environ.get("GPTKIT_TEST_FRESH_PROCESS") == "1"
        self.server = None
        self.n = 0
        if not self.fresh:
            self._start()

    def _start(self) -> None:
        self.server = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so a timeout kills the server and its children
        )

    def run(self, argv: list[str], cwd: Path, timeout: float = 120) -> Result:
        if self.server is None:
            p = subprocess.run(
                [sys.executable, "-m", "gptkit", *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout
            )
            return Result(p.returncode, p.stdout, p.stderr)
        self.n += 1
        out, err = self.scratch / f"{self.n}.out", self.scratch / f"{self.n}.err"
        request = {"argv": argv, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        ready, _, _ = select.select([self.server.stdout], [], [], timeout)
        if not ready:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait()
            self._start()
            raise TimeoutError(f"gptkit {' '.join(argv)}: no exit within {timeout} s")
        answer = self.server.stdout.readline()
        if not answer:
            raise RuntimeError("the gptkit fork server died")
        code = json.loads(answer)["code"]
        return Result(code, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8"))

    def close(self) -> None:
        if self.server is not None:
            self.server.stdin.close()
            self.server.wait(timeout=30)
