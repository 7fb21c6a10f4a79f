"""Shared pieces of the tokenizer tests: a small mixed Chinese/English corpus and a reference BPE."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import strategies as st

from gptkit.corpora import CorpusError, en_shakespeare, zh_news, zh_reviews
from gptkit.tokenizer import SPECIAL_TOKENS


def mixed_corpus() -> dict[str, list[str]]:
    """{"train": lines, "held_out": lines}: a slice of each corpus (Chinese reviews and news, Shakespeare)."""
    try:
        corpora = [zh_reviews(), zh_news(), en_shakespeare()]
    except CorpusError as e:
        pytest.skip(str(e))
    train = [line for c in corpora for line in c.train[:1500]]
    held_out = [line for c in corpora for line in c.held_out[:150]]
    return {"train": train, "held_out": held_out}


def reference_bpe_encode(text: str, tokenizer_dir: Path, pattern: str) -> list[int]:
    """GPT-2's BPE written out plainly from vocab.json + merges.txt (an independent check of the backend).

    Pre-tokenize with the `regex` module, map bytes to GPT-2's byte-level characters, then repeatedly merge
    the adjacent pair with the lowest merge rank (all its occurrences, left to right) until none applies.
    """
    regex = pytest.importorskip("regex")
    vocab = json.loads((tokenizer_dir / "vocab.json").read_text(encoding="utf-8"))
    lines = (tokenizer_dir / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    ranks = {tuple(line.split(" ")): i for i, line in enumerate(lines)}
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    byte_char = {b: chr(b) for b in printable}
    byte_char.update({b: chr(256 + i) for i, b in enumerate(b for b in range(256) if b not in printable)})
    ids: list[int] = []
    for piece in regex.findall(pattern, text):
        word = [byte_char[b] for b in piece.encode("utf-8")]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if best not in ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids.extend(vocab[t] for t in word)
    return ids


# ---- strategies: every valid Unicode string, with extra weight on the hard parts --------------------
_han = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
_emoji = st.one_of(
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),
    st.sampled_from(["\u200d", "\ufe0f", "\U0001f3fd", "\U0001f1e8", "\U0001f1f3"]),  # ZWJ, VS16, skin, flag
)
_combining = st.characters(categories=["Mn", "Me", "Mc"])
_space = st.sampled_from([" ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", "\u3000", "\u00a0", "\x0b", "\x0c", "\u2028"])
_control = st.characters(categories=["Cc", "Cf", "Co"])  # NUL and the other controls, format chars, private use
_pieces = st.one_of(
    st.text(),  # any code point except lone surrogates
    st.text(alphabet=_han),
    st.text(alphabet=st.one_of(_han, st.sampled_from("，。！？《》“”、：；（）0123456789abcXYZ "))),
    st.text(alphabet=_emoji),
    st.text(alphabet=st.one_of(_combining, st.characters(max_codepoint=0x24F))),
    st.lists(_space).map("".join),
    st.text(alphabet=_control),
    st.sampled_from([*SPECIAL_TOKENS, "<|", "|>", "<|endoftext", "'s", "'LL", "1234567", "１９９８年", "👩\u200d💻"]),
)
any_text = st.lists(_pieces, max_size=8).map("".join)
