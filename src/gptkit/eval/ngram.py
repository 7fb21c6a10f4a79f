"""An interpolated Kneser-Ney character n-gram: the count baseline a small GPT must beat.

Characters of the decoded documents, each document preceded by one separator symbol (the <|endoftext|> that
starts every document in a prepared split), so the model predicts document ends as gptkit.eval.lm counts
them: one character each. Characters never seen in training map to one unknown symbol.

For an order-N model and a context h of the last N-1 characters (Chen & Goodman 1998, interpolated KN):

    P(w | h) = max(c(h w) - D, 0) / c(h .) + D * N1+(h .) / c(h .) * P(w | h minus its first character)

with raw counts c at the highest order and continuation counts (how many different characters precede
the n-gram) at the lower orders; a context never seen falls through to the shorter one. The order-1
distribution interpolates with the uniform one over the alphabet, so every symbol has probability > 0.
D = n1 / (n1 + 2 n2) per order, from the counts of n-grams seen once (n1) and twice (n2).

Counting is vectorised: characters become dense ids, an n-gram the integer sum(id_k * A^(n-1-k)) (A the
alphabet size), and counts come from sorting; a 3M-character corpus fits in seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

SEPARATOR = "\x00"  # stands for the <|endoftext|> before each document
UNKNOWN = "\x01"  # any character not seen in training


def join_documents(documents: Iterable[str]) -> str:
    return "".join(SEPARATOR + d for d in documents)


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)


@dataclass
class _Table:
    """One order's counts: sorted n-gram codes and their counts; sorted context codes with totals and types."""

    codes: np.ndarray
    counts: np.ndarray
    contexts: np.ndarray
    context_total: np.ndarray
    context_types: np.ndarray
    discount: float


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[keys == q] for each query (0 where absent); keys sorted."""
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=np.float64)
    i = np.searchsorted(keys, queries).clip(max=len(keys) - 1)
    return np.where(keys[i] == queries, values[i], 0).astype(np.float64)


class KneserNey:
    """Fit on training text (documents joined by `join_documents`), then `nats(text)` on other text."""

    def __init__(self, text: str, order: int) -> None:
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order = order
        self.alphabet = sorted(set(text) | {UNKNOWN})
        self._points = _code_points("".join(self.alphabet))  # sorted code points: id = index
        self.size = len(self.alphabet)
        if float(self.size) ** order >= 2**62:
            raise ValueError(f"an alphabet of {self.size} characters is too large for order {order}")
        ids = self._ids(text)
        grams = [self._gram_codes(ids, n) for n in range(1, order + 1)]  # codes of every n-gram of the text
        self.tables: list[_Table] = []
        for n in range(1, order + 1):
            if n == order:
                codes, counts = np.unique(grams[n - 1], return_counts=True)
            else:  # continuation counts: how many distinct characters precede each n-gram
                codes, counts = np.unique(np.unique(grams[n]) % self.size**n, return_counts=True)
            contexts, inverse = np.unique(codes // self.size, return_inverse=True)
            total = np.bincount(inverse, weights=counts, minlength=len(contexts))
            types = np.bincount(inverse, minlength=len(contexts)).astype(np.float64)
            n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
            discount = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
            self.tables.append(_Table(codes, counts, contexts, total, types, discount))

    def _ids(self, text: str) -> np.ndarray:
        points = _code_points(text)
        i = np.searchsorted(self._points, points).clip(max=self.size - 1)
        unknown = self.alphabet.index(UNKNOWN)
        return np.where(self._points[i] == points, i, unknown)

    def _gram_codes(self, ids: np.ndarray, n: int) -> np.ndarray:
        """Codes of the n-grams ending at positions n-1, n, ...: sum of ids[i-n+1+k] * A^(n-1-k)."""
        codes = np.zeros(max(0, len(ids) - n + 1), dtype=np.int64)
        for k in range(n):
            codes = codes * self.size + ids[k : len(ids) - n + 1 + k]
        return codes

    def _probs(self, ids: np.ndarray) -> np.ndarray:
        """P(ids[i] | up to order-1 characters before i) for every position i (the first has no context)."""
        p = np.full(len(ids), 1.0 / self.size)
        for n in range(1, self.order + 1):
            table = self.tables[n - 1]
            ends = np.arange(n - 1, len(ids))  # positions with n-1 characters of context
            if len(ends) == 0:
                break
            codes = self._gram_codes(ids, n)
            total = _lookup(table.contexts, table.context_total, codes // self.size)
            types = _lookup(table.contexts, table.context_types, codes // self.size)
            count = _lookup(table.codes, table.counts, codes)
            d = table.discount
            seen = total > 0
            lower = p[ends]
            p[ends] = np.where(seen, (np.maximum(count - d, 0.0) + d * types * lower) / np.where(seen, total, 1), lower)
        return p

    def prob(self, context: str, symbol: str) -> float:
        """P(symbol | the last order-1 characters of context)."""
        return float(self._probs(self._ids(context[max(0, len(context) - self.order + 1) :] + symbol))[-1])

    def nats(self, text: str) -> tuple[float, int]:
        """(-sum of ln P(text[i] | text[:i]) for i >= 1, characters predicted)."""
        p = self._probs(self._ids(text))[1:]
        return float(-np.log(p).sum()), len(p)


def split_text(data_dir: str, split: str) -> str:
    """The documents of one split of a prepared directory, decoded and joined by `join_documents`."""
    from gptkit.data.shards import iter_documents, shard_paths
    from gptkit.errors import GptkitError
    from gptkit.train.data import open_data_dir

    data = open_data_dir(data_dir)
    if data.tokenizer is None:
        raise GptkitError(f"{data_dir}: no tokenizer files, so its tokens cannot be read back as text")
    paths = shard_paths(data_dir, split)
    if not paths:
        raise GptkitError(f"{data_dir}: no {split}_*.bin token shards")
    return join_documents(data.tokenizer.decode(doc[1:].tolist()) for doc in iter_documents(paths))
