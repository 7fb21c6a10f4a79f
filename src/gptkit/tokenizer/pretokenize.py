"""Pre-tokenization rules and GPT-2's byte-level alphabet, shared by training and loading.

BPE merges never cross the boundaries a pre-tokenization regex draws (Oniguruma syntax, as `tokenizers`
runs it); tokenizer.json stores the regex, so AutoTokenizer reproduces gptkit's ids.
"""

from __future__ import annotations

from functools import lru_cache

from tokenizers import Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

# gpt2: GPT-2's rule: letters of every script run together ("用Python写" is one piece), digits too.
# cl100k: GPT-4's rule: a letter run may take one leading non-letter (" the", "(the"), digits in groups
#   of at most 3, punctuation runs take trailing newlines, newlines group with the whitespace before them.
# gptkit (default): cl100k, but Han runs stand apart from other letters (never glued to Latin words) and,
#   like letter runs, may take one leading non-letter ("，我"). Chosen by measurement on held-out Chinese and
#   English (docs/tokenizer.md: `python benchmarks/tokenizer.py --study`).
_CONTRACTIONS = r"'(?i:[sdmt]|ll|ve|re)"
_PUNCT_AND_SPACE = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PRETOKENIZERS = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "cl100k": _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}" + _PUNCT_AND_SPACE,
    "gptkit": _CONTRACTIONS
    + r"|[^\r\n\p{L}\p{N}]?(?:(?!\p{Han})\p{L})+|[^\r\n\p{L}\p{N}]?\p{Han}+|\p{N}{1,3}"
    + _PUNCT_AND_SPACE,
}
DEFAULT_PRETOKENIZER = "gptkit"


@lru_cache(maxsize=1)
def byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character that stands for each byte, mapped to the byte.

    Bytes that are printable Latin-1 stand for themselves; the other 68 bytes take code points 256, 257, ...
    in byte order (so the space 0x20 is "Ġ", U+0120). `tokenizers.pre_tokenizers.ByteLevel` uses the same map.
    """
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    chars = {chr(b): b for b in printable}
    chars.update({chr(256 + i): b for i, b in enumerate(others)})
    return chars


def new_byte_level_bpe(pattern: str) -> HFTokenizer:
    """An untrained `tokenizers` byte-level BPE that pre-tokenizes with regex `pattern` (Oniguruma syntax).

    The rule is a `Split` regex followed by the byte-level mapping, both serialisable, so tokenizer.json
    carries it and AutoTokenizer reproduces gptkit's ids.
    """
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    hf.decoder = decoders.ByteLevel()
    return hf
