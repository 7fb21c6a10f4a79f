"""Property-based fuzz of gptkit serve's OpenAPI schema (schemathesis) against a live server on 127.0.0.1:
whatever the generated request, never a 5xx. Bounded: a few dozen examples per operation, a time limit."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from gptkit.serve.service import Service  # noqa: E402
from tests.serve_helpers import live_server, random_generator, tiny_tokenizer  # noqa: E402

pytestmark = pytest.mark.xdist_group("serve")


@pytest.fixture(scope="module")
def fuzz_url():
    # Small context so that even the largest generated max_tokens finishes fast.
    service = Service(random_generator(tiny_tokenizer(), block_size=32), name="tiny", max_batch=16, max_queue=64)
    with live_server(service) as url:
        yield url


def test_no_5xx_for_any_request(fuzz_url):
    """Every operation of the schema, 15 generated requests each (fixed seed), loopback only."""
    api = schemathesis.openapi.from_url(fuzz_url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/completions", "/v1/chat/completions", "/v1/models"}
    statuses: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)  # fmt: skip
        def check(case) -> None:
            if isinstance(case.body, dict) and "model" in case.body:
                case.body["model"] = "tiny"  # reach generation (unknown models: test_serve's 404 test)
            response = case.call(base_url=fuzz_url, timeout=30)
            statuses.setdefault(case.operation.path, set()).add(response.status_code)
            assert response.status_code < 500, (case.as_curl_command(), response.text[:300])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert set(error) == {"message", "type", "param", "code"} and error["message"]

        check()
    # Generated and refused requests were both tried (random chat histories are mostly out of order: 400).
    assert {200, 400} <= statuses["/v1/completions"] and 400 in statuses["/v1/chat/completions"], statuses
