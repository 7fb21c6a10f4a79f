"""Training tokenizers from text: byte-level BPE (by HF `tokenizers`) and character vocabularies."""

from __future__ import annotations

import json
import sys
from collections import Counter

from tokenizers import AddedToken, pre_tokenizers, trainers

from gptkit.text_inputs import TextInputs, iter_texts
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.char import CharTokenizer
from gptkit.tokenizer.core import _SURROGATE, SPECIAL_TOKENS, Tokenizer, TokenizerError, _bad_text_error
from gptkit.tokenizer.pretokenize import DEFAULT_PRETOKENIZER, PRETOKENIZERS, new_byte_level_bpe

EMPTY_TEXT = "the training text is empty (the inputs hold no text): nothing to train a tokenizer on"


def train_tokenizer(
    inputs: TextInputs,
    vocab_size: int | None,
    kind: str = "bpe",
    *,
    pretokenizer: str = DEFAULT_PRETOKENIZER,
    min_frequency: int = 2,
    progress: bool = False,
) -> Tokenizer:
    """`Tokenizer.train` (see there): a BPE with the named pre-tokenizer, or a char vocabulary."""
    if kind == "bpe":
        if pretokenizer not in PRETOKENIZERS:
            raise TokenizerError(f"unknown pretokenizer {pretokenizer!r} (known: {', '.join(PRETOKENIZERS)})")
        return train_bpe(
            inputs, vocab_size, pattern=PRETOKENIZERS[pretokenizer], min_frequency=min_frequency, progress=progress
        )
    if kind == "char":
        return train_char(inputs, vocab_size, progress=progress)
    raise TokenizerError(f"unknown tokenizer kind {kind!r} (expected 'bpe' or 'char')")


def _check_vocab_size(vocab_size: int | None, minimum: int, kind: str) -> None:
    if vocab_size is None:
        return
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < minimum:
        raise TokenizerError(f"vocab_size={vocab_size!r} is too small for a {kind} tokenizer (minimum {minimum})")


def train_bpe(
    inputs: TextInputs,
    vocab_size: int,
    *,
    pattern: str = PRETOKENIZERS[DEFAULT_PRETOKENIZER],
    min_frequency: int = 2,
    progress: bool = False,
) -> BPETokenizer:
    """Train with pre-tokenization regex `pattern` (`Tokenizer.train` takes a name from PRETOKENIZERS)."""
    _check_vocab_size(vocab_size, 256 + len(SPECIAL_TOKENS), "byte-level BPE")
    if vocab_size is None:
        raise TokenizerError("vocab_size is required for a BPE tokenizer")
    hf = new_byte_level_bpe(pattern)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        min_frequency=min_frequency,
        show_progress=progress and sys.stderr.isatty(),  # its bars print blank lines elsewhere
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    seen = [0]  # characters of training text, counted as they stream by

    def texts():
        for text in iter_texts(inputs, progress=progress):
            seen[0] += len(text)
            yield text

    hf.train_from_iterator(texts(), trainer=trainer)
    if not seen[0]:  # it would otherwise be a vocabulary of the 256 bytes, trained on nothing
        raise TokenizerError(EMPTY_TEXT)
    hf.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIAL_TOKENS])
    return BPETokenizer(hf, json.loads(hf.to_str()), source="trained tokenizer")


def train_char(inputs: TextInputs, vocab_size: int | None, *, progress: bool = False) -> CharTokenizer:
    """All the text's characters (vocab_size None or large enough), in code-point order, then the specials; or,
    for a smaller vocab_size, the most frequent vocab_size - 3 - 256 characters with byte fallback."""
    _check_vocab_size(vocab_size, 1 + len(SPECIAL_TOKENS), "char")
    counts: Counter[str] = Counter()
    for text in iter_texts(inputs, progress=progress):
        counts.update(text)
    for c in list(counts):
        if _SURROGATE.match(c):
            raise _bad_text_error(c, "training text: ")
    if not counts:
        raise TokenizerError(EMPTY_TEXT)
    # A char tokenizer covers its own training text: all its characters, or (when vocab_size is smaller) the
    # most frequent ones plus 256 byte tokens that encode the rest as UTF-8 bytes.
    n_special = len(SPECIAL_TOKENS)
    if vocab_size is None or len(counts) <= vocab_size - n_special:
        return CharTokenizer(sorted(counts))
    keep = vocab_size - n_special - 256
    if keep < 1:
        raise TokenizerError(
            f"vocab_size={vocab_size}: the training text has {len(counts):,} distinct characters, which a char "
            f"tokenizer of this size cannot cover; give at least {len(counts) + n_special:,} (or none: all of them), "
            f"or at least {n_special + 257} to keep the most frequent and encode the rest as UTF-8 byte tokens"
        )
    # Most frequent first (ties by code point), then the kept ones in code-point order.
    ranked = sorted(counts, key=lambda c: (-counts[c], c))[:keep]
    return CharTokenizer(sorted(ranked), byte_fallback=True)
