"""A bounded memo for functions of one line: page chrome and prose shapes repeat across pages, so the line rules
remember their answers, but only for lines up to CACHED_LINE_CHARS (a corpus of long one-line documents would
otherwise fill the caches with whole documents)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

CACHED_LINE_CHARS = 400

R = TypeVar("R")


def cache_short_lines(maxsize: int) -> Callable[[Callable[[str], R]], Callable[[str], R]]:
    """Decorator: an LRU cache of `maxsize` answers for lines of at most CACHED_LINE_CHARS characters; a longer
    line is computed each time. The result keeps `cache_info` / `cache_clear`, and `__wrapped__` is the uncached
    function."""

    def decorate(judge: Callable[[str], R]) -> Callable[[str], R]:
        cached = functools.lru_cache(maxsize=maxsize)(judge)

        @functools.wraps(judge)
        def judged(line: str) -> R:
            return cached(line) if len(line) <= CACHED_LINE_CHARS else judge(line)

        judged.cache_info = cached.cache_info  # type: ignore[attr-defined]
        judged.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return judged

    return decorate
