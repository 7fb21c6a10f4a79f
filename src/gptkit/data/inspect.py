"""`gptkit data inspect DIR`: validate every token shard of a prepared directory and decode a sample.

Checks, each reported with the file name and the problem:
  - every *.bin shard: header, size (truncation), CRC, token range, document index, BOS at each document,
    and that it was made with the directory's tokenizer (fingerprint) and vocabulary size
  - leftover *.tmp files (an interrupted write)
  - the token totals in report.json against the shards on disk (a missing or extra shard)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from gptkit.data.shards import Shard, ShardError

TOKENIZER_FILES = ("gptkit_tokenizer.json", "tokenizer.json", "vocab.json")


@dataclass
class ShardInfo:
    path: Path
    split: str
    tokens: int = 0
    docs: int = 0
    problem: str | None = None


@dataclass
class InspectResult:
    directory: Path
    shards: list[ShardInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    samples: list[tuple[str, str, int, str]] = field(default_factory=list)  # (split, file, doc index, text)
    tokenizer: str | None = None  # a description of the tokenizer found

    @property
    def ok(self) -> bool:
        return not self.problems


def inspect_dataset(directory: str | Path, n_samples: int = 3, seed: int = 0, sample_chars: int = 200) -> InspectResult:
    d = Path(directory)
    res = InspectResult(d)
    if not d.is_dir():
        res.problems.append(f"{d}: not a directory")
        return res
    tok = None
    if any((d / name).is_file() for name in TOKENIZER_FILES):
        from gptkit.tokenizer import Tokenizer

        try:
            tok = Tokenizer.load(d)
            res.tokenizer = f"{tok.kind}, vocab {tok.vocab_size}, fingerprint {tok.fingerprint[:16]}..."
        except Exception as e:
            res.problems.append(f"{d}: the tokenizer files cannot be loaded ({e})")
    else:
        res.problems.append(f"{d}: no tokenizer files (shards cannot be checked against a tokenizer)")
    paths = sorted(d.glob("*.bin"))
    if not paths:
        res.problems.append(f"{d}: no token shards (*.bin)")
    for p in sorted(d.glob("*.tmp")) + sorted((d / "documents").glob("*.tmp")):
        res.problems.append(f"{p}: incomplete file left by an interrupted write")
    good: list[tuple[ShardInfo, Shard]] = []
    for p in paths:
        split = p.name.split("_", 1)[0]
        info = ShardInfo(p, split)
        try:
            shard = Shard(p)
            shard.validate(
                tokenizer_fingerprint=tok.fingerprint if tok else None, vocab_size=tok.vocab_size if tok else None
            )
            info.tokens, info.docs = shard.header.n_tokens, shard.header.n_docs
            good.append((info, shard))
        except ShardError as e:
            info.problem = str(e)
            res.problems.append(str(e))
        res.shards.append(info)
    report_path = d / "report.json"
    if report_path.is_file():
        try:
            expected = json.loads(report_path.read_text(encoding="utf-8")).get("tokens", {})
        except json.JSONDecodeError as e:
            res.problems.append(f"{report_path}: not valid JSON ({e.msg})")
            expected = {}
        for split, n in expected.items():
            have = sum(s.tokens for s in res.shards if s.split == split and s.problem is None)
            broken = [s for s in res.shards if s.split == split and s.problem is not None]
            if have != n and not broken:
                res.problems.append(f"{d}: report.json counts {n:,} {split} tokens, the {split} shards hold {have:,}")
    if tok is not None and good and n_samples > 0:
        rng = random.Random(seed)
        with_docs = [(i, s) for i, s in good if s.header.n_docs]
        for _ in range(min(n_samples, sum(s.header.n_docs for _, s in with_docs))):
            info, shard = rng.choice(with_docs)
            k = rng.randrange(shard.header.n_docs)
            ids = shard.document(k)[1:].tolist()  # without the leading BOS
            res.samples.append((info.split, info.path.name, k, tok.decode(ids)[:sample_chars]))
    return res
