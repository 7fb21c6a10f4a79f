"""A conversation with a model, turn by turn: what `gptkit chat` runs (the terminal only does input and output).

    session = ChatSession(Generator.load(DIR), options={"temperature": 0.8})
    for piece in session.reply("你好"):       # streamed text of the answer; the turn joins the history
        print(piece, end="")

A chat model (its tokenizer carries the chat template, see gptkit.tokenizer.chat_template) gets the rendered
conversation: the optional system message, the earlier turns and the new user message, then the assistant
header; the answer ends at <|im_end|> (or <|endoftext|>). A base model has no turns: the transcript so far
(each input followed by its continuation) plus the new input is continued as plain text.

When the prompt and the room kept for the answer would overflow the model's context, the oldest turns are
dropped first (`trimmed` counts them, so the caller can say so); a single message too long even alone is an
error. If the answer is interrupted (Ctrl-C raises KeyboardInterrupt in the consumer), the part written so far
stays in the history, as the person saw it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gptkit.errors import GptkitError
from gptkit.files import atomic_write_bytes
from gptkit.generation.text import DEFAULT_MAX_NEW_TOKENS, Generator
from gptkit.tokenizer.chat_template import (
    chat_token_ids,
    check_chat_template,
    has_chat_template,
    render_chat,
    validate_messages,
)


class ChatError(GptkitError):
    """A message that cannot be answered (too long for the context), or a file /save cannot write."""


@dataclass
class ChatSession:
    generator: Generator
    options: dict = field(default_factory=dict)  # generation settings (gptkit.generate keywords)
    system: str | None = None
    stop: list[str] = field(default_factory=list)
    valid_utf8: bool = True
    turns: list[tuple[str, str]] = field(default_factory=list)  # (user, assistant) of the history
    trimmed: int = 0  # turns dropped by the last reply to fit the context

    def __post_init__(self) -> None:
        tok = self.generator.tokenizer
        self.chat_mode = has_chat_template(tok)
        if self.chat_mode:
            check_chat_template(tok)
            _, end = chat_token_ids(tok)
            self.eos_ids = [end, tok.eot_id]
        else:
            self.eos_ids = [tok.eot_id]

    @property
    def block_size(self) -> int:
        return self.generator.model.config.block_size

    def answer_room(self) -> int:
        """Tokens kept free for the answer: max_new_tokens if given, else the default, at most half the context."""
        n = self.options.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS
        return max(1, min(n, self.block_size // 2))

    # ---- prompts -----------------------------------------------------------------------------
    def messages(self, user: str | None = None, turns: list[tuple[str, str]] | None = None) -> list[dict[str, str]]:
        """The conversation as OpenAI messages: system, the turns, then `user` if given."""
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        for u, a in self.turns if turns is None else turns:
            msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
        if user is not None:
            msgs.append({"role": "user", "content": user})
        return msgs

    def prompt_ids(self, user: str, turns: list[tuple[str, str]]) -> list[int]:
        tok = self.generator.tokenizer
        if self.chat_mode:
            # Not validated: an answer may be empty (the model ended it at once, or Ctrl-C came first), and
            # the model then sees it so, as it was.
            return render_chat(tok, self.messages(user, turns), add_generation_prompt=True, validate=False).ids
        return [tok.bos_id, *tok.encode("".join(u + a for u, a in turns) + user)]

    def fit(self, user: str) -> list[int]:
        """The prompt for `user`, dropping the oldest turns until it leaves answer_room() in the context."""
        turns = list(self.turns)
        self.trimmed = 0
        while True:
            ids = self.prompt_ids(user, turns)
            if len(ids) + self.answer_room() <= self.block_size:
                break
            if not turns:
                raise ChatError(
                    f"the message is too long: {len(ids)} tokens with the prompt, and the model's context of "
                    f"{self.block_size} must also hold the answer ({self.answer_room()} tokens)"
                )
            turns.pop(0)
            self.trimmed += 1
        if self.trimmed:
            self.turns = turns
        return ids

    # ---- a turn ---------------------------------------------------------------------------------
    def reply(self, user: str) -> Iterator[str]:
        """Stream the answer to `user`; when it ends (or the consumer stops early, e.g. Ctrl-C), the turn is
        added to the history with the text produced so far."""
        if not user.strip():
            raise ChatError("empty message")
        if self.chat_mode:
            validate_messages(self.messages(user, turns=[]), for_generation=True)  # the system message, the new one
        ids = self.fit(user)
        options = {
            **self.options,
            "eos_token_id": self.eos_ids,
            "max_new_tokens": self.options.get("max_new_tokens") or self.generator.default_max_new_tokens([len(ids)]),
        }
        pieces: list[str] = []
        try:
            for piece in self.generator.stream(ids, stop=self.stop, valid_utf8=self.valid_utf8, **options):
                pieces.append(piece)
                yield piece
        finally:
            self.turns.append((user, "".join(pieces)))

    def reset(self) -> None:
        self.turns = []

    def save(self, path: str | os.PathLike) -> Path:
        """Write the conversation as one JSON line {"messages": [...]} (the format finetune chat reads)."""
        path = Path(path)
        if not path.parent.is_dir():
            raise ChatError(f"{path}: its directory does not exist")
        record = {"messages": self.messages()}
        atomic_write_bytes(path, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        return path


HELP = """commands:
  /reset          forget the conversation (the system message stays)
  /system TEXT    set the system message (chat models; /system alone clears it)
  /save FILE      write the conversation as JSON ({"messages": [...]}, what finetune chat reads)
  /help           this text
