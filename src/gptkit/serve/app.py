"""The FastAPI app of `gptkit serve`: OpenAI's /v1/completions, /v1/chat/completions and /v1/models, /health,
/metrics (Prometheus), the chat page at /, OpenAPI at /docs and /openapi.json.

Responses, SSE chunks and errors have OpenAI's shapes (`{"error": {"message", "type", "param", "code"}}`):
400 for an invalid value (naming it), 401 without the key when one is set (/health, /metrics, / and the docs
stay open), 404 for an unknown model, 429 when the queue is full. A bad request never gets a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from gptkit.errors import GptkitError
from gptkit.generation.batched import QueueFull
from gptkit.serve.chat import ChatUnsupported, chat_prompt
from gptkit.serve.model_process import ModelProcessError
from gptkit.serve.protocol import ChatCompletionRequest, CompletionRequest, SamplingRequest, error_body
from gptkit.serve.service import Completion, Piece, Service

OPEN_PATHS = ("/health", "/metrics", "/docs", "/openapi.json", "/docs/oauth2-redirect")


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.body = status, error_body(message, type_, param, code)


def _invalid(message: str, param: str | None = None, code: str | None = "invalid_value") -> ApiError:
    return ApiError(400, message, "invalid_request_error", param, code)


class Metrics:
    """Prometheus metrics of one app (its own registry, so that several apps in one process do not clash)."""

    def __init__(self, service: Service) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "gptkit_requests", "requests by endpoint and status", ["endpoint", "status"], registry=r
        )
        self.prompt_tokens = Counter("gptkit_prompt_tokens", "prompt tokens prefilled", registry=r)
        self.completion_tokens = Counter("gptkit_completion_tokens", "tokens generated", registry=r)
        self.ttft = Histogram(
            "gptkit_time_to_first_token_seconds",
            "time from request to its first token",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.latency = Histogram(
            "gptkit_request_latency_seconds",
            "time from request to its last token",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        queue = Gauge("gptkit_queue_depth", "requests waiting for a batch row", registry=r)
        queue.set_function(lambda: service.scheduler.queue_depth)
        batch = Gauge("gptkit_batch_size", "rows in the running batch", registry=r)
        batch.set_function(lambda: service.scheduler.batch_size)


def create_app(service: Service, *, api_key: str | None = None) -> FastAPI:
    """The app over a Service; the scheduler's thread runs while the app does (its lifespan)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="gptkit serve",
        description="OpenAI-compatible completions and chat completions over a gptkit checkpoint.",
        version="1",
        lifespan=lifespan,
    )
    metrics = Metrics(service)
    app.state.service, app.state.metrics = service, metrics

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        path = request.url.path
        if api_key is not None and path.startswith("/v1"):
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                what = "no API key given" if not given else "the API key is not valid"
                body = error_body(
                    f"{what}: send 'Authorization: Bearer KEY'", "invalid_request_error", None, "invalid_api_key"
                )
                return JSONResponse(body, status_code=401)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return JSONResponse(e.body, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError):
        err = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        msg = err.get("msg", "invalid value")
        if err.get("type") == "json_invalid":
            return JSONResponse(error_body(f"the body is not valid JSON: {msg}", "invalid_request_error"), 400)
        message = f"{param}: {msg}" if param else msg
        if "input" in err and param and not isinstance(err["input"], (dict, list)):
            message += f" (got {err['input']!r})"
        return JSONResponse(error_body(message, "invalid_request_error", param, "invalid_value"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        type_ = "invalid_request_error" if e.status_code < 500 else "server_error"
        code = "not_found" if e.status_code == 404 else None
        return JSONResponse(error_body(str(e.detail), type_, None, code), status_code=e.status_code)

    def check_model(name: str) -> None:
        if name != service.name:
            raise ApiError(
                404, f"the model {name!r} does not exist; this server has {service.name!r}",
                "invalid_request_error", "model", "model_not_found",
            )  # fmt: skip

    def model_card() -> dict:
        return {"id": service.name, "object": "model", "created": service.created, "owned_by": "gptkit"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("gptkit.serve").joinpath("page.html").read_text(encoding="utf-8"))

    @app.get("/health")
    async def health():
        s = service.scheduler
        body = {"status": "ok" if service.alive else "error", "model": service.name, "queue_depth": s.queue_depth,
                "batch_size": s.batch_size}  # fmt: skip
        return body if service.alive else JSONResponse(body, status_code=503)

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model}")
    async def get_model(model: str) -> dict:
        check_model(model)
        return model_card()

    def max_new_tokens(req_max: int | None, prompt_len: int, param: str, default: int | None) -> int:
        """The request's max_tokens, or the default capped by the room the prompt leaves in the context."""
        room = service.block_size - prompt_len
        if req_max is not None:
            if prompt_len + req_max > service.block_size:
                raise _invalid(
                    f"the prompt's {prompt_len} tokens + {param} {req_max} = {prompt_len + req_max} tokens, more "
                    f"than the model's context of {service.block_size}",
                    param,
                    "context_length_exceeded",
                )
            return req_max
        if room < 1:
            raise _invalid(
                f"the prompt's {prompt_len} tokens fill the model's context of {service.block_size}: no room to "
                "generate",
                "prompt" if param == "max_tokens" else "messages",
                "context_length_exceeded",
            )
        return room if default is None else min(default, room)

    def open_jobs(req: SamplingRequest, prompts: list[list[int]], limit: int, eos: tuple[int, ...], logprobs):
        completions: list[Completion] = []
        try:
            for i, ids in enumerate(prompts):
                n_new = max_new_tokens(req.requested_max_tokens if isinstance(req, ChatCompletionRequest)
                                       else req.max_tokens, len(ids), "max_tokens", limit)  # fmt: skip
                try:
                    settings = service.check(ids, req.settings(n_new, eos, service.utf8))
                except GptkitError as e:
                    param = str(e).split(":", 1)[0] if ":" in str(e) else None
                    raise _invalid(str(e), param) from None
                opened = service.open(ids, settings, n=req.n, stop=req.stops, logprobs=logprobs, first_row=i * req.n)
                completions.append(opened)
        except QueueFull as e:
            for c in completions:
                c.cancel()
            raise ApiError(429, f"{e}; retry later", "rate_limit_error", None, "rate_limit_exceeded") from None
        except ModelProcessError as e:  # the model process exited: the server cannot generate any more
            for c in completions:
                c.cancel()
            raise ApiError(503, str(e), "server_error", None, "model_unavailable") from None
        except BaseException:
            for c in completions:
                c.cancel()
            raise
        return completions

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest, request: Request):
        check_model(req.model)
        started = time.perf_counter()
        prompts = [service.encode_prompt(p) for p in req.prompts]
        eos = (service.tokenizer.eot_id,)
        jobs = open_jobs(req, prompts, 16, eos, req.logprobs)
        metrics.prompt_tokens.inc(sum(map(len, prompts)))
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "object": "text_completion", "created": created, "model": service.name}

        def choice_logprobs(pieces: list[Piece], offset: int) -> dict | None:
            if req.logprobs is None:
                return None
            out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
            for p in pieces:
                for token, lp, top in p.tokens:
                    text = service.token_text(token)
                    out["tokens"].append(text)
                    out["token_logprobs"].append(lp)
                    out["top_logprobs"].append({service.token_text(t): v for t, v in (top or [])})
                    out["text_offset"].append(offset)
                    offset += len(text)
            return out

        if req.stream:
            extra = {"usage": None} if req.include_usage else {}

            async def events() -> AsyncIterator[str]:
                offsets = {}  # choice -> text_offset of its next token
                for index in range(len(jobs) * req.n):
                    prefix = req.prompts[index // req.n] if req.echo else ""
                    offsets[index] = len(prefix)
                    if prefix:
                        choice = {"text": prefix, "index": index, "logprobs": None, "finish_reason": None}
                        yield sse({**head, "choices": [choice], **extra})
                async for index, piece in merged(jobs, req.n):
                    if not piece.text and piece.finish is None and req.logprobs is None:
                        continue
                    logprobs = None
                    if req.logprobs is not None:
                        logprobs = choice_logprobs([piece], offsets[index])
                        offsets[index] += sum(len(service.token_text(t)) for t, _, _ in piece.tokens)
                    choice = {"text": piece.text, "index": index, "logprobs": logprobs, "finish_reason": piece.finish}
                    yield sse({**head, "choices": [choice], **extra})
                if req.include_usage:
                    yield sse({**head, "choices": [], "usage": usage(jobs)})
                yield "data: [DONE]\n\n"

            return StreamingResponse(observed(events(), jobs, started, "completions"), media_type="text/event-stream")

        choices = await collect(jobs, req.n, request)
        observe(jobs, started, "completions")
        out = []
        for index, pieces in enumerate(choices):
            prefix = req.prompts[index // req.n] if req.echo else ""
            out.append({
                "text": prefix + "".join(p.text for p in pieces),
                "index": index,
                "logprobs": choice_logprobs(pieces, len(prefix)),
                "finish_reason": pieces[-1].finish if pieces else "length",
            })  # fmt: skip
        return {**head, "choices": out, "usage": usage(jobs)}

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatCompletionRequest, request: Request):
        check_model(req.model)
        started = time.perf_counter()
        try:
            ids, eos = chat_prompt(service.tokenizer, [(m.role, m.text) for m in req.messages])
        except ChatUnsupported as e:
            raise _invalid(str(e), "messages", "chat_template_missing") from None
        except GptkitError as e:
            raise _invalid(str(e), "messages") from None
        top = req.top_logprobs or 0
        jobs = open_jobs(req, [ids], None, eos, top if req.logprobs else None)
        metrics.prompt_tokens.inc(len(ids))
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "object": "chat.completion", "created": created, "model": service.name,
                "system_fingerprint": None}  # fmt: skip

        def content_logprobs(pieces: list[Piece]) -> dict | None:
            if not req.logprobs:
                return None

            def entry(token: int, lp: float | None) -> dict:
                text, raw = service.token_text(token), service.tokenizer.token_bytes(token)
                return {"token": text, "logprob": lp, "bytes": list(raw)}

            content = []
            for p in pieces:
                for token, lp, alts in p.tokens:
                    content.append({**entry(token, lp), "top_logprobs": [entry(t, v) for t, v in (alts or [])]})
            return {"content": content, "refusal": None}

        if req.stream:
            chunk_head = {**head, "object": "chat.completion.chunk"}
            extra = {"usage": None} if req.include_usage else {}

            async def events() -> AsyncIterator[str]:
                for index in range(req.n):
                    delta = {"role": "assistant", "content": ""}
                    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
                    yield sse({**chunk_head, "choices": [choice], **extra})
                async for index, piece in merged(jobs, req.n):
                    if piece.text or (req.logprobs and piece.tokens):
                        choice = {"index": index, "delta": {"content": piece.text},
                                  "logprobs": content_logprobs([piece]), "finish_reason": None}  # fmt: skip
                        yield sse({**chunk_head, "choices": [choice], **extra})
                    if piece.finish is not None:
                        choice = {"index": index, "delta": {}, "logprobs": None, "finish_reason": piece.finish}
                        yield sse({**chunk_head, "choices": [choice], **extra})
                if req.include_usage:
                    yield sse({**chunk_head, "choices": [], "usage": usage(jobs)})
                yield "data: [DONE]\n\n"

            return StreamingResponse(observed(events(), jobs, started, "chat"), media_type="text/event-stream")

        choices = await collect(jobs, req.n, request)
        observe(jobs, started, "chat")
        out = []
        for index, pieces in enumerate(choices):
            message = {"role": "assistant", "content": "".join(p.text for p in pieces), "refusal": None}
            out.append({"index": index, "message": message, "logprobs": content_logprobs(pieces),
                        "finish_reason": pieces[-1].finish if pieces else "length"})  # fmt: skip
        return {**head, "choices": out, "usage": usage(jobs)}

    def usage(jobs: list[Completion]) -> dict:
        prompt = sum(len(c.job.prompt) for c in jobs)
        completion = sum(sum(c.generated) for c in jobs)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def observe(jobs: list[Completion], started: float, endpoint: str, status: str = "200") -> None:
        metrics.requests.labels(endpoint, status).inc()
        metrics.completion_tokens.inc(sum(sum(c.generated) for c in jobs))
        firsts = [c.first_token_at for c in jobs if c.first_token_at is not None]
        if firsts:
            metrics.ttft.observe(min(firsts) - started)
        metrics.latency.observe(time.perf_counter() - started)

    async def observed(events: AsyncIterator[str], jobs: list[Completion], started: float, endpoint: str):
        """The SSE events; a client that goes away cancels its jobs (Starlette cancels this generator). If the
        model process exits meanwhile, the stream ends with an error event in OpenAI's shape (no [DONE])."""
        status = "disconnected"
        try:
            async for e in events:
                yield e
            status = "200"
        except ModelProcessError as e:
            status = "503"
            yield sse(error_body(str(e), "server_error", None, "model_unavailable"))
        finally:
            if status != "200":
                for c in jobs:
                    c.cancel()
            observe(jobs, started, endpoint, status)

    return app


def sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def merged(jobs: list[Completion], n: int) -> AsyncIterator[tuple[int, Piece]]:
    """(choice index over all prompts, piece) from every job as they come."""
    if len(jobs) == 1:  # one prompt (the common case): its pieces as they are, no task and queue in between
        async for piece in jobs[0].pieces():
            yield piece.choice, piece
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(i: int, c: Completion) -> None:
        try:
            async for piece in c.pieces():
                await queue.put((i * n + piece.choice, piece))
        except Exception as e:  # the scheduler failed: handed on to the request
            await queue.put(e)
        finally:
            await queue.put(None)

    tasks = [asyncio.create_task(pump(i, c)) for i, c in enumerate(jobs)]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield item
    finally:
        for t in tasks:
            t.cancel()


async def collect(jobs: list[Completion], n: int, request: Request) -> list[list[Piece]]:
    """Every choice's pieces; the jobs are cancelled if the client disconnects meanwhile."""
    choices: list[list[Piece]] = [[] for _ in range(len(jobs) * n)]

    async def gather() -> None:
        async for index, piece in merged(jobs, n):
            choices[index].append(piece)

    task = asyncio.create_task(gather())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=0.25)
            if not task.done() and await request.is_disconnected():
                task.cancel()
                break
        if task.cancelled():
            raise ApiError(499, "the client closed the request", "client_closed")
        try:
            task.result()
        except ModelProcessError as e:  # the model process exited while this request ran
            raise ApiError(503, str(e), "server_error", None, "model_unavailable") from None
    finally:
        if not task.done() or task.cancelled():
            for c in jobs:
                c.cancel()
    return choices


__all__ = ["create_app"]
