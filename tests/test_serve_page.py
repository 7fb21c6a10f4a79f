"""The chat page at / in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
streamed text arrives, model text is shown as text (a `<script>` in the answer stays text), multi-turn, stop,
clear. Skips, saying why, where no Chromium is installed."""

from __future__ import annotations

import shutil
import time

import pytest

pytest.importorskip("fastapi")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[dev])")
from selenium.webdriver.common.by import By  # noqa: E402

from gptkit.serve.service import Service  # noqa: E402
from tests.serve_helpers import cyclic_generator, live_server, tiny_tokenizer  # noqa: E402
from tests.test_serve import slow_steps, wait_for  # noqa: E402

pytestmark = pytest.mark.xdist_group("serve")
ANSWER = "<script>window.pwned = 1</script><b>bold?</b> "


def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("no Chromium here: install Debian's chromium and chromium-driver (.ci/run does)")
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    return webdriver.Chrome(service=DriverService(driver_path), options=options)


def test_chat_page_streams_text_safely_with_stop_and_clear():
    tok = tiny_tokenizer()
    service = Service(cyclic_generator(tok, ANSWER, block_size=256), name="cyclic", max_batch=4)
    prompts: list[int] = []
    open_job = service.open
    service.open = lambda ids, *a, **kw: prompts.append(len(ids)) or open_job(ids, *a, **kw)
    slow_steps(service, 0.01)
    driver = browser()
    try:
        with live_server(service) as url:
            driver.get(url + "/")
            wait_for(lambda: "cyclic" in driver.find_element(By.ID, "status").text)
            driver.find_element(By.ID, "max-tokens").clear()
            driver.find_element(By.ID, "max-tokens").send_keys("60")
            driver.find_element(By.ID, "system").send_keys("You answer.")
            driver.find_element(By.ID, "input").send_keys("hello")
            driver.find_element(By.ID, "send").click()

            def answer() -> str:
                bubbles = driver.find_elements(By.CSS_SELECTOR, "#log .assistant")
                return bubbles[-1].text if bubbles else ""

            lengths = set()
            deadline = time.monotonic() + 30
            while driver.find_element(By.ID, "stop").is_enabled() or not lengths:
                lengths.add(len(answer()))
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert len(lengths - {0}) >= 2  # the text arrived in pieces: streamed
            text = answer()
            assert "<script>window.pwned = 1</script>" in text and "<b>bold?</b>" in text  # shown as text
            assert driver.execute_script("return window.pwned === undefined")
            assert not driver.find_elements(By.CSS_SELECTOR, "#log script, #log b")

            # A second turn carries the first (system + user + assistant + user); stop ends it early
            # (slower steps from here, so that the click lands long before its 120 tokens, even on a busy machine).
            slow_steps(service, 0.1)
            driver.find_element(By.ID, "max-tokens").clear()
            driver.find_element(By.ID, "max-tokens").send_keys("120")
            driver.find_element(By.ID, "input").send_keys("more")
            driver.find_element(By.ID, "send").click()
            wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#log .assistant")) == 2 and answer())
            driver.find_element(By.ID, "stop").click()
            wait_for(lambda: driver.find_element(By.ID, "send").is_enabled())
            wait_for(lambda: service.scheduler.batch_size == 0)
            assert service.scheduler.tokens_generated < 60 + 120  # the stopped answer did not run to the end
            assert len(prompts) == 2 and prompts[1] > prompts[0] + len(tok.encode(text)) - 5

            driver.find_element(By.ID, "clear").click()
            assert driver.find_elements(By.CSS_SELECTOR, "#log .msg") == []
    finally:
        driver.quit()
