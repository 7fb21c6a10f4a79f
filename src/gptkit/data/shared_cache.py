"""Clean results shared by the worker processes of one local stage, so that an exact repeat of a short document
is cleaned once per run rather than once per worker (a web crawl or a review set repeats many documents, and
repeats fall into different splits, so into different workers; with two workers each with its own cache about a
third of the clean calls of benchmarks/prepare.py's input repeated a call the other worker had made).

The table is one anonymous shared memory mapping made in the driver before the pool forks, so every worker sees
the same bytes; it is not used where workers are spawned (nothing to inherit) or on other executors (a Ray worker
keeps its own gptkit.data.tasks.CleanCache). `clean_document` is a pure function of the text and the settings, so a
result cleaned by another worker is the one this worker would have computed: outputs do not change, only the CPU.

Layout (little-endian):

    header  16 B                 end of the arena in use (an offset into the mapping), entries
    slots   SLOTS x 32 B         open addressing, linear probing: key (16 B BLAKE2b of the text), offset (8 B),
                                 length (4 B), 4 B unused; a key of zeros is an empty slot
    arena   the rest             marshal'ed results, appended

Entries are never removed; when the arena or the slots are full new results are simply not shared. One lock (a
process-shared semaphore) guards lookups and inserts: a lookup is a hash, a probe and a copy, microseconds.
"""

from __future__ import annotations

import hashlib
import marshal
import mmap
import multiprocessing as mp
import struct
from typing import Any

from gptkit.data.clean import CleanConfig, CleanResult
from gptkit.data.normalize import NormalizeStats

SLOTS = 1 << 17  # 4 MiB of slots; the table stops taking entries at MAX_LOAD of them
MAX_LOAD = 0.7
ARENA_BYTES = 256 << 20  # virtual: an anonymous mapping only takes memory for the pages written
_HEADER = struct.Struct("<QQ")
_SLOT = struct.Struct("<16sQI4x")
_EMPTY = bytes(16)


def _key(text: str) -> bytes:
    k = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return k if k != _EMPTY else b"\x01" + k[1:]  # the all-zero key marks an empty slot


def _pack(res: CleanResult) -> bytes:
    s = res.stats
    return marshal.dumps(
        (
            res.text,
            res.lang,
            res.rule,
            res.kept_lines,
            res.dropped_lines,
            res.normalized,
            (s.replacement_chars, s.entities, s.mojibake_fixed, s.removed_chars),
        )
    )


def _unpack(data: bytes) -> CleanResult:
    text, lang, rule, kept, dropped, normalized, st = marshal.loads(data)
    return CleanResult(text, lang, rule, kept, dropped, normalized, NormalizeStats(*st))


class SharedCleanCache:
    """Clean results for one setting (`cfg`), visible to every process forked after it was made."""

    def __init__(self, cfg: CleanConfig, slots: int = SLOTS, arena_bytes: int = ARENA_BYTES) -> None:
        self.cfg = cfg
        self.slots = slots
        self.max_entries = int(MAX_LOAD * slots)
        self.arena_start = _HEADER.size + slots * _SLOT.size
        self.size = self.arena_start + arena_bytes
        self.buf = mmap.mmap(-1, self.size)  # MAP_SHARED | MAP_ANONYMOUS: shared with forked children
        self.lock: Any = mp.get_context("fork").Lock()
        _HEADER.pack_into(self.buf, 0, self.arena_start, 0)

    def _find(self, key: bytes) -> tuple[int, int, int]:
        """(slot, offset, length) of `key`, or (the empty slot where it would go, 0, 0). Call under the lock."""
        i = int.from_bytes(key[:8], "little") % self.slots
        while True:
            k, off, n = _SLOT.unpack_from(self.buf, _HEADER.size + i * _SLOT.size)
            if k in (key, _EMPTY):
                return i, off, n if k == key else 0
            i = (i + 1) % self.slots

    def get(self, text: str) -> CleanResult | None:
        key = _key(text)
        with self.lock:
            _, off, n = self._find(key)
            data = self.buf[off : off + n] if n else None
        return _unpack(data) if data is not None else None

    def put(self, text: str, res: CleanResult) -> bool:
        """Share `res` as the result for `text`; False when the table is full (or the text is already in it)."""
        key, data = _key(text), _pack(res)
        with self.lock:
            used, entries = _HEADER.unpack_from(self.buf, 0)
            if entries >= self.max_entries or used + len(data) > self.size:
                return False
            slot, _, n = self._find(key)
            if n:
                return False
            self.buf[used : used + len(data)] = data
            _SLOT.pack_into(self.buf, _HEADER.size + slot * _SLOT.size, key, used, len(data))
            _HEADER.pack_into(self.buf, 0, used + len(data), entries + 1)
        return True

    @property
    def entries(self) -> int:
        with self.lock:
            return _HEADER.unpack_from(self.buf, 0)[1]

    def close(self) -> None:
        self.buf.close()


def fork_available() -> bool:
    return "fork" in mp.get_all_start_methods()
