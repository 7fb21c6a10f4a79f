"""Conversations for chat fine-tuning: OpenAI-style JSONL files and the built-in sets (builtin:zh-chat, en-chat).

A JSONL file holds one conversation per line, `{"messages": [{"role": ..., "content": ...}, ...]}` (other
keys are kept as metadata and ignored for training). Every malformed line is an error naming the file and
the line: bad JSON, no "messages", an unknown role, empty content, roles out of order (the rules are
`gptkit.tokenizer.chat_template.validate_messages`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gptkit.errors import GptkitError
from gptkit.tokenizer.chat_template import ChatFormatError, validate_messages

BUILTIN_PREFIX = "builtin:"


class ConversationError(GptkitError):
    """A conversation file cannot be read or holds a malformed record (the message names file and line)."""


@dataclass(frozen=True)
class Conversation:
    messages: list[dict[str, str]]
    source: str = ""  # the kind of conversation ("chatterbot", "sentiment", "headline", ...) or file name
    meta: dict = field(default_factory=dict, compare=False)  # e.g. the expected label of an eval prompt


def read_conversations_jsonl(path: str | os.PathLike) -> list[Conversation]:
    """Every conversation of a JSONL file (blank lines skipped); an error names file:line for a bad one."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConversationError(f"{path}: cannot be read ({e.strerror})") from None
    out = []
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}: "
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ConversationError(f"{where}not valid UTF-8 (byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise ConversationError(f"{where}not valid JSON ({e.msg})") from None
        if not isinstance(record, dict) or "messages" not in record:
            raise ConversationError(f'{where}expected an object with a "messages" list')
        try:
            messages = validate_messages(record["messages"], where=where)
        except ChatFormatError as e:
            raise ConversationError(str(e)) from None
        meta = {k: v for k, v in record.items() if k != "messages"}
        out.append(Conversation(messages, source=str(meta.get("source", path.name)), meta=meta))
    if not out:
        raise ConversationError(f"{path}: holds no conversations")
    return out


def write_conversations_jsonl(conversations: Iterable[Conversation], path: str | os.PathLike) -> Path:
    """One {"messages", "source", **meta} object per line (what read_conversations_jsonl reads back)."""
    from gptkit.files import atomic_write_bytes

    lines = [
        json.dumps({"messages": c.messages, "source": c.source, **c.meta}, ensure_ascii=False) for c in conversations
    ]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return Path(path)


def load_conversations(spec: str, split: str = "train") -> list[Conversation]:
    """`builtin:NAME` (its `split`: "train" or "test") or a JSONL file (all of it, whatever `split`)."""
    if spec.startswith(BUILTIN_PREFIX):
        from gptkit.data.chat_sets import builtin_chat

        return builtin_chat(spec[len(BUILTIN_PREFIX) :], split)
    path = Path(spec)
    if not path.is_file():
        raise ConversationError(f"{spec}: no such file (expected a .jsonl of conversations or builtin:zh-chat)")
    return read_conversations_jsonl(path)


__all__ = [
    "Conversation",
    "ConversationError",
    "load_conversations",
    "read_conversations_jsonl",
    "write_conversations_jsonl",
]
