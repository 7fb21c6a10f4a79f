"""`gptkit chat`: the session (history, trimming, modes) and the terminal REPL driven through a pseudo-terminal."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from gptkit.generation.chat import ChatError, ChatSession, run_repl
from gptkit.generation.text import Generator
from gptkit.tokenizer.chat_template import render_chat
from tests.chat_helpers import tiny_checkpoint

MAX_NEW = 12


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("chat_model"), chat=True)


@pytest.fixture(scope="module")
def gen(chat_dir):
    return Generator.load(chat_dir)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("base_model"), chat=False)


def _expected_answer(gen: Generator, messages) -> str:
    """What the model answers to `messages`, straight from the Generator (greedy)."""
    tok = gen.tokenizer
    ids = render_chat(tok, messages, add_generation_prompt=True, validate=False).ids  # answers may be empty
    end = tok.special_tokens["<|im_end|>"]
    return gen.complete(ids, max_new_tokens=MAX_NEW, eos_token_id=[end, tok.eot_id])


def test_session_keeps_turns_and_renders_them(gen):
    s = ChatSession(gen, options={"max_new_tokens": MAX_NEW}, system="be brief")
    a1 = "".join(s.reply("hi"))
    assert a1 == _expected_answer(gen, [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    a2 = "".join(s.reply("how are you?"))
    assert a2 == _expected_answer(gen, s.messages()[:-1])
    assert s.turns == [("hi", a1), ("how are you?", a2)] and s.chat_mode
    s.reset()
    assert s.turns == [] and s.system == "be brief"


def test_history_is_trimmed_oldest_first(gen):  # block_size 128; the answer keeps 12 tokens free
    s = ChatSession(gen, options={"max_new_tokens": MAX_NEW})
    for i in range(6):
        "".join(s.reply(f"turn {'abc' * 3} {i}"))
    assert s.trimmed == 0 or s.turns[0][0] != "turn abcabcabc 0"
    kept = [u for u, _ in s.turns]
    assert kept == [f"turn abcabcabc {i}" for i in range(6 - len(kept), 6)]  # the newest, in order
    assert len(kept) < 6
    assert len(s.prompt_ids("x", s.turns[:-1])) + MAX_NEW <= 128
    with pytest.raises(ChatError, match="too long"):
        list(s.reply("a" * 200))


def test_base_model_continues_the_transcript(base_dir):
    gen = Generator.load(base_dir)
    s = ChatSession(gen, options={"max_new_tokens": MAX_NEW})
    assert not s.chat_mode
    a1 = "".join(s.reply("once upon"))
    assert a1 == gen.complete("once upon", max_new_tokens=MAX_NEW)
    a2 = "".join(s.reply(" then"))
    assert a2 == gen.complete("once upon" + a1 + " then", max_new_tokens=MAX_NEW)


def _scripted(lines):
    it = iter(lines)

    def read_line(prompt):
        line = next(it, None)
        if line is None:
            raise EOFError
        return line

    return read_line


def test_repl_commands(gen, tmp_path):
    s = ChatSession(gen, options={"max_new_tokens": MAX_NEW})
    out: list[str] = []
    script = ["hi", "/system be nice", "/save " + str(tmp_path / "c.jsonl"), "/bogus", "/help", "/save"]
    assert run_repl(s, _scripted(script), out.append) == 0
    text = "".join(out)
    assert "gptkit chat: a chat model" in text and "(system message set)" in text
    assert "unknown command /bogus" in text and "/system TEXT" in text and "usage: /save FILE" in text
    saved = json.loads((tmp_path / "c.jsonl").read_text(encoding="utf-8"))
    assert saved["messages"] == [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": s.turns[0][1]},
    ]


def test_ctrl_c_stops_the_answer_not_the_repl(gen):
    s = ChatSession(gen, options={"max_new_tokens": MAX_NEW})
    out: list[str] = []
    shown = {"answer": 0}

    def write(text):
        if out and out[-1] == "bot> " and shown["answer"] == 0:  # the first piece of the first answer
            shown["answer"] = 1
            raise KeyboardInterrupt
        out.append(text)

    assert run_repl(s, _scripted(["hi", "more"]), write) == 0
    assert "(stopped)" in "".join(out)
    assert len(s.turns) == 2 and s.turns[0][0] == "hi"  # the interrupted turn stays, as far as it got
    assert len(s.turns[0][1]) >= 1


pexpect = pytest.importorskip("pexpect")


def default_sigint() -> None:
    """In the spawned child: Ctrl-C raises KeyboardInterrupt whatever the test runner's own SIGINT disposition.
    A command started with `&` by a non-interactive shell (`nohup bash .ci/run &`) ignores SIGINT, every child
    inherits that, and Python then leaves SIGINT ignored, so the ^C this test types would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_terminal_two_turns_reset_and_exit(chat_dir, gen):
    """A person at a terminal: two turns, /reset, a third turn, Ctrl-C at the prompt, Ctrl-D."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "gptkit", "chat", "--model", str(chat_dir), "--max-new-tokens", str(MAX_NEW)],
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
        preexec_fn=default_sigint,
    )
    try:
        child.expect("a chat model")
        history: list[dict] = []
        child.expect_exact("you> ")
        for user in ("hi", "how are you?"):
            child.sendline(user)
            child.expect_exact("bot> ")
            child.expect_exact("you> ")
            history.append({"role": "user", "content": user})
            expected = _expected_answer(gen, history)
            assert child.before == (expected + "\n").replace("\n", "\r\n")  # streamed, then a newline
            history.append({"role": "assistant", "content": expected})
        child.sendline("/reset")
        child.expect_exact("(conversation reset)")
        child.sendline("how are you?")  # answered as a first turn again
        child.expect_exact("bot> ")
        child.expect_exact("you> ")
        first_turn = [{"role": "user", "content": "how are you?"}]
        assert child.before == (_expected_answer(gen, first_turn) + "\n").replace("\n", "\r\n")
        child.sendintr()  # Ctrl-C at the prompt does not end the program (the last expect saw its "you> ")
        child.expect_exact("Ctrl-D or /quit exits")
        child.expect_exact("you> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
