"""gptkit serve through the official `openai` client and raw HTTP, against a live server on 127.0.0.1: results
equal `Generator`'s (greedy, and seeded sampling), OpenAI's shapes for responses, SSE and errors, cancelling on
disconnect, 32 concurrent streams, 429 over the queue's cap."""

from __future__ import annotations

import json
import threading
import time

import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from gptkit import save_model  # noqa: E402
from gptkit.serve.model_process import ModelSpec  # noqa: E402
from gptkit.serve.service import Service  # noqa: E402
from tests.serve_helpers import live_server, random_generator, tiny_tokenizer  # noqa: E402

pytestmark = pytest.mark.xdist_group("serve")


@pytest.fixture(scope="module")
def gen():
    return random_generator(tiny_tokenizer())


@pytest.fixture(scope="module", params=["thread", "model process"])
def server(request, gen, tmp_path_factory):
    """The app over the decoder on a thread of this process, and over a model process loading the same model
    from a checkpoint (`gptkit serve`'s way; unpacked, so its numbers are the Generator's exactly)."""
    if request.param == "thread":
        service = Service(gen, name="tiny", max_batch=16, max_queue=64)
    else:
        ckpt = tmp_path_factory.mktemp("ckpt")
        save_model(gen.model, ckpt)
        gen.tokenizer.save(ckpt)
        service = Service(ModelSpec(str(ckpt), threads=1, pack=False), name="tiny", max_batch=16, max_queue=64)
    with live_server(service) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=60)


def sse_events(response) -> list:
    """The data: payloads of an SSE response (JSON decoded; '[DONE]' kept as is)."""
    out = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
        else:
            assert line == "", line
    return out


def test_completions_equal_generator(client, gen):
    r = client.completions.create(model="tiny", prompt="The quick", max_tokens=12, temperature=0)
    assert r.object == "text_completion" and r.model == "tiny" and r.id.startswith("cmpl-")
    assert r.choices[0].text == gen.complete("The quick", max_new_tokens=12)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == len(gen.encode_prompt("The quick")) and r.usage.completion_tokens == 12
    # OpenAI's default temperature is 1: sampling; with a seed, what gptkit generate --seed gives.
    r = client.completions.create(model="tiny", prompt=["中文", "The"], max_tokens=10, seed=5, n=3)
    expected = gen.complete_batch(["中文", "The"], max_new_tokens=10, temperature=1.0, seed=5, num_return_sequences=3)
    assert [c.text for c in r.choices] == expected and [c.index for c in r.choices] == list(range(6))
    assert len(set(expected[:3])) == 3


def test_stop_penalties_echo_and_logprobs(client, gen):
    full = gen.complete("The quick", max_new_tokens=20)
    stop = full[5:7]
    r = client.completions.create(model="tiny", prompt="The quick", max_tokens=20, temperature=0, stop=[stop, "zzz"])
    assert r.choices[0].text == gen.complete("The quick", max_new_tokens=20, stop=[stop]) and r.choices[0].text != full
    assert r.choices[0].finish_reason == "stop"
    r = client.completions.create(model="tiny", prompt="The", max_tokens=12, temperature=0.8, seed=1,
                                  presence_penalty=1.5, frequency_penalty=0.5, extra_body={"top_k": 30})  # fmt: skip
    assert r.choices[0].text == gen.complete("The", max_new_tokens=12, temperature=0.8, seed=1, presence_penalty=1.5,
                                             frequency_penalty=0.5, top_k=30)  # fmt: skip
    r = client.completions.create(model="tiny", prompt="The", max_tokens=4, temperature=0, logprobs=2, echo=True)
    lp = r.choices[0].logprobs
    assert r.choices[0].text.startswith("The") and len(lp.tokens) == 4 and all(len(t) == 2 for t in lp.top_logprobs)
    assert all(v <= 0 for v in lp.token_logprobs) and lp.text_offset[0] == 3


def test_streaming_equals_non_streaming_and_sse_shape(client, server, gen):
    stream = client.completions.create(model="tiny", prompt="The quick", max_tokens=12, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in stream) == gen.complete("The quick", max_new_tokens=12)
    body = {"model": "tiny", "prompt": "The", "max_tokens": 6, "temperature": 0, "stream": True, "n": 2,
            "stream_options": {"include_usage": True}}  # fmt: skip
    with httpx.stream("POST", server + "/v1/completions", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == "[DONE]" and events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 12
    finishes = [c["finish_reason"] for e in events[:-2] for c in e["choices"] if c["finish_reason"]]
    assert finishes == ["length", "length"] and all(e["usage"] is None for e in events[:-2])
    # echo and logprobs stream as they come back whole: the prompt first, offsets running on.
    options = dict(model="tiny", prompt="The", max_tokens=6, temperature=0, echo=True, logprobs=1)
    whole = client.completions.create(**options).choices[0]
    chunks = [c.choices[0] for c in client.completions.create(**options, stream=True)]
    assert "".join(c.text for c in chunks) == whole.text
    assert [o for c in chunks if c.logprobs for o in c.logprobs.text_offset] == whole.logprobs.text_offset


def test_errors_are_typed_and_openai_shaped(client, server):
    cases = [
        (dict(top_p=1.5), "top_p"),
        (dict(top_p=0), "top_p"),
        (dict(temperature=-0.5), "temperature"),
        (dict(max_tokens=100), "max_tokens"),
        (dict(stop=["a", "b", "c", "d", "e"]), "stop"),
        (dict(n=0), "n"),
    ]
    for options, param in cases:
        with pytest.raises(openai.BadRequestError) as e:
            client.completions.create(model="tiny", prompt="The", **options)
        assert e.value.status_code == 400 and e.value.body["param"] == param, options
        assert set(e.value.body) == {"message", "type", "param", "code"}
    with pytest.raises(openai.BadRequestError, match=r"2 tokens \+ max_tokens 100 = 102 tokens.*context of 64"):
        client.completions.create(model="tiny", prompt="x", max_tokens=100)
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-4", prompt="The")
    assert e.value.body["code"] == "model_not_found"
    # Unknown fields are ignored; a body that is not JSON is a 400, never a 5xx.
    r = httpx.post(server + "/v1/completions", json={"model": "tiny", "prompt": "a", "max_tokens": 1, "foo": 1})
    assert r.status_code == 200
    r = httpx.post(server + "/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()
    assert httpx.get(server + "/v1/nothing").json()["error"]["code"] == "not_found"


def test_chat_uses_the_template(client, gen):
    """The tokenizer's chat template (ChatML on <|im_start|>/<|im_end|>), answered like gptkit.generate."""
    from gptkit import generate
    from gptkit.generation.utf8 import Utf8Table
    from gptkit.tokenizer import chat_template as template

    tok = gen.tokenizer
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "你好"}]
    r = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0)
    ids = template.chat_prompt_ids(tok, messages)
    eos = [template.chat_token_ids(tok)[1], tok.eot_id]
    new = generate(gen.model, [ids], max_new_tokens=8, eos_token_id=eos, valid_utf8=Utf8Table.for_tokenizer(tok))[0]
    expected = tok.decode([t for t in new if t not in eos])
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content and expected.startswith(r.choices[0].message.content)
    stream = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0, stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].delta.content is None and chunks[-1].choices[0].finish_reason is not None
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == r.choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="tiny", messages=[{"role": "assistant", "content": "hi"}])


