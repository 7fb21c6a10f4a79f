"""Adding tokens to a tokenizer without moving the old ones: special (task) tokens, and learned BPE merges.

Both append: every old id keeps its token, new ids start at the old `vocab_size`. Each function also says,
for every new id, which old ids its text used to encode to (`pieces`), so the model side
(`gptkit.vocab.grow_vocab`) can initialise the new embedding rows from the old ones.

Why learned merges leave old text alone: byte-level BPE applies, at every step, the applicable merge of
lowest rank. The new merges rank after all old ones, so on any word the old merges run first, exactly as
before, until none applies (the old tokenization); only then can a new merge fire, and a new merge never
makes an old one applicable again (its result is a token no old merge mentions). So a text encodes as
before unless its old tokenization has two neighbours that a new merge joins.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import AddedToken, trainers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models as hf_models
from tokenizers import pre_tokenizers as hf_pre_tokenizers

from gptkit.text_inputs import TextInputs, iter_texts
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.char import CharTokenizer
from gptkit.tokenizer.core import Tokenizer, TokenizerError

# Old token ids travel through HF's BPE trainer as one private-use character each (planes 15 and 16,
# which no text here uses and no normalizer touches): id i -> chr(_PUA + i).
_PUA = 0xF0000
_MAX_TRAINABLE_VOCAB = 0x10FFFE - _PUA
_BATCH_TEXTS = 1024


@dataclass
class Extension:
    """A tokenizer with tokens appended, and where the new tokens came from."""

    tokenizer: Tokenizer
    old_vocab_size: int
    # pieces[k]: the old ids that the text of new id old_vocab_size + k encoded to ([] for special tokens)
    pieces: list[list[int]]

    @property
    def added(self) -> int:
        return self.tokenizer.vocab_size - self.old_vocab_size


def add_special_tokens(tok: Tokenizer, names: Sequence[str]) -> Extension:
    """Append special tokens `names` (new ids in that order). Like <|endoftext|>, they enter only by id:
    text that contains their strings encodes as before. Names the tokenizer already has are refused."""
    names = list(names)
    if not names:
        raise TokenizerError("add_special_tokens: no token names given")
    if len(set(names)) != len(names):
        raise TokenizerError(f"add_special_tokens: names repeat: {names}")
    for name in names:
        if not isinstance(name, str) or not name:
            raise TokenizerError(f"add_special_tokens: {name!r} is not a non-empty string")
        if name in tok.special_tokens:
            raise TokenizerError(
                f"add_special_tokens: {name!r} is already a special token (id {tok.special_tokens[name]})"
            )
    if isinstance(tok, CharTokenizer):
        new: Tokenizer = CharTokenizer(tok.chars, [*tok.extra_special_tokens, *names], byte_fallback=tok.byte_fallback)
    elif isinstance(tok, BPETokenizer):
        clash = [n for n in names if n in tok.backend.get_vocab(with_added_tokens=True)]
        if clash:
            raise TokenizerError(f"add_special_tokens: {clash[0]!r} is already an ordinary token of this vocabulary")
        hf = HFTokenizer.from_str(tok.backend.to_str())
        hf.add_special_tokens([AddedToken(n, special=True, normalized=False) for n in names])
        new = BPETokenizer(hf, json.loads(hf.to_str()), source="tokenizer with added special tokens")
    else:
        raise TokenizerError(f"add_special_tokens: unsupported tokenizer {type(tok).__name__}")
    for k, name in enumerate(names):
        assert new.special_tokens[name] == tok.vocab_size + k, (name, new.special_tokens)
    return Extension(new, tok.vocab_size, [[] for _ in names])


def learn_merges(
    tok: Tokenizer,
    inputs: TextInputs,
    n_new: int,
    *,
    min_frequency: int = 2,
    progress: bool = False,
) -> Extension:
    """Continue BPE training of `tok` on `inputs` until `n_new` new tokens exist (fewer if the text runs
    out of pairs seen `min_frequency` times); the merges and tokens are appended after the old ones.

    Words (the pre-tokenizer's pieces) are first encoded with the old tokenizer; HF's BPE trainer then
    learns merges over those old ids, so each new token is a run of old tokens, which are its `pieces`.
    """
    if not isinstance(tok, BPETokenizer):
        raise TokenizerError(
            f"learning merges needs a byte-level BPE tokenizer; this one is {tok.kind!r} (a char vocabulary "
            "has no pieces to merge)"
        )
    if isinstance(n_new, bool) or not isinstance(n_new, int) or n_new < 1:
        raise TokenizerError(f"the number of tokens to add must be a positive integer, got {n_new!r}")
    if tok.vocab_size + n_new > _MAX_TRAINABLE_VOCAB:
        raise TokenizerError(f"vocab_size {tok.vocab_size} + {n_new} is beyond what gptkit can extend")
    words = _old_word_counts(tok, inputs, progress)
    if not words:
        raise TokenizerError("the text to learn new tokens from is empty")
    old_tokens = tok._tokens
    vocab = dict(tok.backend.get_vocab(with_added_tokens=True))
    merges: list[tuple[str, str]] = []
    pieces: list[list[int]] = []
    # A learned merge may produce a token the vocabulary already has (its old tokenization split it
    # another way); it is kept as a merge but adds no token, so the trainer is asked again for the shortfall.
    extra = 0
    for _ in range(4):
        trained = _train_merges(words, n_new + extra, min_frequency, progress)
        merges, pieces, vocab = [], [], dict(tok.backend.get_vocab(with_added_tokens=True))
        for a, b in trained:
            left, right = _to_byte_level(a, old_tokens), _to_byte_level(b, old_tokens)
            merges.append((left, right))
            if left + right not in vocab and len(pieces) < n_new:
                vocab[left + right] = tok.vocab_size + len(pieces)
                pieces.append([ord(c) - _PUA for c in a + b])
            elif left + right not in vocab:
                merges.pop()  # past n_new new tokens: the trainer's extra merges are not needed
                break
        shortfall = n_new - len(pieces)
        if shortfall == 0 or len(trained) < n_new + extra:  # done, or the text has no more pairs to merge
            break
        extra += shortfall
    definition = json.loads(tok.backend.to_str())
    model = definition["model"]
    # `tokenizers` numbers added tokens (the specials) after the model's vocabulary when it loads a file, so
    # the model's vocabulary must hold them too (GPT-2's vocab.json has <|endoftext|> the same way) for
    # the new tokens to come after them and every old id to stay put.
    for token_id, added in tok.backend.get_added_tokens_decoder().items():
        model["vocab"][added.content] = token_id
    for k, p in enumerate(pieces):
        model["vocab"]["".join(old_tokens[i] for i in p)] = tok.vocab_size + k
    as_strings = bool(model["merges"]) and isinstance(model["merges"][0], str)
    model["merges"].extend(f"{a} {b}" if as_strings else [a, b] for a, b in merges)
    try:
        hf = HFTokenizer.from_str(json.dumps(definition, ensure_ascii=False))
    except Exception as e:  # tokenizers raises plain Exception; this would be a gptkit bug
        raise TokenizerError(f"the extended tokenizer does not load in tokenizers ({e})") from None
    new = BPETokenizer(hf, definition, source="extended tokenizer")
    return Extension(new, tok.vocab_size, pieces)


def _old_word_counts(tok: BPETokenizer, inputs: TextInputs, progress: bool) -> Counter[str]:
    """How often each word occurs, a word written as its old ids, one private-use character per id."""
    counts: Counter[str] = Counter()
    batch: list[str] = []

    def flush() -> None:
        for enc in tok.backend.encode_batch(batch, add_special_tokens=False):
            if not enc.ids:
                continue
            ids = np.asarray(enc.ids, dtype=np.uint32)  # (n,)
            words = np.asarray(enc.word_ids, dtype=np.int64)  # (n,) the pre-tokenizer word of each token
            coded = (ids + _PUA).tobytes().decode("utf-32-le")  # one private-use character per id
            starts = [0, *(np.flatnonzero(words[1:] != words[:-1]) + 1).tolist(), len(ids)]
            counts.update(coded[a:b] for a, b in itertools.pairwise(starts))
        batch.clear()

    for text in iter_texts(inputs, progress=progress):
        batch.append(text)
        if len(batch) >= _BATCH_TEXTS:
            flush()
    if batch:
        flush()
    return counts


def _train_merges(words: Counter[str], n_merges: int, min_frequency: int, progress: bool) -> list[tuple[str, str]]:
    """The first `n_merges` merges HF's BPE trainer learns on `words` (strings of private-use characters)."""
    alphabet = {c for w in words for c in w}
    hf = HFTokenizer(hf_models.BPE())
    hf.pre_tokenizer = hf_pre_tokenizers.WhitespaceSplit()  # words are joined by spaces below
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + n_merges,
        min_frequency=min_frequency,
        show_progress=progress and sys.stderr.isatty(),
        special_tokens=[],
    )
    hf.train_from_iterator(_repeat_words(words), trainer=trainer)
    merges = json.loads(hf.to_str())["model"]["merges"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in merges]


def _repeat_words(words: Counter[str]):
    # The trainer counts words itself; a line of up to 256 copies keeps the iterator short.
    for word, n in words.items():
        while n > 0:
            k = min(n, 256)
            yield " ".join([word] * k)
            n -= k


def _to_byte_level(coded: str, old_tokens: list[str]) -> str:
    return "".join(old_tokens[ord(c) - _PUA] for c in coded)
