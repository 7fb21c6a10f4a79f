"""Serving throughput: `gptkit serve` vs `transformers serve --continuous-batching`, same model, same prompts, same run.

    python benchmarks/serve.py                  # 1, 4 and 16 concurrent clients
    python benchmarks/serve.py --quick          # fewer requests and tokens
    python benchmarks/serve.py --no-transformers
    python benchmarks/serve.py --dtype bfloat16    # all three (both servers, generate) in bfloat16

The model: the `small` preset's shape (8 layers, 256 wide, context 256) with random weights and a BPE tokenizer
(vocabulary 1024) trained on the first 200 kB of ../shared/data/tinyshakespeare.txt, saved as a gptkit
checkpoint and exported with `gptkit export-hf` for transformers. Both servers run on this machine's CPU in
float32 (or --dtype bfloat16) as subprocesses on 127.0.0.1; the levels are interleaved (gptkit, then
transformers, at each level). Each client streams /v1/completions requests one after another (greedy,
max_tokens tokens each); the prompts are lines of the same text; the clients are made before a level's clock
starts. Reported per server and level: aggregate completion tokens/s (all tokens / wall time of the level),
time to first token and latency p50 / p99, errors (non-200, a stream without [DONE]).
Also: `gptkit generate`'s tokens/s on the same prompts one at a time in this process (Generator.stream, as
the CLI runs it, in the same dtype), before the servers start and after they stop, against which the 1-client
server figure is compared; and per level, the CPU time of each server's busiest thread (its decode loop), of
its other threads (HTTP) and of the benchmark's clients, in ms per token, and how long the busiest thread was
runnable but had no CPU: the profile of where the time went. gptkit's model process counts as the server's.

transformers serve needs `accelerate` (pip install accelerate) and, on a CPU, a bounded paged KV cache:
by default it sizes the cache from the machine's memory and was OOM-killed at 9.4 GB here; we pass
--cb-num-blocks 512 --cb-block-size 32 --cb-max-batch-tokens 1024. Results: benchmarks/results/serve.json
(serve_bfloat16.json with --dtype bfloat16).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "serve.json"
# One intra-op thread per process (servers and the generate baseline alike): on this machine 2 cores are shared
# by 8 jobs, and with 2 OpenMP threads a decode step of the tiny model took 1.8 s instead of 0.06 s (measured:
# threads spinning for a core another job holds).
THREADS = 1
# The shared data folder: $GPTKIT_SHARED (as the tests read it), else ../shared beside the checkout.
SHARED = Path(os.environ.get("GPTKIT_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
SHAKESPEARE = SHARED / "data" / "tinyshakespeare.txt"


def build_checkpoint(work: Path) -> tuple[Path, Path, list[str]]:
    """(gptkit checkpoint, its HF export, prompts)."""
    import torch

    from gptkit import GPT, Tokenizer, preset, save_model
    from gptkit.cli import main as cli_main

    text = SHAKESPEARE.read_text(encoding="utf-8")[:200_000]
    tok = Tokenizer.train([text], vocab_size=1024)
    torch.manual_seed(0)
    model = GPT(preset("small", vocab_size=tok.vocab_size, block_size=256, dropout=0.0)).eval()
    ckpt, hf = work / "ckpt", work / "hf"
    save_model(model, ckpt)
    tok.save(ckpt)
    assert cli_main(["export-hf", str(ckpt), str(hf)]) == 0
    lines = [line.strip() for line in text.splitlines() if len(line.strip()) >= 30]
    return ckpt, hf, [line[:60] for line in lines[:64]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, tuple[float, float]]:
    """(CPU time, time spent runnable but waiting for a CPU) in seconds of each thread of a process and of its
    child processes (gptkit's model process), keyed "name:tid" (Linux /proc/.../schedstat)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:  # the process ended meanwhile
        return out
    for tid in tids:
        task = Path(f"/proc/{pid}/task/{tid}")
        try:
            stat, schedstat = (task / "stat").read_text(), (task / "schedstat").read_text().split()
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name = stat.split("(", 1)[1].rsplit(")", 1)[0]
        out[f"{name}:{tid}"] = (int(schedstat[0]) / 1e9, int(schedstat[1]) / 1e9)
        for child in children:
            out.update(thread_cpu_seconds(int(child)))
    return out


def cpu_profile(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], tokens: int) -> dict:
    """Where a server's CPU went during a level: its busiest thread (the decode loop) and the rest (HTTP,
    the event loop), in ms per completion token; and how long the busiest thread was runnable but had no
    CPU (the run queue)."""
    spent = sorted(
        (
            (cpu - before.get(k, (0.0, 0.0))[0], wait - before.get(k, (0.0, 0.0))[1], k)
            for k, (cpu, wait) in after.items()
        ),
        reverse=True,
    )
    per = 1000 / max(tokens, 1)
    busiest, waited, name = spent[0] if spent else (0.0, 0.0, None)
    rest = sum(d for d, _, _ in spent[1:])
    return {"busiest_thread": name, "busiest_thread_ms_per_token": busiest * per,
            "busiest_thread_runqueue_ms_per_token": waited * per, "other_threads_ms_per_token": rest * per}  # fmt: skip