def test_chat_without_a_template_is_a_clear_400(gen):
    """A base model (its tokenizer has no chat template), and a vocabulary without the chat tokens (an imported
    GPT-2's): chat is a 400 naming the template; completions still work."""
    import copy

    base = copy.copy(gen.tokenizer)
    base.chat_template = None
    gpt2_like = copy.copy(gen.tokenizer)
    gpt2_like.special_tokens = {"<|endoftext|>": gen.tokenizer.eot_id}
    for tok in (base, gpt2_like):
        with live_server(Service(random_generator(tok), name="base")) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
            with pytest.raises(openai.BadRequestError, match="chat template") as e:
                client.chat.completions.create(model="base", messages=[{"role": "user", "content": "hi"}])
            assert e.value.body["param"] == "messages" and e.value.body["code"] == "chat_template_missing"
            assert client.completions.create(model="base", prompt="hi", max_tokens=2).choices[0].finish_reason


def test_api_key_and_open_paths(gen):
    with live_server(Service(gen, name="tiny"), api_key="s3cret") as url:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()
        models = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0).models.list()
        assert [m.id for m in models.data] == ["tiny"]
        assert httpx.get(url + "/health").json()["status"] == "ok"
        assert httpx.get(url + "/v1/models").status_code == 401
        assert "gptkit_batch_size" in httpx.get(url + "/metrics").text
        assert httpx.get(url + "/openapi.json").json()["paths"]["/v1/completions"]


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def slow_steps(service: Service, seconds: float) -> None:
    """Make every scheduler step take at least `seconds`, so that requests overlap for sure."""
    step = service.scheduler.step

    def slow() -> None:
        time.sleep(seconds)
        step()

    service.scheduler.step = slow


def test_disconnect_cancels_and_queue_over_cap_gets_429(gen):
    service = Service(gen, name="tiny", max_batch=1, max_queue=1)
    slow_steps(service, 0.03)
    body = {"model": "tiny", "prompt": "The", "max_tokens": 60, "temperature": 0, "stream": True}
    with live_server(service) as url:
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=60) as r:
            next(r.iter_lines())
        wait_for(lambda: service.scheduler.batch_size == 0)  # the client went away: its row was freed
        assert service.scheduler.tokens_generated < 40  # long before its 60 tokens

        # One request runs, one waits, the next is refused (the client's RateLimitError); all stays healthy.
        statuses: list[int] = []

        def post() -> None:
            r = httpx.post(url + "/v1/completions", json={**body, "stream": False, "max_tokens": 30}, timeout=60)
            statuses.append(r.status_code)

        holders = [threading.Thread(target=post) for _ in range(2)]
        holders[0].start()
        wait_for(lambda: service.scheduler.batch_size == 1)
        holders[1].start()
        wait_for(lambda: service.scheduler.queue_depth == 1)
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.RateLimitError) as e:
            client.completions.create(model="tiny", prompt="The", max_tokens=2)
        assert e.value.body["code"] == "rate_limit_exceeded"
        for t in holders:
            t.join()
        assert statuses == [200, 200]
        health = httpx.get(url + "/health").json()
        assert health == {"status": "ok", "model": "tiny", "queue_depth": 0, "batch_size": 0}


def test_32_concurrent_streams_all_complete(server, gen):
    prompts = ["The quick", "中文", "To be", "今天"]
    expected = {p: gen.complete(p, max_new_tokens=16) for p in prompts}
    results: dict[int, tuple[str, list]] = {}

    def stream(i: int) -> None:
        p = prompts[i % 4]
        body = {"model": "tiny", "prompt": p, "max_tokens": 16, "temperature": 0, "stream": True}
        with httpx.stream("POST", server + "/v1/completions", json=body, timeout=120) as r:
            results[i] = (p, sse_events(r))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 32
    for p, events in results.values():
        assert events[-1] == "[DONE]"
        assert "".join(c["text"] for e in events[:-1] for c in e["choices"]) == expected[p]
        assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert httpx.get(server + "/health").json()["batch_size"] == 0
