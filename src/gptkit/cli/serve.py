"""`gptkit serve`: an OpenAI-compatible HTTP server over a checkpoint (continuous batching; chat page at /)."""

from __future__ import annotations

import argparse

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
    from gptkit.serve.service import Service

    device = str(resolve_device(args.device))
    service = Service.load(args.model, device=device, name=args.name, max_batch=args.max_batch,
                           max_queue=args.max_queue, in_process=args.in_process)  # fmt: skip
    app = create_app(service, api_key=args.api_key)
    decoder = "a thread of this process" if args.in_process else "a model process"
    packed = f"; {service.packed_linears} linear layers packed for oneDNN" if service.packed_linears else ""
    print(f"gptkit serve: {service.name} on http://{args.host}:{args.port} (chat page at /, API docs at /docs; "
          f"decoding in {decoder}{packed})")  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