class Server:
    def __init__(self, name: str, argv: list[str], port: int, model_id: str, env: dict | None = None) -> None:
        self.name, self.port, self.model_id = name, port, model_id
        self.url = f"http://127.0.0.1:{port}"
        # Open for the server's whole life (closed in stop()), kept afterwards for reading.
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS), **(env or {})}
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); log: {self.log.name}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(f"{self.name} did not come up in {timeout} s; log: {self.log.name}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


async def one_request(client, server: Server, prompt: str, max_tokens: int, count_tokens) -> dict:
    body = {"model": server.model_id, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    t0 = time.perf_counter()
    first, text, usage, done, finished = None, [], None, False, False
    try:
        async with client.stream("POST", server.url + "/v1/completions", json=body, timeout=600) as r:
            if r.status_code != 200:
                await r.aread()
                return {"error": f"HTTP {r.status_code}"}
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    continue
                chunk = json.loads(data)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for c in chunk.get("choices") or []:
                    finished = finished or bool(c.get("finish_reason"))
                    if c.get("text"):
                        first = first or time.perf_counter()
                        text.append(c["text"])
    except Exception as e:  # a benchmark counts failures instead of stopping
        return {"error": f"{type(e).__name__}: {e}"}
    end = time.perf_counter()
    if not (done or finished):
        return {"error": "the stream ended without a finish_reason or [DONE]"}
    tokens = usage["completion_tokens"] if usage else count_tokens("".join(text))
    # transformers serve ends its completion streams after the finish_reason chunk, without OpenAI's [DONE]:
    # counted (not an error for throughput) and reported.
    return {"ttft": (first or end) - t0, "latency": end - t0, "tokens": tokens, "done": done}


async def run_level(server: Server, prompts: list[str], clients: int, per_client: int, max_tokens: int, count_tokens):
    import httpx

    async def worker(i: int, client) -> list[dict]:
        out = []
        for j in range(per_client):
            out.append(await one_request(client, server, prompts[(i * per_client + j) % len(prompts)],
                                         max_tokens, count_tokens))  # fmt: skip
        return out

    # The clients are made before the clock starts: an httpx.AsyncClient loads the CA bundle when made (25-140
    # ms of this process's CPU each, measured), which is the benchmark's cost, not the server's. Each worker's
    # requests reuse its client's connections, as before.
    clients_made = [httpx.AsyncClient() for _ in range(clients)]
    t0 = time.perf_counter()
    results = [r for rs in await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients_made))) for r in rs]
    wall = time.perf_counter() - t0
    for c in clients_made:
        await c.aclose()
    ok = [r for r in results if "error" not in r]

    def pct(values, q):
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]

    return {
        "clients": clients,
        "requests": len(results),
        "errors": len(results) - len(ok),
        "error_examples": sorted({r["error"] for r in results if "error" in r})[:3],
        "streams_without_done": sum(not r["done"] for r in ok),
        "tokens": sum(r["tokens"] for r in ok),
        "wall_s": wall,
        "tokens_per_s": sum(r["tokens"] for r in ok) / wall,
        "ttft_p50_s": pct([r["ttft"] for r in ok], 50) if ok else None,
        "ttft_p99_s": pct([r["ttft"] for r in ok], 99) if ok else None,
        "latency_p50_s": pct([r["latency"] for r in ok], 50) if ok else None,
        "latency_p99_s": pct([r["latency"] for r in ok], 99) if ok else None,
    }


