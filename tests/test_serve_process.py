"""The model process of `gptkit serve` (serve/model_process.py): a client that goes away frees its row there
too, a checkpoint it cannot load is a clear error before the server starts, and a model process that dies
turns into 503s and a failing /health, never a hang. (Results through it: tests/test_serve.py runs every
OpenAI-client test against both decoders.)"""

from __future__ import annotations

import os
import threading
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from gptkit import save_model  # noqa: E402
from gptkit.serve.model_process import ModelProcessError, ModelSpec  # noqa: E402
from gptkit.serve.service import Service  # noqa: E402
from tests.serve_helpers import live_server, random_generator, tiny_tokenizer  # noqa: E402

pytestmark = pytest.mark.xdist_group("serve")

# The context of the test checkpoint. A disconnect must stop a generation of LONG - 16 tokens before half of
# them: with 1,024 the tiny model finished 988 tokens before the cancel arrived on a loaded CI machine.
LONG = 8192


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny checkpoint with a long context, so that a long generation takes a while."""
    tok = tiny_tokenizer(chat=False)
    path = tmp_path_factory.mktemp("ckpt")
    save_model(random_generator(tok, block_size=LONG).model, path)
    tok.save(path)
    return path


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_disconnect_frees_the_row_in_the_model_process(ckpt):
    service = Service(ModelSpec(str(ckpt), threads=1), name="tiny", max_batch=4)
    body = {"model": "tiny", "prompt": "The", "max_tokens": LONG - 16, "temperature": 0, "stream": True}
    with live_server(service) as url:
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=60) as r:
            assert next(r.iter_lines()).startswith("data: ")
        wait_for(lambda: service.scheduler.batch_size == 0 and not service.scheduler.jobs)
        assert service.scheduler.tokens_generated < LONG // 2  # long before its LONG - 16 tokens
        r = httpx.post(url + "/v1/completions", json={**body, "stream": False, "max_tokens": 5}, timeout=60)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 5


def test_a_checkpoint_the_model_process_cannot_load_is_a_clear_error(ckpt, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ckpt.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelProcessError, match=r"model\.safetensors: cannot be read as safetensors"):
        Service(ModelSpec(str(broken)), name="broken")


def test_a_model_process_that_dies_gives_503_not_a_hang(ckpt):
    service = Service(ModelSpec(str(ckpt), threads=1), name="tiny", max_batch=4)
    body = {"model": "tiny", "prompt": "The", "max_tokens": LONG - 16, "temperature": 0, "stream": True}
    statuses: list[int] = []
    with live_server(service) as url:
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=60) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
            waiting = threading.Thread(target=lambda: statuses.append(httpx.post(url + "/v1/completions", json={
                **body, "stream": False}, timeout=60).status_code))  # fmt: skip
            waiting.start()
            wait_for(lambda: len(service.scheduler.jobs) == 2)
            service.scheduler.process.kill()
            rest = [line for line in lines if line]  # the stream ends instead of hanging, with an error event
        assert rest[-1].startswith('data: {"error"') and "model_unavailable" in rest[-1] and "[DONE]" not in rest
        waiting.join(30)
        assert statuses == [503]  # the request that was not streamed: a 503 too
        wait_for(lambda: not service.alive)
        health = httpx.get(url + "/health")
        assert health.status_code == 503 and health.json()["status"] == "error"
        r = httpx.post(url + "/v1/completions", json={**body, "stream": False}, timeout=60)
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
        assert "exited" in r.json()["error"]["message"]


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux's")
def test_decode_cpus_pin_the_model_process_and_keep_this_one_off_them(ckpt):
    allowed = os.sched_getaffinity(0)
    cpu = max(allowed)
    try:
        service = Service(ModelSpec(str(ckpt), threads=1, cpus=(cpu,)), name="tiny")
        try:
            assert os.sched_getaffinity(service.scheduler.process.pid) == {cpu}
            assert os.sched_getaffinity(0) == (allowed - {cpu} or allowed)  # one CPU only: shared
        finally:
            service.close()
    finally:
        os.sched_setaffinity(0, allowed)
