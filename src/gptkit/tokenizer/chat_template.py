"""The chat template: ChatML on the reserved <|im_start|> / <|im_end|> tokens, rendered to ids AND a loss mask.

    <|endoftext|><|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n
    <|im_start|>user\\n你好<|im_end|>\\n
    <|im_start|>assistant\\n你好！<|im_end|>\\n
    <|im_start|>assistant\\n                      <- add_generation_prompt=True: the model writes from here

A conversation is an OpenAI-style list of {"role", "content"} messages: an optional system message first, then
user and assistant turns alternating, starting with the user. `render_chat` is the one definition of the
format: it returns the token ids and, per id, whether it is a training target (the assistant's content and the
<|im_end|> that closes it; never the system or user turns, nor the role headers). It works with any tokenizer
that has the reserved tokens. `CHAT_TEMPLATE` is the same format as a Jinja template; a chat model's tokenizer
carries it (`tok.chat_template`, set by `gptkit finetune chat`; a base model's has None), saved as
chat_template.jinja and, for BPE, as the `chat_template` field of tokenizer_config.json, so
`transformers.AutoTokenizer.from_pretrained(DIR).apply_chat_template(msgs)` gives the same ids (tested).

Each turn's role header and content are encoded together ("assistant\\n" + content), as transformers encodes
the text between two control tokens, so a BPE merge across the header's newline comes out the same in both.
Content is always text: a literal "<|im_end|>" inside a message encodes as ordinary text here, and in
transformers with `apply_chat_template(msgs, sanitize_control_tokens=True)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gptkit.errors import GptkitError
from gptkit.tokenizer.core import IM_END, IM_START

ROLES = ("system", "user", "assistant")

# Newlines are written as Jinja string literals: transformers renders with trim_blocks / lstrip_blocks.
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
CHAT_TEMPLATE_FILE = "chat_template.jinja"


class ChatFormatError(GptkitError, ValueError):
    """A conversation that does not follow the format: unknown role, empty content, roles out of order."""


@dataclass(frozen=True)
class RenderedChat:
    ids: list[int]
    loss_mask: list[bool]  # loss_mask[i]: ids[i] is a training target (assistant content or its <|im_end|>)

    def __post_init__(self) -> None:
        assert len(self.ids) == len(self.loss_mask)


def validate_messages(messages: Any, *, for_generation: bool = False, where: str = "") -> list[dict[str, str]]:
    """Check a conversation; return it as plain {"role", "content"} dicts (other keys dropped).

    Order: an optional system message first, then user / assistant alternating from the user. A training
    conversation (for_generation=False) ends with an assistant turn; a prompt to answer ends with a user turn.
    `where` prefixes every message (e.g. "chat.jsonl:12: ").
    """
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ChatFormatError(f"{where}messages: expected a non-empty list of {{'role', 'content'}} objects")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ChatFormatError(f"{where}messages[{i}]: expected an object with 'role' and 'content'")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise ChatFormatError(f"{where}messages[{i}]: unknown role {role!r} (expected system, user or assistant)")
        if not isinstance(content, str):
            raise ChatFormatError(f"{where}messages[{i}] ({role}): content must be a string, got {content!r}")
        if not content.strip():
            raise ChatFormatError(f"{where}messages[{i}] ({role}): empty content")
        turn = i - 1 if messages[0].get("role") == "system" else i  # index among user/assistant turns
        expected = "system" if turn < 0 else ("user", "assistant")[turn % 2]
        if role != expected:
            raise ChatFormatError(
                f"{where}messages[{i}]: role {role!r} out of order (expected {expected!r}: an optional system "
                "message first, then user and assistant alternating, starting with user)"
            )
        out.append({"role": role, "content": content})
    last = out[-1]["role"]
    if for_generation and last != "user":
        raise ChatFormatError(f"{where}messages: the last message must be from the user to answer it, not {last!r}")
    if not for_generation and last != "assistant":
        raise ChatFormatError(f"{where}messages: a training conversation must end with an assistant turn, not {last!r}")
    return out


def has_chat_template(tokenizer) -> bool:
    """Is this a chat model's tokenizer? (Its files carry a chat template; `gptkit finetune chat` writes it.)"""
    return tokenizer.chat_template is not None


def check_chat_template(tokenizer, source: str = "the tokenizer") -> None:
    """A chat template must be gptkit's (render_chat writes only ChatML); an error names `source` otherwise."""
    if tokenizer.chat_template is None:
        raise ChatFormatError(f"{source} has no chat template: not a chat model (train one with gptkit finetune chat)")
    if tokenizer.chat_template != CHAT_TEMPLATE:
        raise ChatFormatError(f"{source}: its chat template is not gptkit's ChatML template, which gptkit renders")


def chat_token_ids(tokenizer) -> tuple[int, int]:
    """(<|im_start|> id, <|im_end|> id) of `tokenizer`; an error if it has none (e.g. GPT-2's own vocabulary)."""
    missing = [t for t in (IM_START, IM_END) if t not in tokenizer.special_tokens]
    if missing:
        raise ChatFormatError(
            f"the tokenizer has no {' / '.join(missing)} token, which the chat template needs "
            "(gptkit's tokenizers reserve them; an imported GPT-2 vocabulary does not)"
        )
    return tokenizer.special_tokens[IM_START], tokenizer.special_tokens[IM_END]


def render_chat(
    tokenizer, messages: Sequence[dict[str, str]], *, add_generation_prompt: bool = False, validate: bool = True
) -> RenderedChat:
    """Ids and loss mask of a conversation (see the module docstring for the layout).

    add_generation_prompt=True ends with the assistant header, for the model to answer the last user turn
    (the conversation must then end with a user turn). validate=False renders any sequence of known roles
    (the REPL's trimmed history is valid anyway; this is for callers that checked already).
    """
    if validate:
        messages = validate_messages(messages, for_generation=add_generation_prompt)
    start, end = chat_token_ids(tokenizer)
    newline = tokenizer.encode("\n")
    ids: list[int] = [tokenizer.bos_id]  # <|endoftext|> for gptkit BPE and char tokenizers
    mask: list[bool] = [False]
    for m in messages:
        header = m["role"] + "\n"
        body = tokenizer.encode(header + m["content"])
        ids.append(start)
        mask.append(False)
        ids.extend(body)
        if m["role"] == "assistant":
            # A token is a target when it holds content bytes (only a token that straddles the header's
            # newline, e.g. "\n\n" when the content starts with a newline, holds both).
            n_header, pos = len(header.encode("utf-8")), 0
            for t in body:
                pos += len(tokenizer.token_bytes(t))
                mask.append(pos > n_header)
        else:
            mask.extend([False] * len(body))
        ids.append(end)
        mask.append(m["role"] == "assistant")
        ids.extend(newline)
        mask.extend([False] * len(newline))
    if add_generation_prompt:
        prompt = [start, *tokenizer.encode("assistant\n")]
        ids.extend(prompt)
        mask.extend([False] * len(prompt))
    return RenderedChat(ids, mask)


def chat_prompt_ids(tokenizer, messages: Sequence[dict[str, str]]) -> list[int]:
    """The ids a chat model continues to answer the last user message (render_chat + generation prompt)."""
    return render_chat(tokenizer, messages, add_generation_prompt=True).ids


__all__ = [
    "CHAT_TEMPLATE",
    "CHAT_TEMPLATE_FILE",
    "ChatFormatError",
    "RenderedChat",
    "chat_prompt_ids",
    "chat_token_ids",
    "check_chat_template",
    "has_chat_template",
    "render_chat",
    "validate_messages",
]