Ctrl-C stops the answer being written; Ctrl-D (or /quit) exits."""


def run_repl(session: ChatSession, read_line, write, *, user_prompt: str = "you> ", bot_prompt: str = "bot> ") -> int:
    """The terminal conversation: `read_line(prompt)` returns a line (EOFError at the end: Ctrl-D,
    KeyboardInterrupt for Ctrl-C), `write(text)` shows text at once. Returns the exit status (0)."""
    model = "a chat model" if session.chat_mode else "a base model (no chat template): your text is continued as it is"
    write(f"gptkit chat: {model}; context {session.block_size} tokens. /help for commands, Ctrl-D to exit.\n")
    while True:
        try:
            line = read_line(user_prompt)
        except EOFError:
            write("\n")
            return 0
        except KeyboardInterrupt:
            write("\n(Ctrl-D or /quit exits)\n")
            continue
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            command, _, arg = text.partition(" ")
            arg = arg.strip()
            if command in ("/quit", "/exit"):
                return 0
            if command == "/help":
                write(HELP + "\n")
            elif command == "/reset":
                session.reset()
                write("(conversation reset)\n")
            elif command == "/system":
                if not session.chat_mode:
                    write("(a base model has no system message)\n")
                    continue
                session.system = arg or None
                write(f"(system message {'set' if arg else 'cleared'})\n")
            elif command == "/save":
                if not arg:
                    write("(usage: /save FILE)\n")
                    continue
                try:
                    write(f"(saved {session.save(arg)})\n")
                except (ChatError, OSError) as e:
                    write(f"(cannot save: {e})\n")
            else:
                write(f"(unknown command {command}; /help lists them)\n")
            continue
        try:
            answer = session.reply(line)
            first = next(answer, None)  # fits the history before anything is shown
        except GptkitError as e:  # too long, a character a char tokenizer lacks, ...
            write(f"({e})\n")
            continue
        except KeyboardInterrupt:
            write("\n(stopped)\n")
            continue
        if session.trimmed:
            write(f"(history trimmed: the oldest {session.trimmed} turn(s) dropped to fit the context)\n")
        write(bot_prompt)
        try:
            if first is not None:
                write(first)
                for piece in answer:
                    write(piece)
            write("\n")
        except KeyboardInterrupt:
            answer.close()
            write("\n(stopped)\n")


__all__ = ["HELP", "ChatError", "ChatSession", "run_repl"]
