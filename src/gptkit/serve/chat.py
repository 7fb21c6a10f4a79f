"""Chat messages to prompt ids with the tokenizer's chat template (gptkit.tokenizer.chat_template: ChatML on
<|im_start|> / <|im_end|>). A checkpoint is a chat model iff its tokenizer files carry the template (`gptkit
finetune chat` writes it; a pretrained base model has none): for any other the server answers chat requests
with a 400 that says so."""

from __future__ import annotations

from collections.abc import Sequence

from gptkit.errors import GptkitError


class ChatUnsupported(GptkitError):
    """The model's tokenizer has no chat template."""


def chat_prompt(tokenizer, messages: Sequence[tuple[str, str]]) -> tuple[list[int], tuple[int, ...]]:
    """(prompt ids ending with the assistant header, the ids that end the answer: <|im_end|>, <|endoftext|>).
    OpenAI's "developer" role is the system message. Raises ChatUnsupported, or the template's
    ChatFormatError naming the message at fault."""
    from gptkit.tokenizer.chat_template import ChatFormatError, chat_prompt_ids, chat_token_ids, check_chat_template

    try:
        check_chat_template(tokenizer, "this model's tokenizer")
        _, end = chat_token_ids(tokenizer)
    except ChatFormatError as e:
        raise ChatUnsupported(f"{e}; use /v1/completions with a plain prompt") from None
    turns = [{"role": "system" if role == "developer" else role, "content": text} for role, text in messages]
    return chat_prompt_ids(tokenizer, turns), (end, tokenizer.eot_id)


__all__ = ["ChatUnsupported", "chat_prompt"]
