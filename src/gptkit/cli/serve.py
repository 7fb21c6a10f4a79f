"""`gptkit serve`: an OpenAI-compatible HTTP server over a checkpoint (continuous batching; chat page at /)."""

from __future__ import annotations

import argparse

from gptkit.cli.generate import DTYPES
from gptkit.devices import DEVICE_HELP, resolve_device
from gptkit.errors import GptkitError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="OpenAI-compatible HTTP server (completions, chat, streaming) with continuous batching",
        description="Serve a checkpoint over HTTP with OpenAI's API (/v1/completions, /v1/chat/completions, "
        "/v1/models), /health, /metrics, OpenAPI at /docs, and a chat page at /. Needs gptkit[serve].",
    )
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.add_argument("--api-key", metavar="KEY", help="require 'Authorization: Bearer KEY' on /v1/*")
    p.add_argument("--max-batch", type=int, default=16, metavar="N", help="rows decoded together (default 16)")
    p.add_argument("--max-queue", type=int, default=64, metavar="M",
                   help="requests waiting for a row before new ones get 429 (default 64)")  # fmt: skip
    p.add_argument("--name", help="the model id clients send (default: the checkpoint directory's name)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--dtype", choices=DTYPES, default="auto",
                   help="default: bfloat16 on CUDA, else float32 (bfloat16 on a CPU with AVX512_BF16: half the "
                   "weight bytes per step)")  # fmt: skip
    p.add_argument("--decode-cpus", metavar="LIST",
                   help="CPUs for the model process, e.g. 1 or 2-7 or 0,2 (Linux); the HTTP process then keeps to "
                   "the others, so neither preempts the other (default: any CPU for both)")  # fmt: skip
    p.add_argument("--in-process", action="store_true",
                   help="decode on a thread of the HTTP server's process instead of a model process of its own "
                   "(one process to debug or profile; slower: the two then share one GIL)")  # fmt: skip
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    if args.max_batch < 1:
        raise GptkitError(f"--max-batch: must be >= 1, got {args.max_batch}")
    if args.max_queue < 0:
        raise GptkitError(f"--max-queue: must be >= 0, got {args.max_queue}")
    if not 0 <= args.port <= 65535:
        raise GptkitError(f"--port: {args.port} is not a port number (0 .. 65535)")
    try:
        import uvicorn

        from gptkit.serve.app import create_app
    except ImportError as e:
        missing = f"gptkit serve needs the serve extra ({e.name} is missing)"
        raise GptkitError(f"{missing}: pip install 'gptkit[serve]'") from None
    from gptkit.serve.decoder import default_dtype
    from gptkit.serve.service import Service

    cpus = parse_cpus(args.decode_cpus) if args.decode_cpus is not None else None
    if cpus is not None and args.in_process:
        raise GptkitError("--decode-cpus: needs the model process; drop --in-process")
    device = str(resolve_device(args.device))
    dtype = args.dtype if args.dtype != "auto" else str(default_dtype(device)).removeprefix("torch.")
    service = Service.load(args.model, device=device, dtype=dtype, name=args.name, max_batch=args.max_batch,
                           max_queue=args.max_queue, in_process=args.in_process, cpus=cpus)  # fmt: skip
    app = create_app(service, api_key=args.api_key)
    decoder = f"{'a thread of this process' if args.in_process else 'a model process'}, {dtype}"
    if cpus is not None:
        decoder += f", on CPUs {','.join(map(str, cpus))}"
    packed = f"; {service.packed_linears} linear layers packed for oneDNN" if service.packed_linears else ""
    print(f"gptkit serve: {service.name} on http://{args.host}:{args.port} (chat page at /, API docs at /docs; "
          f"decoding in {decoder}{packed})")  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def parse_cpus(text: str) -> tuple[int, ...]:
    """'1', '2-7', '0,2-3' -> the CPU numbers, each one this process may run on (else a GptkitError)."""
    import os

    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not (first.isdigit() and (not last or last.isdigit())) or (last and int(last) < int(first)):
            raise GptkitError(f"--decode-cpus: {text!r} is not a CPU list (e.g. 1, 2-7 or 0,2)")
        cpus.update(range(int(first), int(last or first) + 1))
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if allowed is None:
        raise GptkitError("--decode-cpus: this system cannot set CPU affinity (Linux only)")
    if not cpus <= allowed:
        raise GptkitError(f"--decode-cpus: CPU {min(cpus - allowed)} is not one this process may use "
                          f"({','.join(map(str, sorted(allowed)))})")  # fmt: skip
    return tuple(sorted(cpus))
