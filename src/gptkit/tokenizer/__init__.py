"""Tokenizers: byte-level BPE (trained and run by HF `tokenizers`) and character-level, one API.

    tok = Tokenizer.train(["input.txt"], vocab_size=8000)      # or kind="char"; or an iterable of str
    tok.save(ckpt_dir); tok = Tokenizer.load(ckpt_dir)         # also loads HF GPT-2 tokenizer directories
    ids = tok.encode(text); text = tok.decode(ids)             # decode(encode(s)) == s for every str
    ids_per_doc = tok.encode_batch(docs)                       # Rust, all cores

Modules: core (the Tokenizer base class, special tokens, file-format constants), bpe and char (the two
kinds gptkit trains), wordpiece (BERT vocab.txt, as GPT2-Chinese uses), training (learning a vocabulary
from text), extend (appending tokens), pretokenize (pre-tokenization regexes, GPT-2's byte alphabet), files
(loading and saving directories), stream (incremental decode), report (compression by script and
throughput), chat_template (ChatML: a conversation to ids + loss mask, and as Jinja for HF).
"""

from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.char import CharTokenizer
from gptkit.tokenizer.core import (
    EOT,
    HF_FILES,
    IM_END,
    IM_START,
    META_FILE,
    META_FORMAT,
    META_VERSION,
    SPECIAL_TOKENS,
    Tokenizer,
    TokenizerError,
)
from gptkit.tokenizer.pretokenize import DEFAULT_PRETOKENIZER, PRETOKENIZERS, byte_level_alphabet, new_byte_level_bpe
from gptkit.tokenizer.stream import StreamDecoder
from gptkit.tokenizer.wordpiece import WordPieceTokenizer

__all__ = [
    "DEFAULT_PRETOKENIZER",
    "EOT",
    "HF_FILES",
    "IM_END",
    "IM_START",
    "META_FILE",
    "META_FORMAT",
    "META_VERSION",
    "PRETOKENIZERS",
    "SPECIAL_TOKENS",
    "BPETokenizer",
    "CharTokenizer",
    "StreamDecoder",
    "Tokenizer",
    "TokenizerError",
    "WordPieceTokenizer",
    "byte_level_alphabet",
    "new_byte_level_bpe",
]
