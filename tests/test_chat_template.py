"""The chat template: ids + loss mask from one definition; transformers' apply_chat_template agrees."""

from __future__ import annotations

import json

import pytest

from gptkit import Tokenizer
from gptkit.tokenizer.chat_template import (
    CHAT_TEMPLATE,
    CHAT_TEMPLATE_FILE,
    ChatFormatError,
    chat_prompt_ids,
    check_chat_template,
    has_chat_template,
    render_chat,
    validate_messages,
)
from tests.tokenizer_helpers import mixed_corpus

CONVERSATIONS = [
    [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！有什么可以帮你？"}],
    [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3 + 3?"},
        {"role": "assistant", "content": "6, of course.\n\nAnything else?"},
    ],
    [
        {"role": "system", "content": "你是一个有帮助的助手。"},
        {"role": "user", "content": "判断这条评论的情感：\n东西很好，物流也快。"},
        {"role": "assistant", "content": "\n正面"},  # content starting with a newline: a merge across the header
        {"role": "user", "content": "再写一句  mixed 文字 and spaces   "},
        {"role": "assistant", "content": "好的 OK  "},
    ],
]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("chat_tok")
    tok = Tokenizer.train(mixed_corpus()["train"], vocab_size=700)
    tok.chat_template = CHAT_TEMPLATE  # what gptkit finetune chat does for its checkpoints
    tok.save(path)
    return path


@pytest.fixture(scope="module")
def tok(tok_dir):
    return Tokenizer.load(tok_dir)


def _expected(tok, conversation, add_generation_prompt=False):
    """The layout written out piece by piece, with the trained positions marked by hand."""
    s, e = tok.special_tokens["<|im_start|>"], tok.special_tokens["<|im_end|>"]
    ids, mask = [tok.eot_id], [False]
    for m in conversation:
        head = tok.encode(m["role"] + "\n")
        content = tok.encode(m["content"])
        joint = tok.encode(m["role"] + "\n" + m["content"])
        train = m["role"] == "assistant"
        if joint == head + content:
            ids += [s, *joint, e]
            mask += [False] * (1 + len(head)) + [train] * len(content) + [train]
        else:  # only where a token straddles "role\n" and the content: it holds content, so it is trained
            ids += [s, *joint, e]
            n_head = len(tok.encode(m["role"]))
            mask += [False] * (1 + n_head) + [train] * (len(joint) - n_head) + [train]
        nl = tok.encode("\n")
        ids += nl
        mask += [False] * len(nl)
    if add_generation_prompt:
        gp = [s, *tok.encode("assistant\n")]
        ids += gp
        mask += [False] * len(gp)
    return ids, mask


def test_render_marks_exactly_assistant_content_and_its_end(tok):
    for conv in CONVERSATIONS:
        r = render_chat(tok, conv)
        assert (r.ids, r.loss_mask) == _expected(tok, conv)
        # The trained tokens decode to the assistant turns, each followed by <|im_end|>.
        trained = tok.decode([i for i, m in zip(r.ids, r.loss_mask, strict=True) if m])
        assert trained == "".join(m["content"] + "<|im_end|>" for m in conv if m["role"] == "assistant")
    text = tok.decode(render_chat(tok, CONVERSATIONS[0]).ids)
    assert (
        text
        == "<|endoftext|><|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n你好！有什么可以帮你？<|im_end|>\n"
    )


def test_generation_prompt_ends_with_the_assistant_header(tok):
    conv = CONVERSATIONS[1][:-1]
    ids = chat_prompt_ids(tok, conv)
    assert tok.decode(ids).endswith("And 3 + 3?<|im_end|>\n<|im_start|>assistant\n")
    assert ids == _expected(tok, conv, add_generation_prompt=True)[0]


def test_special_strings_in_content_are_text(tok):
    conv = [{"role": "user", "content": "say <|im_end|> please"}, {"role": "assistant", "content": "<|im_start|>"}]
    r = render_chat(tok, conv)
    specials = set(tok.special_tokens.values())
    assert sum(i in specials for i in r.ids) == 1 + 2 * 2  # BOS and the template's own four


def test_saved_template_files(tok_dir, tok, tmp_path):
    assert (tok_dir / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8") == CHAT_TEMPLATE
    config = json.loads((tok_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["chat_template"] == CHAT_TEMPLATE
    assert has_chat_template(tok) and tok.chat_template == CHAT_TEMPLATE
    check_chat_template(tok)
    # A base model's tokenizer carries none, and saving it over a chat model's files removes the template.
    base = Tokenizer.load(tok_dir)
    base.chat_template = None
    base.save(tok_dir / "copy")
    base.save(tmp_path)
    for d in (tok_dir / "copy", tmp_path):
        assert not (d / CHAT_TEMPLATE_FILE).exists()
        assert "chat_template" not in json.loads((d / "tokenizer_config.json").read_text(encoding="utf-8"))
        assert not has_chat_template(Tokenizer.load(d))
    with pytest.raises(ChatFormatError, match="not a chat model"):
        check_chat_template(Tokenizer.load(tmp_path), str(tmp_path))
    # A char tokenizer carries it in chat_template.jinja alone.
    char = Tokenizer.train(["abc\n"], vocab_size=None, kind="char")
    char.chat_template = CHAT_TEMPLATE
    char.save(tmp_path / "char")
    assert Tokenizer.load(tmp_path / "char").chat_template == CHAT_TEMPLATE


def _hf_ids(hf, conv, **kwargs) -> list[int]:
    out = hf.apply_chat_template(conv, **kwargs)
    return list(out["input_ids"]) if hasattr(out, "keys") else list(out)  # transformers 5 returns a dict


def test_autotokenizer_apply_chat_template_gives_identical_ids(tok_dir, tok):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(tok_dir)
    for conv in CONVERSATIONS:
        assert _hf_ids(hf, conv) == render_chat(tok, conv).ids
        prompt = conv[:-1]
        assert _hf_ids(hf, prompt, add_generation_prompt=True) == chat_prompt_ids(tok, prompt)
    # Control-token strings inside messages: text for gptkit, and for transformers when asked to sanitize.
    conv = [{"role": "user", "content": "a <|im_end|> b"}, {"role": "assistant", "content": "<|endoftext|>"}]
    assert _hf_ids(hf, conv, sanitize_control_tokens=True) == render_chat(tok, conv).ids
    # The template file alone (older readers take the tokenizer_config.json field) renders the same text.
    assert hf.apply_chat_template(CONVERSATIONS[1], tokenize=False) == tok.decode(
        render_chat(tok, CONVERSATIONS[1]).ids
    )


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "non-empty list"),
        ([{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}], "unknown role 'bot'"),
        ([{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}], "empty content"),
        ([{"role": "assistant", "content": "x"}], "out of order"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "out of order"),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "system", "content": "b"},
                {"role": "assistant", "content": "c"},
            ],
            "out of order",
        ),
        ([{"role": "user", "content": "a"}], "must end with an assistant turn"),
        ([{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}], "must be a string"),
    ],
)
def test_malformed_conversations(messages, message):
    with pytest.raises(ChatFormatError, match=message):
        validate_messages(messages, where="f.jsonl:3: ")


def test_prompt_must_end_with_user(tok):
    with pytest.raises(ChatFormatError, match="last message must be from the user"):
        chat_prompt_ids(tok, CONVERSATIONS[0])


def test_char_tokenizer_renders_too():
    tok = Tokenizer.train(["abcdefghijklmnopqrstuvwxyz\n 你好"], vocab_size=None, kind="char")
    conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "你好"}]
    r = render_chat(tok, conv)
    assert tok.decode([i for i, m in zip(r.ids, r.loss_mask, strict=True) if m]) == "你好<|im_end|>"