def generate_baseline(ckpt: Path, prompts: list[str], n: int, max_tokens: int, dtype: str) -> dict:
    """`gptkit generate` one prompt at a time, in this process (what the CLI runs), greedy."""
    import torch

    from gptkit.generation.text import Generator

    torch.set_num_threads(THREADS)
    gen = Generator.load(ckpt, dtype=getattr(torch, dtype))  # what `gptkit generate --dtype DTYPE` loads
    gen.complete(prompts[0], max_new_tokens=4)  # warm-up
    tokens, t0 = 0, time.perf_counter()
    for p in prompts[:n]:
        ids = []
        stream = gen.stream(p, max_new_tokens=max_tokens)
        for piece in stream:
            ids.append(piece)
        tokens += len(gen.tokenizer.encode("".join(ids)))
    wall = time.perf_counter() - t0
    return {"requests": n, "tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--levels", default="1,4,16")
    ap.add_argument("--per-client", type=int, default=None, help="requests per client (default: 16 / clients, >= 4)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-transformers", action="store_true")
    ap.add_argument(
        "--also-in-process",
        action="store_true",
        help="also run `gptkit serve --in-process` (the decoder on a thread of the HTTP process)",
    )
    ap.add_argument("--also-pinned", metavar="CPUS",
                    help="also run `gptkit serve --decode-cpus CPUS` (the model process on those CPUs)")  # fmt: skip
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="the dtype of all three: gptkit serve, transformers serve and gptkit generate")  # fmt: skip
    ap.add_argument("--note", default="", help="how the machine was while measured (stored in the JSON)")
    args = ap.parse_args()
    if args.quick:
        args.max_tokens = 32
    levels = [int(x) for x in args.levels.split(",")]
    work = Path(tempfile.mkdtemp(prefix="gptkit-bench-serve-"))
    try:
        ckpt, hf, prompts = build_checkpoint(work)
        from gptkit import Tokenizer

        tok = Tokenizer.load(ckpt)

        def count_tokens(text: str) -> int:
            return len(tok.encode(text))

        baseline = generate_baseline(ckpt, prompts, 4 if args.quick else 8, args.max_tokens, args.dtype)
        port = free_port()
        argv = [sys.executable, "-m", "gptkit", "serve", "--model", str(ckpt), "--port", str(port), "--max-batch",
                "16", "--max-queue", "256", "--name", "bench", "--device", "cpu", "--dtype", args.dtype]  # fmt: skip
        servers = [Server("gptkit", argv, port, "bench")]
        if args.also_pinned:
            argv_pinned = [*argv, "--decode-cpus", args.also_pinned]
            argv_pinned[argv_pinned.index("--port") + 1] = str(p := free_port())
            servers.append(Server("gptkit-pinned", argv_pinned, p, "bench"))
        if args.also_in_process:
            argv_thread = [*argv, "--in-process"]
            argv_thread[argv_thread.index("--port") + 1] = str(p := free_port())
            servers.append(Server("gptkit-in-process", argv_thread, p, "bench"))
        peer_note = None
        if not args.no_transformers:
            # The `transformers` command of this Python's environment (its bin/ is not always on PATH), else PATH's.
            beside = Path(sys.executable).parent / "transformers"
            exe = str(beside) if beside.is_file() else shutil.which("transformers")
            if exe is None:
                peer_note = "transformers serve: the `transformers` command is not installed"
            else:
                servers.append(Server("transformers", [exe, "serve", "--continuous-batching", "--cb-num-blocks", "512",
                                                       "--cb-block-size", "32", "--cb-max-batch-tokens", "1024",
                                                       "--host", "127.0.0.1", "--port", str(p := free_port()),
                                                       "--device", "cpu", "--dtype", args.dtype, str(hf)],
                                      p, str(hf), env={"HF_HUB_OFFLINE": "1"}))  # fmt: skip
        rows = []
        try:
            up = []
            for s in servers:
                try:
                    s.wait()
                    up.append(s)
                except RuntimeError as e:
                    peer_note = f"{s.name}: {e}"
                    s.stop()
            for s in up:  # warm-up: the first requests pay for lazy initialisation
                asyncio.run(run_level(s, prompts, 2, 1, 8, count_tokens))
            for clients in levels:
                per_client = args.per_client or max(4, 16 // clients)
                for s in up:
                    others = {o.name: cpu_seconds(o.proc.pid) for o in up if o is not s}
                    threads, client_cpu = thread_cpu_seconds(s.proc.pid), time.process_time()
                    row = asyncio.run(run_level(s, prompts, clients, per_client, args.max_tokens, count_tokens))
                    row["server"] = s.name
                    row["idle_peer_cpu_s"] = sum(cpu_seconds(o.proc.pid) - others[o.name] for o in up if o is not s)
                    row["cpu"] = cpu_profile(threads, thread_cpu_seconds(s.proc.pid), row["tokens"])
                    cpu = row["cpu"]
                    cpu["client_ms_per_token"] = (time.process_time() - client_cpu) * 1000 / max(row["tokens"], 1)
                    rows.append(row)
                    print(f"{s.name:>12} {clients:>3} clients: {row['tokens_per_s']:8.1f} tok/s, "
                          f"{row['errors']} errors, CPU ms/token: busiest thread "
                          f"{cpu['busiest_thread_ms_per_token']:.2f}, other threads "
                          f"{cpu['other_threads_ms_per_token']:.2f}, client {cpu['client_ms_per_token']:.2f}; "
                          f"busiest thread waited for a CPU {cpu['busiest_thread_runqueue_ms_per_token']:.2f}",
                          flush=True)  # fmt: skip
        finally:
            for s in servers:
                s.stop()
        # `gptkit generate` again once the servers are gone: the 1-client ratio uses both runs, so a change of
        # the machine's load during the run moves the baseline too.
        after = generate_baseline(ckpt, prompts, 4 if args.quick else 8, args.max_tokens, args.dtype)
        baseline = {key: baseline[key] + after[key] for key in ("requests", "tokens", "wall_s")} | {
            "runs_tokens_per_s": [baseline["tokens_per_s"], after["tokens_per_s"]]}  # fmt: skip
        baseline["tokens_per_s"] = baseline["tokens"] / baseline["wall_s"]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def figure(server: str, clients: int) -> dict | None:
        return next((r for r in rows if r["server"] == server and r["clients"] == clients), None)

    g1, g16, t16 = figure("gptkit", 1), figure("gptkit", 16), figure("transformers", 16)
    goals = {
        "gptkit_16_over_transformers_16": g16["tokens_per_s"] / t16["tokens_per_s"] if g16 and t16 else None,
        "gptkit_16_over_gptkit_1": g16["tokens_per_s"] / g1["tokens_per_s"] if g16 and g1 else None,
        "gptkit_1_over_generate": g1["tokens_per_s"] / baseline["tokens_per_s"] if g1 else None,
        "errors_at_16": (g16 or {}).get("errors"),
    }
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"serving: {args.max_tokens} new tokens per request, greedy, CPU {args.dtype}")
    for col in ("server", "clients", "requests", "tok/s", "TTFT p50", "TTFT p99", "latency p50", "latency p99",
                "errors"):  # fmt: skip
        table.add_column(col, justify="right")
    for r in rows:
        ms = lambda v: "-" if v is None else f"{v * 1000:.0f} ms"  # noqa: E731
        table.add_row(r["server"], str(r["clients"]), str(r["requests"]), f"{r['tokens_per_s']:.1f}",
                      ms(r["ttft_p50_s"]), ms(r["ttft_p99_s"]), ms(r["latency_p50_s"]), ms(r["latency_p99_s"]),
                      str(r["errors"]))  # fmt: skip
    table.add_row("gptkit generate", "1", str(baseline["requests"]), f"{baseline['tokens_per_s']:.1f}", "", "", "", "",
                  "")  # fmt: skip
    console = Console()
    console.print(table)
    for k, v in goals.items():
        console.print(f"{k}: {v if v is None or isinstance(v, int) else f'{v:.2f}x'}")
    if peer_note:
        console.print(f"note: {peer_note}")
    import torch

    results = RESULTS if args.dtype == "float32" else RESULTS.with_name(f"serve_{args.dtype}.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "note": args.note, "threads_per_process": THREADS},
        "settings": {"max_tokens": args.max_tokens, "dtype": args.dtype, "levels": levels,
                     "model": "small preset shape, vocab 1024"},
        "rows": rows, "gptkit_generate": baseline, "goals": goals, "peer_note": peer_note,
    }, indent=2) + "\n")  # fmt: skip
    console.print(f"wrote {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
